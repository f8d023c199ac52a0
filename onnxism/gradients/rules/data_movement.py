"""Rules of the ops that move entries without arithmetic and have a direct inverse: Identity, Dropout and Cast,
the Reshape family, Transpose, Concat and Split, contiguous Slice and constant Pad. Strided or reversed Slices and
the other Pad modes are selections (``..selection``). Ops that cut or pad the batch axis are refused."""

import numpy as np

from ...graph.nodes import attr
from ..selection import selection_vjp
from .common import constant_list, positive_axis
from .registry import rule, unary


@unary("Identity", "Dropout")
def _identity(ctx, node, g, x, y):
    """g (Dropout at inference is the identity)."""
    return g


@unary("Reshape", "Flatten", "Squeeze", "Unsqueeze")
def _reshape(ctx, node, g, x, y):
    """g reshaped to x's shape."""
    return ctx.like(g, x)


@unary("Cast")
def _cast(ctx, node, g, x, y):
    """g cast to the gradient's float type."""
    return ctx.op("Cast", [g], to=ctx.onnx_dtype)


@unary("Transpose")
def _transpose(ctx, node, g, x, y):
    """g transposed by the inverse permutation."""
    rank = ctx.rank(x)
    perm = list(attr(node, "perm", list(reversed(range(rank)))))
    inverse = list(np.argsort(perm))
    return ctx.op("Transpose", [g], perm=[0] + [int(a) + 1 for a in inverse])


@rule("Concat")
def _concat(ctx, node, gouts):
    """Each input's slice of g along the concatenated axis."""
    g, y = gouts[0], node.output[0]
    if g is None:
        return {}
    rank = ctx.rank(y)
    axis = positive_axis(attr(node, "axis"), rank)
    if axis == 0 and any(ctx.needs(x) for x in node.input):
        ctx.refuse(node, "it concatenates along the batch axis")
    grads, offset = {}, 0
    for index, x in enumerate(node.input):
        size = ctx.shape(x)[axis]
        if ctx.needs(x):
            grads[index] = ctx.op("Slice", [g, ctx.ints([offset]), ctx.ints([offset + size]), ctx.ints([axis + 1])])
        offset += size
    return grads


@rule("Split")
def _split(ctx, node, gouts):
    """The outputs' cotangents concatenated along the split axis (zeros for an output without one)."""
    x = node.input[0]
    if all(g is None for g in gouts) or not ctx.needs(x):
        return {}
    rank = ctx.rank(x)
    axis = positive_axis(attr(node, "axis", 0), rank)
    if axis == 0:
        ctx.refuse(node, "it splits the batch axis")
    parts = [g if g is not None else ctx.zeros_like(out) for g, out in zip(gouts, node.output)]
    return {0: ctx.op("Concat", parts, axis=axis + 1)}


@rule("Slice")
def _slice(ctx, node, gouts):
    """g padded with zeros back to x's shape; a strided or reversed Slice is a selection."""
    x, g = node.input[0], gouts[0]
    if g is None or not ctx.needs(x):
        return {}
    shape = ctx.shape(x)
    rank = len(shape)
    if len(node.input) > 1:
        starts = constant_list(ctx, node, 1, "starts")
        ends = constant_list(ctx, node, 2, "ends")
        axes = constant_list(ctx, node, 3, "axes")
        steps = constant_list(ctx, node, 4, "steps")
    else:
        starts, ends, axes, steps = attr(node, "starts"), attr(node, "ends"), attr(node, "axes"), None
    axes = list(range(len(starts))) if axes is None else axes
    steps = [1] * len(starts) if steps is None else steps
    if any(step != 1 for step in steps):
        return selection_vjp(ctx, node, gouts)  # strided or reversed (a reverse complement)
    pads = [0] * (2 * (rank + 1))
    for start, end, axis in zip(starts, ends, axes):
        axis = positive_axis(axis, rank)
        size = shape[axis]
        lo, hi, _ = slice(int(start), int(end)).indices(size)
        hi = max(hi, lo)
        if axis == 0:
            if (lo, hi) != (0, size):
                ctx.refuse(node, "it slices the batch axis")
            continue
        pads[axis + 1], pads[rank + 1 + axis + 1] = lo, size - hi
    return {0: ctx.op("Pad", [g, ctx.ints(pads)])}


@rule("Pad")
def _pad(ctx, node, gouts):
    """g with the padding cropped off (and zeros where a negative pad cropped x); other modes are selections."""
    x, g = node.input[0], gouts[0]
    if g is None or not ctx.needs(x):
        return {}
    if attr(node, "mode", "constant") != "constant":
        return selection_vjp(ctx, node, gouts)  # reflect, edge, wrap
    shape = ctx.shape(x)
    rank = len(shape)
    pads = constant_list(ctx, node, 1, "pads") if len(node.input) > 1 else list(attr(node, "pads"))
    axes = constant_list(ctx, node, 3, "axes") if len(node.input) > 3 else None
    axes = list(range(rank)) if axes is None else [positive_axis(a, rank) for a in axes]
    begin, end = [0] * rank, [0] * rank
    for k, axis in enumerate(axes):
        begin[axis], end[axis] = int(pads[k]), int(pads[k + len(axes)])
    if begin[0] or end[0]:
        ctx.refuse(node, "it pads the batch axis")
    out = ctx.shape(node.output[0])
    starts = [max(b, 0) for b in begin]
    stops = [out[a] - max(end[a], 0) for a in range(rank)]
    axes_all = list(range(1, rank))
    cropped = ctx.op("Slice", [g, ctx.ints(starts[1:]), ctx.ints(stops[1:]), ctx.ints([a + 1 for a in axes_all])])
    refill = [0, 0] + [max(-b, 0) for b in begin[1:]] + [0, 0] + [max(-e, 0) for e in end[1:]]
    if any(refill):
        cropped = ctx.op("Pad", [cropped, ctx.ints(refill)])
    return {0: cropped}
