"""Rules of the normalisations: BatchNormalization (inference: a per-channel affine map), LayerNormalization and
InstanceNormalization (through the mean and variance they compute), Softmax and LogSoftmax, LpNormalization."""

import numpy as np

from ...graph.nodes import attr
from ...graph.ops import normalised_axes
from .common import positive_axis
from .registry import rule, unary


@rule("BatchNormalization")
def _batch_norm(ctx, node, gouts):
    """g scale / sqrt(var + epsilon) per channel (folded into one constant where scale and var are constants)."""
    x, g = node.input[0], gouts[0]
    if attr(node, "training_mode", 0):
        ctx.refuse(node, "training mode is not inference")
    if any(ctx.needs(name) for name in node.input[1:]):
        ctx.refuse(node, "its parameters depend on the sequence")
    if g is None or not ctx.needs(x):
        return {}
    scale, var = ctx.value(node.input[1]), ctx.value(node.input[4])
    rank = ctx.rank(x)
    if scale is not None and var is not None:
        factor = (scale.astype(np.float64) / np.sqrt(var.astype(np.float64) + attr(node, "epsilon", 1e-5)))
        factor = ctx.const(factor.astype(ctx.dtype).reshape((-1,) + (1,) * (rank - 2)), "bn_factor")
    else:
        root = ctx.op("Sqrt", [ctx.op("Add", [node.input[4], ctx.scalar(attr(node, "epsilon", 1e-5))])])
        factor = ctx.op("Reshape", [ctx.op("Div", [node.input[1], root]), ctx.ints([-1] + [1] * (rank - 2))])
    return {0: ctx.op("Mul", [g, factor])}


@rule("LayerNormalization", "InstanceNormalization")
def _normalisation(ctx, node, gouts):
    """The cotangent of x through a normalisation over some axes followed by a scale (the bias takes none).

    LayerNormalization normalises the axes from ``axis`` on, its scale shaped like them; InstanceNormalization
    the spatial axes per sample and channel, one scale per channel (torch's GroupNorm is exported through it)."""
    x, scale, g = node.input[0], node.input[1], gouts[0]
    if any(ctx.needs(name) for name in node.input[1:]):
        ctx.refuse(node, "its scale or bias depends on the sequence")
    if g is None or not ctx.needs(x):
        return {}
    rank = ctx.rank(x)
    if node.op_type == "LayerNormalization":
        axes = list(range(positive_axis(attr(node, "axis", -1), rank), rank))
    else:
        axes = list(range(2, rank))
        scale = ctx.op("Reshape", [scale, ctx.ints([-1] + [1] * (rank - 2))])
    return {0: _normalised(ctx, x, ctx.op("Mul", [g, scale]), axes, attr(node, "epsilon", 1e-5))}


def _normalised(ctx, x, gh, axes, epsilon):
    """The cotangent of x through (x - mean) / sqrt(var + epsilon) over ``axes``, given that of the normalised
    tensor ``gh`` (the output's cotangent times the scale)."""
    shape = ctx.shape(x)
    inv = ctx.scalar(1.0 / int(np.prod([shape[a] for a in axes])))
    mean = ctx.op("Mul", [ctx.reduce_sum(x, axes), inv])
    centred = ctx.op("Sub", [x, mean])
    var = ctx.op("Mul", [ctx.reduce_sum(ctx.op("Mul", [centred, centred]), axes), inv])
    rstd = ctx.op("Reciprocal", [ctx.op("Sqrt", [ctx.op("Add", [var, ctx.scalar(epsilon)])])])
    xhat = ctx.op("Mul", [centred, rstd])
    shifted = [a + 1 for a in axes]
    m1 = ctx.op("Mul", [ctx.reduce_sum(gh, shifted), inv])
    m2 = ctx.op("Mul", [ctx.reduce_sum(ctx.op("Mul", [gh, xhat]), shifted), inv])
    inner = ctx.op("Sub", [ctx.op("Sub", [gh, m1]), ctx.op("Mul", [xhat, m2])])
    return ctx.op("Mul", [inner, rstd])


@unary("Softmax", "LogSoftmax")
def _softmax(ctx, node, g, x, y):
    """Softmax: y (g - sum(g y)); LogSoftmax: g - exp(y) sum(g); sums over the normalised axes."""
    axes = normalised_axes(node, ctx.rank(x), ctx.opset)
    if 0 in axes and ctx.batch_axis(x) == 0:
        ctx.refuse(node, "it normalises across the batch axis")
    axes = [axis + 1 for axis in axes]  # the cotangent has the seed axis in front
    if node.op_type == "Softmax":
        dot = ctx.reduce_sum(ctx.op("Mul", [g, y]), axes)
        return ctx.op("Mul", [y, ctx.op("Sub", [g, dot])])
    total = ctx.reduce_sum(g, axes)
    return ctx.op("Sub", [g, ctx.op("Mul", [ctx.op("Exp", [y]), total])])


@unary("LpNormalization")
def _lp_normalization(ctx, node, g, x, y):
    """(g - s sum(g y)) / n for y = x / n along one axis, 0 where n is 0.

    n = sum |x| and s = sign(x) for p = 1, n = sqrt(sum x^2) and s = y for p = 2 (onnxruntime's y is 0 where n
    is 0)."""
    rank = ctx.rank(x)
    axis, p = positive_axis(attr(node, "axis", -1), rank), attr(node, "p", 2)
    if axis == 0 and ctx.batch_axis(x) == 0:
        ctx.refuse(node, "it normalises across the batch axis")
    if p not in (1, 2):
        ctx.refuse(node, f"p = {p} is not 1 or 2")
    if p == 1:
        norm, slope = ctx.reduce_sum(ctx.op("Abs", [x]), [axis]), ctx.op("Sign", [x])
    else:
        norm, slope = ctx.op("Sqrt", [ctx.reduce_sum(ctx.op("Mul", [x, x]), [axis])]), y
    dot = ctx.reduce_sum(ctx.op("Mul", [g, y]), [axis + 1])  # the cotangent has the seed axis in front
    change = ctx.op("Div", [ctx.op("Sub", [g, ctx.op("Mul", [slope, dot])]), norm])
    return ctx.op("Where", [ctx.op("Equal", [norm, ctx.scalar(0.0)]), ctx.scalar(0.0), change])
