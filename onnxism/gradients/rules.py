"""Vector-Jacobian rules: for one forward node, the cotangents of its inputs from those of its outputs.

A rule is ``rule(ctx, node, gouts) -> {input index: cotangent name}``; ``gouts`` holds one cotangent name (or
None) per node output, each shaped (S, *output shape). A rule returns cotangents only for inputs on the sequence
path (``ctx.needs``) and refuses, naming the node, what it cannot differentiate exactly (weights computed from
the sequence, non-constant modes, ...). Only standard ONNX ops are emitted.
"""

import math

import numpy as np
from onnx import TensorProto, helper

from ..graph.length_map import probe_length_map
from ..graph.nodes import attr
from ..graph.ops import normalised_axes
from .selection import SELECTION_OPS, selection_vjp

RULES = {}

#: Ops whose outputs carry no derivative (shape arithmetic, comparisons, indices): the path stops there.
NON_DIFFERENTIABLE = {
    "Shape", "Size", "Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual", "Not", "And", "Or", "Xor",
    "ArgMax", "ArgMin", "Sign", "Floor", "Ceil", "Round", "NonZero", "ConstantOfShape", "IsNaN", "IsInf",
    "OneHot", "EyeLike", "RandomNormalLike", "RandomUniformLike", "BitShift",
}

_FLOAT_TYPES = {TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16, TensorProto.BFLOAT16}


def carries_derivative(node, index):
    """Whether output ``index`` of a node whose inputs are on the sequence path is itself on it."""
    if node.op_type in NON_DIFFERENTIABLE:
        return False
    if node.op_type == "Cast":
        return attr(node, "to") in _FLOAT_TYPES
    if node.op_type in ("MaxPool", "TopK", "Dropout", "LayerNormalization", "BatchNormalization", "Split"):
        return index == 0 or node.op_type == "Split"
    return True


def rule(*op_types):
    def register(fn):
        for op_type in op_types:
            RULES[op_type] = fn
        return fn
    return register


def _norm(axis, rank):
    return int(axis) % rank


def _input(node, index):
    return node.input[index] if len(node.input) > index and node.input[index] else None


# -- point-wise, one input -------------------------------------------------------------------------------------
def _unary(derivative):
    def vjp(ctx, node, gouts):
        g = gouts[0]
        if g is None or not ctx.needs(node.input[0]):
            return {}
        return {0: derivative(ctx, node, g, node.input[0], node.output[0])}
    return vjp


def _times(ctx, g, factor):
    return ctx.op("Mul", [g, factor])


def _mask(ctx, op, x, threshold=0.0):
    return ctx.cast_mask(ctx.op(op, [x, ctx.scalar(threshold)]))


@rule("Identity", "Dropout")
def _identity(ctx, node, gouts):
    return {0: gouts[0]} if gouts[0] is not None and ctx.needs(node.input[0]) else {}


@rule("Reshape", "Flatten", "Squeeze", "Unsqueeze")
def _reshape(ctx, node, gouts):
    if gouts[0] is None or not ctx.needs(node.input[0]):
        return {}
    return {0: ctx.like(gouts[0], node.input[0])}


@rule("Cast")
def _cast(ctx, node, gouts):
    if gouts[0] is None or not ctx.needs(node.input[0]):
        return {}
    return {0: ctx.op("Cast", [gouts[0]], to=ctx.onnx_dtype)}


RULES["Neg"] = _unary(lambda ctx, node, g, x, y: ctx.op("Neg", [g]))
RULES["Relu"] = _unary(lambda ctx, node, g, x, y: _times(ctx, g, _mask(ctx, "Greater", x)))
RULES["Sigmoid"] = _unary(lambda ctx, node, g, x, y: _times(
    ctx, g, ctx.op("Mul", [y, ctx.op("Sub", [ctx.scalar(1.0), y])])))
RULES["Tanh"] = _unary(lambda ctx, node, g, x, y: _times(
    ctx, g, ctx.op("Sub", [ctx.scalar(1.0), ctx.op("Mul", [y, y])])))
RULES["Exp"] = _unary(lambda ctx, node, g, x, y: _times(ctx, g, y))
RULES["Log"] = _unary(lambda ctx, node, g, x, y: ctx.op("Div", [g, x]))
RULES["Softplus"] = _unary(lambda ctx, node, g, x, y: _times(ctx, g, ctx.op("Sigmoid", [x])))
RULES["Sqrt"] = _unary(lambda ctx, node, g, x, y: _times(ctx, g, ctx.op("Div", [ctx.scalar(0.5), y])))
RULES["Reciprocal"] = _unary(lambda ctx, node, g, x, y: ctx.op("Neg", [_times(ctx, g, ctx.op("Mul", [y, y]))]))
RULES["Abs"] = _unary(lambda ctx, node, g, x, y: _times(ctx, g, ctx.op("Sign", [x])))
RULES["Erf"] = _unary(lambda ctx, node, g, x, y: _times(ctx, g, ctx.op("Mul", [
    ctx.scalar(2.0 / math.sqrt(math.pi)), ctx.op("Exp", [ctx.op("Neg", [ctx.op("Mul", [x, x])])])])))
RULES["Softsign"] = _unary(lambda ctx, node, g, x, y: ctx.op("Div", [g, ctx.op("Mul", [
    *(2 * [ctx.op("Add", [ctx.scalar(1.0), ctx.op("Abs", [x])])])])]))
RULES["Sin"] = _unary(lambda ctx, node, g, x, y: _times(ctx, g, ctx.op("Cos", [x])))
RULES["Cos"] = _unary(lambda ctx, node, g, x, y: ctx.op("Neg", [_times(ctx, g, ctx.op("Sin", [x]))]))
RULES["Tan"] = _unary(lambda ctx, node, g, x, y: _times(ctx, g, _one_plus(ctx, ctx.op("Mul", [y, y]))))
RULES["Sinh"] = _unary(lambda ctx, node, g, x, y: _times(ctx, g, ctx.op("Cosh", [x])))
RULES["Cosh"] = _unary(lambda ctx, node, g, x, y: _times(ctx, g, ctx.op("Sinh", [x])))
RULES["Atan"] = _unary(lambda ctx, node, g, x, y: ctx.op("Div", [g, _one_plus(ctx, ctx.op("Mul", [x, x]))]))
RULES["Asinh"] = _unary(lambda ctx, node, g, x, y: ctx.op("Div", [g, ctx.op("Sqrt", [
    _one_plus(ctx, ctx.op("Mul", [x, x]))])]))
RULES["Asin"] = _unary(lambda ctx, node, g, x, y: ctx.op("Div", [g, ctx.op("Sqrt", [_one_minus_square(ctx, x)])]))
RULES["Acos"] = _unary(lambda ctx, node, g, x, y: ctx.op("Neg", [ctx.op("Div", [g, ctx.op("Sqrt", [
    _one_minus_square(ctx, x)])])]))
RULES["Atanh"] = _unary(lambda ctx, node, g, x, y: ctx.op("Div", [g, _one_minus_square(ctx, x)]))
RULES["Acosh"] = _unary(lambda ctx, node, g, x, y: ctx.op("Div", [g, ctx.op("Sqrt", [
    ctx.op("Sub", [ctx.op("Mul", [x, x]), ctx.scalar(1.0)])])]))


def _one_plus(ctx, value):
    return ctx.op("Add", [ctx.scalar(1.0), value])


def _one_minus_square(ctx, x):
    return ctx.op("Sub", [ctx.scalar(1.0), ctx.op("Mul", [x, x])])


def _mish_slope(ctx, x):
    """d/dx of x tanh(softplus(x)): tanh(sp) + x (1 - tanh(sp)^2) sigmoid(x)."""
    t = ctx.op("Tanh", [ctx.op("Softplus", [x])])
    return ctx.op("Add", [t, ctx.op("Mul", [ctx.op("Mul", [x, ctx.op("Sub", [ctx.scalar(1.0), ctx.op(
        "Mul", [t, t])])]), ctx.op("Sigmoid", [x])])])


def _swish_slope(ctx, x, alpha):
    """d/dx of x sigmoid(alpha x): s + alpha x s (1 - s)."""
    alpha = ctx.scalar(alpha)
    s = ctx.op("Sigmoid", [ctx.op("Mul", [x, alpha])])
    return ctx.op("Add", [s, ctx.op("Mul", [ctx.op("Mul", [alpha, x]), ctx.op(
        "Mul", [s, ctx.op("Sub", [ctx.scalar(1.0), s])])])])


RULES["Mish"] = _unary(lambda ctx, node, g, x, y: _times(ctx, g, _mish_slope(ctx, x)))
RULES["Swish"] = _unary(lambda ctx, node, g, x, y: _times(ctx, g, _swish_slope(ctx, x, attr(node, "alpha", 1.0))))
RULES["Celu"] = _unary(lambda ctx, node, g, x, y: _times(ctx, g, _where_positive(
    ctx, x, ctx.scalar(1.0), ctx.op("Exp", [ctx.op("Mul", [x, ctx.scalar(1.0 / attr(node, "alpha", 1.0))])]))))


RULES["ThresholdedRelu"] = _unary(lambda ctx, node, g, x, y: _times(ctx, g, ctx.cast_mask(ctx.op(
    "Greater", [x, ctx.scalar(attr(node, "alpha", 1.0))]))))  # slope 1 where y = x, 0 elsewhere
RULES["Shrink"] = _unary(lambda ctx, node, g, x, y: _times(ctx, g, ctx.cast_mask(ctx.op(
    "Greater", [ctx.op("Abs", [x]), ctx.scalar(attr(node, "lambd", 0.5))]))))


def _where_positive(ctx, x, inside, outside):
    """Where(x > 0, inside, outside) for derivative factors."""
    return ctx.op("Where", [ctx.op("Greater", [x, ctx.scalar(0.0)]), inside, outside])


RULES["LeakyRelu"] = _unary(lambda ctx, node, g, x, y: _times(ctx, g, _where_positive(
    ctx, x, ctx.scalar(1.0), ctx.scalar(attr(node, "alpha", 0.01)))))
RULES["Elu"] = _unary(lambda ctx, node, g, x, y: _times(ctx, g, _where_positive(
    ctx, x, ctx.scalar(1.0), ctx.op("Add", [y, ctx.scalar(attr(node, "alpha", 1.0))]))))
RULES["Selu"] = _unary(lambda ctx, node, g, x, y: _times(ctx, g, _where_positive(
    ctx, x, ctx.scalar(attr(node, "gamma", 1.0507009873554805)),
    ctx.op("Add", [y, ctx.scalar(attr(node, "alpha", 1.6732632423543772) * attr(node, "gamma", 1.0507009873554805))]))))


@rule("HardSigmoid")
def _hard_sigmoid(ctx, node, gouts):
    x, g = node.input[0], gouts[0]
    if g is None or not ctx.needs(x):
        return {}
    alpha, beta = attr(node, "alpha", 0.2), attr(node, "beta", 0.5)
    z = ctx.op("Add", [ctx.op("Mul", [x, ctx.scalar(alpha)]), ctx.scalar(beta)])
    inside = ctx.op("And", [ctx.op("Greater", [z, ctx.scalar(0.0)]), ctx.op("Less", [z, ctx.scalar(1.0)])])
    return {0: _times(ctx, g, ctx.op("Mul", [ctx.cast_mask(inside), ctx.scalar(alpha)]))}


@rule("HardSwish")
def _hard_swish(ctx, node, gouts):
    x, g = node.input[0], gouts[0]
    if g is None or not ctx.needs(x):
        return {}
    middle = ctx.op("Add", [ctx.op("Mul", [x, ctx.scalar(1.0 / 3.0)]), ctx.scalar(0.5)])
    upper = ctx.op("Where", [ctx.op("Greater", [x, ctx.scalar(3.0)]), ctx.scalar(1.0), middle])
    factor = ctx.op("Where", [ctx.op("Less", [x, ctx.scalar(-3.0)]), ctx.scalar(0.0), upper])
    return {0: _times(ctx, g, factor)}


@rule("Gelu")
def _gelu(ctx, node, gouts):
    x, g = node.input[0], gouts[0]
    if g is None or not ctx.needs(x):
        return {}
    x2 = ctx.op("Mul", [x, x])
    if attr(node, "approximate", "none") == "tanh":
        c = math.sqrt(2.0 / math.pi)
        inner = ctx.op("Mul", [ctx.scalar(c), ctx.op("Add", [x, ctx.op("Mul", [ctx.scalar(0.044715), ctx.op(
            "Mul", [x2, x])])])])
        t = ctx.op("Tanh", [inner])
        left = ctx.op("Mul", [ctx.scalar(0.5), ctx.op("Add", [ctx.scalar(1.0), t])])
        dinner = ctx.op("Mul", [ctx.scalar(c), ctx.op("Add", [ctx.scalar(1.0), ctx.op(
            "Mul", [ctx.scalar(3 * 0.044715), x2])])])
        right = ctx.op("Mul", [ctx.op("Mul", [ctx.scalar(0.5), x]), ctx.op("Mul", [
            ctx.op("Sub", [ctx.scalar(1.0), ctx.op("Mul", [t, t])]), dinner])])
        return {0: _times(ctx, g, ctx.op("Add", [left, right]))}
    cdf = ctx.op("Mul", [ctx.scalar(0.5), ctx.op("Add", [ctx.scalar(1.0), ctx.op(
        "Erf", [ctx.op("Mul", [x, ctx.scalar(1.0 / math.sqrt(2.0))])])])])
    pdf = ctx.op("Mul", [ctx.scalar(1.0 / math.sqrt(2.0 * math.pi)), ctx.op(
        "Exp", [ctx.op("Mul", [x2, ctx.scalar(-0.5)])])])
    return {0: _times(ctx, g, ctx.op("Add", [cdf, ctx.op("Mul", [x, pdf])]))}


@rule("Clip")
def _clip(ctx, node, gouts):
    x, g = node.input[0], gouts[0]
    if g is None or not ctx.needs(x):
        return {}
    low, high = _input(node, 1), _input(node, 2)
    if ctx.needs(low) or ctx.needs(high):
        ctx.refuse(node, "its bounds depend on the sequence")
    if low is None and attr(node, "min") is not None:
        low = ctx.scalar(attr(node, "min"))
    if high is None and attr(node, "max") is not None:
        high = ctx.scalar(attr(node, "max"))
    inside = None
    for bound, op in ((low, "GreaterOrEqual"), (high, "LessOrEqual")):
        if bound is not None:
            test = ctx.op(op, [x, bound])
            inside = test if inside is None else ctx.op("And", [inside, test])
    return {0: g if inside is None else _times(ctx, g, ctx.cast_mask(inside))}


@rule("Pow")
def _pow(ctx, node, gouts):
    x, p, g = node.input[0], node.input[1], gouts[0]
    if ctx.needs(p):
        ctx.refuse(node, "its exponent depends on the sequence")
    if g is None or not ctx.needs(x):
        return {}
    exponent = ctx.op("Cast", [p], to=ctx.onnx_dtype)
    factor = ctx.op("Mul", [exponent, ctx.op("Pow", [x, ctx.op("Sub", [exponent, ctx.scalar(1.0)])])])
    return {0: ctx.unbroadcast(_times(ctx, g, factor), x, node.output[0])}


@rule("PRelu")
def _prelu(ctx, node, gouts):
    x, slope, g = node.input[0], node.input[1], gouts[0]
    if ctx.needs(slope):
        ctx.refuse(node, "its slope depends on the sequence")
    if g is None or not ctx.needs(x):
        return {}
    return {0: _times(ctx, g, _where_positive(ctx, x, ctx.scalar(1.0), ctx.op("Cast", [slope], to=ctx.onnx_dtype)))}


# -- point-wise, several inputs --------------------------------------------------------------------------------
@rule("Add", "Sub", "Sum", "Mean")
def _add(ctx, node, gouts):
    g, y = gouts[0], node.output[0]
    if g is None:
        return {}
    if node.op_type == "Mean":
        g = ctx.op("Mul", [g, ctx.scalar(1.0 / len(node.input))])
    grads = {}
    for index, x in enumerate(node.input):
        if ctx.needs(x):
            part = ctx.op("Neg", [g]) if node.op_type == "Sub" and index == 1 else g
            grads[index] = ctx.unbroadcast(part, x, y)
    return grads


@rule("Mul")
def _mul(ctx, node, gouts):
    (a, b), g, y = node.input, gouts[0], node.output[0]
    if g is None:
        return {}
    grads = {}
    if ctx.needs(a):
        grads[0] = ctx.unbroadcast(ctx.op("Mul", [g, b]), a, y)
    if ctx.needs(b):
        grads[1] = ctx.unbroadcast(ctx.op("Mul", [g, a]), b, y)
    return grads


@rule("Div")
def _div(ctx, node, gouts):
    (a, b), g, y = node.input, gouts[0], node.output[0]
    if g is None:
        return {}
    grads = {}
    if ctx.needs(a):
        grads[0] = ctx.unbroadcast(ctx.op("Div", [g, b]), a, y)
    if ctx.needs(b):
        grads[1] = ctx.unbroadcast(ctx.op("Neg", [ctx.op("Div", [ctx.op("Mul", [g, y]), b])]), b, y)
    return grads


@rule("Max", "Min")
def _extremum(ctx, node, gouts):
    g, y = gouts[0], node.output[0]
    if g is None:
        return {}
    if len(node.input) == 1:
        return {0: g} if ctx.needs(node.input[0]) else {}
    if len(node.input) != 2:
        ctx.refuse(node, "only one or two inputs are supported")
    a, b = node.input
    wins = ctx.cast_mask(ctx.op("Greater" if node.op_type == "Max" else "Less", [a, b]))
    ties = ctx.op("Mul", [ctx.cast_mask(ctx.op("Equal", [a, b])), ctx.scalar(0.5)])
    share_a = ctx.op("Add", [wins, ties])  # ties split evenly, as torch.maximum does
    grads = {}
    if ctx.needs(a):
        grads[0] = ctx.unbroadcast(ctx.op("Mul", [g, share_a]), a, y)
    if ctx.needs(b):
        grads[1] = ctx.unbroadcast(ctx.op("Mul", [g, ctx.op("Sub", [ctx.scalar(1.0), share_a])]), b, y)
    return grads


@rule("Where")
def _where(ctx, node, gouts):
    (condition, a, b), g, y = node.input, gouts[0], node.output[0]
    if g is None:
        return {}
    zero = ctx.scalar(0.0)
    grads = {}
    if ctx.needs(a):
        grads[1] = ctx.unbroadcast(ctx.op("Where", [condition, g, zero]), a, y)
    if ctx.needs(b):
        grads[2] = ctx.unbroadcast(ctx.op("Where", [condition, zero, g]), b, y)
    return grads


@rule("Expand")
def _expand(ctx, node, gouts):
    x, g = node.input[0], gouts[0]
    if g is None or not ctx.needs(x):
        return {}
    return {0: ctx.unbroadcast(g, x, node.output[0])}


# -- normalisation ---------------------------------------------------------------------------------------------
@rule("BatchNormalization")
def _batch_norm(ctx, node, gouts):
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
    """LayerNormalization normalises the axes from ``axis`` on, its scale shaped like them; InstanceNormalization
    the spatial axes per sample and channel, one scale per channel (torch's GroupNorm is exported through it)."""
    x, scale, g = node.input[0], node.input[1], gouts[0]
    if any(ctx.needs(name) for name in node.input[1:]):
        ctx.refuse(node, "its scale or bias depends on the sequence")
    if g is None or not ctx.needs(x):
        return {}
    rank = ctx.rank(x)
    if node.op_type == "LayerNormalization":
        axes = list(range(_norm(attr(node, "axis", -1), rank), rank))
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


@rule("Softmax", "LogSoftmax")
def _softmax(ctx, node, gouts):
    x, y, g = node.input[0], node.output[0], gouts[0]
    if g is None or not ctx.needs(x):
        return {}
    axes = normalised_axes(node, ctx.rank(x), ctx.opset)
    if 0 in axes and ctx.batch_axis(x) == 0:
        ctx.refuse(node, "it normalises across the batch axis")
    axes = [axis + 1 for axis in axes]  # the cotangent has the seed axis in front
    if node.op_type == "Softmax":
        dot = ctx.reduce_sum(ctx.op("Mul", [g, y]), axes)
        return {0: ctx.op("Mul", [y, ctx.op("Sub", [g, dot])])}
    total = ctx.reduce_sum(g, axes)
    return {0: ctx.op("Sub", [g, ctx.op("Mul", [ctx.op("Exp", [y]), total])])}


@rule("LpNormalization")
def _lp_normalization(ctx, node, gouts):
    """y = x / n along one axis, n = sum |x| (p = 1) or sqrt(sum x^2) (p = 2): the cotangent (g - s sum(g y)) / n,
    s = sign(x) or y; 0 where n is 0 (onnxruntime's y is 0 there)."""
    x, y, g = node.input[0], node.output[0], gouts[0]
    if g is None or not ctx.needs(x):
        return {}
    rank = ctx.rank(x)
    axis, p = _norm(attr(node, "axis", -1), rank), attr(node, "p", 2)
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
    return {0: ctx.op("Where", [ctx.op("Equal", [norm, ctx.scalar(0.0)]), ctx.scalar(0.0), change])}


# -- linear maps -----------------------------------------------------------------------------------------------
def _conv_geometry(ctx, node, x, y, kernel):
    """Per spatial axis: (stride, dilation, pad_begin, pad_end) with auto_pad resolved from static shapes."""
    spatial = len(kernel)
    strides = list(attr(node, "strides", [1] * spatial))
    dilations = list(attr(node, "dilations", [1] * spatial))
    pads = list(attr(node, "pads", [0] * (2 * spatial)))
    auto_pad = attr(node, "auto_pad", "NOTSET")
    in_shape = ctx.shape(x)[2:]
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        pads = [0] * (2 * spatial)
        for i in range(spatial):
            out = -(-in_shape[i] // strides[i])
            total = max(0, (out - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - in_shape[i])
            small = total // 2
            pads[i], pads[i + spatial] = (small, total - small) if auto_pad == "SAME_UPPER" else (total - small, small)
    elif auto_pad == "VALID":
        pads = [0] * (2 * spatial)
    return strides, dilations, pads


def _transpose_back(ctx, g, x, y, weight, kernel, strides, dilations, pads, group):
    """ConvTranspose that maps a cotangent of a strided window op's output back onto its input's length."""
    spatial = len(kernel)
    in_shape, out_shape = ctx.shape(x)[2:], ctx.shape(y)[2:]
    begin, end = list(pads[:spatial]), list(pads[spatial:])
    output_padding = [0] * spatial
    for i in range(spatial):
        got = strides[i] * (out_shape[i] - 1) + (kernel[i] - 1) * dilations[i] + 1 - begin[i] - end[i]
        if got <= in_shape[i]:
            output_padding[i] = in_shape[i] - got
        else:
            end[i] += got - in_shape[i]
    result = ctx.op("ConvTranspose", [ctx.flat(g, y), weight], kernel_shape=list(kernel), strides=strides,
                    dilations=dilations, pads=begin + end, output_padding=output_padding, group=group)
    return ctx.unflat(result, x)


@rule("Conv")
def _conv(ctx, node, gouts):
    x, w, g, y = node.input[0], node.input[1], gouts[0], node.output[0]
    if ctx.needs(w) or ctx.needs(_input(node, 2)):
        ctx.refuse(node, "its weights depend on the sequence")
    if g is None or not ctx.needs(x):
        return {}
    kernel = list(attr(node, "kernel_shape", ctx.shape(w)[2:]))
    strides, dilations, pads = _conv_geometry(ctx, node, x, y, kernel)
    group = attr(node, "group", 1)
    flipped = _flipped_conv(ctx, g, x, y, w, kernel, strides, dilations, pads, group)
    if flipped is not None:
        return {0: flipped}
    return {0: _transpose_back(ctx, g, x, y, w, kernel, strides, dilations, pads, group)}


def _flipped_conv(ctx, g, x, y, w, kernel, strides, dilations, pads, group):
    """An unstrided, ungrouped Conv with constant weights maps back as a Conv with the kernel flipped and its
    channel axes swapped (onnxruntime's Conv is faster than its ConvTranspose); None where that does not apply."""
    weight = ctx.value(w)
    if weight is None or group != 1 or any(s != 1 for s in strides):
        return None
    spatial = len(kernel)
    in_shape, out_shape = ctx.shape(x)[2:], ctx.shape(y)[2:]
    begin, end = [], []
    for i in range(spatial):
        reach = (kernel[i] - 1) * dilations[i]
        begin.append(reach - pads[i])
        end.append(in_shape[i] - out_shape[i] - begin[i] + reach)
    if min(begin + end) < 0:
        return None
    flipped = np.flip(weight.swapaxes(0, 1), axis=tuple(range(2, 2 + spatial)))
    result = ctx.op("Conv", [ctx.flat(g, y), ctx.const(np.ascontiguousarray(flipped), "flipped_weight")],
                    kernel_shape=list(kernel), dilations=list(dilations), pads=begin + end)
    return ctx.unflat(result, x)


@rule("ConvTranspose")
def _conv_transpose(ctx, node, gouts):
    x, w, g, y = node.input[0], node.input[1], gouts[0], node.output[0]
    if ctx.needs(w) or ctx.needs(_input(node, 2)):
        ctx.refuse(node, "its weights depend on the sequence")
    if g is None or not ctx.needs(x):
        return {}
    if attr(node, "auto_pad", "NOTSET") not in ("NOTSET", "VALID") or attr(node, "output_shape") is not None:
        ctx.refuse(node, "auto_pad SAME and output_shape are not supported; give explicit pads")
    kernel = list(attr(node, "kernel_shape", ctx.shape(w)[2:]))
    spatial = len(kernel)
    strides = list(attr(node, "strides", [1] * spatial))
    dilations = list(attr(node, "dilations", [1] * spatial))
    pads = [0] * (2 * spatial) if attr(node, "auto_pad", "NOTSET") == "VALID" else list(
        attr(node, "pads", [0] * (2 * spatial)))
    in_shape, out_shape = ctx.shape(x)[2:], ctx.shape(y)[2:]
    end = []
    for i in range(spatial):
        base = out_shape[i] + pads[i] - (kernel[i] - 1) * dilations[i] - 1
        end.append(max(0, strides[i] * (in_shape[i] - 1) - base))
        if (base + end[i]) // strides[i] + 1 != in_shape[i]:
            ctx.refuse(node, "its output length cannot be mapped back onto its input")
    result = ctx.op("Conv", [ctx.flat(g, y), w], kernel_shape=kernel, strides=strides, dilations=dilations,
                    pads=pads[:spatial] + end, group=attr(node, "group", 1))
    return {0: ctx.unflat(result, x)}


def _swap_last(ctx, name):
    rank = ctx.rank(name)
    return ctx.op("Transpose", [name], perm=list(range(rank - 2)) + [rank - 1, rank - 2])


@rule("MatMul")
def _matmul(ctx, node, gouts):
    (a, b), g, y = node.input, gouts[0], node.output[0]
    if g is None:
        return {}
    if ctx.rank(a) < 2 or ctx.rank(b) < 2:
        ctx.refuse(node, "one-dimensional operands are not supported")
    out = ctx.shape(y)
    grads = {}
    if ctx.needs(a):
        part = ctx.op("MatMul", [g, _swap_last(ctx, b)])
        grads[0] = ctx.unbroadcast(part, a, y, out_shape=out[:-1] + (ctx.shape(a)[-1],))
    if ctx.needs(b):
        part = ctx.op("MatMul", [_swap_last(ctx, a), g])
        grads[1] = ctx.unbroadcast(part, b, y, out_shape=out[:-2] + tuple(ctx.shape(b)[-2:]))
    return grads


@rule("Gemm")
def _gemm(ctx, node, gouts):
    a, b, c, g, y = node.input[0], node.input[1], _input(node, 2), gouts[0], node.output[0]
    if ctx.needs(b):
        ctx.refuse(node, "its second operand depends on the sequence")
    if g is None:
        return {}
    grads = {}
    if ctx.needs(a):
        b_t = b if attr(node, "transB", 0) else ctx.op("Transpose", [b], perm=[1, 0])
        part = ctx.op("MatMul", [ctx.op("Mul", [g, ctx.scalar(attr(node, "alpha", 1.0))]), b_t])
        grads[0] = ctx.op("Transpose", [part], perm=[0, 2, 1]) if attr(node, "transA", 0) else part
    if ctx.needs(c):
        grads[2] = ctx.unbroadcast(ctx.op("Mul", [g, ctx.scalar(attr(node, "beta", 1.0))]), c, y)
    return grads


# -- pooling ---------------------------------------------------------------------------------------------------
@rule("MaxPool")
def _max_pool(ctx, node, gouts):
    x, g = node.input[0], gouts[0]
    if g is None or not ctx.needs(x):
        return {}
    if attr(node, "storage_order", 0):
        ctx.refuse(node, "column-major indices (storage_order=1) are not supported")
    kernel = list(attr(node, "kernel_shape"))
    strides = list(attr(node, "strides", [1] * len(kernel)))
    dilations = list(attr(node, "dilations", [1] * len(kernel)))
    overlapping = any((k - 1) * d + 1 > s for k, s, d in zip(kernel, strides, dilations))
    if len(node.output) < 2 or not node.output[1]:
        indices = ctx.fresh(f"{node.output[0]}__indices")
        if len(node.output) < 2:
            node.output.append(indices)
        else:
            node.output[1] = indices
    indices = node.output[1]
    rows = ctx.op("Reshape", [g, ctx.op("Concat", [ctx.seed_count, ctx.ints([-1])], axis=0)])
    where = ctx.op("Expand", [ctx.op("Reshape", [indices, ctx.ints([1, -1])]), ctx.op("Shape", [rows])])
    size = ctx.op("Reshape", [ctx.op("Size", [x]), ctx.ints([1])])
    zeros = ctx.op("ConstantOfShape", [ctx.op("Concat", [ctx.seed_count, size], axis=0)],
                   value=helper.make_tensor("value", ctx.onnx_dtype, [1], [0.0]))
    extra = {"reduction": "add"} if overlapping else {}
    scattered = ctx.op("ScatterElements", [zeros, where, rows], axis=1, **extra)
    return {0: ctx.like(scattered, x)}


def _window_counts(in_size, out_size, kernel, stride, begin, end, include_pad):
    """How many input elements each pooling window averages over, on one spatial axis."""
    counts = np.empty(out_size)
    for o in range(out_size):
        lo, hi = o * stride - begin, o * stride - begin + kernel
        if include_pad:
            counts[o] = min(hi, in_size + end) - max(lo, -begin)
        else:
            counts[o] = min(hi, in_size) - max(lo, 0)
    return counts


@rule("AveragePool")
def _average_pool(ctx, node, gouts):
    x, y, g = node.input[0], node.output[0], gouts[0]
    if g is None or not ctx.needs(x):
        return {}
    kernel = list(attr(node, "kernel_shape"))
    spatial = len(kernel)
    if any(d != 1 for d in attr(node, "dilations", [1] * spatial)):
        ctx.refuse(node, "dilated average pooling is not supported")
    strides, _, pads = _conv_geometry(ctx, node, x, y, kernel)
    in_shape, out_shape = ctx.shape(x)[2:], ctx.shape(y)[2:]
    include = bool(attr(node, "count_include_pad", 0))
    counts = np.ones(())
    for i in range(spatial):
        axis = _window_counts(in_shape[i], out_shape[i], kernel[i], strides[i], pads[i], pads[i + spatial], include)
        counts = np.multiply.outer(counts, axis)
    scaled = ctx.op("Mul", [g, ctx.const((1.0 / counts).astype(ctx.dtype), "pool_counts")])
    channels = ctx.shape(x)[1]
    ones = ctx.const(np.ones((channels, 1) + tuple(kernel), dtype=ctx.dtype), "pool_ones")
    return {0: _transpose_back(ctx, scaled, x, y, ones, kernel, strides, [1] * spatial, pads, channels)}


@rule("LpPool")
def _lp_pool(ctx, node, gouts):
    """y = (sum over the window of |x|^p)^(1/p), pads counting as zeros: each x_i gets the cotangents of the windows
    holding it times sign(x_i) |x_i|^(p-1) y^(1-p) (0 where y is 0, as for ReduceL2)."""
    x, y, g = node.input[0], node.output[0], gouts[0]
    if g is None or not ctx.needs(x):
        return {}
    kernel = list(attr(node, "kernel_shape"))
    strides, dilations, pads = _conv_geometry(ctx, node, x, y, kernel)
    in_shape, out_shape = ctx.shape(x)[2:], ctx.shape(y)[2:]
    for i, size in enumerate(in_shape):
        span = (kernel[i] - 1) * dilations[i] + 1
        if out_shape[i] != (size + pads[i] + pads[i + len(kernel)] - span) // strides[i] + 1:
            ctx.refuse(node, "a ceil_mode window past the end pad is not supported")
    p = float(attr(node, "p", 2))
    zero = ctx.op("Equal", [y, ctx.scalar(0.0)])
    scale = ctx.op("Where", [zero, ctx.scalar(0.0), ctx.op("Pow", [y, ctx.scalar(1.0 - p)])])
    channels = ctx.shape(x)[1]
    ones = ctx.const(np.ones((channels, 1) + tuple(kernel), dtype=ctx.dtype), "pool_ones")
    spread = _transpose_back(ctx, ctx.op("Mul", [g, scale]), x, y, ones, kernel, strides, dilations, pads, channels)
    local = ctx.op("Mul", [ctx.op("Sign", [x]), ctx.op("Pow", [ctx.op("Abs", [x]), ctx.scalar(p - 1.0)])])
    return {0: ctx.op("Mul", [spread, local])}


def _reduce_axes(ctx, node, rank):
    axes = attr(node, "axes")
    if axes is None and _input(node, 1):
        value = ctx.value(node.input[1])
        if value is None:
            ctx.refuse(node, "its axes are not a constant")
        axes = value.reshape(-1).tolist()
    if not axes:
        if attr(node, "noop_with_empty_axes", 0):
            return None
        axes = list(range(rank))
    return sorted(_norm(a, rank) for a in axes)


@rule("ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "GlobalAveragePool", "GlobalMaxPool", "ReduceL1",
      "ReduceL2", "ReduceSumSquare", "ReduceLogSumExp", "ReduceProd")
def _reduce(ctx, node, gouts):
    x, y, g = node.input[0], node.output[0], gouts[0]
    if g is None or not ctx.needs(x):
        return {}
    shape = ctx.shape(x)
    rank = len(shape)
    if node.op_type.startswith("Global"):
        axes, keepdims = list(range(2, rank)), 1
    else:
        axes, keepdims = _reduce_axes(ctx, node, rank), attr(node, "keepdims", 1)
        if axes is None:  # noop_with_empty_axes: the identity, where the op is no more than a reduction
            if node.op_type not in ("ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd"):
                ctx.refuse(node, "noop_with_empty_axes is not supported for it")
            return {0: g}
    if 0 in axes:
        ctx.refuse(node, "it reduces over the batch axis")
    shifted = [a + 1 for a in axes]
    kept = g if keepdims else ctx.op("Unsqueeze", [g, ctx.ints(shifted)])
    if node.op_type in ("ReduceSum", "ReduceMean", "GlobalAveragePool"):
        if node.op_type != "ReduceSum":
            kept = ctx.op("Mul", [kept, ctx.scalar(1.0 / np.prod([shape[a] for a in axes]))])
        return {0: ctx.expand_like(kept, x)}
    if node.op_type == "ReduceL1":
        return {0: ctx.op("Mul", [kept, ctx.op("Sign", [x])])}
    if node.op_type == "ReduceSumSquare":
        return {0: ctx.op("Mul", [kept, ctx.op("Mul", [x, ctx.scalar(2.0)])])}
    if node.op_type == "ReduceProd":
        return {0: ctx.op("Mul", [kept, _product_of_the_others(ctx, x, axes)])}
    y_kept = y if keepdims else ctx.op("Unsqueeze", [y, ctx.ints(axes)])
    if node.op_type == "ReduceLogSumExp":
        return {0: ctx.op("Mul", [kept, ctx.op("Exp", [ctx.op("Sub", [x, y_kept])])])}
    if node.op_type == "ReduceL2":  # x / |x|, and 0 where the norm is 0 (as torch's norm has it)
        zero = ctx.op("Equal", [y_kept, ctx.scalar(0.0)])
        ratio = ctx.op("Where", [zero, ctx.scalar(0.0), ctx.op("Div", [x, y_kept])])
        return {0: ctx.op("Mul", [kept, ratio])}
    hits = ctx.cast_mask(ctx.op("Equal", [x, y_kept]))
    share = ctx.op("Div", [hits, ctx.reduce_sum(hits, axes)])  # ties split evenly, as torch.amax does
    return {0: ctx.op("Mul", [kept, share])}


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


# -- moving data -----------------------------------------------------------------------------------------------
@rule("Transpose")
def _transpose(ctx, node, gouts):
    x, g = node.input[0], gouts[0]
    if g is None or not ctx.needs(x):
        return {}
    rank = ctx.rank(x)
    perm = list(attr(node, "perm", list(reversed(range(rank)))))
    inverse = list(np.argsort(perm))
    return {0: ctx.op("Transpose", [g], perm=[0] + [int(a) + 1 for a in inverse])}


@rule("Concat")
def _concat(ctx, node, gouts):
    g, y = gouts[0], node.output[0]
    if g is None:
        return {}
    rank = ctx.rank(y)
    axis = _norm(attr(node, "axis"), rank)
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
    x = node.input[0]
    if all(g is None for g in gouts) or not ctx.needs(x):
        return {}
    rank = ctx.rank(x)
    axis = _norm(attr(node, "axis", 0), rank)
    if axis == 0:
        ctx.refuse(node, "it splits the batch axis")
    parts = [g if g is not None else ctx.zeros_like(out) for g, out in zip(gouts, node.output)]
    return {0: ctx.op("Concat", parts, axis=axis + 1)}


def _constant_input(ctx, node, index, what):
    name = _input(node, index)
    if name is None:
        return None
    value = ctx.value(name)
    if value is None:
        ctx.refuse(node, f"its {what} are not a constant")
    return value.reshape(-1).tolist()


@rule("Slice")
def _slice(ctx, node, gouts):
    x, g = node.input[0], gouts[0]
    if g is None or not ctx.needs(x):
        return {}
    shape = ctx.shape(x)
    rank = len(shape)
    if len(node.input) > 1:
        starts = _constant_input(ctx, node, 1, "starts")
        ends = _constant_input(ctx, node, 2, "ends")
        axes = _constant_input(ctx, node, 3, "axes")
        steps = _constant_input(ctx, node, 4, "steps")
    else:
        starts, ends, axes, steps = attr(node, "starts"), attr(node, "ends"), attr(node, "axes"), None
    axes = list(range(len(starts))) if axes is None else axes
    steps = [1] * len(starts) if steps is None else steps
    if any(step != 1 for step in steps):
        return selection_vjp(ctx, node, gouts)  # strided or reversed (a reverse complement)
    pads = [0] * (2 * (rank + 1))
    for start, end, axis in zip(starts, ends, axes):
        axis = _norm(axis, rank)
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
    x, g = node.input[0], gouts[0]
    if g is None or not ctx.needs(x):
        return {}
    if attr(node, "mode", "constant") != "constant":
        return selection_vjp(ctx, node, gouts)  # reflect, edge, wrap
    shape = ctx.shape(x)
    rank = len(shape)
    pads = _constant_input(ctx, node, 1, "pads") if len(node.input) > 1 else list(attr(node, "pads"))
    axes = _constant_input(ctx, node, 3, "axes") if len(node.input) > 3 else None
    axes = list(range(rank)) if axes is None else [_norm(a, rank) for a in axes]
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


# -- scans, selection by value, contractions -------------------------------------------------------------------
@rule("CumSum")
def _cumsum(ctx, node, gouts):
    """The transpose of a running sum is the running sum the other way, with the same exclusiveness."""
    x, g = node.input[0], gouts[0]
    if g is None or not ctx.needs(x):
        return {}
    axis = _constant_input(ctx, node, 1, "axis")
    shifted = ctx.const(np.int64(_norm(axis[0], ctx.rank(x)) + 1), "axis")  # a scalar, as CumSum requires
    return {0: ctx.op("CumSum", [g, shifted], exclusive=attr(node, "exclusive", 0),
                      reverse=1 - attr(node, "reverse", 0))}


@rule("TopK")
def _top_k(ctx, node, gouts):
    """The values' cotangent goes back to the entries they were taken from (the Indices output)."""
    x, g = node.input[0], gouts[0]
    if g is None or not ctx.needs(x):
        return {}
    if len(node.output) < 2 or not node.output[1]:
        ctx.refuse(node, "its indices output is missing")
    axis = _norm(attr(node, "axis", -1), ctx.rank(x)) + 1
    where = ctx.op("Expand", [ctx.op("Unsqueeze", [node.output[1], ctx.ints([0])]), ctx.op("Shape", [g])])
    return {0: ctx.op("ScatterElements", [ctx.zeros_like(x), where, g], axis=axis)}


@rule("Einsum")
def _einsum(ctx, node, gouts):
    """Each operand's cotangent is the einsum of the output's cotangent with the other operands, onto the
    operand's letters; letters only that operand sums over are broadcast back."""
    g = gouts[0]
    if g is None:
        return {}
    terms, output = _einsum_terms(ctx, node)
    letters = set("".join(terms) + output)
    seed = next(c for c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" if c not in letters)
    grads = {}
    for index, (x, term) in enumerate(zip(node.input, terms)):
        if not ctx.needs(x):
            continue
        if len(set(term)) != len(term):
            ctx.refuse(node, "an operand with a repeated index (a diagonal) is not supported")
        others = [t for k, t in enumerate(terms) if k != index]
        kept = "".join(c for c in term if c in output or any(c in t for t in others))
        inputs = [g] + [name for k, name in enumerate(node.input) if k != index]
        equation = ",".join([seed + output] + others) + "->" + seed + kept
        part = ctx.op("Einsum", inputs, equation=equation)
        if kept != term:
            missing = [k + 1 for k, c in enumerate(term) if c not in kept]
            part = ctx.expand_like(ctx.op("Unsqueeze", [part, ctx.ints(missing)]), x)
        grads[index] = part
    return grads


def _einsum_terms(ctx, node):
    """The operands' subscripts and the output's, '...' spelled out in letters of its own (right-aligned across
    operands). Refused where an index is broadcast (a size or the batch on one operand, size 1 on another): only
    an index missing from an operand is summed over in its cotangent."""
    equation = attr(node, "equation").replace(" ", "")
    lhs, arrow, output = equation.partition("->")
    terms = lhs.split(",")
    if not arrow:
        counts = {c: lhs.count(c) for c in lhs if c.isalpha()}
        output = ("..." if "..." in lhs else "") + "".join(sorted(c for c, n in counts.items() if n == 1))
    spare = iter(c for c in "ZYXWVUTSRQPONMLKJIHGFEDCBA" if c not in equation)
    widths = [ctx.rank(name) - len(term.replace("...", "")) for name, term in zip(node.input, terms)]
    ellipsis = "".join(next(spare) for _ in range(max(widths + [0])))
    spelled = [term.replace("...", ellipsis[len(ellipsis) - width:]) for term, width in zip(terms, widths)]
    seen = {}
    for name, term in zip(node.input, spelled):
        batch = ctx.batch_axis(name) if ctx.needs(name) else None
        for axis, letter in enumerate(term):
            size = (ctx.shape(name)[axis], axis == batch)
            if seen.setdefault(letter, size) != size:
                ctx.refuse(node, f"index {letter!r} is broadcast between operands")
    return spelled, output.replace("...", ellipsis)


for _op_type in SELECTION_OPS:
    RULES[_op_type] = selection_vjp


@rule("Resize")
def _resize(ctx, node, gouts):
    """Nearest: a selection. Linear or cubic (antialiased too) along one axis: the transposed linear map. The map is
    read off onnxruntime by fast ISM's probe (output j = sum over taps t of weights[t, j] * input maps[t, j]); its
    transpose gathers, for each input column, the output columns that read it, times their weights."""
    if attr(node, "mode", "nearest") == "nearest":
        return selection_vjp(ctx, node, gouts)
    x, y, g = node.input[0], node.output[0], gouts[0]
    if g is None or not ctx.needs(x):
        return {}
    if any(ctx.needs(name) for name in node.input[1:]):
        ctx.refuse(node, "its scales or sizes depend on the sequence")
    constants = {name: ctx.value(name) for name in node.input[1:] if name}
    if any(value is None for value in constants.values()):
        ctx.refuse(node, "its scales or sizes are not constants")
    in_shape, out_shape = list(ctx.shape(x)), list(ctx.shape(y))
    changed = [axis for axis in range(len(in_shape)) if in_shape[axis] != out_shape[axis]] or [len(in_shape) - 1]
    if len(changed) > 1:
        ctx.refuse(node, "it resizes more than one axis")
    axis = changed[0]
    if axis == 0 or ctx.batch_axis(x) not in (None, 0):
        ctx.refuse(node, "it resizes the batch axis")
    read = probe_length_map(node, axis, in_shape, constants, ctx.opset)
    if read is None:
        ctx.refuse(node, "it is not a linear map of at most 8 neighbouring entries along its axis")
    maps, weights = read
    readers = [[] for _ in range(in_shape[axis])]  # per input entry: (output entry, weight)
    for tap, column in zip(*np.nonzero(weights)):
        readers[maps[tap, column]].append((column, weights[tap, column]))
    depth = max(1, max(len(entries) for entries in readers))
    index = np.zeros((depth, in_shape[axis]), np.int64)
    scale = np.zeros((depth, in_shape[axis]), ctx.dtype)
    for i, entries in enumerate(readers):
        for k, (column, weight) in enumerate(entries):
            index[k, i], scale[k, i] = column, weight
    gathered = ctx.op("Gather", [g, ctx.ints(index.reshape(-1))], axis=axis + 1)  # (S, .., depth * L_in, ..)
    shape = in_shape[:axis] + [depth, in_shape[axis]] + in_shape[axis + 1:]
    split = ctx.op("Reshape", [gathered, ctx.op("Concat", [ctx.seed_batch, ctx.ints(shape[1:])], axis=0)])
    tail = [1] * (len(in_shape) - axis - 1)
    weighted = ctx.op("Mul", [split, ctx.const(scale.reshape([depth, in_shape[axis]] + tail), "resize_weights")])
    return {0: ctx.op("ReduceSum", [weighted, ctx.ints([axis + 1])], keepdims=0)}
