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

import numpy as np

from ..graph.constants import graph_constants
from ..graph.nodes import reads
from ..graph.ops import ELEMENTWISE, RECURRENT_OPS
from ..graph.probe import shape_arithmetic
from .rules import LocalRule, PointwiseRule, global_along, mixes_positions, rule_for
from .windows import Analysis, Mode, Notice, Reason, Window, make_window


def analyse(graph, input_name, input_axis, shapes, opset=18, fixed=None, extras=()):
    """Propagate windows from the sequence input through ``graph`` (of ai.onnx ``opset``) in topological order;
    ``extras``: the names of the model's other inputs.

    ``fixed``: values that do not depend on the batch (``graph.probe.probe_graph``). A node computed only from shapes
    (Shape or Size of a sequence-dependent tensor, and what follows from those alone) whose outputs are all fixed is
    "folded": its outputs are constants, so that e.g. a Slice or Pad whose bounds tf2onnx computes from the
    tensor's shape gets its local rule."""
    return _Analyser(graph, input_name, input_axis, shapes, opset, fixed or {}, extras).run()


class _Analyser:
    """The analysis's state while it walks the graph once, node by node."""

    def __init__(self, graph, input_name, input_axis, shapes, opset, fixed, extras):
        self.graph, self.input_name, self.shapes, self.opset = graph, input_name, shapes, opset
        self.constants = graph_constants(graph)
        self.known, self.dependent, self.from_shapes, self.unchanged = shape_arithmetic(graph, input_name, fixed,
                                                                                        extras)
        length = shapes[input_name][input_axis]
        positions = np.arange(length)
        self.windows = {input_name: make_window(input_name, input_axis, length, positions, positions + 1)}
        self.modes, self.rules, self.notices, self.folded, self.unchanged_windows = {}, {}, [], {}, {}
        self.varying = set()  # the outputs of nodes computed in full from a windowed or varying tensor: they may
        # change on every column (tensors computed in full from shapes alone, a constant expanded to the batch, do not)

    def run(self):
        for index, node in enumerate(self.graph.node):
            key = node.name or f"node{index}"
            self.modes[key] = self._node(index, key, node)
        return Analysis(self.modes, self.rules, self.windows, self.dependent, self.notices, self.folded,
                        self.constants, self.unchanged, self.unchanged_windows)

    def _node(self, index, key, node):
        """The node's Mode, its rule and output window recorded where it is windowed."""
        deps = [name for name in node.input if name in self.dependent]
        outputs = [name for name in node.output if name]
        read = [name for name in node.input if name in self.unchanged]
        if not deps and not read:
            for name in outputs:  # computed from constants: known to the rules where it is small
                if name in self.known and name not in self.constants:
                    self.constants[name] = self.known[name]
            return Mode.STATIC
        if outputs and all(name in self.known for name in outputs):  # shape arithmetic (of an extra input too)
            for name in outputs:
                self.folded[name] = self.constants[name] = self.known[name]
            return Mode.FOLDED
        if not deps:
            return Mode.UNCHANGED
        windowed = [name for name in deps if name in self.windows]
        # a Reshape's or an Expand's target may be shape arithmetic that depends on the batch (tf2onnx's [N, -1, C],
        # torch's expand_as): their rules read the probed shapes only, and their windowed forms write their own
        reshape = (node.op_type in ("Reshape", "Expand") and windowed == [node.input[0]]
                   and node.input[1] in self.from_shapes)
        rule = self._rule(node, deps, windowed, read, reshape)
        out_shape = self.shapes[node.output[0]]
        batch_kept = len(out_shape) > 0 and out_shape[0] == self.shapes[self.input_name][0]
        if rule is not None and not batch_kept:
            rule = None  # the batch moved or changed: the rows layout holds a batch first, so computed in full
        if rule is None and node.op_type == "Shape" and deps[0] in self.windows:
            return Mode.SHAPE  # the full shape, known without materialising the tensor
        if rule is None:
            self._full(index, key, node, deps, windowed, outputs, reshape, moved=len(out_shape) > 1 and not batch_kept)
            return Mode.FULL
        return self._windowed(key, node, rule, windowed)

    def _rule(self, node, deps, windowed, read, reshape):
        """The node's rule where every dependent input is windowed along one axis (or it reshapes one), else None."""
        rule = None
        if len(windowed) == len(deps) or reshape:
            axes = {self.windows[name].axis for name in windowed}
            if len(axes) == 1:
                axis = axes.pop()
                if read:
                    rule = self._rule_with_unchanged(node, axis, read)
                else:
                    dependent = self.dependent - set(node.input[1:2]) if reshape else self.dependent
                    rule = rule_for(node, axis, self.shapes, self.constants, dependent, self.opset)
        if isinstance(rule, PointwiseRule) and any(self.windows[name].length
                                                   != self.shapes[node.output[0]][rule.out_axis] for name in windowed):
            rule = None  # a windowed tensor broadcast along the length: every output column reads its one column
        return rule

    def _full(self, index, key, node, deps, windowed, outputs, reshape, moved):
        """Records a node computed in full, and its notice where a windowed tensor reaches it."""
        if windowed or any(name in self.varying for name in deps):
            self.varying.update(outputs)
        if not windowed:
            return
        joined = len(windowed) < len(deps) and not reshape
        # a join is global by nature only where its other operands change everywhere themselves
        varies = all(name in self.varying for name in deps if name not in self.windows)
        if moved:
            reason = Reason.BATCH_MOVED
        elif joined:
            reason = Reason.JOINS_FULL if varies else Reason.JOINS_SHAPES
        else:
            reason = Reason.NO_RULE
        length_axes = {slot: self.windows[name].axis for slot, name in enumerate(node.input) if name in self.windows}
        by_nature = ((joined and varies and not moved) or mixes_positions(node, length_axes)
                     or global_along(node, self.windows[windowed[0]].axis, self.shapes, self.constants, self.opset))
        before = _global_after(self.graph, index) if moved else ""
        self.notices.append(Notice(key, node.op_type, reason, bool(by_nature or before), before))

    def _windowed(self, key, node, rule, windowed):
        """Records a windowed node's rule and its output's window (FULL where a merging Reshape's windows do not
        align)."""
        out = node.output[0]
        out_length = self.shapes[out][getattr(rule, "out_axis", self.windows[windowed[0]].axis)]
        if isinstance(rule, LocalRule):
            source = self.windows[windowed[0]]
            lo, hi = rule.affected(source.lo, source.hi, out_length)
            axis = source.axis
        else:
            lo = np.min([self.windows[name].lo for name in windowed], axis=0)
            hi = np.max([self.windows[name].hi for name in windowed], axis=0)
            axis = rule.out_axis
        window = make_window(out, axis, out_length, lo, hi)
        if isinstance(rule, LocalRule) and rule.merged and not _aligned(self.windows[windowed[0]], window,
                                                                        rule.stride):
            self.notices.append(Notice(key, node.op_type, Reason.MISALIGNED))
            return Mode.FULL
        self.rules[key] = rule
        self.windows[out] = window
        return Mode.WINDOWED

    def _rule_with_unchanged(self, node, axis, read):
        """The rule of a node that reads unchanged tensors ``read`` beside windowed ones (length on ``axis``): an
        element-wise op or a Concat along other axes, whose unchanged operands keep the batch first and the rank,
        and are as long as the output or 1 along the length (then read from the reference run at each window); else
        None. Records where each operand's length axis is."""
        shapes = self.shapes
        out_shape = shapes[node.output[0]]
        if node.op_type not in ELEMENTWISE and node.op_type != "Concat":
            return None
        for name in read:
            shape = shapes.get(name)
            if (shape is None or len(shape) != len(out_shape) or shape[0] != out_shape[0]
                    or shape[axis] not in (1, out_shape[axis])):
                return None
            known = self.unchanged_windows.get(name)
            if known is not None and known.axis != axis:
                return None
        rule = rule_for(node, axis, shapes, self.constants, self.dependent | set(read), self.opset)
        if rule is not None:
            for name in read:
                self.unchanged_windows.setdefault(name, Window(name, axis, shapes[name][axis], 0,
                                                               np.zeros(0, np.int64)))
        return rule


def _global_after(graph, index):
    """The first node global by nature computed from node ``index``'s outputs, which move the batch off the first
    axis ("GRU node 'name'"), or "": a recurrent layer reading them as its sequence (exporters move the time axis
    first before one), a loop over them (tf2onnx writes a Keras 3 GRU as a Loop whose body reads them), or a
    MatMul or Einsum of two operands both computed from them (attention's query-key product, after torch's
    nn.MultiheadAttention moves the length first). Everything between them is computed in full for want of a
    batch-first layout, not of a rule, and would gain nothing windowed: what follows mixes every position."""
    reached = set(graph.node[index].output)
    for node in graph.node[index + 1:]:
        read = [name for name in reads(node) if name in reached]
        if not read:
            continue
        products = node.op_type in ("MatMul", "Einsum") and sum(name in reached for name in node.input) >= 2
        recurrent = node.op_type in RECURRENT_OPS and node.input[0] in reached
        if recurrent or products or node.op_type in ("Loop", "Scan"):
            return f"{node.op_type} node {node.name!r}"
        reached.update(node.output)
    return ""


def _aligned(source, target, factor):
    """Whether ``target``'s window is ``source``'s scaled by ``factor`` for every position (a merging Reshape's
    window is then its input's window reshaped)."""
    return target.width == source.width * factor and np.array_equal(target.start, source.start * factor)
