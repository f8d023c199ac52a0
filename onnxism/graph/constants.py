"""The values a graph knows without running: initializers and Constant nodes."""

import numpy as np
import onnx
from onnx import helper, numpy_helper


def constant_value(node):
    """The value of a Constant node as an array (any of its attribute forms but strings and sparse tensors), else
    None."""
    for attribute in node.attribute:
        if attribute.name == "value":
            return numpy_helper.to_array(attribute.t)
        if attribute.name in ("value_float", "value_int"):
            return np.asarray(helper.get_attribute_value(attribute))
        if attribute.name in ("value_floats", "value_ints"):
            return np.asarray(list(helper.get_attribute_value(attribute)))
    return None


def graph_constants(graph, integers_only=False):
    """Initializers and Constant-node values, by name; with ``integers_only``, the integer ones alone (index
    tensors, without converting the weights)."""
    values = {init.name: numpy_helper.to_array(init) for init in graph.initializer
              if not integers_only or init.data_type in (onnx.TensorProto.INT64, onnx.TensorProto.INT32)}
    for node in graph.node:
        if node.op_type == "Constant":
            value = constant_value(node)
            if value is not None:
                values[node.output[0]] = value
    if integers_only:
        return {name: value for name, value in values.items() if np.issubdtype(np.asarray(value).dtype, np.integer)}
    return values


def initializer_or_constant(source):
    """The value of an initializer, or of a Constant node, else None."""
    if isinstance(source, onnx.TensorProto):
        return numpy_helper.to_array(source)
    return constant_value(source)
