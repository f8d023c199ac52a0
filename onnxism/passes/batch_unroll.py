"""Unroll a concatenation along the batch: a model that stacks the sequences with a copy of them (their reverse
complement) along the batch, runs its layers once on the stack, and takes the parts apart again (torch's
``cat([x, x.flip(1, 2)], 0)`` ... ``y[:n]``, ``y[n:]``) becomes one copy of those layers per part.

Run on the stack, every layer mixes the parts along the batch axis as far as the graph can tell, so fast ISM would
compute them all on the full length and TISM could not follow a sequence's rows; unrolled, each copy is an ordinary
model of one part (a reversed slice of the input for the reverse complement), windowed and differentiable like any.

The rewrite: for a Concat along axis 0 of K tensors of the batch's size, the nodes downstream of it (the "stack
region") up to the nodes that take the parts apart (a Slice along axis 0 of rows [k n, (k + 1) n), a Split along
axis 0 into K parts of n, a Reshape to (K, n, ...) read by one mean, sum, max or min over axis 0) are copied K
times, copy k reading part k where the stack read the Concat; each Slice or Split output becomes the copy of its
part, and a reduction over the parts the elementwise Mean, Sum, Max or Min of the copies. Nodes left unread are
dropped. The parts' bounds are read from the graph's own shape arithmetic, run at two batch sizes; a Reshape's
parts' shape at two lengths too, where the model runs at more than one. Weights are shared, not copied. The
rewrite is kept only if, on random inputs, the rewritten model's outputs equal the model's (to
``free_batch.TOLERANCE`` of each output's largest magnitude).

Invariant: ``unroll_batch_concats`` returns None, or a model that agreed with ``proto`` on that check, in which
each Concat along the batch of tensors computed from the sequence input is unrolled or left as it was.
"""

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ..graph.liveness import live_nodes
from ..graph.nodes import attr
from ..graph.verify import same_model_outputs, tensor_values
from ..graph.weightless import weight_dependent
from ..model.sequence_input import random_feeds
from .base import PassResult, unchanged

_PROBE_BATCHES = (2, 3)


def run(proto, ctx):
    """Where the batch is dynamic, each concatenation of the sequences along the batch that is taken apart
    unrolled (``unroll_batch_concats``)."""
    if ctx.fixed_batch is not None:
        return unchanged(proto)
    found = ctx.found
    unrolled = unroll_batch_concats(proto, found.name, lambda count, rng: random_feeds(found, count, rng))
    if unrolled is None:
        return unchanged(proto)
    proto, count = unrolled
    return PassResult(proto, True, f"{count} concatenation(s) of the sequences along the batch unrolled",
                      {"unrolled": count})


def unroll_batch_concats(proto, input_name, feeds_at):
    """(the model with each batch concatenation of the sequence input that is taken apart unrolled, how many
    were), or None where there is none or the rewrite does not compute the same outputs. ``feeds_at(n, rng)``:
    random feeds for a batch of n, one set per length to check at (the model's, or several for a model of any
    length)."""
    graph = proto.graph
    from_input = weight_dependent(graph, {input_name})
    candidates = [node.output[0] for node in graph.node if node.op_type == "Concat" and attr(node, "axis", None) == 0
                  and len(node.input) > 1 and all(name in from_input for name in node.input)]
    if not candidates:
        return None
    rng = np.random.default_rng(0)
    cases = list(zip(*(feeds_at(batch, rng) for batch in _PROBE_BATCHES)))  # per length, feeds at each batch
    probes = []  # per length the model runs at (two at most), the values at each probe batch
    for feeds in cases:
        try:
            probes.append([tensor_values(proto, batch_feeds) for batch_feeds in feeds])
        except Exception:  # noqa: BLE001 - onnxruntime's own types: the model does not run at this length
            continue
        if len(probes) == 2:
            break
    if not probes:
        return None
    current, count = proto, 0
    for name in candidates:  # (one inside an earlier one's region has been copied with it: left as it is)
        index = next((k for k, node in enumerate(current.graph.node) if node.output[0] == name), None)
        plan = None if index is None else _plan(current.graph, index, probes)
        if plan is not None:  # else not taken apart as a whole (kept: computed exactly as it is)
            current, count = _unrolled(current, index, *plan), count + 1
    if not count or not same_model_outputs(proto, current, feeds_at(_PROBE_BATCHES[-1], np.random.default_rng(1))):
        return None
    return current, count


def _plan(graph, concat, probes):
    """(the indices of the stack region's nodes, {index of a node that takes it apart: ("parts", [the part of
    each output]) for a Slice or Split, ("rest", the Reshape target of each part) for a Reshape and ("over", the
    elementwise op) for the reduction over the parts after it}) of ``concat`` (the node at index ``concat``), or
    None where its parts are not each the batch or something downstream of it is not taken apart. ``probes``:
    per length, the values at each probe batch; bounds are read at the first length, shapes at every one."""
    concat_index, concat = concat, graph.node[concat]
    parts = len(concat.input)
    for at_length in probes:
        for values, batch in zip(at_length, _PROBE_BATCHES):
            if any(np.shape(values[name])[:1] != (batch,) for name in concat.input):
                return None
    constants = {init.name: numpy_helper.to_array(init) for init in graph.initializer}

    def value(name, k, length=0):
        return probes[length][k][name] if name in probes[length][k] else constants.get(name)

    outputs = {value.name for value in graph.output}
    readers = {}
    for index, node in enumerate(graph.node):
        for name in node.input:
            readers.setdefault(name, []).append(index)
    region, stacked, apart = set(), {concat.output[0]}, {}
    for index, node in enumerate(graph.node):
        if index == concat_index or not any(name in stacked for name in node.input) or index in apart:
            continue
        if node.input[0] in stacked:
            taken = _taken_apart(node, parts, value)
            if taken is not None:
                apart[index] = ("parts", taken)
                continue
            if node.op_type == "Reshape":
                reduced = _reduced_apart(node, parts, value, len(probes), graph, readers.get(node.output[0], []))
                if reduced is not None:
                    rest, reduce, over = reduced
                    apart[index], apart[reduce] = rest, ("over", over)
                    continue
        region.add(index)
        stacked.update(name for name in node.output if name)
    if not apart or stacked & outputs:
        return None
    return region, apart


#: A reduction over the parts (after a Reshape to (parts, n, ...)) and the elementwise op over the parts it equals
_OVER_PARTS = {"ReduceMean": "Mean", "ReduceSum": "Sum", "ReduceMax": "Max", "ReduceMin": "Min"}


def _reduced_apart(reshape, parts, value, lengths, graph, readers):
    """Where ``reshape`` splits the stack into (parts, n, *rest) (at both probe batches) for one reduction over
    the parts (axis 0, keepdims 0; torch's ``y.view(2, n, -1).mean(0)``): (("rest", each part's Reshape target),
    the reduction's index, its elementwise op), else None. The target is (-1, *rest) where rest is the same at
    every probed length, else (0, *rest) with -1 for the one dim of rest that follows the length (none where
    more than one does: such a shape would have to be computed)."""
    rests = []
    for length in range(lengths):
        seen = set()
        for k, batch in enumerate(_PROBE_BATCHES):
            shape = np.shape(value(reshape.output[0], k, length))
            if len(shape) < 2 or shape[:2] != (parts, batch):
                return None
            seen.add(tuple(shape[2:]))
        if len(seen) != 1:
            return None
        rests.append(seen.pop())
    if len({len(rest) for rest in rests}) != 1 or 0 in rests[0]:  # (a 0 in a target copies the input's dim)
        return None
    varying = [axis for axis, dims in enumerate(zip(*rests)) if len(set(dims)) > 1]
    if len(varying) > 1:
        return None
    target = [-1, *rests[0]] if not varying else [0, *(-1 if axis in varying else dim
                                                       for axis, dim in enumerate(rests[0]))]
    if len(readers) != 1:
        return None
    reduce = graph.node[readers[0]]
    if reduce.op_type not in _OVER_PARTS or attr(reduce, "keepdims", 1) != 0:
        return None
    axes = attr(reduce, "axes", None)
    if axes is None and len(reduce.input) > 1 and reduce.input[1]:
        axes = value(reduce.input[1], 0)
    if axes is None or [int(axis) for axis in np.ravel(axes)] != [0]:
        return None
    return ("rest", target), readers[0], _OVER_PARTS[reduce.op_type]


def _taken_apart(node, parts, value):
    """The part each output of ``node`` selects where it takes the stack apart along the batch (at both probe
    batches), else None."""
    if node.op_type == "Slice":
        inputs = list(node.input) + [""] * (5 - len(node.input))
        chosen = set()
        for k, batch in enumerate(_PROBE_BATCHES):
            starts, ends = value(inputs[1], k), value(inputs[2], k)
            axes = value(inputs[3], k) if inputs[3] else np.arange(np.size(starts))
            steps = value(inputs[4], k) if inputs[4] else np.ones(np.size(starts), np.int64)
            if starts is None or ends is None or axes is None or steps is None:
                return None
            if np.size(axes) != 1 or int(np.ravel(axes)[0]) != 0 or int(np.ravel(steps)[0]) != 1:
                return None
            start, end = int(np.ravel(starts)[0]), int(np.ravel(ends)[0])
            if start % batch or start < 0 or min(end, parts * batch) != start + batch:
                return None
            chosen.add(start // batch)
        return list(chosen) if len(chosen) == 1 else None
    if node.op_type == "Split" and attr(node, "axis", 0) == 0 and len(node.output) == parts:
        for k, batch in enumerate(_PROBE_BATCHES):
            sizes = value(node.input[1], k) if len(node.input) > 1 and node.input[1] else attr(node, "split", None)
            if sizes is not None and list(np.ravel(sizes)) != [batch] * parts:
                return None
        return list(range(parts))
    return None


def _unrolled(proto, concat_index, region, apart):
    """A copy of ``proto`` with the region of its Concat at ``concat_index`` copied once per part."""
    concat = proto.graph.node[concat_index]
    parts = len(concat.input)
    result = onnx.ModelProto()
    result.CopyFrom(proto)
    graph = result.graph
    stacked = {concat.output[0]} | {name for index in region for name in proto.graph.node[index].output if name}

    def part_name(name, k):
        if name == concat.output[0]:
            return concat.input[k]
        return f"{name}__part{k}" if name in stacked else name

    nodes = []
    for index, original in enumerate(proto.graph.node):
        if index == concat_index:
            continue
        if index in region:
            for k in range(parts):
                copy = onnx.NodeProto()
                copy.CopyFrom(original)
                copy.name = f"{original.name or original.output[0]}__part{k}"
                copy.input[:] = [part_name(name, k) for name in original.input]
                copy.output[:] = [part_name(name, k) for name in original.output]
                nodes.append(copy)
        elif index in apart and apart[index][0] == "rest":  # a Reshape to (parts, n, *rest): each part to (n, *rest)
            shape = f"{original.output[0]}__part_shape"
            graph.initializer.append(numpy_helper.from_array(np.array(apart[index][1], np.int64), shape))
            for k in range(parts):
                nodes.append(helper.make_node("Reshape", [part_name(original.input[0], k), shape],
                                              [f"{original.output[0]}__part{k}"], name=f"{original.name}__part{k}"))
        elif index in apart and apart[index][0] == "over":  # the reduction over the parts: elementwise
            reshaped = original.input[0]
            nodes.append(helper.make_node(apart[index][1], [f"{reshaped}__part{k}" for k in range(parts)],
                                          [original.output[0]], name=f"{original.name or original.output[0]}__parts"))
        elif index in apart:
            for output, k in zip(original.output, apart[index][1]):
                if output:
                    nodes.append(helper.make_node("Identity", [part_name(original.input[0], k)], [output],
                                                  name=f"{original.name or output}__part{k}"))
        else:
            copy = onnx.NodeProto()
            copy.CopyFrom(original)
            nodes.append(copy)
    del graph.node[:]
    graph.node.extend(live_nodes(nodes, {value.name for value in graph.output}))
    del graph.value_info[:]
    return result
