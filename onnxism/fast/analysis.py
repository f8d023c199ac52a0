"""Window analysis: for every tensor that depends on the sequence, which positions a substitution can change.

For a substitution at sequence position p, a windowed tensor T (length axis ``axis``, length L_T) differs from its
reference only inside [start[p], start[p] + width): the width is fixed for T (the widest affected range) and the
window is shifted, never clipped, at the sequence ends so every substitution has the same shapes. Tensors fed to an
op with no local rule are "full": computed on the whole length for every substitution (exact, just not faster).
Tensors computed from the model's extra inputs and not from the sequences are "unchanged": the same for every
substitution of a sequence, read from the reference run (element-wise ops and channel Concats take them as
operands of a windowed tensor; any other op that reads one with a windowed tensor is computed in full).

Invariant: every windowed tensor's window contains all positions that any substitution can change.
"""

from dataclasses import dataclass, field

import numpy as np

from ..graph.constants import graph_constants
from ..graph.ops import ELEMENTWISE, RECURRENT_OPS
from ..graph.probe import shape_arithmetic
from .rules import LocalRule, PointwiseRule, global_along, rule_for


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


@dataclass
class Analysis:
    """Per node a mode ("static", "folded", "shape", "unchanged", "windowed" or "full") and rule; per windowed
    tensor its Window."""

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
    #: The notices of nodes computed in full because they are global along the length by what they do
    #: (``rules.global_along``) or join a tensor that is computed in full (``JOINS_FULL``): expected, not for want
    #: of a rule.
    by_nature: set = field(default_factory=set)

    def table_window(self, name):
        """The Window of a windowed or of an unchanged tensor (its table's length), or None."""
        return self.windows.get(name) or self.unchanged_windows.get(name)


def make_window(tensor, axis, length, lo, hi):
    width = max(1, int((hi - lo).max()))
    width = min(width, length)
    start = np.clip(np.minimum(lo, length - width), 0, None).astype(np.int64)
    return Window(tensor, axis, length, width, start, lo, hi)


def analyse(graph, input_name, input_axis, shapes, opset=18, fixed=None, extras=()):
    """Propagate windows from the sequence input through ``graph`` (of ai.onnx ``opset``) in topological order;
    ``extras``: the names of the model's other inputs.

    ``fixed``: values that do not depend on the batch (``probe.probe_graph``). A node computed only from shapes
    (Shape or Size of a sequence-dependent tensor, and what follows from those alone) whose outputs are all fixed is
    "folded": its outputs are constants, so that e.g. a Slice or Pad whose bounds tf2onnx computes from the
    tensor's shape gets its local rule."""
    constants = graph_constants(graph)
    known, dependent, from_shapes, unchanged = shape_arithmetic(graph, input_name, fixed or {}, extras)
    folded = {}
    length = shapes[input_name][input_axis]
    positions = np.arange(length)
    windows = {input_name: make_window(input_name, input_axis, length, positions, positions + 1)}
    modes, rules, notices, by_nature = {}, {}, [], set()
    unchanged_windows = {}
    varying = set()  # the outputs of nodes computed in full from a windowed or varying tensor: they may change on
    # every column (tensors computed in full from shapes alone, such as a constant expanded to the batch, do not)
    for index, node in enumerate(graph.node):
        key = node.name or f"node{index}"
        deps = [name for name in node.input if name in dependent]
        outputs = [name for name in node.output if name]
        read = [name for name in node.input if name in unchanged]
        if not deps and not read:
            modes[key] = "static"
            for name in outputs:  # computed from constants: known to the rules where it is small
                if name in known and name not in constants:
                    constants[name] = known[name]
            continue
        if outputs and all(name in known for name in outputs):  # shape arithmetic (of an extra input too)
            modes[key] = "folded"
            for name in outputs:
                folded[name] = constants[name] = known[name]
            continue
        if not deps:
            modes[key] = "unchanged"
            continue
        windowed = [name for name in deps if name in windows]
        rule = None
        # a Reshape's or an Expand's target may be shape arithmetic that depends on the batch (tf2onnx's [N, -1, C],
        # torch's expand_as): their rules read the probed shapes only, and their windowed forms write their own
        reshape = (node.op_type in ("Reshape", "Expand") and windowed == [node.input[0]]
                   and node.input[1] in from_shapes)
        if len(windowed) == len(deps) or reshape:
            axes = {windows[name].axis for name in windowed}
            if len(axes) == 1:
                axis = axes.pop()
                if read:
                    rule = _rule_with_unchanged(node, axis, shapes, constants, dependent, opset, read,
                                                unchanged_windows)
                else:
                    rule = rule_for(node, axis, shapes, constants, dependent - set(node.input[1:2]) if reshape
                                    else dependent, opset)
        if isinstance(rule, PointwiseRule) and any(windows[name].length != shapes[node.output[0]][rule.out_axis]
                                                   for name in windowed):
            rule = None  # a windowed tensor broadcast along the length: every output column reads its one column
        out_shape = shapes[node.output[0]]
        batch_kept = len(out_shape) > 0 and out_shape[0] == shapes[input_name][0]
        if rule is not None and not batch_kept:
            rule = None  # the batch moved or changed: the rows layout holds a batch first, so computed in full
        moved = len(out_shape) > 1 and not batch_kept  # named in the notice
        if rule is None and node.op_type == "Shape" and deps[0] in windows:
            modes[key] = "shape"  # the full shape, known without materialising the tensor
            continue
        if rule is None:
            modes[key] = "full"
            if windowed or any(name in varying for name in deps):
                varying.update(outputs)
            if windowed:
                joined = len(windowed) < len(deps) and not reshape
                # a join is global by nature only where its other operands change everywhere themselves
                varies = all(name in varying for name in deps if name not in windows)
                notices.append(f"{node.op_type} node {key!r}" + (_batch_moved(graph, index) if moved else "")
                               + (f" {JOINS_FULL if varies else JOINS_SHAPES}" if joined and not moved else ""))
                if ((joined and varies and not moved)
                        or global_along(node, windows[windowed[0]].axis, shapes, constants, opset)):
                    by_nature.add(notices[-1])
            continue
        out = node.output[0]
        out_length = shapes[out][getattr(rule, "out_axis", windows[windowed[0]].axis)]
        if isinstance(rule, LocalRule):
            source = windows[windowed[0]]
            lo, hi = rule.affected(source.lo, source.hi, out_length)
            axis = source.axis
        else:
            lo = np.min([windows[name].lo for name in windowed], axis=0)
            hi = np.max([windows[name].hi for name in windowed], axis=0)
            axis = rule.out_axis
        window = make_window(out, axis, out_length, lo, hi)
        if isinstance(rule, LocalRule) and rule.merged and not _aligned(windows[windowed[0]], window, rule.stride):
            modes[key] = "full"
            notices.append(f"{node.op_type} node {key!r}")
            continue
        modes[key], rules[key] = "windowed", rule
        windows[out] = window
    return Analysis(modes, rules, windows, dependent, notices, folded, constants, unchanged, unchanged_windows,
                    by_nature)


def _rule_with_unchanged(node, axis, shapes, constants, dependent, opset, read, unchanged_windows):
    """The rule of a node that reads unchanged tensors ``read`` beside windowed ones (length on ``axis``): an
    element-wise op or a Concat along other axes, whose unchanged operands keep the batch first and the rank, and
    are as long as the output or 1 along the length (then read from the reference run at each window); else None.
    Records where each operand's length axis is."""
    out_shape = shapes[node.output[0]]
    if node.op_type not in ELEMENTWISE and node.op_type != "Concat":
        return None
    for name in read:
        shape = shapes.get(name)
        if (shape is None or len(shape) != len(out_shape) or shape[0] != out_shape[0]
                or shape[axis] not in (1, out_shape[axis])):
            return None
        known = unchanged_windows.get(name)
        if known is not None and known.axis != axis:
            return None
    rule = rule_for(node, axis, shapes, constants, dependent | set(read), opset)
    if rule is not None:
        for name in read:
            unchanged_windows.setdefault(name, Window(name, axis, shapes[name][axis], 0, np.zeros(0, np.int64)))
    return rule


#: The mark of a notice for a node that joins a windowed tensor with one computed on the full length (a
#: squeeze-excitation gate times the trunk): it changes everywhere because its other operand does, not for want of
#: a rule.
JOINS_FULL = "(it joins a tensor computed on the full length)"

#: The mark of a notice for a node that joins a windowed tensor with one computed from shapes alone (a constant
#: expanded to the batch's size, computed in full for want of a rule, though it is the same for every substitution).
JOINS_SHAPES = "(it joins a tensor computed from the batch's shape)"

def _batch_moved(graph, index):
    """Why node ``index`` has no local rule: the batch leaves the first axis (the first recurrent layer computed
    from its output named, if there is one)."""
    reached = set(graph.node[index].output)
    for node in graph.node[index + 1:]:
        if any(name in reached for name in node.input):
            if node.op_type in RECURRENT_OPS:
                return f" (the batch leaves the first axis there, before the {node.op_type} node {node.name!r})"
            reached.update(node.output)
    return " (the batch leaves the first axis there)"


def _aligned(source, target, factor):
    """Whether ``target``'s window is ``source``'s scaled by ``factor`` for every position (a merging Reshape's
    window is then its input's window reshaped)."""
    return target.width == source.width * factor and np.array_equal(target.start, source.start * factor)
