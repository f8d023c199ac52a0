"""Split(x, axis a > 0) -> one Slice(x, [start, end), a) per output, at its probed size.
"""

from onnx import helper

from ...graph.nodes import attributes
from .index import ints


def split_as_slices(node, index):
    """A Split along any axis but the batch as one Slice per output (each output's size along the axis as
    probed; the sizes are constants or shape arithmetic, never values): along the channels each Slice is point-wise
    (a GLU, a gated activation's halves), along the length a crop."""
    shapes = index.shapes
    if node.op_type != "Split" or len(node.input) > 1 and node.input[1] and not index.from_shapes(node.input[1]):
        return None
    shape = shapes.get(node.input[0])
    sizes = [shapes.get(name) for name in node.output]
    if shape is None or any(size is None or len(size) != len(shape) for size in sizes):
        return None
    axis = attributes(node).get("axis", 0) % len(shape)
    if axis == 0 or sum(size[axis] for size in sizes) != shape[axis]:
        return None
    nodes, initializers, start = [], [], 0
    for out, size in zip(node.output, sizes):
        end = start + size[axis]
        if out:
            names = [f"{out}__{label}" for label in ("starts", "ends", "axes")]
            nodes.append(helper.make_node("Slice", [node.input[0]] + names, [out], name=f"{out}__split"))
            initializers += [ints(name, [value]) for name, value in zip(names, (start, end, axis))]
        start = end
    return nodes, initializers
