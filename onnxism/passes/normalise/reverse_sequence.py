"""tf2onnx writes Keras's ``ops.flip`` / ``tf.reverse`` along the length as Transpose -> ReverseSequence (every
sequence reversed whole) -> Transpose: a reversed Slice where the lengths, computed from shapes alone, are the whole
time axis at every probed batch size (``index.uniform``; lengths from the values could match the probe's zero
sequences by chance).
"""

import numpy as np
from onnx import helper

from ...graph.nodes import attributes
from ..base import PassResult, unchanged
from ..probe import probed
from .fixpoint import rewrite_to_fixpoint
from .index import ints


def full_reverse_sequence(node, index):
    """ReverseSequence(y, lengths), every length the whole time axis -> Slice(y, -1, INT64_MIN, time_axis, -1)."""
    shapes, uniform = index.shapes, index.uniform
    if node.op_type != "ReverseSequence" or node.input[1] not in uniform or not index.from_shapes(node.input[1]):
        return None  # lengths from the values could match the probe's zero sequences by chance
    attrs = attributes(node)
    time_axis = attrs.get("time_axis", 0)
    if shapes.get(node.input[0]) is None or uniform[node.input[1]] != shapes[node.input[0]][time_axis]:
        return None
    out = node.output[0]
    names = [f"{out}__{label}" for label in ("starts", "ends", "axes", "steps")]
    reverse = helper.make_node("Slice", [node.input[0]] + names, [out], name=f"{out}__reversed")
    values = ([-1], [np.iinfo(np.int64).min], [time_axis], [-1])
    return [reverse], [ints(name, value) for name, value in zip(names, values)]


def whole_reverse_sequences(proto, ctx):
    """Pass: ``full_reverse_sequence`` alone, the model probed first where it has a ReverseSequence (the gradient
    graph's selections need constant parameters, and tf2onnx computes the lengths from shapes)."""
    if not any(node.op_type == "ReverseSequence" for node in proto.graph.node):
        return unchanged(proto)
    facts = probed(proto, ctx)
    rewritten = rewrite_to_fixpoint(proto, (full_reverse_sequence,), facts["shapes"], facts["uniform"])
    if rewritten is proto:
        return unchanged(proto)
    return PassResult(rewritten, True, "ReverseSequence as a reversed Slice")
