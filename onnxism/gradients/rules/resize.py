"""The rule of Resize: a nearest Resize is a selection (``..selection``); a linear or cubic one (antialiased too)
along one axis is a linear map of neighbouring entries, whose transpose this rule writes."""

import numpy as np

from ...graph.length_map import probe_length_map
from ...graph.nodes import attr
from ..selection import selection_vjp
from .registry import rule


@rule("Resize")
def _resize(ctx, node, gouts):
    """The transposed linear map along the resized axis (a selection for nearest).

    The map is read off onnxruntime by fast ISM's probe (output j = sum over taps t of weights[t, j] * input
    maps[t, j]); its transpose gathers, for each input column, the output columns that read it, times their
    weights."""
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
    index, scale = _transposed_taps(*read, in_shape[axis], ctx.dtype)
    depth = len(index)
    gathered = ctx.op("Gather", [g, ctx.ints(index.reshape(-1))], axis=axis + 1)  # (S, .., depth * L_in, ..)
    shape = in_shape[:axis] + [depth, in_shape[axis]] + in_shape[axis + 1:]
    split = ctx.op("Reshape", [gathered, ctx.op("Concat", [ctx.seed_batch, ctx.ints(shape[1:])], axis=0)])
    tail = [1] * (len(in_shape) - axis - 1)
    weighted = ctx.op("Mul", [split, ctx.const(scale.reshape([depth, in_shape[axis]] + tail), "resize_weights")])
    return {0: ctx.op("ReduceSum", [weighted, ctx.ints([axis + 1])], keepdims=0)}


def _transposed_taps(maps, weights, length, dtype):
    """(index, scale), each (depth, length): for each input entry, the output entries that read it and their
    weights, padded with (0, 0) to the largest count (at least 1)."""
    readers = [[] for _ in range(length)]  # per input entry: (output entry, weight)
    for tap, column in zip(*np.nonzero(weights)):
        readers[maps[tap, column]].append((column, weights[tap, column]))
    depth = max(1, max(len(entries) for entries in readers))
    index = np.zeros((depth, length), np.int64)
    scale = np.zeros((depth, length), dtype)
    for i, entries in enumerate(readers):
        for k, (column, weight) in enumerate(entries):
            index[k, i], scale[k, i] = column, weight
    return index, scale
