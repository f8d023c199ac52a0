"""What Conv and the pools share: their window geometry with auto_pad resolved, and the ConvTranspose that maps the
cotangent of a sliding-window op's output back onto its input (the transpose of the windowing)."""

from ...graph.nodes import attr


def conv_geometry(ctx, node, x, y, kernel):
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


def transpose_back(ctx, g, x, y, weight, kernel, strides, dilations, pads, group):
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
