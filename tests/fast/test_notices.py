"""What fast ISM computes in full and what it announces: a notice for want of a local rule, none for what is
global by nature (decided by the op's own axes), and the ops whose axes leave the length alone windowed."""

import warnings

import pytest

import onnxism
from onnxism.fast.plan import build_plan

from conftest import random_onehot
from fast_checks import (
    _after_conv,
    assert_fast_equals_naive,
)


def test_op_without_a_local_rule_is_computed_in_full_with_a_notice():
    model = _after_conv("MeanVarianceNormalization", axes=[1])  # point-wise along the length, but no rule
    with pytest.warns(onnxism.OnnxismWarning, match="no local rule for MeanVarianceNormalization"):
        assert_fast_equals_naive(model, random_onehot(2, 12, seed=4))


@pytest.mark.parametrize("op_type, axis, by_nature", [
    ("TopK", 2, True), ("TopK", -1, True), ("TopK", 1, False),
    ("LpNormalization", -1, True), ("ReduceMax", 2, True), ("CumSum", 2, True),
])
def test_global_by_nature_is_decided_by_the_axes(op_type, axis, by_nature):
    """A node computed in full goes without a notice only where its own axes take in the length (a top-k, a
    reduction, a normalisation, a running sum along it): over the channels a TopK is point-wise but has no rule,
    so it gets a notice, and so would any op whose rule over the channels went missing."""
    from gradient_cases import Case

    c = Case(18)
    conv = c.op("Conv", [c.ncl(), c.w(3, 4, 3), c.w(3)], pads=[1, 1])
    if op_type == "TopK":
        node = c.op("TopK", [conv, c.ints([2])], outputs=2, axis=axis)[0]
    elif op_type == "CumSum":
        node = c.op("CumSum", [conv, c.ints(axis)])
    elif op_type == "ReduceMax":
        node = c.op("ReduceMax", [conv, c.ints([axis])], keepdims=1)
    else:
        node = c.op(op_type, [conv], axis=axis)
    c.nodes[-1].name = "under_test"
    model = c.model(c.op("Flatten", [c.op("Relu", [node])], axis=1))
    expected, no_rule = build_plan(onnxism.load(model), 12, ["y"]).plan.analysis.split_notices()
    named = ([notice.node for notice in notices] for notices in (expected, no_rule))
    assert tuple(named) == ((["under_test"], []) if by_nature else ([], ["under_test"]))
    if not by_nature:
        with pytest.warns(onnxism.OnnxismWarning, match="no local rule for TopK node 'under_test'"):
            assert_fast_equals_naive(model, random_onehot(2, 12, seed=4))


@pytest.mark.parametrize("axis, p, windowed", [(1, 2, True), (-2, 1, True), (2, 2, False), (-1, 1, False)])
def test_lp_normalization_over_the_channels_is_windowed(axis, p, windowed):
    """An LpNormalization over the channels is point-wise along the length; over the length it is global by
    nature (computed in full, without a notice)."""
    model = _after_conv("LpNormalization", axis=axis, p=p)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert_fast_equals_naive(model, random_onehot(3, 12, seed=5, n_fraction=0.1))
    mode = build_plan(onnxism.load(model), 12, ["y"]).plan.analysis.modes["under_test"]
    assert mode == ("windowed" if windowed else "full")


@pytest.mark.parametrize("attrs", [
    {"p": 2, "kernel_shape": [2], "strides": [1], "pads": [1, 0]},
    {"p": 1, "kernel_shape": [3], "strides": [2], "pads": [0, 2]},
    {"p": 3, "kernel_shape": [3], "strides": [2], "pads": [1, 2], "dilations": [2]},
    {"kernel_shape": [3], "auto_pad": "SAME_LOWER"},
    {"p": 2, "kernel_shape": [3], "strides": [3], "ceil_mode": 1},
    {"p": 2, "kernel_shape": [3], "strides": [2], "ceil_mode": 1},
], ids=["p2-pad", "p1-strided", "p3-dilated", "same", "ceil", "ceil-overhang"])
def test_lp_pools_are_windowed(attrs):
    """An LpPool ((sum |x|^p over the window)^(1/p); its pads count as zeros) is windowed like an AveragePool, with
    any p, stride, dilation or pads; with ceil_mode, a last window reaching past the end pad (whose handling
    onnxruntime and onnx's reference differ on) is computed in full."""
    model = _after_conv("LpPool", **attrs)
    overhang = attrs.get("ceil_mode") and (12 - 3) % attrs["strides"][0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore" if overhang else "error")
        assert_fast_equals_naive(model, random_onehot(3, 12, seed=2, n_fraction=0.1))
    mode = build_plan(onnxism.load(model), 12, ["y"]).plan.analysis.modes["under_test"]
    assert mode == ("full" if overhang else "windowed")


@pytest.mark.parametrize("axis, windowed", [(1, True), (2, False), (-1, False)])
def test_running_sums(axis, windowed):
    """CumSum along the channels is windowed; along the length it is global by nature: computed in full, without
    a notice."""
    model = _after_conv("CumSum", [axis])
    seqs = random_onehot(2, 12, seed=5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert_fast_equals_naive(model, seqs)
    plan = build_plan(onnxism.load(model), 12, ["y"]).plan
    assert (plan.analysis.modes["under_test"] == "windowed") == windowed


def test_a_join_with_a_global_tensor_is_global_by_nature():
    """A squeeze-excitation gate (the trunk times a function of its mean over the length) changes every column:
    computed in full as expected, with no notice of a missing rule."""
    from gradient_cases import Case

    c = Case(18)
    trunk = c.op("Relu", [c.op("Conv", [c.ncl(), c.w(3, 4, 3), c.w(3)], pads=[1, 1])])
    gate = c.op("Sigmoid", [c.op("ReduceMean", [trunk, c.ints([2])], keepdims=1)])
    joined = c.op("Mul", [trunk, gate])
    c.nodes[-1].name = "gated"
    model = c.model(c.op("Flatten", [c.op("Conv", [joined, c.w(2, 3, 3), c.w(2)], pads=[1, 1])], axis=1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert_fast_equals_naive(model, random_onehot(2, 12, seed=8))
    by_nature, no_rule = build_plan(onnxism.load(model), 12, ["y"]).plan.analysis.split_notices()
    assert no_rule == [] and any(notice.node == "gated" for notice in by_nature)


def test_a_join_with_a_tensor_of_shapes_alone_is_announced():
    """A tensor computed from the batch's shape alone (a computed constant expanded to the trunk's Shape) is
    computed in full but is the same for every substitution: the op joining it to the trunk is computed in full for
    want of a rule, so it gets the notice, where a join with a tensor that changes everywhere (the gate above) does
    not. (The Expand of a constant itself is read as its row: next test.)"""
    from gradient_cases import Case

    c = Case(18)
    trunk = c.op("Relu", [c.op("Conv", [c.ncl(), c.w(3, 4, 3), c.w(3)], pads=[1, 1])])
    offsets = c.op("Expand", [c.op("Sigmoid", [c.w(1, 3, 12)]), c.op("Shape", [trunk])])  # not a constant's Expand
    c.op("Add", [trunk, offsets])
    c.nodes[-1].name = "offset"
    model = c.model(c.op("Flatten", [c.op("Conv", [c.nodes[-1].output[0], c.w(2, 3, 3), c.w(2)], pads=[1, 1])],
                                     axis=1))
    with pytest.warns(onnxism.OnnxismWarning, match="Add node 'offset' .it joins a tensor computed from the batch"):
        assert_fast_equals_naive(model, random_onehot(2, 12, seed=8))
    by_nature, no_rule = build_plan(onnxism.load(model), 12, ["y"]).plan.analysis.split_notices()
    assert [notice.node for notice in no_rule] == ["offset"]


@pytest.mark.parametrize("op_type, tile", [("Add", False), ("Mul", True), ("Max", False)])
def test_an_elementwise_op_of_a_constant_broadcast_along_the_batch_is_windowed(op_type, tile):
    """A constant expanded (Expand to the trunk's Shape) or tiled (Tile by [N, 1, 1]) to the batch, joined to the
    trunk by an element-wise op, is read as its one row (``normalise``): the op is windowed, with no notice."""
    from gradient_cases import Case

    c = Case(18)
    trunk = c.op("Relu", [c.op("Conv", [c.ncl(), c.w(3, 4, 3), c.w(3)], pads=[1, 1])])
    shape = c.op("Shape", [trunk])
    if tile:
        rows = c.op("Concat", [c.op("Slice", [shape, c.ints([0]), c.ints([1])]), c.ints([1, 1])], axis=0)
        constant = c.op("Tile", [c.w(1, 3, 12), rows])
    else:
        constant = c.op("Expand", [c.w(3, 12), shape])  # a lower rank, broadcast by the Expand
    c.op(op_type, [trunk, constant])
    c.nodes[-1].name = "under_test"
    model = c.model(c.op("Flatten", [c.op("Conv", [c.nodes[-1].output[0], c.w(2, 3, 3), c.w(2)], pads=[1, 1])],
                                     axis=1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert_fast_equals_naive(model, random_onehot(2, 12, seed=8))
    assert build_plan(onnxism.load(model), 12, ["y"]).plan.analysis.modes["under_test"] == "windowed"


@pytest.mark.parametrize("op_type, include_pad", [("MaxPool", 0), ("AveragePool", 0), ("AveragePool", 1)])
@pytest.mark.parametrize("pads", [(0, 0), (1, 1), (2, 0)])
def test_ceil_mode_pools_are_windowed(op_type, include_pad, pads):
    """A ceil_mode pool whose last window reaches past the end pad (12 columns, kernel 3, stride 2: one more
    window than floor mode) is windowed; an AveragePool divides by the columns it counts, the pads too where
    count_include_pad says so, never the overhang."""
    attrs = {"count_include_pad": include_pad} if op_type == "AveragePool" else {}
    model = _after_conv(op_type, kernel_shape=[3], strides=[2], pads=list(pads), ceil_mode=1, **attrs)
    loaded = onnxism.load(model)
    assert loaded.output_shapes()["y"][0] == 2 * ((12 + sum(pads) - 3) // 2 + 2)  # the overhanging window is there
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert_fast_equals_naive(model, random_onehot(3, 12, seed=7, n_fraction=0.1))
    assert build_plan(loaded, 12, ["y"]).plan.analysis.modes["under_test"] == "windowed"


@pytest.mark.parametrize("op_type", ["Softmax", "LogSoftmax", "Hardmax"])
@pytest.mark.parametrize("opset, axis", [(11, 1), (12, -2), (11, None), (13, 1)])
def test_softmax_axes_by_opset(op_type, opset, axis):
    """Before opset 13 a Softmax over axis 1 of (N, C, L) normalises channels and length together (2-D at the axis):
    global along the length, unlike the same node from opset 13 on."""
    model = _after_conv(op_type, opset=opset, **({} if axis is None else {"axis": axis}))
    assert_fast_equals_naive(model, random_onehot(2, 12, seed=6))


def _analysis(model, length=12):
    loaded = onnxism.load(model)
    return build_plan(loaded, length, loaded.output_names).plan.analysis


@pytest.mark.parametrize("equation, by_nature", [
    ("ncl,ncm->nlm", True),  # the scores of every pair of positions (attention's query-key product)
    ("nlm,ncm->ncl", True),  # a weighted sum over positions (attention's output): the length summed over
    ("...l,...l->...l", False),  # point-wise along the length, but written with an ellipsis the rule does not read
])
def test_an_einsum_is_global_by_nature_where_it_mixes_positions(equation, by_nature):
    """An Einsum of windowed operands that multiplies entries of different positions is global by nature whichever
    exporter wrote it (no notice); one that keeps each position apart but has no rule is announced."""
    from gradient_cases import Case

    c = Case(18)
    conv = c.op("Relu", [c.op("Conv", [c.ncl(), c.w(3, 4, 3), c.w(3)], pads=[1, 1])])
    first = c.op("Einsum", [conv, conv], equation="ncl,ncm->nlm") if equation.startswith("nlm") else conv
    node = c.op("Einsum", [first, conv], equation=equation)
    c.nodes[-1].name = "under_test"
    model = c.model(c.op("Flatten", [c.op("Tanh", [node])], axis=1))
    expected, no_rule = _analysis(model).split_notices()
    assert ("under_test" in [notice.node for notice in expected]) == by_nature
    assert ("under_test" in [notice.node for notice in no_rule]) == (not by_nature)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert_fast_equals_naive(model, random_onehot(2, 12, seed=3))
    announced = [str(w.message) for w in caught if issubclass(w.category, onnxism.OnnxismWarning)]
    assert bool(announced) == (not by_nature), announced


@pytest.mark.parametrize("feeds, by_nature", [("GRU", True), ("LSTM", True), ("Conv", False)])
def test_a_batch_moved_before_a_recurrent_layer_is_global_by_nature(feeds, by_nature):
    """The time-major Transpose exporters put before a GRU or LSTM moves the batch off the first axis: computed in
    full, as the recurrent layer after it is anyway (no notice). The same Transpose with a convolution after it
    (moved back first) is announced: a batch-first graph would have windowed it."""
    from gradient_cases import Case

    c = Case(18)
    trunk = c.op("Relu", [c.op("Conv", [c.ncl(), c.w(3, 4, 3), c.w(3)], pads=[1, 1])])
    time_major = c.op("Relu", [c.op("Transpose", [trunk], perm=[2, 0, 1])])  # (L, N, C)
    c.nodes[-2].name = "moved"
    if feeds == "Conv":
        out = c.op("Conv", [c.op("Transpose", [time_major], perm=[1, 2, 0]), c.w(2, 3, 3)], pads=[1, 1])
    else:
        gates = (3 if feeds == "GRU" else 4) * 2
        y = c.op(feeds, [time_major, c.w(1, gates, 3), c.w(1, gates, 2)], outputs=2, hidden_size=2)[0]
        out = c.op("Transpose", [c.op("Squeeze", [y, c.ints([1])])], perm=[1, 0, 2])
    model = c.model(c.op("Flatten", [out], axis=1))
    expected, no_rule = _analysis(model).split_notices()
    moved = [notice for notice in expected + no_rule if notice.node == "moved"]
    assert len(moved) == 1 and moved[0].by_nature == by_nature
    assert (f"before the {feeds} node" in str(moved[0])) == by_nature
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert_fast_equals_naive(model, random_onehot(2, 12, seed=5))
    announced = [str(w.message) for w in caught if issubclass(w.category, onnxism.OnnxismWarning)]
    assert bool(announced) != by_nature and all("no local rule for Transpose node 'moved'" in m for m in announced)


@pytest.mark.parametrize("name", ["einsum_attention", "danq_gru", "danq_lstm"])
def test_legacy_torch_attention_and_recurrent_layers_announce_no_missing_rule(name, tmp_path):
    """Attention in Einsums and DanQ's bidirectional GRU or LSTM as the legacy torch exporter writes them: global by
    nature, no "no local rule" notice (so no warning); the convolutional trunk before them stays windowed. (The
    dynamo exports, nn.MultiheadAttention's too, in ``test_exactness``; the gradients of both exports in
    ``tests/gradients/test_recurrent.py``.)"""
    import torch

    from onnxism_converters import torch_to_onnx

    from architectures import LENGTH, modern

    torch.manual_seed(1)
    path = tmp_path / f"{name}.onnx"
    torch_to_onnx(modern()[name].eval(), torch.zeros(2, 4, LENGTH), path, dynamo=False)
    analysis = _analysis(path, LENGTH)
    expected, no_rule = analysis.split_notices()
    assert no_rule == [] and expected
    assert "windowed" in analysis.modes.values()  # the trunk


@pytest.mark.parametrize("recurrent", ["GRU", "LSTM"])
def test_keras_recurrent_layers_announce_no_missing_rule(recurrent):
    """Keras's Bidirectional(LSTM) through tf2onnx is an LSTM node, its GRU a Loop over time (whose body reads the
    time-major sequence): either is global by nature, announced as such and not as a missing rule, and fast ISM
    equals naive ISM."""
    keras = pytest.importorskip("keras")
    from keras import layers

    from onnxism_converters import keras_to_onnx

    keras.utils.set_random_seed(0)
    x = keras.Input((16, 4))
    h = layers.MaxPooling1D(2)(layers.Conv1D(4, 5, padding="same", activation="relu")(x))
    h = layers.Bidirectional(getattr(layers, recurrent)(3, return_sequences=True))(h)
    proto = keras_to_onnx(keras.Model(x, layers.Dense(2)(layers.Flatten()(h))))
    expected, no_rule = _analysis(proto, 16).split_notices()
    assert no_rule == []
    assert any(f"before the {'LSTM' if recurrent == 'LSTM' else 'Loop'} node" in str(n) for n in expected)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert_fast_equals_naive(proto, random_onehot(2, 16, seed=6))
    assert not [w for w in caught if issubclass(w.category, onnxism.OnnxismWarning)]
