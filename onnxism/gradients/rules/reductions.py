"""Rules of the reductions (ReduceSum and its kin, GlobalAveragePool, GlobalMaxPool): the output's cotangent spread
back over the reduced axes, times each entry's partial derivative. Reducing over the batch axis is refused."""

import numpy as np

from ...graph.nodes import attr
from .common import optional_input, positive_axis
from .registry import unary

_REDUCTIONS = ("ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "GlobalAveragePool", "GlobalMaxPool", "ReduceL1",
               "ReduceL2", "ReduceSumSquare", "ReduceLogSumExp", "ReduceProd")


def _reduce_axes(ctx, node, rank):
    """The sorted axes a reduction reduces (attribute or constant input; all where none), or None for the identity
    (``noop_with_empty_axes`` with no axes)."""
    axes = attr(node, "axes")
    if axes is None and optional_input(node, 1):
        value = ctx.value(node.input[1])
        if value is None:
            ctx.refuse(node, "its axes are not a constant")
        axes = value.reshape(-1).tolist()
    if not axes:
        if attr(node, "noop_with_empty_axes", 0):
            return None
        axes = list(range(rank))
    return sorted(positive_axis(a, rank) for a in axes)


@unary(*_REDUCTIONS)
def _reduce(ctx, node, g, x, y):
    """g, with the reduced axes restored, times d y / d x: 1 (sum), 1/n (mean), sign(x) (L1), 2x (sum of squares),
    the product of the others (prod), exp(x - y) (log-sum-exp), x / y (L2), an even share of the maxima (max, min)."""
    shape = ctx.shape(x)
    rank = len(shape)
    if node.op_type.startswith("Global"):
        axes, keepdims = list(range(2, rank)), 1
    else:
        axes, keepdims = _reduce_axes(ctx, node, rank), attr(node, "keepdims", 1)
        if axes is None:  # noop_with_empty_axes: the identity, where the op is no more than a reduction
            if node.op_type not in ("ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd"):
                ctx.refuse(node, "noop_with_empty_axes is not supported for it")
            return g
    if 0 in axes:
        ctx.refuse(node, "it reduces over the batch axis")
    shifted = [a + 1 for a in axes]
    kept = g if keepdims else ctx.op("Unsqueeze", [g, ctx.ints(shifted)])
    if node.op_type in ("ReduceSum", "ReduceMean", "GlobalAveragePool"):
        if node.op_type != "ReduceSum":
            kept = ctx.op("Mul", [kept, ctx.scalar(1.0 / np.prod([shape[a] for a in axes]))])
        return ctx.expand_like(kept, x)
    if node.op_type == "ReduceL1":
        return ctx.op("Mul", [kept, ctx.op("Sign", [x])])
    if node.op_type == "ReduceSumSquare":
        return ctx.op("Mul", [kept, ctx.op("Mul", [x, ctx.scalar(2.0)])])
    if node.op_type == "ReduceProd":
        return ctx.op("Mul", [kept, _product_of_the_others(ctx, x, axes)])
    y_kept = y if keepdims else ctx.op("Unsqueeze", [y, ctx.ints(axes)])
    if node.op_type == "ReduceLogSumExp":
        return ctx.op("Mul", [kept, ctx.op("Exp", [ctx.op("Sub", [x, y_kept])])])
    if node.op_type == "ReduceL2":  # x / |x|, and 0 where the norm is 0 (as torch's norm has it)
        zero = ctx.op("Equal", [y_kept, ctx.scalar(0.0)])
        ratio = ctx.op("Where", [zero, ctx.scalar(0.0), ctx.op("Div", [x, y_kept])])
        return ctx.op("Mul", [kept, ratio])
    hits = ctx.cast_mask(ctx.op("Equal", [x, y_kept]))
    share = ctx.op("Div", [hits, ctx.reduce_sum(hits, axes)])  # ties split evenly, as torch.amax does
    return ctx.op("Mul", [kept, share])


def _product_of_the_others(ctx, x, axes):
    """For each entry of x, the product of the other entries reduced with it (d prod / d x_i), exact where entries
    are 0: with no 0, prod / x_i; with one, the product of the nonzero entries at the 0 and 0 elsewhere; with more,
    0 everywhere."""
    zero = ctx.op("Equal", [x, ctx.scalar(0.0)])
    safe = ctx.op("Where", [zero, ctx.scalar(1.0), x])
    if ctx.opset >= 18:
        nonzero = ctx.op("ReduceProd", [safe, ctx.ints(axes)], keepdims=1)
    else:
        nonzero = ctx.op("ReduceProd", [safe], axes=axes, keepdims=1)
    zeros = ctx.reduce_sum(ctx.cast_mask(zero), axes)
    alone = ctx.op("And", [zero, ctx.op("Equal", [zeros, ctx.scalar(1.0)])])
    return ctx.op("Where", [ctx.op("Equal", [zeros, ctx.scalar(0.0)]), ctx.op("Div", [nonzero, safe]),
                            ctx.op("Where", [alone, nonzero, ctx.scalar(0.0)])])
