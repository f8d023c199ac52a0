"""Tiny ONNX graphs built with onnx.helper, for loader and engine tests that need no framework."""

import numpy as np
from onnx import TensorProto, helper, numpy_helper


def conv_model(*, layout="NLC", length=20, batch="N", channels=3, ir_version=10, opset=18, extra_input=False,
               seed=0, baked_batch=False):
    """x -> [Transpose] -> Conv(k=5, same) -> Relu -> ReduceMean over length -> y (N, channels). ``baked_batch``
    (with a fixed ``batch``): y also adds zeros of shape (batch, channels), a constant of the export's batch size
    that ties the graph to it (loading cannot free such a batch)."""
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
        helper.make_node("ReduceMean", ["r", "axes"], ["m" if baked_batch else "y"], keepdims=0),
    ]
    initializers = [weight, bias, numpy_helper.from_array(np.array([2], dtype=np.int64), "axes")]
    if baked_batch:
        nodes.append(helper.make_node("Add", ["m", "zeros"], ["y"]))
        initializers.append(numpy_helper.from_array(np.zeros((batch, channels), np.float32), "zeros"))
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)]
    if extra_input:
        inputs.append(helper.make_tensor_value_info("extra", TensorProto.FLOAT, [batch, 2]))
    graph = helper.make_graph(
        nodes, "conv", inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, channels])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = ir_version
    return model


def linear_heads_model(*, length=30, channels=3, seed=0):
    """Linear global layers after a conv, in the forms the exporters do not produce:
    x (N, L, 4) -> Conv(k=5, valid) -> Relu -> r (N, C, L-4), then
      y1 = Gemm(Flatten(Transpose(r)), W1, b1, alpha=0.5, beta=2, transB=1)  (a dense head, length-major rows)
      y2 = MatMul(Flatten(MaxPool(r, 2)), W2)                              (a second dense head, other windows)
      y3 = ReduceSum(r, axes=[2]), keepdims=1                              (a sum head)."""
    rng = np.random.default_rng(seed)
    inner = length - 4
    pooled = inner // 2

    def const(name, shape):
        return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)

    nodes = [
        helper.make_node("Transpose", ["x"], ["xt"], perm=[0, 2, 1]),
        helper.make_node("Conv", ["xt", "w", "b"], ["c"]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("Transpose", ["r"], ["rt"], perm=[0, 2, 1]),
        helper.make_node("Flatten", ["rt"], ["f1"], axis=1),
        helper.make_node("Gemm", ["f1", "w1", "b1"], ["y1"], alpha=0.5, beta=2.0, transB=1),
        helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2], strides=[2]),
        helper.make_node("Reshape", ["p", "flat"], ["f2"]),
        helper.make_node("MatMul", ["f2", "w2"], ["y2"]),
        helper.make_node("ReduceSum", ["r", "axes"], ["y3"], keepdims=1),
    ]
    initializers = [const("w", (channels, 4, 5)), const("b", (channels,)), const("w1", (2, inner * channels)),
                    const("b1", (2,)), const("w2", (pooled * channels, 3)),
                    numpy_helper.from_array(np.array([0, -1], np.int64), "flat"),
                    numpy_helper.from_array(np.array([2], np.int64), "axes")]
    outputs = [helper.make_tensor_value_info("y1", TensorProto.FLOAT, ["N", 2]),
               helper.make_tensor_value_info("y2", TensorProto.FLOAT, ["N", 3]),
               helper.make_tensor_value_info("y3", TensorProto.FLOAT, ["N", channels, 1])]
    graph = helper.make_graph(nodes, "linear_heads", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                                    ["N", length, 4])],
                              outputs, initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 10
    return model


def wrapped_residual_model(*, length=40, channels=16, seed=0):
    """tf2onnx's form of a BPNet-like trunk (channels-last input, each Conv1D wrapped as a 2-D Conv):
    x (N, L, 4) -> Unsqueeze -> Transpose -> Conv2D(1 x 3, 4 -> C, with a bias) -> Transpose -> Squeeze -> Add(bias)
    -> Relu = h1 (N, L, C); then twice h += Relu(Add(Squeeze(Conv2D(1 x 3, dilation 2 and 4, no bias)), bias)),
    the residual read from the tensor the Conv reads; y = ReduceMean over the length (N, C)."""
    rng = np.random.default_rng(seed)
    initializers = [numpy_helper.from_array(np.array([1], np.int64), "axis_1"),
                    numpy_helper.from_array(np.array([1], np.int64), "axes_len")]
    nodes = []

    def conv(source, c_in, dilation, label):
        weight = 0.3 * rng.standard_normal((channels, c_in, 1, 3))
        bias = rng.standard_normal(channels)
        initializers.extend([numpy_helper.from_array(weight.astype(np.float32), f"w_{label}"),
                             numpy_helper.from_array(bias.astype(np.float32), f"b_{label}"),
                             numpy_helper.from_array(rng.standard_normal(channels).astype(np.float32), f"c_{label}")])
        nodes.extend([
            helper.make_node("Unsqueeze", [source, "axis_1"], [f"{label}_4d"]),  # (N, 1, L, C)
            helper.make_node("Transpose", [f"{label}_4d"], [f"{label}_nchw"], perm=[0, 3, 1, 2]),
            helper.make_node("Conv", [f"{label}_nchw", f"w_{label}"] + ([f"c_{label}"] if c_in == 4 else []),
                             [f"{label}_conv"], dilations=[1, dilation], pads=[0, dilation, 0, dilation]),
            helper.make_node("Transpose", [f"{label}_conv"], [f"{label}_nhwc"], perm=[0, 2, 3, 1]),
            helper.make_node("Squeeze", [f"{label}_nhwc", "axis_1"], [f"{label}_pre"]),
            helper.make_node("Add", [f"{label}_pre", f"b_{label}"], [f"{label}_biased"]),
            helper.make_node("Relu", [f"{label}_biased"], [f"{label}_relu"]),
        ])
        return f"{label}_relu"

    h = conv("x", 4, 1, "first")
    for k, dilation in enumerate((2, 4)):
        branch = conv(h, channels, dilation, f"dilated{k}")
        nodes.append(helper.make_node("Add", [h, branch], [f"sum{k}"]))
        h = f"sum{k}"
    nodes.append(helper.make_node("ReduceMean", [h, "axes_len"], ["y"], keepdims=0))
    graph = helper.make_graph(nodes, "wrapped_residual",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", length, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", channels])], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 10
    return model


def resize_model(*, length=40, seed=0):
    """Resize along the length in the forms exporters write, in the model's NCL layout:
    x (N, 4, L) -> Conv(k=5, same) -> Relu -> Resize linear x2 (half_pixel, as torch's TorchScript exporter)
    -> Conv(k=3, same) -> Resize linear to 3L (align_corners) -> Resize linear, antialiased, down to L
    (pytorch_half_pixel) -> Resize nearest x1.5 (round_prefer_ceil) -> MaxPool(4) -> Flatten -> y."""
    rng = np.random.default_rng(seed)
    inits = [
        numpy_helper.from_array(rng.standard_normal((6, 4, 5)).astype(np.float32), "w1"),
        numpy_helper.from_array(rng.standard_normal(6).astype(np.float32), "b1"),
        numpy_helper.from_array(rng.standard_normal((5, 6, 3)).astype(np.float32) * 0.5, "w2"),
        numpy_helper.from_array(rng.standard_normal(5).astype(np.float32), "b2"),
        numpy_helper.from_array(np.array([1, 1, 2], np.float32), "by2"),
        numpy_helper.from_array(np.array([1, 1, 1.5], np.float32), "by1_5"),
        numpy_helper.from_array(np.array([3 * length], np.int64), "to_l_axis"),
        numpy_helper.from_array(np.array([length], np.int64), "to_l"),
        numpy_helper.from_array(np.array([2], np.int64), "length_axis"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[2, 2]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Resize", ["r1", "", "by2"], ["up"], mode="linear",
                         coordinate_transformation_mode="half_pixel"),
        helper.make_node("Conv", ["up", "w2", "b2"], ["c2"], pads=[1, 1]),
        helper.make_node("Resize", ["c2", "", "", "to_l_axis"], ["aligned"], mode="linear", axes=[2],
                         coordinate_transformation_mode="align_corners"),
        helper.make_node("Resize", ["aligned", "", "", "to_l"], ["down"], mode="linear", axes=[2], antialias=1,
                         coordinate_transformation_mode="pytorch_half_pixel"),
        helper.make_node("Resize", ["down", "", "by1_5"], ["near"], mode="nearest",
                         nearest_mode="round_prefer_ceil"),
        helper.make_node("MaxPool", ["near"], ["pooled"], kernel_shape=[4], strides=[4]),
        helper.make_node("Flatten", ["pooled"], ["y"]),
    ]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4, length])]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 5 * (3 * length // 8)])]
    graph = helper.make_graph(nodes, "resize", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    return model
