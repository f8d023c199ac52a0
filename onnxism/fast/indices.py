"""Row indices for the ISM graph's gathers, per batch of substitutions.

Three kinds of gather (``GatherSpec.kind``), for substitution m (sequence n, position p) and target column
c = start[p] + offset:
  "table"      rows of T's table [reference rows of the n_seq sequences fed (n_seq * L_T) | window rows of every
               substitution in the batch (rows * width_T) | padding rows]: the window row when c lies in T's window
               for p, the reference row n * L_T + c otherwise, the padding row outside [0, L_T). With a
               ``column_map`` (a nearest Resize) the column is column_map[start[p] + offset] instead.
  "reference"  rows of T's reference table only (n * L_T + c); c always lies in [0, L_T).
  "col2im"     rows of a per-batch product Y (rows * block * taps rows, then zero rows): row
               (m * block + c) * taps + t holds source column c's contribution through tap t. Either the tap t is
               static and c = start[p] + offset (valid when 0 <= c < block), or (``column`` set) the source column c
               is static and start[p] + offset = t * dilation (valid when it is a multiple in [0, taps * dilation));
               invalid entries read the first zero row.
  "sequence"   rows of a non-windowed tensor's reference table (one row per sequence): row n, width 1.
  "position"   the target columns c themselves: rows of a constant by output column (a pool's divisors).
"""

import numpy as np


def gather_indices(spec, window, seq, pos, n_seq):
    """(rows, spec.width) int64 indices for ``spec`` (``window``: the Window of ``spec.source``)."""
    rows = len(seq)
    if spec.kind == "sequence":
        return seq[:, None].astype(np.int64)
    columns = spec.start[pos][:, None] + spec.offsets[None, :]
    if spec.column_map is not None:
        columns = spec.column_map[columns]
    if spec.kind == "position":
        return columns.astype(np.int64)
    if spec.kind == "col2im":
        if spec.column is None:
            column, tap = columns, spec.tap[None, :]
            valid = (columns >= 0) & (columns < spec.block)
        else:
            column, tap = spec.column[None, :], columns // spec.dilation
            valid = (columns >= 0) & (columns < spec.taps * spec.dilation) & (columns % spec.dilation == 0)
        index = (np.arange(rows)[:, None] * spec.block + column) * spec.taps + tap
        return np.where(valid, index, rows * spec.block * spec.taps).astype(np.int64)
    length, width = window.length, window.width
    index = seq[:, None].astype(np.int64) * length + columns
    if spec.kind == "reference":
        return index.astype(np.int64)
    window_start = window.start[pos][:, None]
    inside = (columns >= window_start) & (columns < window_start + width)
    reference_rows = n_seq * length
    index = np.where(inside, reference_rows + np.arange(rows)[:, None] * width + (columns - window_start), index)
    valid = (columns >= 0) & (columns < length)
    return np.where(valid, index, reference_rows + rows * width + spec.pad_row).astype(np.int64)
