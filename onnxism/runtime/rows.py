"""Rows of a batch: each input's rows for a part of the batch, and a batch padded to a fixed size."""

import numpy as np


def rows_of(extras, rows):
    """Each extra input's rows ``rows`` (an index array or a slice)."""
    return {name: value[rows] for name, value in extras.items()}


def padded_rows(value, size):
    """``value`` (an array, or a dict of arrays: a batch's inputs) with zero rows appended up to ``size`` rows (a
    graph with a fixed batch size takes batches of exactly that many)."""
    if isinstance(value, dict):
        return {name: padded_rows(array, size) for name, array in value.items()}
    if len(value) >= size:
        return value
    pad = np.zeros((size - len(value),) + value.shape[1:], dtype=value.dtype)
    return np.concatenate([value, pad])
