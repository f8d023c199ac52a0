"""Reshape rules: a Reshape that moves no value across positions of the length is point-wise; one that merges the
length with the axes after it, or splits it, is local (like a transposed convolution, or a convolution, with kernel
and stride the factor)."""

import math

from .types import LocalRule, PointwiseRule


def pointwise_reshape(node, axis, shapes):
    """A Reshape that keeps the batch first and the length as an axis of its own, reshaping only the axes before it
    among themselves and those after it among themselves (inserting or removing axes of size 1, as exporters do
    around 2-D convolutions; splitting or merging channels): each position's values keep their order, so in the
    rows layout it is a Reshape of the other axes."""
    in_shape, out_shape = list(shapes[node.input[0]]), list(shapes[node.output[0]])
    if in_shape[axis] == 1 or in_shape[0] == 1 or out_shape[0] != in_shape[0]:
        return None
    before, after = math.prod(in_shape[1:axis]), math.prod(in_shape[axis + 1:])
    for out_axis in range(1, len(out_shape)):
        if (out_shape[out_axis] == in_shape[axis] and math.prod(out_shape[1:out_axis]) == before
                and math.prod(out_shape[out_axis + 1:]) == after):
            return PointwiseRule(out_axis)
    return None


def splitting_reshape(node, axis, shapes):
    """A Reshape splitting the length into (L / k, axes of product k) right after it, all else kept: (N, L, C) ->
    (N, L / k, k, C), as Enformer-style softmax pooling does before weighting each group of k columns. Output column
    j is input columns [j*k, j*k + k), so it is local, like a convolution with kernel and stride k."""
    in_shape, out_shape = list(shapes[node.input[0]]), list(shapes[node.output[0]])
    added = len(out_shape) - len(in_shape)
    if axis == 0 or added < 1 or in_shape[:axis] != out_shape[:axis]:
        return None
    factor = math.prod(out_shape[axis + 1:axis + 1 + added])
    if factor < 2 or out_shape[axis] * factor != in_shape[axis] or out_shape[axis + 1 + added:] != in_shape[axis + 1:]:
        return None
    return LocalRule(factor, factor, 0, False, 0.0, None, split=added)


def merging_reshape(node, axis, shapes):
    """A Reshape merging the length with the axes right after it, all else kept: (N, L, k, C) -> (N, L*k, C), as
    tf2onnx writes Keras's UpSampling1D (Unsqueeze, Tile by k, then this). Input column i becomes output columns
    [i*k, i*k + k), so it is local, like a transposed convolution with kernel and stride k."""
    in_shape, out_shape = list(shapes[node.input[0]]), list(shapes[node.output[0]])
    if axis == 0 or in_shape[:axis] != out_shape[:axis] or len(out_shape) < 3:
        return None  # (N, L, C) -> (N, L*C) is a Flatten: global, a dense head's (``linear.py``)
    factor = 1
    for last in range(axis + 1, len(in_shape)):
        factor *= in_shape[last]
        if in_shape[axis] * factor == out_shape[axis] and in_shape[last + 1:] == out_shape[axis + 1:]:
            if factor == 1:
                return None
            return LocalRule(factor, factor, 0, True, 0.0, None, merged=last - axis)
    return None


def reshape(node, axis, f):
    """A Reshape that keeps each position's values (point-wise), or merges or splits the length with the axes after
    it (local); else None."""
    return (pointwise_reshape(node, axis, f.shapes) or merging_reshape(node, axis, f.shapes)
            or splitting_reshape(node, axis, f.shapes))
