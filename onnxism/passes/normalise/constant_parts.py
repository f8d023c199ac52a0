"""Constants broadcast along the batch (an Expand or Tile of a constant, a ConstantOfShape) joined to the sequence's
tensors, read as the one row they are:

  Concat(C1, x, C2, axis a > 0)   ->  Add(Pad(x, -0.0 around it along a), [C1 row | -0.0 | C2 row])
  Add(x, Expand(C, shape)), any element-wise op  ->  Add(x, C's row), where x gives the output its batch

so that a constant varying along the length is an operand of a point-wise op, where a tensor computed from the
batch's shape was computed in full.
"""

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ...graph.nodes import attributes
from ...graph.ops import ELEMENTWISE
from .index import ints


def concat_of_constants(node, index):
    """A Concat along any axis but the batch of one tensor X and parts that are constants broadcast along the
    batch (an Expand or Tile of a constant whose rows are all that constant: torch's
    ``cat([left.expand(n, -1, -1), x, right.expand(n, -1, -1)], 2)``, an MPRA model's fixed flanks) as
    Pad(X) + K, K the parts' constant row with -0.0 where X goes and X padded with -0.0 (v + -0.0 is v, bit for bit):
    a Pad along the length is a shift, and an Add of a constant that varies along it is point-wise, where the
    Concat of a tensor computed from the batch's shape was computed in full."""
    shapes = index.shapes
    if node.op_type != "Concat" or len(node.input) < 2 or node.output[0] in index.outputs:
        return None
    out_shape = shapes.get(node.output[0])
    moving = [k for k, name in enumerate(node.input) if not index.from_shapes(name)]
    if out_shape is None or len(out_shape) < 2 or len(moving) != 1:
        return None
    rank = len(out_shape)
    axis = attributes(node).get("axis", 0) % rank
    source = node.input[moving[0]]
    source_shape = shapes.get(source)
    if axis == 0 or source_shape is None or len(source_shape) != rank:
        return None
    rows = []
    for k, name in enumerate(node.input):
        row = None if k == moving[0] else _broadcast_row(name, index, shapes)
        if k != moving[0] and row is None:
            return None
        rows.append(row)
    dtype = next(row.dtype for row in rows if row is not None)
    if not np.issubdtype(dtype, np.floating):
        return None
    rows[moving[0]] = np.full((1,) + tuple(source_shape[1:]), -0.0, dtype)
    constant = np.concatenate(rows, axis)
    before = sum(row.shape[axis] for row in rows[:moving[0]])
    after = constant.shape[axis] - before - source_shape[axis]
    pads = [0] * (2 * rank)
    pads[axis], pads[axis + rank] = before, after
    out = node.output[0]
    names = [f"{out}__{label}" for label in ("pads", "pad_value", "padded", "constant")]
    nodes = [helper.make_node("Pad", [source, names[0], names[1]], [names[2]], name=names[2], mode="constant"),
             helper.make_node("Add", [names[2], names[3]], [out], name=f"{out}__joined")]
    return nodes, [ints(names[0], pads), numpy_helper.from_array(np.array(-0.0, dtype), names[1]),
                   numpy_helper.from_array(constant, names[3])]


def broadcast_operand(node, index):
    """An element-wise op reading a constant broadcast along the batch (an Expand or Tile of a constant whose rows
    are all that constant, as for a Concat above) reads the constant's one row instead, where another operand gives
    the output its batch: the op broadcasts the row itself, with the same values, and a constant that varies along
    the length is point-wise where a tensor computed from the batch's shape was computed in full."""
    shapes = index.shapes
    out_shape = shapes.get(node.output[0])
    if node.op_type not in ELEMENTWISE or out_shape is None or not out_shape:
        return None
    for position, name in enumerate(node.input):
        producer = index.producers.get(name)
        if producer is None or producer.op_type not in ("Expand", "Tile", "ConstantOfShape"):
            continue
        row = _broadcast_row(name, index, shapes)
        batch_elsewhere = any(shapes.get(other) is not None and len(shapes[other]) == len(out_shape)
                              and shapes[other][0] == out_shape[0] for k, other in enumerate(node.input)
                              if k != position and other)
        if row is None or not batch_elsewhere:
            continue
        new = onnx.NodeProto()
        new.CopyFrom(node)
        new.input[position] = f"{node.output[0]}__row{position}"
        return [new], [numpy_helper.from_array(row, new.input[position])]
    return None


def _broadcast_row(name, index, shapes):
    """The one row (1, ...) of ``name``, whose rows are all that row: a constant of one row, an Expand of a
    constant (broadcast along any axis: ``torch.zeros(n, 4, k)`` is an Expand of a scalar), a Tile of a constant
    along the batch alone (its other axes as probed are the constant's own), or a ConstantOfShape (the legacy
    exporter's ``torch.zeros``); else None."""
    shape = shapes.get(name)
    node = index.producers.get(name)
    if shape is None or not shape:
        return None
    row = (1,) + tuple(shape[1:])
    if node is not None and node.op_type == "ConstantOfShape":
        tensor = next((attr.t for attr in node.attribute if attr.name == "value"), None)
        value = numpy_helper.to_array(tensor) if tensor is not None else np.zeros(1, np.float32)
        return np.full(row, value.reshape(-1)[0], value.dtype) if np.issubdtype(value.dtype, np.floating) else None
    if node is not None and node.op_type in ("Expand", "Tile"):
        value = _float_constant(node.input[0], index)
        if value is None or value.ndim > len(shape) or (node.op_type == "Tile" and value.ndim != len(shape)):
            return None
        value = value.reshape((1,) * (len(shape) - value.ndim) + value.shape)
        if node.op_type == "Expand" and value.shape[0] == 1:
            try:  # the constant's own sizes where they are not 1, the probed ones elsewhere (Expand's broadcast)
                value = np.broadcast_to(value, row).copy()
            except ValueError:
                return None
    else:
        value = _float_constant(name, index)
    if value is None or value.shape != row:
        return None
    return value


def _float_constant(name, index):
    """The value of an initializer or Constant node ``name`` of a floating-point type, else None."""
    if name in index.tensors:
        value = numpy_helper.to_array(index.tensors[name])
    else:
        node = index.producer(name, "Constant")
        tensor = next((attr.t for attr in node.attribute if attr.name == "value"), None) if node else None
        value = numpy_helper.to_array(tensor) if tensor is not None else None
    return value if value is not None and np.issubdtype(value.dtype, np.floating) else None
