"""What the window analysis finds, as data: each node's Mode, each windowed tensor's Window, the Notices of nodes
computed in full, and the Analysis that holds them (``analysis.py`` finds them)."""

from dataclasses import dataclass, field
from enum import Enum

import numpy as np


class Mode(str, Enum):
    """How the ISM graph computes a node."""

    STATIC = "static"  # from constants alone: as the model does, once
    FOLDED = "folded"  # shape arithmetic that does not depend on the batch: its values are constants
    SHAPE = "shape"  # the Shape of a windowed tensor: its full shape, known without computing the tensor
    UNCHANGED = "unchanged"  # from the extra inputs alone: the same for every substitution, read from the reference
    WINDOWED = "windowed"  # on the window of its output that a substitution can change
    FULL = "full"  # on the whole length, for every substitution (exact, not faster)


@dataclass
class Window:
    """Where a windowed tensor can change: ``start[p]`` for each sequence position p, fixed ``width``."""

    tensor: str
    axis: int
    length: int
    width: int
    start: np.ndarray
    lo: np.ndarray = field(repr=False, default=None)
    hi: np.ndarray = field(repr=False, default=None)


def make_window(tensor, axis, length, lo, hi):
    """The Window holding every range [lo[p], hi[p]): as wide as the widest, shifted (never clipped) at the ends."""
    width = max(1, int((hi - lo).max()))
    width = min(width, length)
    start = np.clip(np.minimum(lo, length - width), 0, None).astype(np.int64)
    return Window(tensor, axis, length, width, start, lo, hi)


class Reason(str, Enum):
    """Why a node that a windowed tensor reaches is computed in full."""

    NO_RULE = "no_rule"  # its op has no local rule for these axes (or is global by nature: ``Notice.by_nature``)
    BATCH_MOVED = "batch_moved"  # its output does not keep the batch first
    JOINS_FULL = "joins_full"  # it joins a tensor computed on the full length
    JOINS_SHAPES = "joins_shapes"  # it joins a tensor computed from the batch's shape
    MISALIGNED = "misaligned"  # a Reshape merging the length whose window is not its input's reshaped


_MARKS = {
    Reason.JOINS_FULL: " (it joins a tensor computed on the full length)",
    Reason.JOINS_SHAPES: " (it joins a tensor computed from the batch's shape)",
}


@dataclass(frozen=True)
class Notice:
    """A node computed in full although a windowed tensor reaches it: its key, op and why. ``by_nature``: it is
    global along the length by what it does (``rules.global_along``) or joins a tensor that changes everywhere:
    expected, not for want of a rule. ``before``: for BATCH_MOVED, the recurrent node the moved batch feeds."""

    node: str
    op: str
    reason: Reason
    by_nature: bool = False
    before: str = ""

    def __str__(self):
        text = f"{self.op} node {self.node!r}"
        if self.reason == Reason.BATCH_MOVED:
            return text + (f" (the batch leaves the first axis there, before the {self.before})" if self.before
                           else " (the batch leaves the first axis there)")
        return text + _MARKS.get(self.reason, "")


@dataclass
class Analysis:
    """Per node a Mode and rule; per windowed tensor its Window."""

    modes: dict
    rules: dict
    windows: dict
    dependent: set
    notices: list
    folded: dict = field(default_factory=dict)  # shape arithmetic whose value does not depend on the batch
    #: Every value known without a sequence: initializers, Constant nodes, folded shape arithmetic and the small
    #: fixed outputs of static nodes (built once here; the graph builder reuses it rather than copying the weights
    #: again).
    constants: dict = field(default_factory=dict, repr=False)
    #: Tensors computed from the extra inputs alone (those included), the same for every substitution.
    unchanged: set = field(default_factory=set)
    #: Per unchanged tensor that a windowed node reads, where its length axis is: a Window of width 0 (``length``
    #: 1 where it broadcasts along the length).
    unchanged_windows: dict = field(default_factory=dict)

    def table_window(self, name):
        """The Window of a windowed or of an unchanged tensor (its table's length), or None."""
        return self.windows.get(name) or self.unchanged_windows.get(name)

    def split_notices(self):
        """(notices of nodes global by nature, notices of nodes computed in full for want of a local rule)."""
        return ([notice for notice in self.notices if notice.by_nature],
                [notice for notice in self.notices if not notice.by_nature])
