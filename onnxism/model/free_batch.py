"""Free a fixed batch axis: a model exported with a fixed batch size (torch.onnx.export without dynamic axes, the
default of both of its exporters) as one that takes any batch, where that is exact.

The rewrite: the first axis of every graph input and of every graph output that has the fixed size becomes dynamic,
the graph's intermediate shape annotations are dropped, and a constant Reshape target whose first entry is the fixed
batch, on a tensor computed from the inputs, copies the batch instead (entry 0, allowzero off where the target has
no zero entry: torch's dynamo exporter writes ``x.flatten(1)`` as Reshape to [1, features], allowzero on). It is
kept only if, on random inputs, every output of the rewritten model for a batch of another size equals, row for row,
the model's own at its fixed batch.

Invariant: ``free_batch`` returns None, or a model that takes any batch and agreed with ``proto`` row for row on
that check.
"""

import numpy as np
import onnx
from onnx import numpy_helper

from ..runtime.sessions import import_onnxruntime, make_session
from .extra_inputs import padded_rows
from .sequence_input import graph_inputs
from .weightless import expose_node_outputs, weight_dependent

#: Outputs of the freed model must equal the model's own to this relative tolerance (of each output's largest
#: magnitude): onnxruntime may block a larger batch's products differently.
TOLERANCE = 1e-4


def free_batch(proto, batch, feeds_at):
    """The model ``proto`` (fixed batch ``batch``) with a dynamic batch axis, or None where the rewrite does not
    compute the same rows. ``feeds_at(n, rng)``: random feeds for a batch of n, one set per length to check at
    (skipped where the model itself does not run; see ``enough_lengths``)."""
    freed = _rewritten(proto, batch)
    if freed is None:
        return None
    rows = batch + 2  # another size, and more rows than the fixed batch
    cases = feeds_at(rows, np.random.default_rng(0))
    return freed if same_model_outputs(proto, freed, cases, fixed_batch=batch) else None


def enough_lengths(checked, cases):
    """Whether a rewrite checked at ``len(checked)`` of the lengths of ``cases`` (those where the model runs) was
    checked at enough of them: the one of a model of fixed length, two at least for a model of any length, since a
    shape the rewrite read at one length and wrote into the graph is wrong at any other."""
    return len(checked) >= min(2, len(cases))


def same_model_outputs(proto, rewritten, cases, fixed_batch=None):
    """Whether ``rewritten`` computes ``proto``'s outputs (``same_outputs``) on each set of feeds in ``cases`` (one
    per length) where ``proto`` runs, and those are enough (``enough_lengths``); ``proto`` is run in batches of
    ``fixed_batch`` rows (padded) where it has one. One session at a time is held."""
    quiet = import_onnxruntime().RunOptions()
    quiet.log_severity_level = 4  # a failed run is an answer here, not an error to log
    try:
        session = make_session(proto.SerializeToString(), "cpu", optimize=False)
    except Exception:  # noqa: BLE001 - onnxruntime's own types
        return False
    names = [output.name for output in session.get_outputs()]
    wanted = []
    for feeds in cases:
        try:
            wanted.append((feeds, _outputs(session, names, feeds, quiet, fixed_batch)))
        except Exception:  # noqa: BLE001 - the model does not run at this length: not a case to check
            continue
    del session
    if not enough_lengths(wanted, cases):
        return False
    try:
        session = make_session(rewritten.SerializeToString(), "cpu", optimize=False)
        return all(same_outputs(session.run(names, feeds, quiet), want) for feeds, want in wanted)
    except Exception:  # noqa: BLE001 - onnxruntime's own types: the rewritten graph does not run
        return False


def tensor_values(proto, feeds, names=None):
    """{name: value} of the tensors ``names`` of ``proto`` on ``feeds``, from one run without graph optimisations;
    with ``names`` None, of every node output, and the feeds. onnxruntime's errors pass through (a model that does
    not run on these feeds)."""
    copy = onnx.ModelProto()
    copy.CopyFrom(proto)
    if names is None:
        expose_node_outputs(copy.graph)
    else:
        declared = {output.name for output in copy.graph.output}
        copy.graph.output.extend(onnx.ValueInfoProto(name=name) for name in names if name not in declared)
    session = make_session(copy.SerializeToString(), "cpu", optimize=False)
    wanted = [output.name for output in session.get_outputs()] if names is None else list(names)
    values = dict(zip(wanted, session.run(wanted, feeds)))
    if names is None:
        values.update(feeds)
    return values


def _outputs(session, names, feeds, quiet, batch):
    """The outputs ``names`` on ``feeds``: in one run, or in runs of ``batch`` rows (the last padded)."""
    if batch is None:
        return session.run(names, feeds, quiet)
    rows = len(next(iter(feeds.values())))
    parts = [[] for _ in names]
    for first in range(0, rows, batch):
        chunk = padded_rows({name: value[first:first + batch] for name, value in feeds.items()}, batch)
        for k, value in enumerate(session.run(names, chunk, quiet)):
            parts[k].append(np.asarray(value)[: min(batch, rows - first)])
    return [np.concatenate(part) for part in parts]


def same_outputs(got, want):
    """Whether each output in ``got`` has the shape and type of the one in ``want`` and equals it: within
    TOLERANCE of its largest magnitude (at least 1) where floating point, exactly otherwise."""
    for value, expected in zip(got, want):
        value, expected = np.asarray(value), np.asarray(expected)
        if value.shape != expected.shape or value.dtype != expected.dtype:
            return False
        if np.issubdtype(expected.dtype, np.floating):
            scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
            if not np.allclose(value, expected, rtol=0, atol=TOLERANCE * scale, equal_nan=True):
                return False
        elif not np.array_equal(value, expected):
            return False
    return True


def _rewritten(proto, batch):
    """The rewritten copy of ``proto``, or None where an input or output does not have the batch first."""
    freed = onnx.ModelProto()
    freed.CopyFrom(proto)
    graph = freed.graph
    inputs = graph_inputs(graph)
    for is_input, values in ((True, inputs), (False, graph.output)):
        for value in values:
            dims = value.type.tensor_type.shape.dim
            if not dims or not dims[0].HasField("dim_value") or dims[0].dim_value != batch:
                if is_input:
                    return None
                continue  # an output without the batch first: the check decides
            dims[0].Clear()
            dims[0].dim_param = "batch"
    del graph.value_info[:]
    from_inputs = weight_dependent(graph, {value.name for value in inputs})  # the tensors that carry rows
    targets = {init.name: init for init in graph.initializer}
    targets.update((node.output[0], node) for node in graph.node if node.op_type == "Constant")
    for node in graph.node:
        if node.op_type != "Reshape" or node.input[0] not in from_inputs or node.input[1] not in targets:
            continue
        shape = _constant(targets[node.input[1]])
        if shape is None or shape.ndim != 1 or not len(shape) or shape[0] != batch or (shape == 0).any():
            continue
        # no zero entries, so allowzero (torch's exports set it) means nothing here: dropped, 0 copies the batch
        kept = [attribute for attribute in node.attribute if attribute.name != "allowzero"]
        del node.attribute[:]
        node.attribute.extend(kept)
        copied = shape.copy()
        copied[0] = 0
        name = f"{node.input[1]}__any_batch"
        if name not in targets:
            graph.initializer.append(numpy_helper.from_array(copied, name))
            targets[name] = graph.initializer[-1]
        node.input[1] = name
    return freed


def _constant(source):
    """The value of an initializer or a Constant node with a ``value`` tensor, else None."""
    if isinstance(source, onnx.TensorProto):
        return numpy_helper.to_array(source)
    for attribute in source.attribute:
        if attribute.name == "value":
            return numpy_helper.to_array(attribute.t)
    return None
