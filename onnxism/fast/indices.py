"""Row indices for the ISM graph's gathers, per batch of substitutions.

A table holds [reference rows of every sequence in the chunk (n_seq * L_T) | window rows of every substitution
in the batch (rows * width_T) | padding rows]. Target column c of substitution m (sequence n, position p) reads the
window row when c lies in T's window for p, the reference row n * L_T + c otherwise, and the padding row outside
[0, L_T).
"""

import numpy as np


def gather_indices(spec, window, seq, pos, n_seq):
    """(rows, spec.width) int64 indices into the table of ``spec.source``."""
    rows = len(seq)
    length, width = window.length, window.width
    columns = spec.start[pos][:, None] + np.arange(spec.width)[None, :]
    window_start = window.start[pos][:, None]
    inside = (columns >= window_start) & (columns < window_start + width)
    reference_rows = n_seq * length
    index = seq[:, None].astype(np.int64) * length + columns
    index = np.where(inside, reference_rows + np.arange(rows)[:, None] * width + (columns - window_start), index)
    valid = (columns >= 0) & (columns < length)
    return np.where(valid, index, reference_rows + rows * width + spec.pad_row).astype(np.int64)
