"""What an ONNX node says: its attributes, and what an op computes where that depends on the opset; shared by
loading's rewrites, fast ISM's rules and the gradient rules."""

from onnx import helper


def attr(node, name, default=None):
    """A node attribute's Python value (text decoded), or ``default``."""
    for attribute in node.attribute:
        if attribute.name == name:
            value = helper.get_attribute_value(attribute)
            return value.decode() if isinstance(value, bytes) else value
    return default


def normalised_axes(node, rank, opset):
    """The axes a Softmax, LogSoftmax or Hardmax normalises over (of a rank-``rank`` input): its axis (default -1)
    from opset 13 on; before 13 the input is flattened to 2-D at its axis (default 1), so every axis from there on."""
    axis = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "axis"), None)
    if opset >= 13:
        return [(-1 if axis is None else axis) % rank]
    return list(range((1 if axis is None else axis) % rank, rank))
