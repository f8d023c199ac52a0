"""The window arithmetic of LocalRule (``fast/rules/types.py``), property-tested with hypothesis against brute force:
for every input range, ``affected`` gives an output window holding every output whose receptive field meets the
range, tight at both ends; for every output window, ``needed`` gives an input range holding every input column those
outputs read (exactly the columns a convolution's window reads). Convolution-like rules, transposed ones, and column
maps of one tap and of several; and ``make_window``, which shifts (never clips) a window at the ends.
"""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from onnxism.fast.rules.types import LocalRule
from onnxism.fast.windows import make_window

SETTINGS = settings(max_examples=300, deadline=None)


def conv_rule(span, stride, begin):
    return LocalRule(span, stride, begin, False, 0.0, None)


def transposed_rule(span, stride, begin):
    return LocalRule(span, stride, begin, True, 0.0, None)


def map_rule(column_map):
    return LocalRule(1, 1, 0, False, 0.0, None, length_only=True, column_map=np.asarray(column_map, np.int64))


def reads(rule, j):
    """The input columns output j reads, by the definition of each kind of rule."""
    if rule.column_map is not None:
        return set(np.atleast_2d(rule.column_map)[:, j].tolist())
    if rule.transposed:  # input i reaches outputs [i * stride - begin, i * stride - begin + span)
        return {i for i in range(-100, 200) if i * rule.stride - rule.begin <= j < i * rule.stride - rule.begin
                + rule.span}
    start = j * rule.stride - rule.begin
    return set(range(start, start + rule.span))


def check_affected(rule, in_length, out_length, lo, hi):
    new_lo, new_hi = rule.affected(np.array([lo]), np.array([hi]), out_length)
    reached = [j for j in range(out_length) if reads(rule, j) & set(range(lo, hi))]
    if reached:
        assert (new_lo[0], new_hi[0]) == (min(reached), max(reached) + 1)
    else:
        assert new_lo[0] == new_hi[0]


def check_needed(rule, start, width):
    first, span = rule.needed(np.array([start]), width)
    read = set().union(*(reads(rule, j) for j in range(start, start + width)))
    assert read <= set(range(int(first[0]), int(first[0]) + span))
    assert int(first[0]) == min(read)


conv_shapes = st.tuples(st.integers(1, 9), st.integers(1, 4), st.integers(0, 8), st.integers(0, 8),
                        st.integers(1, 60)).filter(lambda t: t[4] + t[2] + t[3] >= t[0])


@SETTINGS
@given(conv_shapes, st.data())
def test_a_convolution_s_windows(shape, data):
    span, stride, begin, end, in_length = shape
    rule = conv_rule(span, stride, begin)
    out_length = (in_length + begin + end - span) // stride + 1
    lo = data.draw(st.integers(0, in_length - 1))
    hi = data.draw(st.integers(lo + 1, in_length))
    check_affected(rule, in_length, out_length, lo, hi)
    start = data.draw(st.integers(0, out_length - 1))
    check_needed(rule, start, data.draw(st.integers(1, out_length - start)))


@SETTINGS
@given(st.integers(1, 9), st.integers(1, 4), st.integers(0, 8), st.integers(1, 40), st.data())
def test_a_transposed_convolution_s_windows(span, stride, begin, in_length, data):
    begin = min(begin, span - 1)
    rule = transposed_rule(span, stride, begin)
    out_length = max(1, (in_length - 1) * stride + span - 2 * begin)
    lo = data.draw(st.integers(0, in_length - 1))
    hi = data.draw(st.integers(lo + 1, in_length))
    check_affected(rule, in_length, out_length, lo, hi)
    start = data.draw(st.integers(0, out_length - 1))
    width = data.draw(st.integers(1, out_length - start))
    if any(reads(rule, j) for j in range(start, start + width)):
        check_needed(rule, start, width)


@SETTINGS
@given(st.integers(1, 30), st.data())
def test_a_column_map_s_windows(in_length, data):
    """One tap (a Gather, a nearest Resize, a reversed Slice: any order) and several (a linear Resize: each output
    a few consecutive columns)."""
    out_length = data.draw(st.integers(1, 30))
    taps = data.draw(st.integers(1, 3))
    if taps == 1:
        column_map = data.draw(st.lists(st.integers(0, in_length - 1), min_size=out_length, max_size=out_length))
    else:
        firsts = data.draw(st.lists(st.integers(0, in_length - 1), min_size=out_length, max_size=out_length))
        column_map = [[min(first + t, in_length - 1) for first in firsts] for t in range(taps)]
    rule = map_rule(column_map)
    lo = data.draw(st.integers(0, in_length - 1))
    hi = data.draw(st.integers(lo + 1, in_length))
    check_affected(rule, in_length, out_length, lo, hi)
    start = data.draw(st.integers(0, out_length - 1))
    check_needed(rule, start, data.draw(st.integers(1, out_length - start)))


@SETTINGS
@given(st.integers(1, 50), st.data())
def test_a_window_holds_every_range_and_is_shifted_at_the_ends(length, data):
    count = data.draw(st.integers(1, 8))
    lo = np.array(data.draw(st.lists(st.integers(0, length - 1), min_size=count, max_size=count)))
    hi = np.array([data.draw(st.integers(low + 1, length)) for low in lo])
    window = make_window("t", 1, length, lo, hi)
    assert window.width == max(1, int((hi - lo).max()))
    assert np.all(window.start >= 0) and np.all(window.start + window.width <= length)
    assert np.all(window.start <= lo) and np.all(window.start + window.width >= hi)  # every range inside
