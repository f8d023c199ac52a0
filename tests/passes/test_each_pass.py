"""Every pass of every pipeline (``passes/pipeline.py``), checked three ways on a model where it applies: the op list
it leaves, the model's outputs before and after (onnxruntime on the rewritten model against onnxruntime on the
original, or against onnx's reference evaluator or numpy where onnxruntime refuses the original: that is what the
repair passes are for), and ``onnx.checker.check_model(full_check=True)`` on the rewritten model. A pass that finds
nothing to do returns the model it was given, unchanged.

Tolerance (stated): 1e-5 of each output's largest magnitude (onnxruntime against itself: exact, asserted so).
"""

import math

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from onnxism.model.sequence_input import find_sequence_input
from onnxism.model.tokens import parse_tokens
from onnxism.passes.base import Pass, run_pipeline
from onnxism.passes.pipeline import FAST_NORMALISE, GRADIENT_PREP, LOAD, REPAIR, LoadContext, ProbeContext
from onnxism.runtime.sessions import make_session

from conftest import random_onehot

STEPS = {step.name: step for step in REPAIR + LOAD + FAST_NORMALISE + GRADIENT_PREP}


def _model(nodes, inputs, outputs, initializers=(), opset=18, ir_version=10):
    graph = helper.make_graph(nodes, "case", inputs, outputs, list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = ir_version
    return model


def _float(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def _ops(model):
    return [node.op_type for node in model.graph.node]


def _run_ort(model, feeds):
    return make_session(model.SerializeToString(), "cpu").run(None, feeds)


def _run_reference(model, feeds):
    return ReferenceEvaluator(model).run(None, feeds)


def _apply(name, model, ctx):
    """The pass ``name`` alone, through run_pipeline (as the pipelines run it); returns (result, rewritten model)."""
    run = run_pipeline((STEPS[name],), model, ctx)
    return run.results[0][1], run.proto


def _assert_same(got, want):
    for value, expected in zip(got, want):
        scale = max(1.0, float(np.abs(expected).max()))
        np.testing.assert_allclose(value, expected, rtol=0, atol=1e-5 * scale)


def _checked(model):
    onnx.checker.check_model(model, full_check=True)


# -- REPAIR -------------------------------------------------------------------------------------------------------
def test_repair_header_reads_a_newer_ir_version_as_the_newest_onnxruntime_runs():
    model = _model([helper.make_node("Relu", ["x"], ["y"])], [_float("x", [2, 3])], [_float("y", [2, 3])],
                   ir_version=14)
    result, repaired = _apply("repair_header", model, LoadContext())
    assert result.changed and repaired.ir_version == 13 and model.ir_version == 14  # the given model is kept
    assert _ops(repaired) == _ops(model)
    feeds = {"x": np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)}
    _assert_same(_run_ort(repaired, feeds), _run_reference(model, feeds))
    _checked(repaired)


def _same_upper_conv():
    rng = np.random.default_rng(1)
    weight = numpy_helper.from_array(rng.standard_normal((3, 4, 3)).astype(np.float32), "w")
    conv = helper.make_node("Conv", ["x", "w"], ["y"], auto_pad="SAME_UPPER", dilations=[2], kernel_shape=[3])
    return _model([conv], [_float("x", [2, 4, 11])], [_float("y", [2, 3, 11])], [weight])


def test_explicit_same_pads_writes_a_dilated_same_conv_with_its_pads():
    model = _same_upper_conv()
    with pytest.raises(Exception):  # onnxruntime refuses auto_pad SAME on a dilated Conv: why the pass exists
        _run_ort(model, {"x": np.zeros((2, 4, 11), np.float32)})
    result, repaired = _apply("explicit_same_pads", model, LoadContext())
    assert result.changed and _ops(repaired) == ["Conv"]
    attributes = {a.name: helper.get_attribute_value(a) for a in repaired.graph.node[0].attribute}
    assert "auto_pad" not in attributes and attributes["pads"] == [2, 2]
    feeds = {"x": np.random.default_rng(2).standard_normal((2, 4, 11)).astype(np.float32)}
    _assert_same(_run_ort(repaired, feeds), _run_reference(model, feeds))
    _checked(repaired)


def test_erfc_as_erf_computes_erfc():
    model = _model([helper.make_node("Erfc", ["x"], ["y"])], [_float("x", [5])], [_float("y", [5])])
    result, repaired = _apply("erfc_as_erf", model, LoadContext())
    assert result.changed and _ops(repaired) == ["Erf", "Constant", "Sub"]
    values = np.linspace(-2, 2, 5).astype(np.float32)
    _assert_same(_run_ort(repaired, {"x": values}), [np.array([math.erfc(v) for v in values], np.float32)])
    _checked(repaired)


# -- LOAD ---------------------------------------------------------------------------------------------------------
def _token_model():
    """ids (N, L) -> Gather from an embedding table (6 ids, 3 channels) -> Conv -> mean over the length."""
    rng = np.random.default_rng(3)
    table = numpy_helper.from_array(rng.standard_normal((6, 3)).astype(np.float32), "table")
    weight = numpy_helper.from_array(rng.standard_normal((2, 3, 3)).astype(np.float32), "w")
    axes = numpy_helper.from_array(np.array([2], np.int64), "axes")
    nodes = [helper.make_node("Gather", ["table", "ids"], ["embedded"]),
             helper.make_node("Transpose", ["embedded"], ["ncl"], perm=[0, 2, 1]),
             helper.make_node("Conv", ["ncl", "w"], ["c"], pads=[1, 1]),
             helper.make_node("ReduceMean", ["c", "axes"], ["y"], keepdims=0)]
    ids = helper.make_tensor_value_info("ids", TensorProto.INT64, ["N", 12])
    return _model(nodes, [ids], [_float("y", ["N", 2])], [table, weight, axes])


def test_fold_tokens_reads_a_token_model_as_one_hot():
    model = _token_model()
    tokens = parse_tokens("_ACGTN")
    result, folded = _apply("fold_tokens", model, LoadContext(tokens=tokens))
    assert result.changed and "Gather" not in _ops(folded) and "MatMul" in _ops(folded)
    seqs = random_onehot(3, 12, seed=4, n_fraction=0.1)
    ids = np.where(seqs.sum(2) == 0, 5, seqs.argmax(2) + 1).astype(np.int64)  # A=1 ... T=4, N=5
    _assert_same(_run_ort(folded, {"ids": seqs}), _run_ort(model, {"ids": ids}))
    _checked(folded)
    assert _apply("fold_tokens", model, LoadContext())[1] is model  # no tokens: nothing to do


def _fixed_batch_model(batch=1):
    """torch's dynamo form of a flatten: Conv -> Reshape to [batch, features] -> MatMul, the batch fixed."""
    rng = np.random.default_rng(5)
    weight = numpy_helper.from_array(rng.standard_normal((2, 4, 3)).astype(np.float32), "w")
    dense = numpy_helper.from_array(rng.standard_normal((20, 3)).astype(np.float32), "dense")
    target = numpy_helper.from_array(np.array([batch, 20], np.int64), "target")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1]),
             helper.make_node("Reshape", ["c", "target"], ["flat"], allowzero=1),
             helper.make_node("MatMul", ["flat", "dense"], ["y"])]
    return _model(nodes, [_float("x", [batch, 4, 10])], [_float("y", [batch, 3])], [weight, dense, target])


def test_free_batch_frees_a_fixed_batch_and_keeps_every_row():
    model = _fixed_batch_model()
    found = find_sequence_input(model.graph)
    result, freed = _apply("free_batch", model, LoadContext(found=found, fixed_batch=found.batch))
    assert result.changed and result.updates == {"fixed_batch": None, "exported_batch": 1}
    assert _ops(freed) == _ops(model)
    assert freed.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    values = np.random.default_rng(6).standard_normal((3, 4, 10)).astype(np.float32)
    rows = [_run_ort(model, {"x": values[k:k + 1]})[0] for k in range(3)]
    _assert_same(_run_ort(freed, {"x": values}), [np.concatenate(rows)])
    _checked(freed)


def test_find_sequence_input_changes_nothing_and_tells_the_passes_after_it():
    model = _fixed_batch_model(batch=2)
    result, same = _apply("find_sequence_input", model, LoadContext())
    assert same is model and not result.changed
    assert result.updates["found"].name == "x" and result.updates["fixed_batch"] == 2


def test_space_to_batch_reads_tensorflows_form_as_a_dilated_conv(tmp_path):
    pytest.importorskip("tf2onnx")
    import keras

    from onnxism_converters import keras_to_onnx

    keras.utils.set_random_seed(7)
    inputs = keras.Input((None, 4))
    outputs = keras.layers.Conv1D(3, 3, padding="same", dilation_rate=2)(inputs)
    model = keras_to_onnx(keras.Model(inputs, outputs), tmp_path / "dilated.onnx")
    assert "SpaceToBatchND" in " ".join(node.name for node in model.graph.node)
    found = find_sequence_input(model.graph)
    result, rewritten = _apply("space_to_batch", model, LoadContext(found=found))
    assert result.changed and result.updates == {"dilated": 1}
    assert [node.op_type for node in rewritten.graph.node if node.op_type == "Conv"] == ["Conv"]
    assert not [node for node in rewritten.graph.node if node.op_type == "Reshape"]
    values = np.random.default_rng(8).standard_normal((2, 37, 4)).astype(np.float32)
    _assert_same(_run_ort(rewritten, {found.name: values}), _run_ort(model, {found.name: values}))
    _checked(rewritten)


def test_batch_unroll_unrolls_a_reverse_complement_stack(tmp_path):
    torch = pytest.importorskip("torch")
    from onnxism_converters import torch_to_onnx

    from test_batch_unroll import LENGTH, _perturbed

    model = torch_to_onnx(_perturbed("slices", seed=3), torch.zeros(2, 4, LENGTH), tmp_path / "stacked.onnx",
                          output_names=["profile", "counts"])
    found = find_sequence_input(model.graph)
    result, unrolled = _apply("batch_unroll", model, LoadContext(found=found))
    assert result.changed and result.updates == {"unrolled": 1}
    concats = [node for node in unrolled.graph.node if node.op_type == "Concat"
               and any(a.name == "axis" and a.i == 0 for a in node.attribute)]
    assert concats == []  # the stack along the batch is gone
    values = random_onehot(3, LENGTH, seed=9).transpose(0, 2, 1).copy()
    _assert_same(_run_ort(unrolled, {found.name: values}), _run_ort(model, {found.name: values}))
    _checked(unrolled)


# -- FAST_NORMALISE and GRADIENT_PREP -----------------------------------------------------------------------------
def _probe_context(model, length=10):
    found = find_sequence_input(model.graph)
    shape = [2, length, 4] if found.layout == "NLC" else [2, 4, length]
    return ProbeContext(found.name, shape, found.dtype, {})


def _length_first_gather():
    """torch's dynamo form of x[:, :, index]: Transpose (length first), GatherND with (K, 1) indices, back."""
    index = numpy_helper.from_array(np.array([[0], [2], [9], [4]], np.int64), "index")
    nodes = [helper.make_node("Transpose", ["x"], ["t"], perm=[2, 0, 1]),
             helper.make_node("GatherND", ["t", "index"], ["g"]),
             helper.make_node("Transpose", ["g"], ["y"], perm=[1, 2, 0])]
    return _model(nodes, [_float("x", ["N", 4, 10])], [_float("y", ["N", 4, 4])], [index])


def test_exporter_forms_bring_the_batch_back_first():
    model = _length_first_gather()
    result, rewritten = _apply("exporter_forms", model, _probe_context(model))
    assert result.changed and _ops(rewritten) == ["Gather", "Identity"]  # the Transposes composed away
    values = random_onehot(3, 10, seed=10).transpose(0, 2, 1).copy()
    np.testing.assert_array_equal(_run_ort(rewritten, {"x": values})[0], _run_ort(model, {"x": values})[0])
    _checked(rewritten)


def _split_model():
    """A gated activation's halves: Split over the channels (sizes as an input), Sigmoid of one times the other."""
    split = numpy_helper.from_array(np.array([2, 2], np.int64), "split")
    nodes = [helper.make_node("Split", ["x", "split"], ["a", "b"], axis=1),
             helper.make_node("Sigmoid", ["b"], ["g"]), helper.make_node("Mul", ["a", "g"], ["y"])]
    return _model(nodes, [_float("x", ["N", 4, 10])], [_float("y", ["N", 2, 10])], [split])


def test_probe_then_probed_forms_split_into_slices():
    model = _split_model()
    run = run_pipeline((STEPS["probe"], STEPS["probed_forms"]), model, _probe_context(model))
    (_, probed), (_, rewritten) = run.results
    assert not probed.changed and probed.updates["shapes"]["a"] == (2, 2, 10)
    assert rewritten.changed and _ops(run.proto) == ["Slice", "Slice", "Sigmoid", "Mul"]
    values = random_onehot(3, 10, seed=11).transpose(0, 2, 1).copy()
    np.testing.assert_array_equal(_run_ort(run.proto, {"x": values})[0], _run_ort(model, {"x": values})[0])
    _checked(run.proto)


def _reverse_model():
    """tf2onnx's ops.flip along the length: Transpose (time first), ReverseSequence with every length the whole
    axis (computed from the shape), Transpose back."""
    nodes = [helper.make_node("Transpose", ["x"], ["t"], perm=[1, 0, 2]),
             helper.make_node("Shape", ["t"], ["shape"]),
             helper.make_node("Gather", ["shape", "zero"], ["time"], axis=0),
             helper.make_node("Gather", ["shape", "one"], ["batch"], axis=0),
             helper.make_node("Unsqueeze", ["batch", "axis0"], ["batch1"]),
             helper.make_node("Expand", ["time", "batch1"], ["lengths"]),
             helper.make_node("ReverseSequence", ["t", "lengths"], ["r"], batch_axis=1, time_axis=0),
             helper.make_node("Transpose", ["r"], ["y"], perm=[1, 0, 2])]
    initializers = [numpy_helper.from_array(np.array(0, np.int64), "zero"),
                    numpy_helper.from_array(np.array(1, np.int64), "one"),
                    numpy_helper.from_array(np.array([0], np.int64), "axis0")]
    return _model(nodes, [_float("x", ["N", 10, 4])], [_float("y", ["N", 10, 4])], initializers, opset=13)


def test_whole_reverse_sequences_and_the_scatter_opset_prepare_the_gradient_graph():
    model = _reverse_model()
    run = run_pipeline(GRADIENT_PREP, model, _probe_context(model))
    (_, reversed_), (_, opset) = run.results
    assert reversed_.changed and opset.changed and "ReverseSequence" not in _ops(run.proto)
    assert {entry.version for entry in run.proto.opset_import if entry.domain in ("", "ai.onnx")} == {16}
    values = random_onehot(3, 10, seed=12)
    np.testing.assert_array_equal(_run_ort(run.proto, {"x": values})[0], _run_ort(model, {"x": values})[0])
    np.testing.assert_array_equal(_run_ort(run.proto, {"x": values})[0], values[:, ::-1])
    _checked(run.proto)


@pytest.mark.parametrize("name", sorted(STEPS))
def test_a_pass_with_nothing_to_do_returns_the_model_it_was_given(name):
    """On a plain Conv -> Relu model with a dynamic batch, at opset 18 and IR 10, no pass rewrites anything."""
    weight = numpy_helper.from_array(np.ones((2, 4, 3), np.float32), "w")
    model = _model([helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1]), helper.make_node("Relu", ["c"], ["y"])],
                   [_float("x", ["N", 4, 10])], [_float("y", ["N", 2, 10])], [weight])
    found = find_sequence_input(model.graph)
    ctx = _probe_context(model) if STEPS[name] in FAST_NORMALISE + GRADIENT_PREP else LoadContext(found=found)
    if name == "probed_forms":
        ctx = run_pipeline((STEPS["probe"],), model, ctx).ctx
    result, same = _apply(name, model, ctx)
    assert same is model and not result.changed


def test_every_listed_pass_is_tested_here():
    tested = {"repair_header", "explicit_same_pads", "erfc_as_erf", "fold_tokens", "find_sequence_input",
              "free_batch", "space_to_batch", "batch_unroll", "exporter_forms", "probe", "probed_forms",
              "whole_reverse_sequences", "scatter_opset"}
    assert set(STEPS) == tested
    assert all(isinstance(step, Pass) for step in STEPS.values())
