"""Gradients of selections: ops whose every output element copies one input element or is a fill value.

Gather, GatherElements and GatherND with constant indices, strided or reversed Slices, Pad in every mode, Tile,
nearest Resize, ReverseSequence, DepthToSpace, ... all move values without arithmetic. Rather than one rule per
op, the op is run once at build time (onnx's reference evaluator, so its own semantics decide) on a sequence row
whose entries are 1, 2, 3, ...: each output entry then names the input entry it copies (0: a fill). A second run,
on the entries in a random order, must give the same copies, or the op is not a selection and is refused. The
cotangent of the input is the sum of the output cotangents that copied each entry: one Gather per copy count.

Invariant: only the node's parameters (indices, pads, repeats, scales), which must be constants, and its static
per-row shapes enter the map; each row of the batch (or the whole tensor for a model with a fixed batch) maps
independently, which the build-time run checks on two rows.
"""

import numpy as np
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from .rules.registry import rule

#: Ops always handled as selections (Slice, Pad and Resize only where their own rules do not apply: a nearest Resize
#: is one).
SELECTION_OPS = ("Gather", "GatherElements", "GatherND", "Tile", "ReverseSequence",
                 "DepthToSpace", "SpaceToDepth", "Compress", "Trilu", "CenterCropPad")


@rule(*SELECTION_OPS)
def selection_vjp(ctx, node, gouts):
    """The cotangent of ``node.input[0]`` for a node that copies entries of it (refused if it does not): the sum of
    the output cotangents that copied each entry."""
    x, y, g = node.input[0], node.output[0], gouts[0]
    if g is None or not ctx.needs(x):
        return {}
    if any(ctx.needs(name) for name in node.input[1:]):
        ctx.refuse(node, "its indices or parameters depend on the sequence")
    params = []
    for name in node.input[1:]:
        value = ctx.value(name) if name else None
        if name and value is None:
            ctx.refuse(node, "its indices or parameters are not constants")
        params.append(value)
    batch_in, batch_out = ctx.batch_axis(x), ctx.batch_axis(y)
    if batch_in == -1 or batch_out == -1:
        ctx.refuse(node, "no one axis of its input and output holds the batch")
    sources = _copied_entries(node, params, ctx.shape(x), batch_in, batch_out, ctx.opset)
    if sources is None:
        ctx.refuse(node, "its outputs are not copies of its input's entries (or rows of the batch mix)")
    in_shape, out_shape = ctx.shape(x), ctx.shape(y)
    if batch_in is None:
        rows = ctx.op("Reshape", [g, ctx.ints([-1, int(np.prod(out_shape))])], stem="selection_rows")
    else:
        front = ctx.op("Transpose", [g], perm=_to_front(len(out_shape) + 1, batch_out + 1))
        rows = ctx.op("Reshape", [front, ctx.ints([-1, _per_row(out_shape, batch_out)])], stem="selection_rows")
    padded = ctx.op("Pad", [rows, ctx.ints([0, 0, 0, 1])], stem="selection_padded")  # column D_out: zero
    copies = _inverse(sources, _per_row(in_shape, batch_in))
    if not copies:  # every output entry a fill
        return {0: ctx.zeros_like(x)}
    summed = ctx.sum([ctx.op("Gather", [padded, ctx.const(level, "selection_index")], axis=1) for level in copies])
    if batch_in is None:
        return {0: ctx.like(summed, x)}
    rest = [size for axis, size in enumerate(in_shape) if axis != batch_in]
    shaped = ctx.op("Reshape", [summed, ctx.op("Concat", [ctx.seed_batch, ctx.ints(rest)], axis=0)])
    return {0: ctx.op("Transpose", [shaped], perm=list(np.argsort(_to_front(len(in_shape) + 1, batch_in + 1))))}


def _to_front(rank, axis):
    """perm moving ``axis`` to position 1 (after the seed axis), the others in order."""
    rest = [a for a in range(1, rank) if a != axis]
    return [0, axis] + rest


def _per_row(shape, batch_axis):
    return int(np.prod([size for axis, size in enumerate(shape) if axis != batch_axis]))


def _inverse(sources, size):
    """For sources (D_out,) of input entries (-1: none), index arrays (size,) into the output entries (D_out: the
    zero column), one per copy: level k lists each input entry's k-th copy."""
    out_size = len(sources)
    used = np.flatnonzero(sources >= 0)
    order = used[np.argsort(sources[used], kind="stable")]
    target = sources[order]
    counts = np.bincount(target, minlength=size)
    first = np.r_[0, np.cumsum(counts)[:-1]]
    level = np.arange(len(order)) - first[target]
    levels = np.full((int(counts.max(initial=0)), size), out_size, dtype=np.int64)
    levels[level, target] = order
    return list(levels)


def _copied_entries(node, params, in_shape, batch_in, batch_out, opset):
    """(D_out,) int64: the input entry (within a row) each output entry of a row copies, -1 for a fill; None if
    the node is not a selection or rows mix. Rows: along the batch axes, or the whole tensor when those are None."""
    rows = 1 if batch_in is None else 2
    shape = list(in_shape)
    if batch_in is not None:
        shape[batch_in] = rows
    size = int(np.prod(shape))
    per_row = size // rows
    labels = np.arange(1, size + 1, dtype=np.float64)
    shuffled = np.random.default_rng(0).permutation(size).astype(np.float64) + 1
    outputs = []
    for values in (labels, shuffled):
        data = values.reshape([rows] + [s for a, s in enumerate(shape) if a != batch_in]) if batch_in is not None \
            else values.reshape(shape)
        if batch_in is not None:
            data = np.moveaxis(data, 0, batch_in)
        result = _run(node, params, np.ascontiguousarray(data), opset)
        if result is None:
            return None
        if batch_out is not None:
            if result.ndim <= batch_out or result.shape[batch_out] != rows:
                return None
            result = np.moveaxis(result, batch_out, 0)
        outputs.append(result.reshape(rows, -1))
    first, second = outputs
    if not np.array_equal(first, np.round(first)) or first.min(initial=0) < 0 or first.max(initial=0) > size:
        return None
    picked = first.astype(np.int64) - 1  # global entry copied, -1 for none
    if rows == 2:
        shifted = np.where(picked[0] >= 0, picked[0] + per_row, -1)
        if not np.array_equal(picked[1], shifted) or picked[0].max(initial=-1) >= per_row:
            return None
    expected = np.where(picked >= 0, shuffled[np.maximum(picked, 0)], 0.0)
    if not np.array_equal(second, expected):
        return None
    return picked[0]


def _run(node, params, data, opset):
    """The node on ``data`` (float64) with its constant parameters, by onnx's reference evaluator; a Pad's fill
    becomes 0 (no entry)."""
    names = ["data"]
    initializers = []
    for index, value in enumerate(params, start=1):
        if value is None:
            names.append("")
            continue
        name = f"param{index}"
        if node.op_type == "Pad" and index == 2:
            value = np.zeros((), np.float64)
        initializers.append(numpy_helper.from_array(np.asarray(value), name))
        names.append(name)
    copy = helper.make_node(node.op_type, names, ["out"], domain=node.domain or None)
    copy.attribute.extend(node.attribute)
    graph = helper.make_graph([copy], "selection", [helper.make_tensor_value_info("data", TensorProto.DOUBLE,
                                                                                   data.shape)],
                              [helper.make_tensor_value_info("out", TensorProto.DOUBLE, None)], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 10
    try:
        return np.asarray(ReferenceEvaluator(model).run(None, {"data": data})[0], dtype=np.float64)
    except Exception:  # noqa: BLE001 - an op the evaluator cannot run here is no known selection
        return None
