"""The exporter-form rewrites before the window analysis (``onnxism.fast.normalise``) keep every output the same.

The reference is onnxruntime running the model as exported, on random inputs.
"""

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from onnxism.fast.normalise import normalise
from onnxism.runtime.sessions import make_session


def _model(nodes, initializers, outputs):
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 10])],
                              [helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in outputs],
                              initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)


def _run(model, values):
    session = make_session(model.SerializeToString(), "cpu")
    return session.run(None, {"x": values})


def torch_style_gathers():
    """torch's dynamo form of x[:, :, index] (and of linear upsampling's two gathers): Transpose (length first),
    GatherND with (K, 1) indices, Transpose back; one result also read through a Transpose that does not undo
    it, and a Transpose pair on its own."""
    low = numpy_helper.from_array(np.array([[0], [0], [1], [3], [3], [9]], np.int64), "low")
    high = numpy_helper.from_array(np.array([[1], [2], [2], [4], [9], [9]], np.int64), "high")
    nodes = [
        helper.make_node("Transpose", ["x"], ["t"], perm=[2, 0, 1]),
        helper.make_node("GatherND", ["t", "low"], ["g_low"]),
        helper.make_node("Transpose", ["g_low"], ["a"], perm=[1, 2, 0]),
        helper.make_node("GatherND", ["t", "high"], ["g_high"]),
        helper.make_node("Transpose", ["g_high"], ["b"], perm=[1, 2, 0]),
        helper.make_node("Sub", ["b", "a"], ["diff"]),
        helper.make_node("Transpose", ["diff"], ["p"], perm=[0, 2, 1]),
        helper.make_node("Transpose", ["p"], ["q"], perm=[2, 0, 1]),
        helper.make_node("Transpose", ["q"], ["back"], perm=[1, 2, 0]),
    ]
    return _model(nodes, [low, high], ["diff", "q", "back"])


def test_torch_gathers_become_gathers_along_the_length_with_the_same_outputs():
    model = torch_style_gathers()
    normalised = normalise(model)
    ops = [node.op_type for node in normalised.graph.node]
    assert "GatherND" not in ops
    gathers = [node for node in normalised.graph.node if node.op_type == "Gather"]
    assert len(gathers) == 2 and all(helper.get_attribute_value(node.attribute[0]) == 2 for node in gathers)
    transposes = [node for node in normalised.graph.node if node.op_type == "Transpose"]
    assert [node.input[0] for node in transposes] == ["diff", "diff"]  # chains composed; "p" is read no more
    values = np.random.default_rng(0).standard_normal((2, 3, 10)).astype(np.float32)
    for before, after in zip(_run(model, values), _run(normalised, values)):
        np.testing.assert_array_equal(after, before)


def test_a_model_with_nothing_to_rewrite_is_returned_as_it_is():
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Transpose", ["r"], ["y"], perm=[0, 2, 1])]
    model = _model(nodes, [], ["y"])
    assert normalise(model) is model


def test_a_gather_nd_that_is_not_a_gather_stays():
    """Indices with more than one coordinate, or batch_dims, are left to the analysis (computed in full)."""
    pairs = numpy_helper.from_array(np.array([[0, 1], [1, 2]], np.int64), "pairs")
    nodes = [helper.make_node("Transpose", ["x"], ["t"], perm=[2, 0, 1]),
             helper.make_node("GatherND", ["t", "pairs"], ["y"])]
    model = _model(nodes, [pairs], ["y"])
    normalised = normalise(model)
    assert [node.op_type for node in normalised.graph.node] == ["Transpose", "GatherND"]
