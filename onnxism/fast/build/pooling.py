"""Pooling along the length on a window: every pooling window's columns gathered at once (im2col), then reduced;
an AveragePool that does not count its pads (or a ceil_mode window past the end) sums and multiplies by 1 / the
counted columns of each output column.

Invariant: the window equals the model's pooling at those output columns.
"""

import numpy as np


def pool(s, node, source, rule, start, kernel):
    """A MaxPool or AveragePool along the length alone (``kernel``: size, dilation) on its output's window, its
    input columns from ``start`` (``rule.needed``)."""
    out = node.output[0]
    target = s.analysis.windows[out]
    size, dilation = kernel
    offsets = (np.arange(target.width)[:, None] * rule.stride + np.arange(size)[None, :] * dilation)
    columns = s.gather(source, start, offsets, rule.pad_value)  # (rows, w, k, *rest)
    if rule.exclude_pad:  # the sum over the window, times 1 / (its columns inside the input) per column
        summed = s.reduce("ReduceSum", columns, [2], s.fresh("pool_sum"))
        scale = inverse_counts(s, out, rule, size, dilation, s.analysis.windows[source].length)
        return s.node("Mul", [summed, scale], [s.win(out)])
    return s.reduce("ReduceMax" if node.op_type == "MaxPool" else "ReduceMean", columns, [2], s.win(out))


def inverse_counts(s, out, rule, size, dilation, source_length):
    """1 / (counted input columns: inside the input or in its counted pads) of each pooling window of ``out``'s
    window, per row, shaped to broadcast against ``out`` in the rows layout: a "position" gather of a constant
    by output column."""
    target = s.analysis.windows[out]
    first = np.arange(target.length)[:, None] * rule.stride - rule.begin + np.arange(size)[None, :] * dilation
    before, after = rule.counted
    counts = ((first >= -before) & (first < source_length + after)).sum(1)
    inverse = (1.0 / np.maximum(counts, 1)).astype(np.float32)
    return s.by_column(out, inverse.reshape([-1] + [1] * len(s.rest(out))))
