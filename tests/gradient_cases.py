"""One small ONNX graph per op (or op form) the gradient graph must cover, and a float64 converter.

Each case maps sequences x (N, L, 4) through the op under test to an output with the batch first. Weights are
seeded; the graphs are built with onnx.helper only, so no framework is involved.
"""

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

LENGTH = 12


class Case:
    """Accumulates nodes and initializers; ``model()`` closes the graph at ``output``."""

    def __init__(self, opset=17):
        self.opset = opset
        self.nodes = []
        self.inits = []
        self.rng = np.random.default_rng(7)
        self.count = 0

    def w(self, *shape, scale=0.5, positive=False):
        value = self.rng.standard_normal(shape) * scale
        if positive:
            value = np.abs(value) + 0.5
        return self.const(value.astype(np.float32))

    def const(self, array, dtype=None):
        self.count += 1
        name = f"c{self.count}"
        self.inits.append(numpy_helper.from_array(np.asarray(array, dtype=dtype), name))
        return name

    def ints(self, values):
        return self.const(np.asarray(values, dtype=np.int64))

    def op(self, op_type, inputs, outputs=1, **attrs):
        self.count += 1
        names = [f"t{self.count}_{k}" for k in range(outputs)]
        self.nodes.append(helper.make_node(op_type, inputs, names, **attrs))
        return names[0] if outputs == 1 else names

    def ncl(self):
        return self.op("Transpose", ["x"], perm=[0, 2, 1])

    def model(self, output):
        self.nodes.append(helper.make_node("Identity", [output], ["y"]))
        graph = helper.make_graph(
            self.nodes, "case", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", LENGTH, 4])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], self.inits,
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.opset)])
        model.ir_version = 10
        return model


def _conv(c, x, out=5, k=3, **attrs):
    return c.op("Conv", [x, c.w(out, 4 // attrs.get("group", 1), *([k] if isinstance(k, int) else k)), c.w(out)],
                **attrs)


def _unary(op_type, pre=None, opset=17, **attrs):
    def build():
        c = Case(opset)
        x = c.ncl()
        if pre == "positive":
            x = c.op("Add", [c.op("Softplus", [x]), c.const(np.float32(0.5))])
        elif pre == "scaled":
            x = c.op("Mul", [x, c.const(np.float32(4.0))])
        elif pre == "bounded":  # inside (-1, 1)
            x = c.op("Mul", [c.op("Tanh", [x]), c.const(np.float32(0.9))])
        elif pre == "above_one":
            x = c.op("Add", [c.op("Softplus", [x]), c.const(np.float32(1.5))])
        return c.model(c.op(op_type, [x], **attrs))
    return build


def _attention(c, x):
    """Self-attention along the length through Einsums: queries from the sequence, scores, a weighted sum."""
    q = c.op("Einsum", [x, c.w(4, 3)], equation="ncl,cd->nld")
    scores = c.op("Softmax", [c.op("Einsum", [q, q], equation="nld,nmd->nlm")], axis=-1)
    return c.op("Einsum", [scores, q], equation="nlm,nmd->nld")


HIDDEN = 3


def recurrent_case(op="GRU", direction="bidirectional", reset_after=1, bias=True, initial=False,
                   outputs=("Y", "Y_h"), lengths=None, **extra):
    """x (N, L, 4) -> time first -> an RNN, GRU or LSTM (attributes ``extra``) -> its ``outputs``, batch first,
    flattened and concatenated. ``initial``: initial states given (a row per direction expanded to the batch);
    ``lengths``: sequence_lens, this value for every row."""
    c = Case(18)
    gates, count = {"RNN": 1, "GRU": 3, "LSTM": 4}[op] * HIDDEN, 2 if direction == "bidirectional" else 1
    x = c.op("Transpose", ["x"], perm=[1, 0, 2])
    rows = c.op("Slice", [c.op("Shape", ["x"]), c.ints([0]), c.ints([1])])
    inputs = [x, c.w(count, gates, 4), c.w(count, gates, HIDDEN), c.w(count, 2 * gates) if bias else "",
              "" if lengths is None else c.op("Expand", [c.const(np.int32([lengths])), rows])]
    if initial:
        shape = c.op("Concat", [c.ints([count]), rows, c.ints([HIDDEN])], axis=0)
        inputs += [c.op("Expand", [c.w(count, 1, HIDDEN), shape]) for _ in range(2 if op == "LSTM" else 1)]
    attrs = {"hidden_size": HIDDEN, "direction": direction, **extra}
    if op == "GRU":
        attrs["linear_before_reset"] = reset_after
    names = c.op(op, inputs, outputs=3 if op == "LSTM" else 2, **attrs)
    kept = [c.op("Flatten", [c.op("Transpose", [out], perm=[2, 0, 1, 3] if name == "Y" else [1, 0, 2])], axis=1)
            for name, out in zip(("Y", "Y_h", "Y_c"), names) if name in outputs]
    return c.model(kept[0] if len(kept) == 1 else c.op("Concat", kept, axis=1))


def _build(fn, opset=17):
    def build():
        c = Case(opset)
        return c.model(fn(c, c.ncl()))
    return build


CASES = {
    # convolutions and pooling
    "conv_same": _build(lambda c, x: _conv(c, x, pads=[1, 1])),
    "conv_strided_dilated_asym": _build(lambda c, x: _conv(c, x, k=3, strides=[2], dilations=[2], pads=[2, 1])),
    "conv_group": _build(lambda c, x: _conv(c, x, out=4, group=2, pads=[1, 1])),
    "conv_same_upper_even": _build(lambda c, x: _conv(c, x, k=4, auto_pad="SAME_UPPER")),
    "conv_valid": _build(lambda c, x: _conv(c, x, k=5, auto_pad="VALID")),
    "conv_2d_tf2onnx_form": _build(lambda c, x: c.op("Squeeze", [_conv(
        c, c.op("Unsqueeze", [x, c.ints([2])]), k=(1, 3), pads=[0, 1, 0, 1], dilations=[1, 2]), c.ints([2])])),
    "conv_transpose": _build(lambda c, x: c.op("ConvTranspose", [x, c.w(4, 3, 3)], strides=[2], pads=[1, 0],
                                               output_padding=[1])),
    "conv_transpose_group": _build(lambda c, x: c.op("ConvTranspose", [x, c.w(4, 2, 4), c.w(4)], group=2,
                                                     pads=[1, 2])),
    "max_pool": _build(lambda c, x: c.op("MaxPool", [x], kernel_shape=[2], strides=[2])),
    "max_pool_overlapping_padded": _build(lambda c, x: c.op("MaxPool", [x], kernel_shape=[3], strides=[1],
                                                            pads=[1, 1])),
    "max_pool_ceil_dilated": _build(lambda c, x: c.op("MaxPool", [x], kernel_shape=[3], strides=[2],
                                                      dilations=[2], ceil_mode=1)),
    "max_pool_2d": _build(lambda c, x: c.op("MaxPool", [c.op("Unsqueeze", [x, c.ints([2])])], kernel_shape=[1, 3],
                                            strides=[1, 3])),
    "average_pool_padded": _build(lambda c, x: c.op("AveragePool", [x], kernel_shape=[3], strides=[2],
                                                    pads=[1, 1])),
    "average_pool_include_pad": _build(lambda c, x: c.op("AveragePool", [x], kernel_shape=[3], strides=[2],
                                                         pads=[1, 1], count_include_pad=1)),
    "average_pool_ceil": _build(lambda c, x: c.op("AveragePool", [x], kernel_shape=[5], strides=[3], ceil_mode=1)),
    "lp_pool_padded": _build(lambda c, x: c.op("LpPool", [x], kernel_shape=[3], strides=[2], pads=[1, 2], p=2)),
    "lp_pool_p1_same": _build(lambda c, x: c.op("LpPool", [x], kernel_shape=[2], auto_pad="SAME_UPPER", p=1)),
    "lp_pool_p3_dilated": _build(lambda c, x: c.op("LpPool", [x], kernel_shape=[3], strides=[1], pads=[2, 0],
                                                   dilations=[2], p=3), opset=18),
    "lp_normalization_channels": _build(lambda c, x: c.op("LpNormalization", [x], axis=1, p=2)),
    "lp_normalization_p1_last": _build(lambda c, x: c.op("LpNormalization", [x], axis=-1, p=1)),
    "global_average_pool": _build(lambda c, x: c.op("GlobalAveragePool", [_conv(c, x, pads=[1, 1])])),
    "global_max_pool": _build(lambda c, x: c.op("GlobalMaxPool", [x])),
    # linear maps
    "gemm_flatten": _build(lambda c, x: c.op("Gemm", [c.op("Flatten", [x]), c.w(3, 4 * LENGTH), c.w(3)],
                                             transB=1, alpha=0.5, beta=2.0)),
    "gemm_trans_a": _build(lambda c, x: c.op("Transpose", [c.op("Gemm", [
        c.op("Transpose", [c.op("Flatten", [x])], perm=[1, 0]), c.w(4 * LENGTH, 3)], transA=1)], perm=[0, 1])),
    "matmul_per_position": _build(lambda c, x: c.op("MatMul", [c.op("Transpose", [x], perm=[0, 2, 1]), c.w(4, 3)])),
    "matmul_both_active": _build(lambda c, x: c.op("MatMul", [c.op("Transpose", [x], perm=[0, 2, 1]), x])),
    # point-wise
    "add_broadcast": _build(lambda c, x: c.op("Add", [x, c.w(4, 1)])),
    "sub_both": _build(lambda c, x: c.op("Sub", [c.w(4, 1), c.op("Mul", [x, c.op("ReduceMean", [x], axes=[2])])])),
    "mul_self": _build(lambda c, x: c.op("Mul", [x, x])),
    "div_both": _build(lambda c, x: c.op("Div", [x, c.op("Add", [c.op("Exp", [x]), c.const(np.float32(1.0))])])),
    "sum_three": _build(lambda c, x: c.op("Sum", [x, c.op("Relu", [x]), c.op("Tanh", [x])])),
    "mean_three": _build(lambda c, x: c.op("Mean", [x, c.op("Tanh", [x]), c.w(4, 1)])),
    "max_min": _build(lambda c, x: c.op("Min", [c.op("Max", [x, c.op("Tanh", [x])]), c.w(4, 1)])),
    "where": _build(lambda c, x: c.op("Where", [c.op("Greater", [x, c.const(np.float32(0.2))]), x,
                                                c.op("Sigmoid", [x])])),
    "clip": _build(lambda c, x: c.op("Clip", [x, c.const(np.float32(-0.5)), c.const(np.float32(0.7))])),
    "pow": _build(lambda c, x: c.op("Pow", [c.op("Softplus", [x]), c.const(np.float32(1.5))])),
    "prelu": _build(lambda c, x: c.op("PRelu", [x, c.w(4, 1)])),
    "relu": _unary("Relu"),
    "sigmoid": _unary("Sigmoid"),
    "tanh": _unary("Tanh"),
    "softplus": _unary("Softplus"),
    "exp": _unary("Exp"),
    "log": _unary("Log", pre="positive"),
    "sqrt": _unary("Sqrt", pre="positive"),
    "reciprocal": _unary("Reciprocal", pre="positive"),
    "neg": _unary("Neg"),
    "abs": _unary("Abs"),
    "erf": _unary("Erf"),
    "elu": _unary("Elu", alpha=0.7),
    "selu": _unary("Selu"),
    "leaky_relu": _unary("LeakyRelu", alpha=0.1),
    "hard_sigmoid": _unary("HardSigmoid", pre="scaled"),
    "hard_swish": _unary("HardSwish", pre="scaled", opset=17),
    "softsign": _unary("Softsign"),
    "gelu": _unary("Gelu", opset=20),
    "gelu_tanh": _unary("Gelu", opset=20, approximate="tanh"),
    "mish": _unary("Mish", opset=18),
    "swish": _unary("Swish", opset=24, alpha=0.8),
    "celu": _unary("Celu", alpha=0.6),
    "thresholded_relu": _unary("ThresholdedRelu", alpha=0.3),
    "shrink": _unary("Shrink", bias=0.2, lambd=0.4),
    "sin": _unary("Sin"),
    "cos": _unary("Cos"),
    "tan": _unary("Tan", pre="bounded"),
    "asin": _unary("Asin", pre="bounded"),
    "acos": _unary("Acos", pre="bounded"),
    "atan": _unary("Atan", pre="scaled"),
    "sinh": _unary("Sinh"),
    "cosh": _unary("Cosh"),
    "asinh": _unary("Asinh", pre="scaled"),
    "acosh": _unary("Acosh", pre="above_one"),
    "atanh": _unary("Atanh", pre="bounded"),
    "identity_dropout_cast": _build(lambda c, x: c.op("Cast", [c.op("Dropout", [c.op("Identity", [x])])],
                                                      to=TensorProto.FLOAT)),
    # normalisation
    "softmax_channels": _build(lambda c, x: c.op("Softmax", [x], axis=1)),
    "log_softmax": _build(lambda c, x: c.op("LogSoftmax", [x], axis=-1)),
    "batch_norm": _build(lambda c, x: c.op("BatchNormalization", [x, c.w(4), c.w(4), c.w(4), c.w(4, positive=True)],
                                           epsilon=1e-3)),
    "layer_norm": _build(lambda c, x: c.op("LayerNormalization", [c.op("Transpose", [x], perm=[0, 2, 1]), c.w(4),
                                                                  c.w(4)], axis=-1)),
    "instance_norm": _build(lambda c, x: c.op("InstanceNormalization", [_conv(c, x, pads=[1, 1]), c.w(5), c.w(5)],
                                              epsilon=1e-3)),
    # moving data
    "reshape_flatten": _build(lambda c, x: c.op("Flatten", [c.op("Reshape", [x, c.ints([0, 2, -1])])])),
    "squeeze_unsqueeze": _build(lambda c, x: c.op("Squeeze", [c.op("Unsqueeze", [x, c.ints([1, 3])]),
                                                              c.ints([1])])),
    "transpose": _build(lambda c, x: c.op("Transpose", [c.op("Unsqueeze", [x, c.ints([1])])], perm=[0, 3, 1, 2])),
    "concat_channels": _build(lambda c, x: c.op("Concat", [x, c.op("Relu", [x]), c.op("Tanh", [x])], axis=1)),
    "split": _build(lambda c, x: c.op("Mul", c.op("Split", [x, c.ints([1, 3])], outputs=2, axis=1))),
    "slice_crop": _build(lambda c, x: c.op("Slice", [x, c.ints([2, 1]), c.ints([-3, 3]), c.ints([2, 1])])),
    "pad_and_crop": _build(lambda c, x: c.op("Pad", [x, c.ints([0, 1, 2, 0, -1, -3])])),
    "expand": _build(lambda c, x: c.op("Expand", [c.op("ReduceSum", [x, c.ints([1])]), c.ints([1, 3, 1])])),
    "reduce_sum_keep0": _build(lambda c, x: c.op("ReduceSum", [x, c.ints([2])], keepdims=0)),
    "reduce_mean_attr": _build(lambda c, x: c.op("ReduceMean", [x], axes=[1], keepdims=0)),
    "reduce_mean_input": _build(lambda c, x: c.op("ReduceMean", [x, c.ints([-1])]), opset=18),
    "reduce_max": _build(lambda c, x: c.op("ReduceMax", [x], axes=[2], keepdims=0)),
    "reduce_min": _build(lambda c, x: c.op("ReduceMin", [x, c.ints([1])]), opset=18),
    "reduce_l1": _build(lambda c, x: c.op("ReduceL1", [x], axes=[2], keepdims=0)),
    "reduce_l2": _build(lambda c, x: c.op("ReduceL2", [x, c.ints([1])]), opset=18),
    "reduce_prod_attr": _build(lambda c, x: c.op("ReduceProd", [x], axes=[1], keepdims=0)),
    "reduce_prod_input": _build(lambda c, x: c.op("ReduceProd", [c.op("Tanh", [x]), c.ints([1, 2])]), opset=18),
    "reduce_sum_square": _build(lambda c, x: c.op("ReduceSumSquare", [x], axes=[1, 2])),
    "reduce_log_sum_exp": _build(lambda c, x: c.op("ReduceLogSumExp", [x], axes=[2])),
    "cumsum": _build(lambda c, x: c.op("CumSum", [x, c.const(np.int64(2))])),
    "cumsum_exclusive_reverse": _build(lambda c, x: c.op("CumSum", [x, c.const(np.int32(-1))], exclusive=1,
                                                         reverse=1)),
    "top_k": _build(lambda c, x: c.op("TopK", [x, c.ints([3])], outputs=2, axis=2)[0]),
    "einsum_attention": _build(lambda c, x: _attention(c, x)),
    "einsum_ellipsis_sum": _build(lambda c, x: c.op("Einsum", [x, c.w(3, 4)], equation="...cl,dc->...d")),
    # selections (every output entry a copy of one input entry, or a fill)
    "gather_repeated_negative": _build(lambda c, x: c.op("Gather", [x, c.ints([[0, 3, 3], [11, -1, 5]])], axis=2)),
    "gather_scalar_channel": _build(lambda c, x: c.op("Gather", [x, c.const(np.int64(2))], axis=1)),
    "gather_nd_length_first": _build(lambda c, x: c.op("Transpose", [c.op("GatherND", [
        c.op("Transpose", [x], perm=[2, 0, 1]), c.ints([[4], [0], [4], [11]])])], perm=[1, 2, 0])),
    "slice_reverse_complement": _build(lambda c, x: c.op("Slice", [x, c.ints([-1, -1]), c.ints([-2 ** 63, -2 ** 63]),
                                                                   c.ints([1, 2]), c.ints([-1, -1])])),
    "slice_strided": _build(lambda c, x: c.op("Slice", [x, c.ints([1]), c.ints([12]), c.ints([2]), c.ints([3])])),
    "pad_reflect": _build(lambda c, x: c.op("Pad", [x, c.ints([0, 0, 3, 0, 0, 2])], mode="reflect")),
    "pad_edge": _build(lambda c, x: c.op("Pad", [x, c.ints([0, 1, 2, 0, 0, 4])], mode="edge")),
    "pad_wrap": _build(lambda c, x: c.op("Pad", [x, c.ints([0, 0, 5, 0, 0, 3])], mode="wrap"), opset=19),
    "tile": _build(lambda c, x: c.op("Tile", [x, c.ints([1, 2, 3])])),
    "depth_to_space": _build(lambda c, x: c.op("DepthToSpace", [c.op("Unsqueeze", [x, c.ints([2])])], blocksize=2,
                                               mode="CRD")),
    "space_to_depth": _build(lambda c, x: c.op("SpaceToDepth", [c.op("Reshape", [x, c.ints([0, 4, 2, -1])])],
                                               blocksize=2)),
    "compress_positions": _build(lambda c, x: c.op("Compress", [x, c.const(np.arange(LENGTH) % 3 != 1)], axis=2)),
    "resize_nearest": _build(lambda c, x: c.op("Resize", [x, "", c.const(np.float32([1, 1, 2.5]))],
                                               mode="nearest"), opset=18),
    # linear maps along one axis: the transpose of the map onnxruntime applies
    "resize_linear_up": _build(lambda c, x: c.op("Resize", [x, "", c.const(np.float32([1, 1, 2]))],
                                                 mode="linear"), opset=18),
    "resize_linear_align_corners_channels": _build(lambda c, x: c.op(
        "Resize", [x, "", c.const(np.float32([1, 1.75, 1]))], mode="linear",
        coordinate_transformation_mode="align_corners"), opset=18),
    "resize_linear_antialiased_down": _build(lambda c, x: c.op(
        "Resize", [x, "", c.const(np.float32([1, 1, 0.42]))], mode="linear", antialias=1), opset=18),
    "trilu": _build(lambda c, x: c.op("Trilu", [x, c.const(np.int64(1))], upper=1)),
    "trilu_nothing_kept": _build(lambda c, x: c.op("Add", [x, c.op("Trilu", [x, c.const(np.int64(99))], upper=1)])),
    "center_crop_pad": _build(lambda c, x: c.op("CenterCropPad", [x, c.ints([6, 9])], axes=[1, 2]), opset=18),
    # recurrent layers, bidirectional, every output used (more forms in tests/gradients/test_recurrent.py)
    "gru_bidirectional": recurrent_case,
    "lstm_bidirectional": lambda: recurrent_case("LSTM", outputs=("Y", "Y_h", "Y_c")),
    "rnn_bidirectional": lambda: recurrent_case("RNN"),
    "shape_gather_chain": _build(lambda c, x: c.op("Reshape", [x, c.op("Concat", [
        c.op("Unsqueeze", [c.op("Gather", [c.op("Shape", [x]), c.const(np.int64(0))], axis=0), c.ints([0])]),
        c.ints([-1])], axis=0)])),
}


def to_float64(proto):
    """A copy of ``proto`` computing in float64: weights, constants, casts and declared types switched."""
    model = onnx.ModelProto()
    model.CopyFrom(proto)
    graph = model.graph

    def widen(tensor):
        if tensor.data_type == TensorProto.FLOAT:
            tensor.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(tensor).astype(np.float64), tensor.name))

    for init in graph.initializer:
        widen(init)
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.TENSOR:
                widen(attribute.t)
            if node.op_type == "Cast" and attribute.name == "to" and attribute.i == TensorProto.FLOAT:
                attribute.i = TensorProto.DOUBLE
    for value in list(graph.input) + list(graph.output) + list(graph.value_info):
        if value.type.tensor_type.elem_type == TensorProto.FLOAT:
            value.type.tensor_type.elem_type = TensorProto.DOUBLE
    return model
