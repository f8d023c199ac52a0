"""Each lowering of the ISM graph builder (``fast/build/``), alone: a small graph built for it, the lowering seen to
run (a spy on the dispatch in ``build/lower.py``), nothing computed in full for want of a rule, and fast ISM equal to
naive ISM on one-hot sequences and on random values.

Tolerance (stated): max |fast - naive| <= 1e-4 * max(1, max |output|).
"""

import functools

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import onnxism
from onnxism.fast.build import lower
from onnxism.fast.plan import build_plan

from conftest import random_onehot
from fast_checks import assert_fast_equals_naive, assert_scorers_agree_on_random_values

LENGTH = 24


class _Graph:
    """A graph from x (N, 4, L) built node by node, with random weights."""

    def __init__(self, seed=0):
        self.rng = np.random.default_rng(seed)
        self.nodes, self.initializers, self.count = [], [], 0

    def weight(self, *shape, integers=False):
        self.count += 1
        name = f"w{self.count}"
        value = np.asarray(shape, np.int64) if integers else self.rng.standard_normal(shape).astype(np.float32) * 0.5
        self.initializers.append(numpy_helper.from_array(value, name))
        return name

    def constant(self, value):
        self.count += 1
        name = f"c{self.count}"
        self.initializers.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(self, op, inputs, name="under_test", **attrs):
        self.count += 1
        output = f"t{self.count}"
        self.nodes.append(helper.make_node(op, inputs, [output], name=f"{name}{self.count}", **attrs))
        return output

    def conv(self, x, c_in, c_out, kernel, **attrs):
        pads = attrs.pop("pads", [(kernel - 1) // 2, kernel // 2])
        return self.node("Conv", [x, self.weight(c_out, c_in, kernel), self.weight(c_out)], "conv", pads=pads, **attrs)

    def model(self, *outputs):
        graph = helper.make_graph(self.nodes, "lowering", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                                          ["N", 4, LENGTH])],
                                  [helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in outputs],
                                  self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
        model.ir_version = 10
        return model


def native_conv():
    g = _Graph(1)
    return g.model(g.node("Relu", [g.conv("x", 4, 16, 3)]))


def delta_conv():
    g = _Graph(2)  # 5 taps on the one-column change of the input: only the changed column is multiplied
    return g.model(g.conv("x", 4, 16, 5))


def narrow_whole_conv():
    g = _Graph(3)  # a conv as wide as the sequence makes every column change; then a 1-channel 'same' conv
    return g.model(g.conv(g.conv("x", 4, 8, 25, pads=[12, 12]), 8, 1, 3))


def strided_transpose():
    g = _Graph(4)
    h = g.conv("x", 4, 6, 3)
    return g.model(g.node("ConvTranspose", [h, g.weight(6, 5, 4), g.weight(5)], strides=[2], pads=[1, 1]))


def max_pool():
    g = _Graph(5)
    return g.model(g.node("MaxPool", [g.conv("x", 4, 6, 3)], kernel_shape=[3], strides=[3]))


def average_pool_without_its_pads():
    g = _Graph(6)
    return g.model(g.node("AveragePool", [g.conv("x", 4, 6, 3)], kernel_shape=[4], strides=[2], pads=[1, 2],
                          count_include_pad=0))


def gathered_columns():
    g = _Graph(7)
    indices = g.constant(np.array([1, 3, 4, 4, 8, 11, 12, 15, 19, 23], np.int64))  # narrow windows
    return g.model(g.node("Gather", [g.conv("x", 4, 6, 3), indices], axis=2))


def linear_resize():
    g = _Graph(8)
    scales = g.constant(np.array([1.0, 1.0, 2.0], np.float32))
    return g.model(g.node("Resize", [g.conv("x", 4, 6, 3), "", scales], mode="linear"))


def merged_length():
    """Keras's UpSampling1D as tf2onnx writes it: (N, L, C) -> Unsqueeze -> Tile by 2 -> Reshape to (N, 2L, C)."""
    g = _Graph(9)
    h = g.node("Transpose", [g.conv("x", 4, 6, 3)], "layout", perm=[0, 2, 1])
    tiled = g.node("Tile", [g.node("Unsqueeze", [h, g.constant(np.array([2], np.int64))], "layout"),
                            g.constant(np.array([1, 1, 2, 1], np.int64))], "layout")
    return g.model(g.node("Reshape", [tiled, g.constant(np.array([0, 2 * LENGTH, 6], np.int64))]))


def split_length():
    """Softmax pooling's grouping: (N, L, C) -> Reshape to (N, L / 2, 2, C) -> a max over each pair."""
    g = _Graph(10)
    h = g.node("Transpose", [g.conv("x", 4, 6, 3)], "layout", perm=[0, 2, 1])
    pairs = g.node("Reshape", [h, g.constant(np.array([0, LENGTH // 2, 2, 6], np.int64))])
    return g.model(g.node("ReduceMax", [pairs, g.constant(np.array([2], np.int64))], "pool", keepdims=0))


def padded_length():
    g = _Graph(11)
    pads = g.constant(np.array([0, 0, 2, 0, 0, 3], np.int64))
    return g.model(g.conv(g.node("Pad", [g.conv("x", 4, 6, 3), pads]), 6, 2, 3))


def pointwise_forms():
    """Relu, a BatchNormalization, an Add of a constant that varies along the length, a Softmax over the channels
    and a Concat of two windowed tensors over the channels: each in the rows layout."""
    g = _Graph(12)
    h = g.node("Relu", [g.conv("x", 4, 6, 3)])
    h = g.node("BatchNormalization", [h, g.weight(6), g.weight(6), g.weight(6), g.constant(np.ones(6, np.float32))])
    h = g.node("Add", [h, g.weight(1, 6, LENGTH)])
    h = g.node("Softmax", [h], axis=1)
    return g.model(g.node("Concat", [h, g.conv("x", 4, 3, 5)], axis=1))


def dense_head():
    g = _Graph(13)
    flat = g.node("Flatten", [g.conv("x", 4, 6, 3)], "flatten")
    return g.model(g.node("Gemm", [flat, g.weight(6 * LENGTH, 3), g.weight(3)], "dense"))


def mean_head():
    g = _Graph(14)
    return g.model(g.node("ReduceMean", [g.conv("x", 4, 6, 3), g.constant(np.array([2], np.int64))], "mean",
                          keepdims=0))


#: model -> the dispatch entry (``build/lower.py``) that lowers its node under test
CASES = {
    native_conv: "conv_native", delta_conv: "delta_conv", narrow_whole_conv: "narrow_whole_conv",
    strided_transpose: "strided_transpose", max_pool: "pool", average_pool_without_its_pads: "pool",
    gathered_columns: "mapped_columns", linear_resize: "mapped_columns", merged_length: "merged_reshape",
    split_length: "split_reshape", padded_length: "lower_local", pointwise_forms: "pointwise",
    dense_head: "linear_head", mean_head: "linear_head",
}


@pytest.mark.parametrize("build, lowering", CASES.items(), ids=[case.__name__ for case in CASES])
def test_each_lowering_alone_equals_naive(monkeypatch, build, lowering):
    calls = []

    def spy(function):
        @functools.wraps(function)
        def recorded(*args, **kwargs):
            calls.append(function.__name__)
            return function(*args, **kwargs)
        return recorded

    monkeypatch.setattr(lower, lowering, spy(getattr(lower, lowering)))
    model = onnxism.load(build())
    plan, graphs = build_plan(model, LENGTH, model.output_names)
    assert lowering in calls
    if build is padded_length:  # a Pad along the length alone: its window is gathered with the pad value
        assert "Pad" not in [node.op_type for node in graphs.ism_model.graph.node]
    assert plan.analysis.split_notices()[1] == []  # nothing computed in full for want of a rule
    assert_fast_equals_naive(model, random_onehot(2, LENGTH, seed=3, n_fraction=0.1), batch_size=17)
    assert_scorers_agree_on_random_values(model, LENGTH)
