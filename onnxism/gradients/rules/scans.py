"""Rules of the scans and selections by value: CumSum (a running sum the other way) and TopK (the values'
cotangent scattered back to where they were taken from)."""

import numpy as np

from ...graph.nodes import attr
from .common import constant_list, positive_axis
from .registry import unary


@unary("CumSum")
def _cumsum(ctx, node, g, x, y):
    """The running sum of g the other way, with the same exclusiveness (the transpose of a running sum)."""
    axis = constant_list(ctx, node, 1, "axis")
    shifted = ctx.const(np.int64(positive_axis(axis[0], ctx.rank(x)) + 1), "axis")  # a scalar, as CumSum requires
    return ctx.op("CumSum", [g, shifted], exclusive=attr(node, "exclusive", 0), reverse=1 - attr(node, "reverse", 0))


@unary("TopK")
def _top_k(ctx, node, g, x, y):
    """The values' cotangent scattered back to the entries they were taken from (the Indices output)."""
    if len(node.output) < 2 or not node.output[1]:
        ctx.refuse(node, "its indices output is missing")
    axis = positive_axis(attr(node, "axis", -1), ctx.rank(x)) + 1
    where = ctx.op("Expand", [ctx.op("Unsqueeze", [node.output[1], ctx.ints([0])]), ctx.op("Shape", [g])])
    return ctx.op("ScatterElements", [ctx.zeros_like(x), where, g], axis=axis)
