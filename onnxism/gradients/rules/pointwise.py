"""Rules of the point-wise ops of one input: activations and elementary functions, y = f(x), whose cotangent is
g * f'(x), written from x or from y, whichever is cheaper. Clip's bounds are constant parameters."""

import math

from ...graph.nodes import attr
from .common import optional_input, times, where_positive
from .registry import unary


def _one_plus(ctx, value):
    return ctx.op("Add", [ctx.scalar(1.0), value])


def _one_minus_square(ctx, x):
    return ctx.op("Sub", [ctx.scalar(1.0), ctx.op("Mul", [x, x])])


# -- algebra and activations ----------------------------------------------------------------------------------
@unary("Neg")
def _neg(ctx, node, g, x, y):
    """-g."""
    return ctx.op("Neg", [g])


@unary("Relu")
def _relu(ctx, node, g, x, y):
    """g where x > 0, 0 elsewhere."""
    return times(ctx, g, ctx.cast_mask(ctx.op("Greater", [x, ctx.scalar(0.0)])))


@unary("Sigmoid")
def _sigmoid(ctx, node, g, x, y):
    """g y (1 - y)."""
    return times(ctx, g, ctx.op("Mul", [y, ctx.op("Sub", [ctx.scalar(1.0), y])]))


@unary("Tanh")
def _tanh(ctx, node, g, x, y):
    """g (1 - y^2)."""
    return times(ctx, g, ctx.op("Sub", [ctx.scalar(1.0), ctx.op("Mul", [y, y])]))


@unary("Exp")
def _exp(ctx, node, g, x, y):
    """g y."""
    return times(ctx, g, y)


@unary("Log")
def _log(ctx, node, g, x, y):
    """g / x."""
    return ctx.op("Div", [g, x])


@unary("Softplus")
def _softplus(ctx, node, g, x, y):
    """g sigmoid(x)."""
    return times(ctx, g, ctx.op("Sigmoid", [x]))


@unary("Sqrt")
def _sqrt(ctx, node, g, x, y):
    """g 0.5 / y."""
    return times(ctx, g, ctx.op("Div", [ctx.scalar(0.5), y]))


@unary("Reciprocal")
def _reciprocal(ctx, node, g, x, y):
    """-g y^2."""
    return ctx.op("Neg", [times(ctx, g, ctx.op("Mul", [y, y]))])


@unary("Abs")
def _abs(ctx, node, g, x, y):
    """g sign(x)."""
    return times(ctx, g, ctx.op("Sign", [x]))


@unary("Erf")
def _erf(ctx, node, g, x, y):
    """g 2 / sqrt(pi) exp(-x^2)."""
    return times(ctx, g, ctx.op("Mul", [
        ctx.scalar(2.0 / math.sqrt(math.pi)), ctx.op("Exp", [ctx.op("Neg", [ctx.op("Mul", [x, x])])])]))


@unary("Softsign")
def _softsign(ctx, node, g, x, y):
    """g / (1 + |x|)^2."""
    return ctx.op("Div", [g, ctx.op("Mul", [*(2 * [ctx.op("Add", [ctx.scalar(1.0), ctx.op("Abs", [x])])])])])


@unary("Mish")
def _mish(ctx, node, g, x, y):
    """g d/dx of x tanh(softplus(x)): g (tanh(sp) + x (1 - tanh(sp)^2) sigmoid(x))."""
    t = ctx.op("Tanh", [ctx.op("Softplus", [x])])
    return times(ctx, g, ctx.op("Add", [t, ctx.op("Mul", [ctx.op("Mul", [x, ctx.op("Sub", [ctx.scalar(1.0), ctx.op(
        "Mul", [t, t])])]), ctx.op("Sigmoid", [x])])]))


@unary("Swish")
def _swish(ctx, node, g, x, y):
    """g d/dx of x sigmoid(alpha x): g (s + alpha x s (1 - s)), s = sigmoid(alpha x)."""
    alpha = ctx.scalar(attr(node, "alpha", 1.0))
    s = ctx.op("Sigmoid", [ctx.op("Mul", [x, alpha])])
    return times(ctx, g, ctx.op("Add", [s, ctx.op("Mul", [ctx.op("Mul", [alpha, x]), ctx.op(
        "Mul", [s, ctx.op("Sub", [ctx.scalar(1.0), s])])])]))


@unary("Celu")
def _celu(ctx, node, g, x, y):
    """g where x > 0, g exp(x / alpha) elsewhere."""
    return times(ctx, g, where_positive(
        ctx, x, ctx.scalar(1.0), ctx.op("Exp", [ctx.op("Mul", [x, ctx.scalar(1.0 / attr(node, "alpha", 1.0))])])))


@unary("ThresholdedRelu")
def _thresholded_relu(ctx, node, g, x, y):
    """g where x > alpha (where y = x), 0 elsewhere."""
    return times(ctx, g, ctx.cast_mask(ctx.op("Greater", [x, ctx.scalar(attr(node, "alpha", 1.0))])))


@unary("Shrink")
def _shrink(ctx, node, g, x, y):
    """g where |x| > lambd, 0 elsewhere."""
    return times(ctx, g, ctx.cast_mask(ctx.op("Greater", [ctx.op("Abs", [x]), ctx.scalar(attr(node, "lambd", 0.5))])))


@unary("LeakyRelu")
def _leaky_relu(ctx, node, g, x, y):
    """g where x > 0, g alpha elsewhere."""
    return times(ctx, g, where_positive(ctx, x, ctx.scalar(1.0), ctx.scalar(attr(node, "alpha", 0.01))))


@unary("Elu")
def _elu(ctx, node, g, x, y):
    """g where x > 0, g (y + alpha) elsewhere."""
    return times(ctx, g, where_positive(
        ctx, x, ctx.scalar(1.0), ctx.op("Add", [y, ctx.scalar(attr(node, "alpha", 1.0))])))


@unary("Selu")
def _selu(ctx, node, g, x, y):
    """g gamma where x > 0, g (y + alpha gamma) elsewhere."""
    gamma = attr(node, "gamma", 1.0507009873554805)
    return times(ctx, g, where_positive(ctx, x, ctx.scalar(gamma), ctx.op(
        "Add", [y, ctx.scalar(attr(node, "alpha", 1.6732632423543772) * gamma)])))


@unary("HardSigmoid")
def _hard_sigmoid(ctx, node, g, x, y):
    """g alpha where 0 < alpha x + beta < 1, 0 elsewhere."""
    alpha, beta = attr(node, "alpha", 0.2), attr(node, "beta", 0.5)
    z = ctx.op("Add", [ctx.op("Mul", [x, ctx.scalar(alpha)]), ctx.scalar(beta)])
    inside = ctx.op("And", [ctx.op("Greater", [z, ctx.scalar(0.0)]), ctx.op("Less", [z, ctx.scalar(1.0)])])
    return times(ctx, g, ctx.op("Mul", [ctx.cast_mask(inside), ctx.scalar(alpha)]))


@unary("HardSwish")
def _hard_swish(ctx, node, g, x, y):
    """g (x / 3 + 1/2) for -3 <= x <= 3, g above 3, 0 below -3."""
    middle = ctx.op("Add", [ctx.op("Mul", [x, ctx.scalar(1.0 / 3.0)]), ctx.scalar(0.5)])
    upper = ctx.op("Where", [ctx.op("Greater", [x, ctx.scalar(3.0)]), ctx.scalar(1.0), middle])
    factor = ctx.op("Where", [ctx.op("Less", [x, ctx.scalar(-3.0)]), ctx.scalar(0.0), upper])
    return times(ctx, g, factor)


@unary("Gelu")
def _gelu(ctx, node, g, x, y):
    """g (Phi(x) + x phi(x)), or the derivative of the tanh approximation where ``approximate="tanh"``."""
    x2 = ctx.op("Mul", [x, x])
    if attr(node, "approximate", "none") == "tanh":
        return times(ctx, g, _gelu_tanh_slope(ctx, x, x2))
    cdf = ctx.op("Mul", [ctx.scalar(0.5), ctx.op("Add", [ctx.scalar(1.0), ctx.op(
        "Erf", [ctx.op("Mul", [x, ctx.scalar(1.0 / math.sqrt(2.0))])])])])
    pdf = ctx.op("Mul", [ctx.scalar(1.0 / math.sqrt(2.0 * math.pi)), ctx.op(
        "Exp", [ctx.op("Mul", [x2, ctx.scalar(-0.5)])])])
    return times(ctx, g, ctx.op("Add", [cdf, ctx.op("Mul", [x, pdf])]))


def _gelu_tanh_slope(ctx, x, x2):
    """d/dx of 0.5 x (1 + tanh(c (x + 0.044715 x^3))), c = sqrt(2 / pi); ``x2`` is x^2."""
    c = math.sqrt(2.0 / math.pi)
    inner = ctx.op("Mul", [ctx.scalar(c), ctx.op("Add", [x, ctx.op("Mul", [ctx.scalar(0.044715), ctx.op(
        "Mul", [x2, x])])])])
    t = ctx.op("Tanh", [inner])
    left = ctx.op("Mul", [ctx.scalar(0.5), ctx.op("Add", [ctx.scalar(1.0), t])])
    dinner = ctx.op("Mul", [ctx.scalar(c), ctx.op("Add", [ctx.scalar(1.0), ctx.op(
        "Mul", [ctx.scalar(3 * 0.044715), x2])])])
    right = ctx.op("Mul", [ctx.op("Mul", [ctx.scalar(0.5), x]), ctx.op("Mul", [
        ctx.op("Sub", [ctx.scalar(1.0), ctx.op("Mul", [t, t])]), dinner])])
    return ctx.op("Add", [left, right])


@unary("Clip")
def _clip(ctx, node, g, x, y):
    """g where min <= x <= max (bounds from the inputs, or the attributes before opset 11), 0 elsewhere."""
    low, high = optional_input(node, 1), optional_input(node, 2)
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
    return g if inside is None else times(ctx, g, ctx.cast_mask(inside))


# -- trigonometric and hyperbolic functions -------------------------------------------------------------------
@unary("Sin")
def _sin(ctx, node, g, x, y):
    """g cos(x)."""
    return times(ctx, g, ctx.op("Cos", [x]))


@unary("Cos")
def _cos(ctx, node, g, x, y):
    """-g sin(x)."""
    return ctx.op("Neg", [times(ctx, g, ctx.op("Sin", [x]))])


@unary("Tan")
def _tan(ctx, node, g, x, y):
    """g (1 + y^2)."""
    return times(ctx, g, _one_plus(ctx, ctx.op("Mul", [y, y])))


@unary("Sinh")
def _sinh(ctx, node, g, x, y):
    """g cosh(x)."""
    return times(ctx, g, ctx.op("Cosh", [x]))


@unary("Cosh")
def _cosh(ctx, node, g, x, y):
    """g sinh(x)."""
    return times(ctx, g, ctx.op("Sinh", [x]))


@unary("Atan")
def _atan(ctx, node, g, x, y):
    """g / (1 + x^2)."""
    return ctx.op("Div", [g, _one_plus(ctx, ctx.op("Mul", [x, x]))])


@unary("Asinh")
def _asinh(ctx, node, g, x, y):
    """g / sqrt(1 + x^2)."""
    return ctx.op("Div", [g, ctx.op("Sqrt", [_one_plus(ctx, ctx.op("Mul", [x, x]))])])


@unary("Asin")
def _asin(ctx, node, g, x, y):
    """g / sqrt(1 - x^2)."""
    return ctx.op("Div", [g, ctx.op("Sqrt", [_one_minus_square(ctx, x)])])


@unary("Acos")
def _acos(ctx, node, g, x, y):
    """-g / sqrt(1 - x^2)."""
    return ctx.op("Neg", [ctx.op("Div", [g, ctx.op("Sqrt", [_one_minus_square(ctx, x)])])])


@unary("Atanh")
def _atanh(ctx, node, g, x, y):
    """g / (1 - x^2)."""
    return ctx.op("Div", [g, _one_minus_square(ctx, x)])


@unary("Acosh")
def _acosh(ctx, node, g, x, y):
    """g / sqrt(x^2 - 1)."""
    return ctx.op("Div", [g, ctx.op("Sqrt", [ctx.op("Sub", [ctx.op("Mul", [x, x]), ctx.scalar(1.0)])])])
