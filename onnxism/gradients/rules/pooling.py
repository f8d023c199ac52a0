"""Rules of the pools over sliding windows: MaxPool (the cotangent scattered to the entries its Indices name),
AveragePool and LpPool (the transposed windowing, as a grouped ConvTranspose with a kernel of ones)."""

import numpy as np
from onnx import helper

from ...graph.nodes import attr
from .registry import unary
from .windows import conv_geometry, transpose_back


@unary("MaxPool")
def _max_pool(ctx, node, g, x, y):
    """g scattered (added where windows overlap) to the entries each window took its maximum from.

    The node gains an Indices output where it has none."""
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
    return ctx.like(scattered, x)


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


@unary("AveragePool")
def _average_pool(ctx, node, g, x, y):
    """g divided by each window's count, spread back over the window's entries."""
    kernel = list(attr(node, "kernel_shape"))
    spatial = len(kernel)
    if any(d != 1 for d in attr(node, "dilations", [1] * spatial)):
        ctx.refuse(node, "dilated average pooling is not supported")
    strides, _, pads = conv_geometry(ctx, node, x, y, kernel)
    in_shape, out_shape = ctx.shape(x)[2:], ctx.shape(y)[2:]
    include = bool(attr(node, "count_include_pad", 0))
    counts = np.ones(())
    for i in range(spatial):
        axis = _window_counts(in_shape[i], out_shape[i], kernel[i], strides[i], pads[i], pads[i + spatial], include)
        counts = np.multiply.outer(counts, axis)
    scaled = ctx.op("Mul", [g, ctx.const((1.0 / counts).astype(ctx.dtype), "pool_counts")])
    channels = ctx.shape(x)[1]
    ones = ctx.const(np.ones((channels, 1) + tuple(kernel), dtype=ctx.dtype), "pool_ones")
    return transpose_back(ctx, scaled, x, y, ones, kernel, strides, [1] * spatial, pads, channels)


@unary("LpPool")
def _lp_pool(ctx, node, g, x, y):
    """The windows' g y^(1-p) summed onto each x_i, times sign(x_i) |x_i|^(p-1); 0 where y is 0.

    y = (sum over the window of |x|^p)^(1/p), pads counting as zeros (0 where y is 0, as for ReduceL2)."""
    kernel = list(attr(node, "kernel_shape"))
    strides, dilations, pads = conv_geometry(ctx, node, x, y, kernel)
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
    spread = transpose_back(ctx, ctx.op("Mul", [g, scale]), x, y, ones, kernel, strides, dilations, pads, channels)
    local = ctx.op("Mul", [ctx.op("Sign", [x]), ctx.op("Pow", [ctx.op("Abs", [x]), ctx.scalar(p - 1.0)])])
    return ctx.op("Mul", [spread, local])
