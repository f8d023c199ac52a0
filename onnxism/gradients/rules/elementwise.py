"""Rules of the element-wise ops of several inputs, numpy-broadcast: each input on the sequence path takes the
output's cotangent times its partial derivative, summed back over the axes it was broadcast along."""

from .common import times, where_positive
from .registry import rule, unary


@rule("Add", "Sub", "Sum", "Mean")
def _add(ctx, node, gouts):
    """g to every input (-g to Sub's second, g / n to each of Mean's n)."""
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
    """g b to a, g a to b."""
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
    """g / b to a, -g y / b to b."""
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
    """g to the input that wins, half of g to each on a tie (as torch.maximum has it); one input: g."""
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
    share_a = ctx.op("Add", [wins, ties])
    grads = {}
    if ctx.needs(a):
        grads[0] = ctx.unbroadcast(ctx.op("Mul", [g, share_a]), a, y)
    if ctx.needs(b):
        grads[1] = ctx.unbroadcast(ctx.op("Mul", [g, ctx.op("Sub", [ctx.scalar(1.0), share_a])]), b, y)
    return grads


@rule("Where")
def _where(ctx, node, gouts):
    """g where the condition holds to the second input, g elsewhere to the third (the condition takes none)."""
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


@unary("Expand")
def _expand(ctx, node, g, x, y):
    """g summed over the axes x was broadcast along."""
    return ctx.unbroadcast(g, x, y)


@rule("Pow")
def _pow(ctx, node, gouts):
    """g p x^(p - 1) to the base x; the exponent p must be off the sequence path."""
    x, p, g = node.input[0], node.input[1], gouts[0]
    if ctx.needs(p):
        ctx.refuse(node, "its exponent depends on the sequence")
    if g is None or not ctx.needs(x):
        return {}
    exponent = ctx.op("Cast", [p], to=ctx.onnx_dtype)
    factor = ctx.op("Mul", [exponent, ctx.op("Pow", [x, ctx.op("Sub", [exponent, ctx.scalar(1.0)])])])
    return {0: ctx.unbroadcast(times(ctx, g, factor), x, node.output[0])}


@rule("PRelu")
def _prelu(ctx, node, gouts):
    """g where x > 0, g slope elsewhere; the slope must be off the sequence path."""
    x, slope, g = node.input[0], node.input[1], gouts[0]
    if ctx.needs(slope):
        ctx.refuse(node, "its slope depends on the sequence")
    if g is None or not ctx.needs(x):
        return {}
    return {0: times(ctx, g, where_positive(ctx, x, ctx.scalar(1.0), ctx.op("Cast", [slope], to=ctx.onnx_dtype)))}
