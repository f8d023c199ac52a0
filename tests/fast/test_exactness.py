"""Fast ISM equals naive ISM, exactly where it counts: the zoo through both export paths, the bundled example,
an architecture suite broader than fastISM's, layers global by nature, and the whole length at both ends.

Tolerance (stated): max |fast - naive| <= 1e-4 * max(1, max |output|), every position, edges included.
"""

import warnings

import numpy as np
import pytest

import onnxism
from onnxism.fast.plan import build_plan
from onnxism.fast.windows import Notice, Reason

from architectures import ARCHITECTURES, KERAS_MODERN, LENGTH, MODERN, export_architecture, keras_modern
from conftest import SMALL_ZOO, random_onehot
from fast_checks import (
    assert_fast_equals_naive,
    assert_scorers_agree_on_random_values,
    delta_conv_modes,
    head_kinds,
    ops_without_a_local_rule,
)
from onnx_builders import conv_model


@pytest.mark.parametrize("layout", ["NLC", "NCL"])
def test_fast_on_a_handmade_graph(layout):
    assert_fast_equals_naive(conv_model(layout=layout), random_onehot(3, 20, seed=1, n_fraction=0.1))


def test_fast_on_the_bundled_example(example_model, example_seqs):
    naive, fast = assert_fast_equals_naive(example_model, example_seqs[:3])
    assert np.abs(naive["logit"]).max() > 1  # a trained model with real effects


@pytest.mark.parametrize("name", SMALL_ZOO)
@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_fast_equals_naive_on_the_zoo(zoo_export, name, framework):
    path, _ = zoo_export(name, framework)
    length = onnxism.load(path).length
    assert_fast_equals_naive(path, random_onehot(2, length, seed=21, n_fraction=0.02), batch_size=97)
    assert_scorers_agree_on_random_values(path, length)


def test_fast_on_a_length_agnostic_graph():
    assert_fast_equals_naive(conv_model(length="L"), random_onehot(2, 31, seed=2))


def test_fast_window_and_batch_invariance(zoo_export):
    path, _ = zoo_export("bpnet_small", "torch")
    seqs = random_onehot(3, 100, seed=22)
    full = onnxism.ism(path, seqs, method="fast", batch_size=50)
    window = onnxism.ism(path, seqs, method="fast", positions=(0, 7), batch_size=13)
    for name in full:
        np.testing.assert_allclose(window[name], full[name][:, :7], rtol=0, atol=1e-5)



#: The linear global layers each architecture must get as incremental heads (the rest are computed in full).
EXPECTED_HEADS = {
    "valid_even_kernel": ["DenseHead"], "same_even_dilated": ["MeanHead"],
    "strided_conv_overlapping_padded_pools": ["DenseHead"], "outputs_at_different_depths": ["DenseHead"],
    "cropping": ["DenseHead"], "global_avg_and_max_heads": ["MeanHead"], "delta_convs_dilated_stacked": ["DenseHead"],
    "strided_conv_transposes": ["DenseHead"], "reverse_complement_average": ["DenseHead"],
    "softmax_pooling_and_channel_groups": ["DenseHead"], "grouped_and_depthwise_convs": ["DenseHead"],
    "gated_activations_and_length_split": ["DenseHead"], "constant_flanks_and_position_channels": ["DenseHead"],
}


#: How each architecture's delta convolutions sum their contributions (``build/convs.delta_conv``): "column" when
#: the input changes on fewer columns than the taps, "tap" otherwise; the rest have none.
EXPECTED_DELTA_CONVS = {"delta_convs_dilated_stacked": ["column", "tap"], "conv_transpose_as_conv": ["column"],
                        "gated_activations_and_length_split": ["column"]}


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_fast_equals_naive_on_architecture(name, tmp_path):
    path, _ = export_architecture(name, tmp_path)
    length = LENGTH
    assert head_kinds(path, length)[0] == EXPECTED_HEADS.get(name, [])
    assert delta_conv_modes(path, length) == EXPECTED_DELTA_CONVS.get(name, [])
    assert ops_without_a_local_rule(path, length) == []
    seqs = random_onehot(2, length, seed=5, n_fraction=0.05)
    assert_fast_equals_naive(path, seqs, batch_size=50)
    assert_scorers_agree_on_random_values(path, length)


@pytest.mark.parametrize("name", MODERN)
def test_fast_equals_naive_on_modern_layers(name, tmp_path):
    """Attention, normalisations over the length, running sums, sorting, gating and recurrent layers are global:
    computed in full, exactly, and announced as global by nature, not as missing rules (nn.MultiheadAttention's
    batch moved before its query-key product, the Transpose before DanQ's LSTM or GRU). Comparisons of windowed
    tensors (a Softplus's threshold, masks from two depths) are windowed."""
    path, _ = export_architecture(name, tmp_path)
    model = onnxism.load(path)
    assert build_plan(model, LENGTH, model.output_names).plan.analysis.split_notices()[1] == []
    if name == "softplus_where_head":
        model = onnxism.load(path)
        assert build_plan(model, LENGTH, model.output_names).plan.analysis.notices == []
    if name == "instance_norm":  # normalised over the length: global by nature, so no notice
        model = onnxism.load(path)
        analysis = build_plan(model, LENGTH, model.output_names).plan.analysis
        instance = [notice for notice in analysis.notices if notice.op == "InstanceNormalization"]
        assert instance and all(notice.by_nature for notice in instance)
    assert_fast_equals_naive(path, random_onehot(2, LENGTH, seed=6, n_fraction=0.05), batch_size=50)


@pytest.mark.parametrize("name", KERAS_MODERN)
def test_fast_equals_naive_on_modern_keras_layers(name, tmp_path):
    """Through tf2onnx: Keras's GELU (Erfc) loads; its crop (a Slice of every axis, the batch from 0 to the end) is
    windowed; the rest as in PyTorch. The GroupNormalization model once made fast ISM fall back to naive: its
    analysis looked nodes up by id() of protobuf elements, which do not last."""
    from onnxism_converters import keras_to_onnx

    path = tmp_path / f"{name}.onnx"
    keras_to_onnx(keras_modern(name), path)
    model = onnxism.load(path)
    notices = build_plan(model, LENGTH, model.output_names).plan.analysis.notices
    if name in ("upsample_crop_pad", "constant_flanks"):  # the flanks' Concat: a shift and a constant (normalise)
        assert [notice.op for notice in notices] == ["Reshape"]  # the Flatten before the Dense
    if name == "chrombpnet":  # only the two counts' poolings are computed in full
        by_nature, no_rule = build_plan(model, LENGTH, model.output_names).plan.analysis.split_notices()
        assert no_rule == [] and [notice.op for notice in by_nature] == ["ReduceMean"] * 2
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert_fast_equals_naive(path, random_onehot(2, LENGTH, seed=7, n_fraction=0.05), batch_size=50)
    assert not [w for w in caught if "naive ISM" in str(w.message)]  # no fallback


@pytest.mark.slow
@pytest.mark.parametrize("name, framework", [("basset", "torch"), ("factorized_basset", "keras"), ("bpnet", "keras"),
                                             ("bpnet", "torch"), ("deepsea", "torch"), ("beluga", "torch")])
def test_fast_equals_naive_on_the_full_size_zoo_at_both_ends(zoo_export, name, framework):
    path, _ = zoo_export(name, framework)
    model = onnxism.load(path)
    seqs = random_onehot(1, model.length, seed=23, n_fraction=0.01)
    for positions in ((0, 6), (model.length // 2 - 3, model.length // 2 + 3), (model.length - 6, model.length)):
        assert_fast_equals_naive(model, seqs, positions=positions)


def test_a_windowed_tensor_broadcast_along_the_length_is_computed_in_full():
    """A Conv as wide as the sequence gives one column, which an Add with a constant (1, C, L) broadcasts along
    the length: every output column changes with every substitution, so the Add has no window of its own (a rule
    that took the one column's window for the output's missed the rest)."""
    from onnx import TensorProto, helper, numpy_helper

    length, rng = 12, np.random.default_rng(8)
    weight = numpy_helper.from_array(rng.standard_normal((3, 4, length)).astype(np.float32), "w")
    offsets = numpy_helper.from_array(rng.standard_normal((1, 3, length)).astype(np.float32), "offsets")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["c"]), helper.make_node("Add", ["c", "offsets"], ["y"])], "broadcast",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4, length])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3, length])], [weight, offsets])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 10
    notices = build_plan(onnxism.load(model), length, ["y"]).plan.analysis.notices
    assert notices == [Notice("node1", "Add", Reason.NO_RULE)]
    assert_fast_equals_naive(model, random_onehot(2, length, seed=3))
