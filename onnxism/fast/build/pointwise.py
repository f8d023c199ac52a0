"""Point-wise ops on the window of their output, in the rows layout where the op has a form there (``FORMS``: the
op with its axes and constant operands moved to the rows layout), else in the model's layout between two
Transposes.

Invariant: the window equals the model's op at those columns, for every row.
"""

from dataclasses import dataclass

import numpy as np
from onnx import helper

from ...graph.nodes import attributes, rewired
from ...graph.ops import ELEMENTWISE, REDUCTIONS, UNARY_POINTWISE
from ..layout import rows_constant, rows_shape


def pointwise(s, node):
    """A node whose output position j depends on its inputs at j only, on the window of its output."""
    windows = s.analysis.windows
    out = node.output[0]
    target = windows[out]
    translated = rows_form(s, node, target)
    if (translated is not None and len(translated) == 1 and translated[0].op_type in ("Reshape", "Identity")
            and translated[0].input[0] == s.win(node.input[0])):
        s.aliases[out] = s.root(node.input[0])
    if translated is None:  # run the op in the model's layout
        inputs = [s.to_model(s.window_of(name, target), name)
                  if name in windows or name in s.analysis.unchanged else name
                  for name in node.input]
        translated = [rewired(node, inputs, s.fresh("pointwise"))]
        s.nodes.extend(translated)
        s.to_rows(translated[0].output[0], out, s.win(out))
        return
    s.nodes.extend(translated)


@dataclass(frozen=True)
class _Node:
    """What a rows-layout form reads of the node it translates."""

    node: object
    target: object  # the output's Window
    rank: int
    perm: list  # the output's rows-layout order of the model's axes
    result: str  # the ISM graph's name of the output's window
    attrs: dict

    @property
    def source(self):
        return self.node.input[0]


def rows_form(s, node, target):
    """Nodes computing ``node`` directly in the rows layout, or None where there is no such form."""
    shapes, op, out = s.shapes, node.op_type, node.output[0]
    rank = len(shapes[out])
    windowed = [name for name in node.input if name in s.analysis.windows]
    same_rank = all(len(shapes[name]) == rank for name in windowed)
    if not same_rank and op not in ("Transpose", "Squeeze", "Unsqueeze", "Reshape", "MatMul") + tuple(REDUCTIONS):
        return None
    form = FORMS.get(op)
    if form is None:
        return None
    return form(s, _Node(node, target, rank, s.perm(out), s.win(out), attributes(node)))


def _unary(s, n):
    return [rewired(n.node, [s.window_of(n.source, n.target)] + list(n.node.input[1:]), n.result)]


def _elementwise(s, n):
    """Windowed and unchanged operands on the window; constants moved to the rows layout (one that varies along the
    length, rules.py, by column on each row's window)."""
    inputs = []
    for name in n.node.input:
        if not name:
            inputs.append(name)
        elif name in s.analysis.windows or name in s.analysis.unchanged:
            inputs.append(s.window_of(name, n.target))
        elif name in s.constants and np.ndim(s.constants[name]) <= n.rank:
            moved = rows_constant(s.constants[name], n.rank, n.perm)
            if moved.shape[1] == 1:
                inputs.append(s.const(moved, "operand"))
            else:  # varies along the length (rules.py): its values on each row's window
                inputs.append(s.by_column(n.node.output[0], moved[0]))
        else:
            return None
    return [rewired(n.node, inputs, n.result)]


def _batch_norm(s, n):
    """As a Mul and an Add by the per-channel scale and shift, computed in float64."""
    params = [s.constants.get(name) for name in n.node.input[1:5]]
    if any(value is None for value in params):
        return None
    gamma, beta, mean, var = (np.asarray(v, np.float64) for v in params)
    scale = gamma / np.sqrt(var + n.attrs.get("epsilon", 1e-5))
    shift = beta - mean * scale
    shape = [1] * n.rank
    shape[1] = -1
    scale_name = s.const(rows_constant(scale.reshape(shape).astype(np.float32), n.rank, n.perm), "scale")
    shift_name = s.const(rows_constant(shift.reshape(shape).astype(np.float32), n.rank, n.perm), "shift")
    scaled = s.fresh("scaled")
    return [helper.make_node("Mul", [s.window_of(n.source, n.target), scale_name], [scaled], name=scaled),
            helper.make_node("Add", [scaled, shift_name], [n.result], name=n.result)]


def _transpose(s, n):
    """An Identity where both layouts hold the same rows layout (NCL <-> NLC), a Reshape where only axes of size 1
    move, else the Transpose of the rows-layout axes."""
    model_perm = n.attrs.get("perm") or list(reversed(range(n.rank)))
    in_perm = s.perm(n.source)
    order = [in_perm.index(model_perm[axis]) for axis in n.perm]
    if order == sorted(order):  # e.g. NCL <-> NLC: both are (rows, window, channels) here
        return [helper.make_node("Identity", [s.window_of(n.source, n.target)], [n.result], name=n.result)]
    moved = [axis for axis in order if s.shapes[n.source][in_perm[axis]] != 1]
    if moved == sorted(moved):  # only axes of size 1 move: a Reshape
        return _as_reshape(s, n)
    return [helper.make_node("Transpose", [s.window_of(n.source, n.target)], [n.result], perm=order, name=n.result)]


def _as_reshape(s, n):
    """The source's window reshaped to the output's rows-layout shape."""
    shape_name = s.const(np.array(rows_shape(s.shapes[n.node.output[0]], n.target.axis, n.target.width), np.int64),
                         "shape")
    return [helper.make_node("Reshape", [s.window_of(n.source, n.target), shape_name], [n.result], name=n.result)]


def _reshape(s, n):
    """A Squeeze, Unsqueeze or Reshape of unit axes (rules.py): a Reshape in the rows layout."""
    if n.node.op_type != "Reshape" and not keeps_batch(s, n.node, n.source, n.node.output[0]):
        return None
    return _as_reshape(s, n)


def _tile(s, n):
    """Repeats 1 along the batch and the length (rules.py), the others moved to the rows layout."""
    if n.node.input[1] not in s.constants:
        return None
    repeats = s.const(np.asarray(s.constants[n.node.input[1]], np.int64).reshape(-1)[n.perm], "repeats")
    return [helper.make_node("Tile", [s.window_of(n.source, n.target), repeats], [n.result], name=n.result)]


def _expand(s, n):
    """1 along the batch and the length: kept as they are (the other axes, where the shape is computed from the
    batch, as probed: rules.py)."""
    out = n.node.output[0]
    shape = np.asarray(s.constants.get(n.node.input[1], s.shapes[out]), np.int64).reshape(-1)
    shape = np.concatenate([np.ones(n.rank - len(shape), np.int64), shape])
    shape[0] = shape[s.analysis.windows[out].axis] = 1
    shape = s.const(shape[n.perm], "expand_shape")
    return [helper.make_node("Expand", [s.window_of(n.source, n.target), shape], [n.result], name=n.result)]


def _softmax(s, n):
    if s.opset < 13:
        return None
    axis = n.perm.index(n.attrs.get("axis", -1) % n.rank)
    return [rewired(n.node, [s.window_of(n.source, n.target)], n.result, {"axis": axis})]


def _lp_normalization(s, n):
    """Over one axis, neither the batch nor the length (rules.py)."""
    return [rewired(n.node, [s.window_of(n.source, n.target)], n.result,
                    {"axis": n.perm.index(n.attrs.get("axis", -1) % n.rank)})]


def _layer_normalization(s, n):
    """The normalised axes lie after the length: the same index in the rows layout."""
    return [rewired(n.node, [s.window_of(n.source, n.target)] + list(n.node.input[1:]), n.result)]


def _matmul(s, n):
    """Contracts the last axis, last in both layouts."""
    if n.node.input[1] in s.analysis.windows:
        return None
    return [rewired(n.node, [s.window_of(n.source, n.target), n.node.input[1]], n.result)]


def _concat(s, n):
    return [rewired(n.node, [s.window_of(name, n.target) for name in n.node.input], n.result,
                    {"axis": n.perm.index(n.attrs["axis"] % n.rank)})]


#: op type -> its rows-layout form (s, _Node) -> nodes, or None where it has none for this node
FORMS = {
    **{op: _unary for op in UNARY_POINTWISE},
    **{op: _elementwise for op in ELEMENTWISE},
    "BatchNormalization": _batch_norm,
    "Transpose": _transpose,
    "Squeeze": _reshape,
    "Unsqueeze": _reshape,
    "Reshape": _reshape,
    "Tile": _tile,
    "Expand": _expand,
    "Softmax": _softmax,
    "LogSoftmax": _softmax,
    "Hardmax": _softmax,
    "LpNormalization": _lp_normalization,
    "LayerNormalization": _layer_normalization,
    "MatMul": _matmul,
    "Concat": _concat,
}


def keeps_batch(s, node, source, out):
    """Squeeze/Unsqueeze that leaves the batch axis first and moves no other axis past another."""
    axes = attributes(node).get("axes")
    if axes is None and len(node.input) > 1:
        axes = s.constants.get(node.input[1])
    if axes is None:
        return False
    rank = len(s.shapes[out]) if node.op_type == "Unsqueeze" else len(s.shapes[source])
    return 0 not in [int(a) % rank for a in np.asarray(axes).reshape(-1)]
