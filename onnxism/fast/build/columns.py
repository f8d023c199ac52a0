"""Ops whose output columns are given input columns, or a few weighted ones (a column map: a nearest or linear
Resize, a Gather or strided or reversed Slice along the length, a reflect Pad), and Reshapes that merge the length
with the axes after it or split it.

Invariant: the window equals the model's op at those columns, for every row.
"""

import numpy as np

from ..layout import rows_shape


def mapped_columns(s, source, out, rule):
    """Output column j copies input column map[j] (a nearest Resize, a Gather, a strided or reversed Slice, a
    reflect Pad): one gather, then the Slice along other axes where there is one; or
    (a linear or cubic Resize) sums weights[t, j] * input column map[t, j] over the taps t: a gather per tap
    times its weights by output column."""
    target = s.analysis.windows[out]
    columns = np.arange(target.width)
    if rule.column_weights is None:
        gathered = s.gather(source, target.start, columns, column_map=rule.column_map)
        if rule.length_only:
            s.node("Identity", [gathered], [s.win(out)])
            return
        # a Slice along other axes too (a reverse complement's channels)
        result = s.windowed_nodes(rule, [s.to_model(gathered, source)], s.fresh("mapped"))
        s.to_rows(result, out, s.win(out))
        return
    dims = [1] * len(s.rest(out))
    total = None
    for column_map, weights in zip(rule.column_map, rule.column_weights):
        term = s.node("Mul", [s.gather(source, target.start, columns, column_map=column_map),
                              s.by_column(out, weights.reshape([-1] + dims))], [s.fresh("tap")])
        total = term if total is None else s.node("Add", [total, term], [s.fresh("taps")])
    s.node("Identity", [total], [s.win(out)])


def merged_reshape(s, source, out, rule):
    """A Reshape merging the length with the ``rule.merged`` axes after it: ``source``'s window, those axes moved
    next to its columns, reshaped (the analysis checked that ``out``'s window is ``source``'s scaled)."""
    axis = s.analysis.windows[source].axis
    rest = s.perm(source)[2:]
    merged = list(range(axis + 1, axis + 1 + rule.merged))
    order = [0, 1] + [2 + rest.index(a) for a in merged] + [2 + k for k, a in enumerate(rest) if a not in merged]
    value = s.win(source)
    if order != sorted(order):
        value = s.transpose(value, order)
    target = s.analysis.windows[out]
    s.reshape(value, rows_shape(s.shapes[out], target.axis, target.width), s.win(out))


def split_reshape(s, source, out, rule):
    """A Reshape splitting the length into (L / k, the ``rule.split`` axes after it): ``source``'s columns
    [start * k, (start + width) * k) gathered, split, and the new axes moved after the other axes that precede
    the length in the model (the rows layout's order)."""
    target = s.analysis.windows[out]
    axis, split = s.analysis.windows[source].axis, rule.split
    rest = s.rest(source)
    new = [int(d) for d in s.shapes[out][axis + 1:axis + 1 + split]]
    gathered = s.gather(source, target.start * rule.stride, np.arange(target.width * rule.stride))
    value = s.reshape(gathered, [-1, target.width] + new + rest)  # (rows, w, new, before, after)
    before = axis - 1  # the model's axes between the batch and the length
    order = ([0, 1] + [2 + split + i for i in range(before)] + [2 + i for i in range(split)]
             + list(range(2 + split + before, 2 + split + len(rest))))
    s.transpose(value, order, s.win(out))
