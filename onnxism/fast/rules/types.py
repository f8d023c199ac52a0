"""The two kinds of window rule, and their window arithmetic.

  PointwiseRule   output position j depends on input position j only; ``out_axis`` is where the length goes.
  LocalRule       output position j depends on a bounded input range (or, with a ``column_map``, on given input
                  columns): ``affected`` maps an input range to the output range it can change, ``needed`` an
                  output window to the input range that computes it.

Invariant (property-tested against brute force in tests/fast/test_rules_arithmetic.py): for every input range,
``affected`` contains every output position whose receptive field meets it, and for every output window, the
input range ``needed`` gives contains every input position those outputs read.
"""

from dataclasses import dataclass

import numpy as np


@dataclass
class PointwiseRule:
    out_axis: int


@dataclass
class LocalRule:
    """Output j depends on inputs [j*stride - begin, j*stride - begin + span) (Conv-like), or, for a transposed
    convolution (``transposed``), input i reaches outputs [i*stride - begin, i*stride - begin + span); with a
    ``column_map``, output j is input map[j], or a weighted sum over taps t of input map[t, j]."""

    span: int
    stride: int
    begin: int
    transposed: bool
    pad_value: float
    windowed_node: object  # callable(inputs, output) -> list of NodeProto computing the window
    length_only: bool = False  # a Pad or Slice along the length alone: the gathered window is the output
    column_map: np.ndarray = None  # output column j is input column column_map[j] (a nearest Resize, a Gather);
    # 2-D (taps, L_out) with ``column_weights``: output j = sum_t column_weights[t, j] * input column_map[t, j]
    column_weights: np.ndarray = None
    exclude_pad: bool = False  # an AveragePool that divides by the counted columns of each window only: those
    # in the input, and ``counted`` (columns before it, after it) of its pads where count_include_pad says so (a
    # ceil_mode window reaching past the end pad does not count the columns past it)
    counted: tuple = (0, 0)
    merged: int = 0  # a Reshape merging the length with this many axes after it (input column i -> ``stride``
    # output columns from i * stride): its window is the input's window reshaped (``analysis`` checks they align)
    split: int = 0  # a Reshape splitting the length into (L / stride, this many axes of product ``stride``)

    def affected(self, lo, hi, out_length):
        """Output range [lo', hi') that input range [lo, hi) can change (arrays over positions), clipped."""
        if self.column_map is not None:  # from the first to the last output that reads a column of the range
            maps = np.atleast_2d(self.column_map)
            size = int(max(maps.max() + 1, np.max(hi, initial=0)))
            first, end = np.full(size, out_length, np.int64), np.zeros(size, np.int64)
            outputs = np.broadcast_to(np.arange(maps.shape[1]), maps.shape).ravel()
            np.minimum.at(first, maps.ravel(), outputs)
            np.maximum.at(end, maps.ravel(), outputs + 1)
            new_lo = np.array([first[a:b].min() if b > a else 0 for a, b in zip(lo, hi)], np.int64)
            new_hi = np.array([end[a:b].max() if b > a else 0 for a, b in zip(lo, hi)], np.int64)
        elif self.transposed:
            new_lo, new_hi = lo * self.stride - self.begin, (hi - 1) * self.stride - self.begin + self.span
        else:
            new_lo = -((-(lo + self.begin - self.span + 1)) // self.stride)  # ceil division
            new_hi = (hi - 1 + self.begin) // self.stride + 1
        new_lo, new_hi = np.clip(new_lo, 0, out_length), np.clip(new_hi, 0, out_length)
        return new_lo, np.maximum(new_hi, new_lo)

    def needed(self, start, width):
        """Input range (start, width) that computes output window [start, start + width)."""
        if self.column_map is not None:
            maps = np.atleast_2d(self.column_map)
            first = np.array([maps[:, a:a + width].min() for a in start], np.int64)
            last = np.array([maps[:, a:a + width].max() for a in start], np.int64)
            return first, int((last - first).max()) + 1
        if self.transposed:  # the inputs i with i * stride in [start + begin - span + 1, start + begin + width)
            first = -((-(start + self.begin - self.span + 1)) // self.stride)
            return first, -(-(width + self.span - 1) // self.stride)
        return start * self.stride - self.begin, (width - 1) * self.stride + self.span


@dataclass(frozen=True)
class RuleFacts:
    """What a rule may read of the graph: ``shapes`` (tensor name -> probed shape), ``constants`` (name -> array of
    initializers, Constant outputs and folded shape arithmetic), ``dependent`` (the tensors that depend on the
    sequence input) and the model's default-domain ``opset``."""

    shapes: dict
    constants: dict
    dependent: set
    opset: int = 18

    def out_shape(self, node):
        return self.shapes[node.output[0]]

    def shape_of(self, name):
        """A tensor's probed shape, or a constant's own."""
        return self.shapes.get(name, np.shape(self.constants.get(name, 0)))


def outputs_of(node):
    """The node's outputs that are used (non-empty names)."""
    return [name for name in node.output if name]
