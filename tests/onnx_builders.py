"""Tiny ONNX graphs built with onnx.helper, for loader and engine tests that need no framework."""

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def conv_model(*, layout="NLC", length=20, batch="N", channels=3, ir_version=10, opset=18, extra_input=False,
               seed=0):
    """x -> [Transpose] -> Conv(k=5, same) -> Relu -> ReduceMean over length -> y (N, channels)."""
    rng = np.random.default_rng(seed)
    weight = numpy_helper.from_array(rng.standard_normal((channels, 4, 5)).astype(np.float32), "w")
    bias = numpy_helper.from_array(rng.standard_normal(channels).astype(np.float32), "b")
    shape = [batch, length, 4] if layout == "NLC" else [batch, 4, length]
    nodes = []
    source = "x"
    if layout == "NLC":
        nodes.append(helper.make_node("Transpose", ["x"], ["xt"], perm=[0, 2, 1]))
        source = "xt"
    nodes += [
        helper.make_node("Conv", [source, "w", "b"], ["c"], pads=[2, 2]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("ReduceMean", ["r", "axes"], ["y"], keepdims=0),
    ]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)]
    if extra_input:
        inputs.append(helper.make_tensor_value_info("extra", TensorProto.FLOAT, [batch, 2]))
    axes = numpy_helper.from_array(np.array([2], dtype=np.int64), "axes")
    graph = helper.make_graph(
        nodes, "conv", inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, channels])],
        [weight, bias, axes],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = ir_version
    return model
