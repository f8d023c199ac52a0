"""The rows layout: how the ISM graph holds a windowed tensor.

A windowed tensor T of the model (rank R, length on axis ``a``) is held as ``(rows, w_T, *rest)``: one row per
substitution, then its window along the length, then T's other axes in their model order (``perm`` =
[0, a, the others]). Flattened to ``(-1, prod(rest))`` it is directly rows of T's table, so windows enter and
leave tables with a Reshape, never a Transpose; a gather along the length is one Gather whatever the window.
"""

import numpy as np


def rows_perm(rank, axis):
    """Model axes in rows-layout order: batch, length, then the others ascending."""
    return [0, axis] + [d for d in range(1, rank) if d != axis]


def inverse(perm):
    return [int(i) for i in np.argsort(perm)]


def rows_shape(shape, axis, width):
    """The rows-layout shape of a window of ``width`` of a tensor with model ``shape``, batch left open (-1)."""
    return [-1, int(width)] + [int(shape[d]) for d in rows_perm(len(shape), axis)[2:]]


def rows_constant(array, rank, perm):
    """A constant operand of an elementwise op, broadcast against a rank-``rank`` tensor in model layout, moved to
    the rows layout ``perm`` (leading 1s added first, as broadcasting would)."""
    array = np.asarray(array)
    array = array.reshape((1,) * (rank - array.ndim) + array.shape)
    return np.ascontiguousarray(np.transpose(array, perm))
