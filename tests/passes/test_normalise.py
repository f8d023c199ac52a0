"""The exporter-form rewrites before the window analysis (``onnxism.passes.normalise``) keep every output the same
and bring the batch back to the first axis.

The reference is onnxruntime running the model as exported, on random inputs.
"""

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from onnxism.graph.probe import probe_graph
from onnxism.passes.normalise.fixpoint import rewrite_to_fixpoint
from onnxism.passes.pipeline import EXPORTER_FORMS, PROBED_FORMS
from onnxism.runtime.sessions import make_session


def normalise(model):
    """The FAST_NORMALISE pipeline's first pass: the exporter forms that need no probe."""
    return rewrite_to_fixpoint(model, EXPORTER_FORMS)


def probed_rewrites(model, shapes, uniform):
    """Its last pass's rewrites, with the probe's shapes and uniform tensors."""
    return rewrite_to_fixpoint(model, PROBED_FORMS, shapes, uniform)


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


def tf2onnx_style_flip():
    """tf2onnx's form of Keras's ops.flip(x, axis=(1, 2)) on x (N, 10, 3): Transpose (length first), ReverseSequence
    with lengths Expand(length, batch) computed from shapes, Transpose (channels first), ReverseSequence again,
    then Unsqueeze and a Transpose bringing the batch back first, as before a 2-D Conv."""
    ints = {"one": [1], "two": [2]}
    nodes = [
        helper.make_node("Transpose", ["x"], ["t1"], perm=[1, 0, 2]),
        helper.make_node("Shape", ["x"], ["x_shape"]),
        helper.make_node("Shape", ["t1"], ["t1_shape"]),
        helper.make_node("Gather", ["x_shape", "one"], ["length"]),
        helper.make_node("Gather", ["t1_shape", "one"], ["batch"]),
        helper.make_node("Expand", ["length", "batch"], ["lengths"]),
        helper.make_node("ReverseSequence", ["t1", "lengths"], ["r1"], batch_axis=1, time_axis=0),
        helper.make_node("Transpose", ["r1"], ["t2"], perm=[2, 1, 0]),
        helper.make_node("Gather", ["x_shape", "two"], ["channels"]),
        helper.make_node("Expand", ["channels", "batch"], ["channel_lengths"]),
        helper.make_node("ReverseSequence", ["t2", "channel_lengths"], ["r2"], batch_axis=1, time_axis=0),
        helper.make_node("Unsqueeze", ["r2", "two"], ["u"]),
        helper.make_node("Transpose", ["u"], ["y"], perm=[1, 0, 2, 3]),
    ]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 10, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(np.array(v, np.int64), k) for k, v in ints.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)


def test_a_whole_reverse_sequence_becomes_a_reversed_slice_with_the_batch_kept_first():
    model = tf2onnx_style_flip()
    shapes, _, uniform, _ = probe_graph(model, "x", (2, 10, 3))
    assert uniform["lengths"] == 10 and uniform["channel_lengths"] == 3
    normalised = probed_rewrites(model, shapes, uniform)
    ops = [node.op_type for node in normalised.graph.node]
    assert "ReverseSequence" not in ops and ops.count("Slice") == 2 and ops.count("Transpose") == 1
    batch_first = probe_graph(normalised, "x", (2, 10, 3))[0]
    assert all(shape[0] == 2 for name, shape in batch_first.items() if len(shape) > 1)
    values = np.random.default_rng(1).standard_normal((2, 10, 3)).astype(np.float32)
    np.testing.assert_array_equal(_run(normalised, values)[0], _run(model, values)[0])


def test_a_reverse_sequence_of_part_of_each_sequence_stays():
    """Lengths that are not the whole time axis (here 4 of 10) are a real ReverseSequence: left as it is."""
    model = tf2onnx_style_flip()
    shapes, _, uniform, _ = probe_graph(model, "x", (2, 10, 3))
    uniform["lengths"] = 4
    normalised = probed_rewrites(model, shapes, uniform)
    assert [node.op_type for node in normalised.graph.node].count("ReverseSequence") == 1
    values = np.random.default_rng(2).standard_normal((2, 10, 3)).astype(np.float32)
    np.testing.assert_array_equal(_run(normalised, values)[0], _run(model, values)[0])


def test_a_reverse_sequence_whose_lengths_come_from_the_values_stays():
    """Lengths computed from the sequence's values (here 10 + 1000 * max(x), 10 on the probe's zero sequences) may
    equal the whole axis there by chance: only lengths from shapes are trusted."""
    consts = [numpy_helper.from_array(np.array(v, np.float32), k) for k, v in (("ten", 10.0), ("big", 1000.0))]
    nodes = [
        helper.make_node("Transpose", ["x"], ["t1"], perm=[1, 0, 2]),
        helper.make_node("Shape", ["x"], ["x_shape"]),  # some shape arithmetic elsewhere in the graph
        helper.make_node("ReduceMax", ["x"], ["peak"], keepdims=0, axes=[1, 2]),
        helper.make_node("Mul", ["peak", "big"], ["scaled"]),
        helper.make_node("Add", ["scaled", "ten"], ["sum"]),
        helper.make_node("Cast", ["sum"], ["lengths"], to=TensorProto.INT64),
        helper.make_node("ReverseSequence", ["t1", "lengths"], ["r1"], batch_axis=1, time_axis=0),
        helper.make_node("Transpose", ["r1"], ["y"], perm=[1, 0, 2]),
    ]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 10, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], consts)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10)
    shapes, _, uniform, _ = probe_graph(model, "x", (2, 10, 3))
    assert uniform.get("lengths") == 10
    assert probed_rewrites(model, shapes, uniform) is model


def tf2onnx_style_dense(target, bias=True, flat_read_twice=False):
    """tf2onnx's Keras Dense on a (N, L, C) tensor: Reshape to (-1, C), MatMul by (C, C'), [Add a bias,] Reshape to
    ``target`` (here from a constant; tf2onnx computes (N, L, C') from the tensor's Shape)."""
    rng = np.random.default_rng(3)
    initializers = [numpy_helper.from_array(rng.standard_normal((3, 5)).astype(np.float32), "w"),
                    numpy_helper.from_array(rng.standard_normal(5).astype(np.float32), "b"),
                    numpy_helper.from_array(np.array([-1, 3], np.int64), "flat_shape"),
                    numpy_helper.from_array(np.array(target, np.int64), "target")]
    nodes = [helper.make_node("Transpose", ["x"], ["t"], perm=[0, 2, 1]),  # (N, 10, 3)
             helper.make_node("Reshape", ["t", "flat_shape"], ["flat"]),
             helper.make_node("MatMul", ["flat", "w"], ["product"])]
    if bias:
        nodes.append(helper.make_node("Add", ["b", "product"], ["biased"]))
    nodes.append(helper.make_node("Reshape", ["biased" if bias else "product", "target"], ["y"]))
    outputs = ["y"]
    if flat_read_twice:
        nodes.append(helper.make_node("Relu", ["flat"], ["also"]))
        outputs.append("also")
    return _model(nodes, initializers, outputs)


@pytest.mark.parametrize("target, bias", [([-1, 10, 5], True), ([-1, 5, 2, 5], True), ([-1, 50], False)])
def test_a_dense_per_position_is_computed_on_the_tensor_itself(target, bias):
    """The MatMul [and bias] run on the (N, L, C) tensor: no Reshape merges the batch with the length any more."""
    model = tf2onnx_style_dense(target, bias)
    shapes, _, uniform, _ = probe_graph(model, "x", (2, 3, 10))
    normalised = probed_rewrites(model, shapes, uniform)
    after = probe_graph(normalised, "x", (2, 3, 10))[0]
    merged = [node for node in normalised.graph.node if node.op_type == "Reshape" and after[node.output[0]][0] != 2]
    assert merged == []
    ops = [node.op_type for node in normalised.graph.node]
    assert ("Identity" in ops) == (len(target) == 3)  # the last Reshape gives (N, L, C') back: an Identity
    assert after["y"] == shapes["y"]
    values = np.random.default_rng(4).standard_normal((2, 3, 10)).astype(np.float32)
    np.testing.assert_allclose(_run(normalised, values)[0], _run(model, values)[0], rtol=1e-6, atol=1e-6)


def test_a_dense_per_position_whose_flattened_input_is_read_elsewhere_stays():
    model = tf2onnx_style_dense([-1, 10, 5], flat_read_twice=True)
    shapes, _, uniform, _ = probe_graph(model, "x", (2, 3, 10))
    assert probed_rewrites(model, shapes, uniform) is model


@pytest.mark.parametrize("opset", [12, 13, 18])
@pytest.mark.parametrize("equation, weight_shape", [
    ("ncl,cl->nl", (3, 10)), ("ncl,lc->nl", (10, 3)), ("ncl,cl->nlc", (3, 10)), ("ncl,l->ncl", (10,)),
    ("lc,ncl->ln", (10, 3)), ("ncl,c->n", (3,)),
])
def test_an_einsum_with_a_weight_of_the_tensors_indices_is_a_product_and_a_sum(opset, equation, weight_shape):
    """An Einsum of the tensor and a weight (either operand first) whose indices are all the tensor's becomes Mul,
    ReduceSum over the indices the output drops (axes as an attribute at opset 12) and a Transpose to the output's
    order: the same outputs, and the replaced weight is gone."""
    weight = numpy_helper.from_array(np.random.default_rng(1).standard_normal(weight_shape).astype(np.float32), "w")
    inputs = ["w", "x"] if equation.startswith("lc") else ["x", "w"]
    model = _model([helper.make_node("Einsum", inputs, ["y"], equation=equation)], [weight], ["y"])
    model.opset_import[0].version = opset
    normalised = normalise(model)
    assert "Einsum" not in {node.op_type for node in normalised.graph.node}
    assert "w" not in {init.name for init in normalised.graph.initializer}
    values = np.random.default_rng(0).standard_normal((2, 3, 10)).astype(np.float32)
    before, after = _run(model, values)[0], _run(normalised, values)[0]
    assert after.shape == before.shape
    np.testing.assert_allclose(after, before, rtol=0, atol=1e-5)


@pytest.mark.parametrize("equation, second", [("ncl,cd->nld", "w"), ("ncl,ncl->nl", "x"), ("ncl,cl->nl", "computed")])
def test_an_einsum_with_an_index_of_its_own_two_tensors_or_a_computed_weight_stays(equation, second):
    """A weight with an index the tensor lacks (a Dense per position: windowed as an Einsum), two tensors, and a
    weight computed in the graph (not an initializer) are left as they are."""
    shape = (3, 4) if equation == "ncl,cd->nld" else (3, 10)
    weight = numpy_helper.from_array(np.ones(shape, np.float32), "w")
    nodes = [helper.make_node("Neg", ["w"], ["computed"]),
             helper.make_node("Einsum", ["x", second], ["y"], equation=equation)]
    model = _model(nodes, [weight], ["y"])
    assert normalise(model) is model



def flanked(axis, left_shape, right_shape, middle=None):
    """Concat along ``axis`` of x (N, 3, 10) between Expand(left constant, to x's batch) and Tile(right constant,
    [N, 1, 1]); ``middle``: a part after x, "x" (x again) or "relu" (another tensor of x's values). The constants
    hold -0.0 among random values."""
    rng = np.random.default_rng(3)
    left, right = (rng.standard_normal(shape).astype(np.float32) for shape in (left_shape, right_shape))
    left.reshape(-1)[0] = right.reshape(-1)[-1] = -0.0
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Slice", ["shape", "zero", "one"], ["batch"]),
        helper.make_node("Concat", ["batch", "ones"], ["repeats"], axis=0),
        helper.make_node("Expand", ["left", "repeats"], ["left_rows"]),
        helper.make_node("Tile", ["right", "repeats"], ["right_rows"]),
        helper.make_node("Relu", ["x"], ["relu"]),
        helper.make_node("Concat", ["left_rows", "x"] + ([middle] if middle else []) + ["right_rows"], ["joined"],
                         axis=axis),
        helper.make_node("Mul", ["joined", "joined"], ["squared"]),
        helper.make_node("Div", ["one_float", "joined"], ["y"]),  # +-inf tells -0.0 from 0.0
    ]
    initializers = [numpy_helper.from_array(np.array(v, np.int64), k)
                    for k, v in {"one": [1], "zero": [0], "ones": [1, 1]}.items()]
    initializers += [numpy_helper.from_array(left, "left"), numpy_helper.from_array(right, "right"),
                     numpy_helper.from_array(np.array(1.0, np.float32), "one_float")]
    return _model(nodes, initializers, ["y", "squared"])


@pytest.mark.parametrize("axis, left_shape, right_shape", [(2, (3, 2), (1, 3, 4)), (1, (1, 2, 10), (1, 1, 10)),
                                                           (-1, (1, 3, 1), (1, 3, 5))])
def test_a_concat_of_constants_broadcast_along_the_batch_is_a_pad_and_an_add(axis, left_shape, right_shape):
    """Fixed flanks along the length (the left constant of a lower rank, broadcast by the Expand) or constant
    channels: the Concat becomes a Pad of x and an Add of the constants, with the same bits in every output
    (-0.0 included, in x and in the constants: 1 / y tells it apart)."""
    model = flanked(axis, left_shape, right_shape)
    shapes, _, uniform, _ = probe_graph(model, "x", (2, 3, 10))
    normalised = probed_rewrites(model, shapes, uniform)
    ops = [node.op_type for node in normalised.graph.node]
    assert "Concat" not in ops[3:] and "Expand" not in ops and "Tile" not in ops and ops.count("Pad") == 1
    values = np.random.default_rng(4).standard_normal((3, 3, 10)).astype(np.float32)
    values[0, 0, :3] = -0.0
    values[1, 1, :3] = 0.0
    for got, expected in zip(_run(normalised, values), _run(model, values)):
        np.testing.assert_array_equal(got, expected)
        np.testing.assert_array_equal(np.signbit(got), np.signbit(expected))


@pytest.mark.parametrize("middle", ["x", "relu"])
def test_a_concat_of_two_tensors_of_the_values_stays(middle):
    """Two parts computed from the sequence's values (x twice, x and relu(x)): not a shift of one tensor."""
    model = flanked(2, (1, 3, 2), (1, 3, 4), middle)
    shapes, _, uniform, _ = probe_graph(model, "x", (2, 3, 10))
    assert "Pad" not in [node.op_type for node in probed_rewrites(model, shapes, uniform).graph.node]


def test_a_concat_of_a_part_with_rows_of_its_own_stays():
    """A constant with one row per sequence of a fixed batch of 2 (not one row broadcast) is left as it is."""
    model = flanked(2, (1, 3, 2), (2, 3, 4))
    model.graph.node[4].input[1] = "ones_three"  # Tile by [1, 1, 1]: the right part keeps its own two rows
    model.graph.initializer.append(numpy_helper.from_array(np.array([1, 1, 1], np.int64), "ones_three"))
    shapes, _, uniform, _ = probe_graph(model, "x", (2, 3, 10))
    assert "Pad" not in [node.op_type for node in probed_rewrites(model, shapes, uniform).graph.node]


@pytest.mark.parametrize("other", ["x", "constant"])
def test_an_elementwise_operand_broadcast_along_the_batch_is_read_as_its_row(other):
    """Sub(other, Expand(C, Shape(x))): C's one row where x gives the output its batch, the same bits; where the
    other operand is a constant of one row, the Expand sets the output's batch and stays."""
    rng = np.random.default_rng(5)
    nodes = [helper.make_node("Shape", ["x"], ["shape"]), helper.make_node("Expand", ["c", "shape"], ["rows"]),
             helper.make_node("Sub", [other, "rows"], ["y"])]
    initializers = [numpy_helper.from_array(rng.standard_normal((3, 10)).astype(np.float32), "c"),
                    numpy_helper.from_array(rng.standard_normal((1, 3, 10)).astype(np.float32), "constant")]
    model = _model(nodes, initializers, ["y"])
    shapes, _, uniform, _ = probe_graph(model, "x", (2, 3, 10))
    normalised = probed_rewrites(model, shapes, uniform)
    assert ("Expand" in [node.op_type for node in normalised.graph.node]) == (other == "constant")
    values = rng.standard_normal((3, 3, 10)).astype(np.float32)
    np.testing.assert_array_equal(_run(normalised, values)[0], _run(model, values)[0])


@pytest.mark.parametrize("made", ["ConstantOfShape", "Expand"])
def test_a_concat_of_tensors_made_for_the_batch_is_a_pad_and_an_add(made):
    """A part made for the batch from a scalar, ConstantOfShape(Shape) or an Expand of a scalar constant to
    (N, 3, 2) (torch.zeros and torch.full of the two exporters): the Concat becomes a Pad and an Add, same bits."""
    sizes = [helper.make_node("Shape", ["x"], ["shape"]), helper.make_node("Slice", ["shape", "zero", "one"], ["n"]),
             helper.make_node("Concat", ["n", "rest"], ["target"], axis=0)]
    if made == "ConstantOfShape":
        value = numpy_helper.from_array(np.array([-0.0], np.float32))
        part = [helper.make_node("ConstantOfShape", ["target"], ["part"], value=value)]
    else:
        part = [helper.make_node("Expand", ["quarter", "target"], ["part"])]
    nodes = sizes + part + [helper.make_node("Concat", ["part", "x"], ["joined"], axis=2),
                            helper.make_node("Div", ["quarter", "joined"], ["y"])]
    initializers = [numpy_helper.from_array(np.array(v, np.int64), k)
                    for k, v in {"one": [1], "zero": [0], "rest": [3, 2]}.items()]
    initializers.append(numpy_helper.from_array(np.array(0.25, np.float32), "quarter"))
    model = _model(nodes, initializers, ["y"])
    shapes, _, uniform, _ = probe_graph(model, "x", (2, 3, 10))
    normalised = probed_rewrites(model, shapes, uniform)
    ops = [node.op_type for node in normalised.graph.node]
    assert ops.count("Concat") == 0 and made not in ops and ops.count("Pad") == 1
    values = np.random.default_rng(6).standard_normal((3, 3, 10)).astype(np.float32)
    values[0, 0, :2] = -0.0
    got, expected = _run(normalised, values)[0], _run(model, values)[0]
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(expected))
