"""Rules of the linear maps with constant weights: Conv and ConvTranspose (each maps back as the other), MatMul and
Gemm (products with the transposed other operand), Einsum (an einsum of the output's cotangent with the other
operands)."""

import numpy as np

from ...graph.nodes import attr
from .common import optional_input
from .registry import rule
from .windows import conv_geometry, transpose_back


@rule("Conv")
def _conv(ctx, node, gouts):
    """The transposed convolution of g with the weights (a Conv with the kernel flipped where one applies)."""
    x, w, g, y = node.input[0], node.input[1], gouts[0], node.output[0]
    if ctx.needs(w) or ctx.needs(optional_input(node, 2)):
        ctx.refuse(node, "its weights depend on the sequence")
    if g is None or not ctx.needs(x):
        return {}
    kernel = list(attr(node, "kernel_shape", ctx.shape(w)[2:]))
    strides, dilations, pads = conv_geometry(ctx, node, x, y, kernel)
    group = attr(node, "group", 1)
    flipped = _flipped_conv(ctx, g, x, y, w, kernel, strides, dilations, pads, group)
    if flipped is not None:
        return {0: flipped}
    return {0: transpose_back(ctx, g, x, y, w, kernel, strides, dilations, pads, group)}


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
    """The convolution of g with the same weights, strides and dilations (explicit pads only)."""
    x, w, g, y = node.input[0], node.input[1], gouts[0], node.output[0]
    if ctx.needs(w) or ctx.needs(optional_input(node, 2)):
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
    """g b^T to a, a^T g to b, each summed over the axes it was broadcast along."""
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
    """alpha g op(B)^T to A (transposed back where transA), beta g to C; B must be off the sequence path."""
    a, b, c, g, y = node.input[0], node.input[1], optional_input(node, 2), gouts[0], node.output[0]
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


@rule("Einsum")
def _einsum(ctx, node, gouts):
    """Each operand's cotangent: the einsum of g with the other operands, onto the operand's letters.

    Letters only that operand sums over are broadcast back."""
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
