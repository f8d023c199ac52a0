"""The weightless stand-in that the shape probes run (``onnxism.graph.weightless``): every tensor keeps the shape it
has in the model, values that depend on a replaced weight are never reported as known, and a large weight that
sets a shape by its values means no stand-in.

The reference is onnxruntime running the model itself, with every node output exposed.
"""

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import onnxism
from onnxism.graph.probe import probe_graph
from onnxism.graph.weightless import LARGE_VALUES, weight_dependent, weightless
from onnxism.runtime.sessions import make_session

LENGTH, CHANNELS = 64, 8
HIDDEN = LARGE_VALUES // (CHANNELS * (LENGTH // 2)) + 1  # the Dense weight is just large


def _dense_model(extra_nodes=(), extra_outputs=(), extra_initializers=()):
    """x (N, L, 4) -> Conv -> MaxPool 2 -> Flatten (tf2onnx-style target from Shape) -> Dense (large weight) -> y;
    the Reshape target is shape arithmetic: Concat(Slice(Shape(p), 0, 1), [-1])."""
    rng = np.random.default_rng(0)
    flat = CHANNELS * (LENGTH // 2)
    weights = [
        numpy_helper.from_array(rng.standard_normal((CHANNELS, 4, 5)).astype(np.float32), "conv_w"),
        numpy_helper.from_array(rng.standard_normal((flat, HIDDEN)).astype(np.float32), "dense_w"),
        numpy_helper.from_array(np.array([0], np.int64), "zero"),
        numpy_helper.from_array(np.array([1], np.int64), "one"),
        numpy_helper.from_array(np.array([-1], np.int64), "minus_one"),
    ]
    nodes = [
        helper.make_node("Transpose", ["x"], ["xt"], perm=[0, 2, 1]),
        helper.make_node("Conv", ["xt", "conv_w"], ["c"], pads=[2, 2]),
        helper.make_node("MaxPool", ["c"], ["p"], kernel_shape=[2], strides=[2]),
        helper.make_node("Shape", ["p"], ["p_shape"]),
        helper.make_node("Slice", ["p_shape", "zero", "one"], ["batch"]),
        helper.make_node("Concat", ["batch", "minus_one"], ["target"], axis=0),
        helper.make_node("Reshape", ["p", "target"], ["flat"]),
        helper.make_node("MatMul", ["flat", "dense_w"], ["y"]),
        *extra_nodes,
    ]
    outputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in ("y", *extra_outputs)]
    graph = helper.make_graph(nodes, "dense",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", LENGTH, 4])],
                              outputs, weights + list(extra_initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)


def _every_output(model, batch=2):
    """{name: value} of every node output of ``model`` run by onnxruntime on zeros (independent of the probe)."""
    exposed = onnx.ModelProto()
    exposed.CopyFrom(model)
    names = {value.name for value in exposed.graph.output}
    for node in exposed.graph.node:
        for name in node.output:
            if name not in names:
                exposed.graph.output.append(onnx.ValueInfoProto(name=name))
                names.add(name)
    session = make_session(exposed.SerializeToString(), "cpu")
    names = [value.name for value in session.get_outputs()]
    return dict(zip(names, session.run(names, {"x": np.zeros((batch, LENGTH, 4), np.float32)})))


def test_stand_in_is_small_and_keeps_every_shape_and_the_shape_arithmetic():
    sizes = [helper.make_node("Slice", ["p_shape", "one", "three"], ["sizes"])]
    model = _dense_model(sizes, extra_initializers=[numpy_helper.from_array(np.array([3], np.int64), "three")])
    stand_in, replaced = weightless(model)
    assert replaced == {"dense_w"}  # the conv weight is small: kept
    assert stand_in.ByteSize() < model.ByteSize() / 20
    assert [init.name for init in model.graph.initializer][0] == "conv_w"  # the model is unchanged
    assert len(model.graph.node) == 9
    truth = _every_output(model)
    shapes, fixed, _, _ = probe_graph(model, "x", (2, LENGTH, 4))
    assert {name: shapes[name] for name in truth} == {name: value.shape for name, value in truth.items()}
    assert "dense_w" not in shapes  # the stand-in's zero weights are not probed
    np.testing.assert_array_equal(fixed["sizes"], [CHANNELS, LENGTH // 2])  # shape arithmetic, batch-free
    assert "target" not in fixed  # [batch, -1]: depends on the batch
    assert "y" not in fixed  # depends on the replaced weight (and is not small)


def test_values_from_a_replaced_weight_are_not_reported_as_known():
    """A small static value computed from a large weight (its maximum) is the model's only if the weight is: the
    probe must not report the stand-in's zero."""
    extra = [helper.make_node("ReduceMax", ["dense_w"], ["w_max"], keepdims=0),
             helper.make_node("Shape", ["dense_w"], ["w_shape"]),
             helper.make_node("Cast", ["w_shape"], ["w_shape_f"], to=TensorProto.FLOAT)]
    model = _dense_model(extra, ["w_max", "w_shape_f"])
    assert _every_output(model)["w_max"] > 0
    stand_in, replaced = weightless(model)
    dependent = weight_dependent(stand_in.graph, replaced)
    assert "w_max" in dependent and "y" in dependent
    assert "w_shape" not in dependent and "w_shape_f" not in dependent  # a shape is known without the values
    _, fixed, _, _ = probe_graph(model, "x", (2, LENGTH, 4))
    assert "w_max" not in fixed
    np.testing.assert_array_equal(fixed["w_shape_f"], [CHANNELS * LENGTH // 2, HIDDEN])


def test_no_stand_in_where_a_large_weight_sets_a_shape():
    """A Reshape target computed from a large weight's values (exotic, but exact only with the real values)."""
    extra = [helper.make_node("ReduceMax", ["dense_w"], ["w_max"], keepdims=0),
             helper.make_node("Greater", ["w_max", "zero_f"], ["positive"]),
             helper.make_node("Cast", ["positive"], ["k"], to=TensorProto.INT64),
             helper.make_node("Mul", ["k", "one"], ["k1"]),
             helper.make_node("Add", ["k1", "one"], ["rows"]),  # 2 with the real weights, 1 with zeros
             helper.make_node("Concat", ["rows", "minus_one"], ["w_target"], axis=0),
             helper.make_node("Reshape", ["y", "w_target"], ["y_flat"])]
    model = _dense_model(extra, ["y_flat"], [numpy_helper.from_array(np.array(0, np.float32), "zero_f")])
    shapes, _, _, _ = probe_graph(model, "x", (2, LENGTH, 4))
    assert shapes["y_flat"] == _every_output(model)["y_flat"].shape == (2, HIDDEN)
    stand_in, replaced = weightless(model)
    assert stand_in is model and replaced == set()


def test_output_shapes_and_fast_ism_on_a_model_with_a_large_weight(tmp_path):
    path = tmp_path / "dense.onnx"
    onnx.save(_dense_model(), path)
    model = onnxism.load(str(path))
    assert model.output_shapes(LENGTH) == {"y": (HIDDEN,)}
    seqs = np.eye(4, dtype=np.float32)[np.random.default_rng(1).integers(0, 4, (2, LENGTH))]
    fast = onnxism.ism(model, seqs, method="fast")
    naive = onnxism.ism(model, seqs, method="naive")
    scale = max(1.0, float(np.abs(naive["y"]).max()))
    assert np.abs(fast["y"] - naive["y"]).max() <= 1e-4 * scale
