"""Fold a convolution's epilogue into the convolution, so that onnxruntime runs them in one kernel.

The ISM graph runs a Conv along the length as onnxruntime's own Conv (``convs.conv_native``), then moves its
output to the rows layout (a Transpose and Reshapes), where the model's per-channel bias Add (tf2onnx writes Conv
then Add) and its activation follow as separate passes over the window. This pass rewrites

    Conv -> Transpose -> Reshape* -> Add(per-channel constant) -> activation

as ``Conv(bias) -> activation -> Transpose -> Reshape*``: the constant joins the Conv's bias and the activation
moves next to the Conv, where onnxruntime fuses it into its (blocked) convolution kernel. Both steps are optional
and each is exact (the bias is added to every output column either way; an element-wise op commutes with moving
elements). A chain is rewritten only when each of its tensors has one consumer and is no graph output.

Invariant: the rewritten nodes compute the same tensor under the chain's last name.
"""

import numpy as np
from onnx import helper, numpy_helper

#: Activations onnxruntime fuses into the Conv before it (its ConvActivationFusion).
FUSABLE_ACTIVATIONS = {"Relu", "LeakyRelu", "Sigmoid", "Tanh", "HardSigmoid", "Clip"}


def fold_epilogues(nodes, convs, outputs):
    """``nodes`` with the epilogue of each Conv in ``convs`` (their output names, channels last after the
    Transpose to the rows layout) folded in; ``outputs`` are names that must keep their producers."""
    graph = _Nodes(nodes, outputs)
    removed, replaced, added = set(), {}, {}
    for conv_output in convs:
        found = _epilogue(graph, conv_output)
        if found is None:
            continue
        conv, transpose, chain, bias, end, activation = found
        new_conv = helper.make_node("Conv", list(conv.input[:2]), list(conv.output), name=conv.name)
        new_conv.attribute.extend(conv.attribute)
        if bias is not None:
            if len(conv.input) > 2 and conv.input[2]:
                bias = bias + graph.constant(conv.input[2])
            bias_name = f"{conv_output}__folded_bias"
            added[conv.name] = [helper.make_node("Constant", [], [bias_name], name=f"const_{bias_name}",
                                                 value=numpy_helper.from_array(bias.astype(np.float32)))]
            new_conv.input.append(bias_name)
        elif len(conv.input) > 2:
            new_conv.input.append(conv.input[2])
        replaced[id(conv)] = new_conv
        final = (activation or end).output[0]
        if activation is not None:
            activated = f"{conv_output}__activated"
            moved = helper.make_node(activation.op_type, [conv_output] + list(activation.input[1:]), [activated],
                                     name=f"{activation.name}__fused")
            moved.attribute.extend(activation.attribute)
            added.setdefault(conv.name, []).append(moved)
            first = helper.make_node("Transpose", [activated], list(transpose.output), name=transpose.name)
            first.attribute.extend(transpose.attribute)
            replaced[id(transpose)] = first
            removed.add(id(activation))
        last = chain[-1]
        renamed = helper.make_node(last.op_type, list(replaced.get(id(last), last).input), [final], name=last.name)
        renamed.attribute.extend(last.attribute)
        replaced[id(last)] = renamed
        if end is not None:
            removed.add(id(end))
    result = []
    for node in nodes:
        if id(node) in removed:
            continue
        result.append(replaced.get(id(node), node))
        result.extend(added.get(node.name, []) if node.op_type == "Conv" else [])
    return result


class _Nodes:
    """The nodes' producers and consumers, and their Constant values."""

    def __init__(self, nodes, outputs):
        self.producer = {name: node for node in nodes for name in node.output}
        self.uses = {}
        for node in nodes:
            for name in node.input:
                self.uses.setdefault(name, []).append(node)
        self.outputs = outputs

    def only_consumer(self, name):
        found = self.uses.get(name, [])
        return found[0] if len(found) == 1 and name not in self.outputs else None

    def constant(self, name):
        node = self.producer.get(name)
        if node is None or node.op_type != "Constant" or node.attribute[0].name != "value":
            return None
        return numpy_helper.to_array(node.attribute[0].t)


def _epilogue(graph, conv_output):
    """(conv, its Transpose, the chain Transpose -> Reshape*, the bias or None, the bias Add or None, the activation
    or None) of the Conv writing ``conv_output``, or None where it has neither a bias nor an activation to fold."""
    conv = graph.producer[conv_output]
    c_out = int(graph.constant(conv.input[1]).shape[0])
    transpose = graph.only_consumer(conv_output)
    if transpose is None or transpose.op_type != "Transpose" or list(transpose.attribute[0].ints) != [0, 2, 3, 1]:
        return None
    chain, shape = [transpose], np.array([-1, 1, 1, c_out])  # the chain's last node and its output shape
    following = graph.only_consumer(transpose.output[0])
    while following is not None and following.op_type == "Reshape":
        target = graph.constant(following.input[1])
        axis = None if target is None else _channel_axis(target)
        if axis is None or target[axis] != c_out:
            break
        chain.append(following)
        shape = target
        following = graph.only_consumer(following.output[0])
    bias = _channel_bias(following, chain[-1].output[0], graph.constant, c_out, shape)
    end = None
    if bias is not None:
        end, following = following, graph.only_consumer(following.output[0])
    current = (end or chain[-1]).output[0]
    activation = (following if following is not None and following.op_type in FUSABLE_ACTIVATIONS
                  and following.input[0] == current else None)
    if activation is not None and activation.op_type == "Clip" and any(
            name and graph.constant(name) is None for name in activation.input[1:]):
        activation = None
    if bias is None and activation is None:
        return None
    return conv, transpose, chain, bias, end, activation


def _channel_axis(shape):
    """The last axis of a Reshape target ``shape`` that is not 1 (trailing unit axes do not move elements)."""
    axes = [axis for axis, size in enumerate(shape) if size != 1]
    return axes[-1] if axes else None


def _channel_bias(node, value, constant, channels, shape):
    """The (channels,) constant ``node`` adds to ``value`` (of Reshape target ``shape``, channels on its last
    non-unit axis) along the channels, or None."""
    if node is None or node.op_type != "Add" or value not in node.input:
        return None
    other = node.input[1] if node.input[0] == value else node.input[0]
    array = constant(other)
    if array is None or array.size != channels or array.dtype != np.float32 or not 0 < array.ndim <= len(shape):
        return None
    axis = _channel_axis(shape) - len(shape)  # counted from the end, as broadcasting aligns
    if -axis > array.ndim or array.shape[axis] != channels:
        return None
    return np.asarray(array, np.float64).reshape(channels)
