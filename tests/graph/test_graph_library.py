"""The graph library's pieces alone (``onnxism/graph/``): the Emitter's fresh names and constants, the layout
helpers against numpy, the attribute and opset readers, the constants harvester, and the dead-node sweep."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from onnxism.graph.constants import constant_value, graph_constants
from onnxism.graph.emitter import Emitter
from onnxism.graph.liveness import drop_unread, live_nodes
from onnxism.graph.nodes import attr, attributes, default_opset, rewired, unique_name
from onnxism.runtime.sessions import make_session


def test_fresh_names_are_new_whatever_was_taken_or_made():
    emit = Emitter("p__", taken={"p__x", "p__x_1"})
    names = [emit.fresh("x") for _ in range(3)] + [emit.op("Relu", ["a"], stem="x"), emit.op("Relu", ["b"], out="y")]
    assert names == ["p__x_2", "p__x_3", "p__x_4", "p__x_5", "y"]
    assert len({node.name for node in emit.nodes}) == len(emit.nodes)
    assert emit.fresh("y") != "y" and unique_name("y", {"y"}) == "y_1"


@pytest.mark.parametrize("constant_nodes", [False, True])
def test_constants_as_initializers_or_constant_nodes(constant_nodes):
    emit = Emitter("c__", constant_nodes=constant_nodes)
    name = emit.const(np.arange(3.0, dtype=np.float32), "w")
    if constant_nodes:
        assert emit.initializers == [] and np.array_equal(constant_value(emit.nodes[0]), np.arange(3.0))
    else:
        assert emit.nodes == [] and emit.initializers[0].name == name


@pytest.mark.parametrize("opset", [13, 18])
def test_the_layout_helpers_compute_what_numpy_does(opset):
    emit = Emitter("h__", opset=opset)
    moved = emit.transpose("x", [0, 2, 1])
    shaped = emit.reshape(moved, [2, -1])
    sliced = emit.slice(shaped, 1, 4, 1, "cut")
    emit.reduce("ReduceSum", sliced, [1], "y", keepdims=0)
    graph = helper.make_graph(emit.nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])], emit.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=10)
    onnx.checker.check_model(model, full_check=True)
    x = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)
    got = make_session(model.SerializeToString(), "cpu").run(None, {"x": x})[0]
    np.testing.assert_allclose(got, x.transpose(0, 2, 1).reshape(2, -1)[:, 1:4].sum(1), rtol=1e-6)
    assert emit.transpose("x", [0, 1, 2]) == "x"  # no permutation: nothing emitted


def test_attributes_opset_and_rewiring():
    node = helper.make_node("Pad", ["x", "p"], ["y"], mode="reflect", name="pad")
    assert attributes(node) == {"mode": "reflect"} and attr(node, "mode") == "reflect" and attr(node, "no", 3) == 3
    copy = rewired(node, ["a", "b"], "z", {"mode": "edge"})
    assert list(copy.input) == ["a", "b"] and list(copy.output) == ["z"] and attr(copy, "mode") == "edge"
    assert attr(node, "mode") == "reflect"  # the node itself is left as it was
    model = helper.make_model(helper.make_graph([], "g", [], []), opset_imports=[helper.make_opsetid("", 17)])
    assert default_opset(model) == 17


def test_constants_are_harvested_from_initializers_and_every_constant_node_form():
    nodes = [helper.make_node("Constant", [], ["a"], value=numpy_helper.from_array(np.array([1, 2], np.int64))),
             helper.make_node("Constant", [], ["b"], value_ints=[3, 4]),
             helper.make_node("Constant", [], ["c"], value_float=0.5)]
    graph = helper.make_graph(nodes, "g", [], [], [numpy_helper.from_array(np.ones(2, np.float32), "w")])
    found = graph_constants(graph)
    assert sorted(found) == ["a", "b", "c", "w"] and found["b"].tolist() == [3, 4] and float(found["c"]) == 0.5
    assert sorted(graph_constants(graph, integers_only=True)) == ["a", "b"]


def test_the_dead_node_sweep_keeps_what_the_outputs_need():
    nodes = [helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Neg", ["a"], ["dead"]),
             helper.make_node("Sigmoid", ["a"], ["y"]), helper.make_node("Abs", ["dead"], ["deader"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
                              [numpy_helper.from_array(np.ones(2, np.float32), "unread")])
    assert [node.output[0] for node in live_nodes(list(graph.node), {"y"})] == ["a", "y"]
    drop_unread(graph)
    assert [node.op_type for node in graph.node] == ["Relu", "Sigmoid"] and list(graph.initializer) == []
