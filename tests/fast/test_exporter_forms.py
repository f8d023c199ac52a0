"""Exporters' forms of common layers (torch's dynamo and legacy exporters, tf2onnx's Keras) are windowed: each
against naive ISM, with no notice where it is windowed."""


import warnings

import numpy as np
import pytest

import onnxism
from onnxism.fast.plan import build_plan

from conftest import random_onehot
from fast_checks import (
    _assert_windowed_without_notice,
    assert_fast_equals_naive,
    assert_keras_model_windowed,
    assert_scorers_agree_on_random_values,
    head_kinds,
    ops_without_a_local_rule,
)
from onnx_builders import resize_model


@pytest.mark.parametrize("dynamo", [True, False], ids=["dynamo", "legacy"])
def test_positional_embeddings_of_a_range_are_windowed(tmp_path, dynamo):
    """A learned positional embedding looked up at ``arange(L)`` and added to the trunk: the legacy exporter writes
    the Range of the length from the input's Shape and the lookup as a Gather from the table (200 x 8 values),
    computed from constants once the length is folded; its value is then a constant that varies along the length,
    so the Add is windowed (until this version only values of up to 64 entries were known: it was computed in full,
    and everything after it, with the notice). The dynamo exporter writes the lookup's result as a constant."""
    torch = pytest.importorskip("torch")
    from torch import nn

    class Positional(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.position, self.b = nn.Conv1d(4, 8, 5, padding=2), nn.Embedding(200, 8), nn.Conv1d(8, 3, 3)
            self.d = nn.Linear(3 * 198, 2)

        def forward(self, x):
            h = torch.relu(self.a(x)) + self.position(torch.arange(x.shape[2], device=x.device)).T
            return self.d(torch.relu(self.b(h)).flatten(1))

    torch.manual_seed(6)
    model = _assert_windowed_without_notice(Positional(), 200, tmp_path / "positional.onnx", dynamo, seed=4)
    assert ("Range" in {node.op_type for node in model.proto.graph.node}) == (not dynamo)


@pytest.mark.parametrize("dynamo", [True, False], ids=["dynamo", "legacy"])
def test_sequences_padded_by_concatenated_constants_are_windowed(tmp_path, dynamo):
    """``torch.cat([torch.zeros(n, 4, 3), x, torch.full((n, 4, 4), 0.25)], 2)``: padding written as a Concat of
    tensors made for the batch (the dynamo exporter's Expand of a scalar, the legacy exporter's ConstantOfShape)
    is a shift and a constant (``normalise``): windowed, with no notice (before, computed in full with one)."""
    torch = pytest.importorskip("torch")
    from torch import nn

    class Padded(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.d = nn.Conv1d(4, 6, 5), nn.Linear(6 * 43, 2)

        def forward(self, x):
            n = x.shape[0]
            x = torch.cat([torch.zeros(n, 4, 3), x, torch.full((n, 4, 4), 0.25)], 2)
            return self.d(torch.relu(self.a(x)).flatten(1))

    torch.manual_seed(7)
    _assert_windowed_without_notice(Padded(), 40, tmp_path / "padded.onnx", dynamo, seed=3)


@pytest.mark.parametrize("dynamo", [True, False], ids=["dynamo", "legacy"])
def test_expand_as_and_l2_normalisation_are_windowed(tmp_path, dynamo):
    """torch's F.normalize over the channels and ``expand_as`` write an Expand whose shape is computed from the
    tensor's Shape (with the batch, so not a constant; the dynamo exporter's Shape-15 takes a range of axes): it
    broadcasts the channels only, so it is windowed, and nothing is computed in full but the Flatten of the Dense
    head."""
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F
    from torch import nn

    from onnxism_converters import torch_to_onnx

    class Normalised(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv1d(4, 6, 5, padding=2), nn.Conv1d(6, 5, 3, padding=1)
            self.d = nn.Linear(5 * 30, 2)

        def forward(self, x):
            h = F.normalize(self.a(x), dim=1)
            h = F.relu(self.b(h))
            h = h * torch.sigmoid(h.mean(1, keepdim=True)).expand_as(h)
            return h, self.d(h.flatten(1))

    torch.manual_seed(5)
    path = tmp_path / "normalised.onnx"
    torch_to_onnx(Normalised().eval(), torch.zeros(2, 4, 30), path, dynamo=dynamo)
    model = onnxism.load(path)
    assert "Expand" in {node.op_type for node in model.proto.graph.node}
    notices = build_plan(model, 30, model.output_names).plan.analysis.notices
    assert [notice.op for notice in notices] in (["Reshape"], ["Flatten"]), notices
    assert_fast_equals_naive(model, random_onehot(2, 30, seed=4, n_fraction=0.05))


@pytest.mark.parametrize("dynamo", [True, False], ids=["dynamo", "legacy"])
def test_per_position_einsums_are_windowed(tmp_path, dynamo):
    """An Einsum contracting the channels with a weight ("ncl,cd->ndl", "ncl,dc->nld") is a Dense at each
    position, and one of two tensors at the same positions ("ncl,ncl->nl") a dot product at each: windowed. One
    whose weight varies along the length ("ncl,cl->nl", "nlc,lc->nl") is rewritten as a product and a sum over the
    channels, windowed; one that mixes positions ("ncl,ncm->nlm") is computed in full. Fast equals naive
    throughout."""
    torch = pytest.importorskip("torch")
    from torch import nn

    from onnxism_converters import torch_to_onnx

    class Einsums(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv1d(4, 6, 5, padding=2), nn.Conv1d(5, 4, 3, padding=1)
            self.c = nn.Conv1d(3, 3, 3, padding=1)
            self.w1, self.w2 = nn.Parameter(torch.randn(6, 5) / 2), nn.Parameter(torch.randn(3, 4) / 2)
            self.positional, self.along = nn.Parameter(torch.randn(3, 30)), nn.Parameter(torch.randn(30, 3))

        def forward(self, x):
            h = torch.relu(torch.einsum("ncl,cd->ndl", self.a(x), self.w1))
            h = torch.einsum("ncl,dc->nld", self.b(h), self.w2)  # (N, L, 3)
            profile = torch.tanh(h).transpose(1, 2)
            weighted = torch.einsum("ncl,cl->nl", profile, self.positional)
            weighted = weighted + torch.einsum("nlc,lc->nl", h, self.along)
            similarity = torch.einsum("ncl,ncm->nlm", profile, profile).mean((1, 2))
            dot = torch.einsum("ncl,ncl->nl", profile, torch.sigmoid(self.c(profile)))
            return profile, weighted, similarity, dot

    torch.manual_seed(6)
    path = tmp_path / "einsums.onnx"
    torch_to_onnx(Einsums().eval(), torch.zeros(2, 4, 30), path, dynamo=dynamo)
    model = onnxism.load(path)
    plan = build_plan(model, 30, model.output_names).plan
    einsums = {node.name or f"node{index}": node.input for index, node in enumerate(model.proto.graph.node)
               if node.op_type == "Einsum"}
    assert len(einsums) == 6
    modes = plan.analysis.modes
    assert sorted(modes[key] for key in einsums if key in modes) == ["full", "windowed", "windowed", "windowed"]
    products = [key for key in modes if key.endswith("__product")]
    assert len(products) == 2 and {modes[key] for key in products} == {"windowed"}, modes
    assert [notice.op for notice in plan.analysis.notices] == ["Einsum"], plan.analysis.notices
    assert_fast_equals_naive(model, random_onehot(2, 30, seed=4, n_fraction=0.05))


def test_keras_conv1d_transpose_is_windowed_through_its_shape_arithmetic(tmp_path):
    """tf2onnx writes Keras's Conv1DTranspose as a ConvTranspose whose output is cropped by a Slice and a Pad with
    bounds computed from its Shape: those bounds do not depend on the batch, so they fold into constants and the
    whole layer is windowed (no op computed in full), 'same' with stride 2 and 'valid' with stride 3."""
    pytest.importorskip("tf2onnx")
    import keras

    from onnxism_converters import keras_to_onnx

    keras.utils.set_random_seed(4)
    layers = keras.layers
    inputs = keras.Input((40, 4))
    hidden = layers.Conv1D(6, 3, padding="same", activation="relu")(inputs)
    hidden = layers.Conv1DTranspose(5, 5, strides=2, padding="same", activation="relu")(hidden)
    hidden = layers.Conv1DTranspose(3, 4, strides=3, padding="valid")(hidden)
    model = keras.Model(inputs, layers.Dense(2)(layers.Flatten()(hidden)))
    path = tmp_path / "conv1d_transpose.onnx"
    keras_to_onnx(model, path)
    assert ops_without_a_local_rule(path, 40) == []
    plan = build_plan(onnxism.load(path), 40, onnxism.load(path).output_names).plan
    assert "folded" in plan.analysis.modes.values()
    assert_fast_equals_naive(path, random_onehot(2, 40, seed=8, n_fraction=0.05), batch_size=50)


def test_resize_in_every_mode_onnxruntime_runs_is_windowed():
    """The Resize op along the length, linear (half_pixel, as torch's TorchScript exporter writes upsampling;
    align_corners to 3L), linear antialiased down to L, nearest by 1.5: each is read off onnxruntime as weighted
    taps (2, 2, 5) or a column map (1), and nothing but the Flatten is computed in full."""
    model = onnxism.load(resize_model())
    plan = build_plan(model, 40, model.output_names).plan
    resizes = [rule for key, rule in plan.analysis.rules.items() if getattr(rule, "column_map", None) is not None]
    assert [np.atleast_2d(rule.column_map).shape[0] for rule in resizes] == [2, 2, 5, 1]
    assert ops_without_a_local_rule(model, 40) == []
    assert_fast_equals_naive(model, random_onehot(2, 40, seed=6, n_fraction=0.05), batch_size=50)
    assert_scorers_agree_on_random_values(model, 40)


def test_a_length_map_reading_too_many_columns_is_computed_in_full(monkeypatch):
    """A Resize whose outputs each read more than MAX_RESIZE_TAPS input columns has no local rule: the first Resize
    and all after it are computed in full, exactly, with the notice (here with the limit lowered to 1, so that the
    2-tap linear Resize exceeds it)."""
    import onnxism.graph.length_map as length_map

    monkeypatch.setattr(length_map, "MAX_RESIZE_TAPS", 1)
    model = onnxism.load(resize_model())
    notices = ops_without_a_local_rule(model, 40)
    assert [notice.op for notice in notices] == ["Resize"]  # the first; the rest read a full tensor
    with pytest.warns(onnxism.OnnxismWarning, match="no local rule for Resize"):
        assert_fast_equals_naive(model, random_onehot(2, 40, seed=12, n_fraction=0.05), batch_size=50)


def test_length_maps_are_read_at_any_length():
    """The comb probe reads a Resize's map with a few onnxruntime runs whatever the length: at 6000 columns (the map
    of the x2 linear Resize alone has 72 M entries) every Resize is windowed, and fast equals naive at both ends and
    inside."""
    length = 6000
    model = onnxism.load(resize_model(length=length))
    assert ops_without_a_local_rule(model, length) == []
    seqs = random_onehot(1, length, seed=14, n_fraction=0.05)
    for positions in [(0, 3), (2999, 3002), (length - 3, length)]:
        fast = onnxism.ism(model, seqs, method="fast", positions=positions)
        naive = onnxism.ism(model, seqs, method="naive", positions=positions)
        for name in naive:
            scale = max(1.0, float(np.abs(naive[name]).max()))
            np.testing.assert_allclose(fast[name], naive[name], rtol=0, atol=1e-4 * scale)


def test_keras_upsampling1d_is_windowed(tmp_path):
    """tf2onnx writes Keras's UpSampling1D as Unsqueeze, Tile along the new axis and a Reshape merging it into the
    length, whose target is computed from the tensor's Shape and the batch: the Tile is pointwise along the length
    and the Reshape local (input column i becomes columns [i*k, i*k + k)), so the whole model is windowed."""
    pytest.importorskip("tf2onnx")
    import keras

    from onnxism_converters import keras_to_onnx

    keras.utils.set_random_seed(5)
    layers = keras.layers
    inputs = keras.Input((40, 4))
    hidden = layers.Conv1D(6, 5, padding="same", activation="relu")(inputs)
    hidden = layers.UpSampling1D(2)(hidden)
    hidden = layers.Conv1D(5, 3, padding="same", activation="relu")(hidden)
    hidden = layers.UpSampling1D(3)(hidden)
    hidden = layers.MaxPooling1D(4)(hidden)
    model = keras.Model(inputs, layers.Dense(2)(layers.Flatten()(hidden)))
    path = tmp_path / "upsampling1d.onnx"
    keras_to_onnx(model, path)
    assert_keras_model_windowed(path, ["DenseHead"], seed=9)


def test_keras_dense_per_position_is_windowed(tmp_path):
    """tf2onnx writes a Keras Dense on a (N, L, C) tensor as Reshape to (N * L, C), MatMul, Reshape back (its target
    from the tensor's Shape), then the bias: the batch leaves the first axis in between. ``normalise`` computes the
    MatMul on the tensor itself, so the Dense is point-wise and the convolution after it windowed."""
    pytest.importorskip("tf2onnx")
    import keras

    from onnxism_converters import keras_to_onnx

    keras.utils.set_random_seed(8)
    layers = keras.layers
    inputs = keras.Input((40, 4))
    hidden = layers.Conv1D(8, 5, padding="same", activation="relu")(inputs)
    hidden = layers.Dense(6, activation="relu", bias_initializer="random_normal")(hidden)
    hidden = layers.Conv1D(5, 3, padding="same", activation="relu")(hidden)
    model = keras.Model(inputs, [layers.Dense(2)(layers.GlobalAveragePooling1D()(hidden)),
                                 layers.Dense(1, bias_initializer="random_normal")(hidden)])
    path = tmp_path / "dense_per_position.onnx"
    keras_to_onnx(model, path)
    assert_keras_model_windowed(path, ["MeanHead"], seed=12)


def test_keras_separable_depthwise_and_layer_norm_are_windowed(tmp_path):
    """SeparableConv1D and DepthwiseConv1D (tf2onnx: Conv with group), and LayerNormalization in the two forms
    tf2onnx writes, by the layout around it: the moments as ReduceMean over the channels, or as GlobalAveragePool of
    the (N, L, C) tensor, which is a mean over the channels too there (point-wise along the length); so the whole
    trunk is windowed."""
    pytest.importorskip("tf2onnx")
    import keras
    import onnx

    from onnxism_converters import keras_to_onnx

    keras.utils.set_random_seed(9)
    layers = keras.layers

    def layer_norm():
        return layers.LayerNormalization(beta_initializer="random_normal", gamma_initializer="random_normal")

    inputs = keras.Input((40, 4))
    hidden = layers.Conv1D(8, 5, padding="same", activation="relu")(inputs)
    hidden = layers.SeparableConv1D(8, 7, padding="same", activation="relu")(hidden)
    hidden = layers.MaxPooling1D(2)(layer_norm()(hidden))
    hidden = layers.DepthwiseConv1D(3, padding="same", bias_initializer="random_normal")(hidden)
    model = keras.Model(inputs, layers.Dense(2)(layers.Flatten()(layer_norm()(hidden))))
    path = tmp_path / "separable_layer_norm.onnx"
    keras_to_onnx(model, path)
    ops = [node.op_type for node in onnx.load(path).graph.node]
    assert "GlobalAveragePool" in ops and "ReduceMean" in ops
    assert_keras_model_windowed(path, ["DenseHead"], seed=13)


def test_keras_softmax_pooling_is_windowed(tmp_path):
    """Enformer-style softmax pooling in Keras: Reshape((L/2, 2, C)) of the values and of their logits, a softmax
    over the pairs, a weighted sum; then maxout over channel pairs (a Reshape of the channels alone). tf2onnx
    writes each Reshape with a target from the tensor's Shape and the batch: the length split is local, the channel
    reshape point-wise, so the whole trunk is windowed."""
    pytest.importorskip("tf2onnx")
    import keras
    from keras import ops

    from onnxism_converters import keras_to_onnx

    keras.utils.set_random_seed(6)
    layers = keras.layers
    inputs = keras.Input((40, 4))
    hidden = layers.Conv1D(8, 5, padding="same", activation="relu")(inputs)
    logits = layers.Reshape((20, 2, 8))(layers.Dense(8, use_bias=False)(hidden))
    pooled = ops.sum(layers.Reshape((20, 2, 8))(hidden) * layers.Softmax(axis=2)(logits), axis=2)
    grouped = ops.max(layers.Reshape((20, 4, 2))(pooled), axis=3)
    model = keras.Model(inputs, layers.Dense(2)(layers.Flatten()(grouped)))
    path = tmp_path / "softmax_pooling.onnx"
    keras_to_onnx(model, path)
    assert_keras_model_windowed(path, ["DenseHead"], seed=10)


def test_keras_reverse_complement_average_is_windowed(tmp_path):
    """tf2onnx writes Keras's ops.flip along the length and the channels as ReverseSequence between Transposes that
    put the length first; whole-sequence reversals become reversed Slices (``normalise.probed_rewrites``), so
    both strands of a model averaged over the sequence and its reverse complement are windowed."""
    pytest.importorskip("tf2onnx")
    import keras

    from onnxism_converters import keras_to_onnx

    keras.utils.set_random_seed(6)
    layers = keras.layers
    inputs = keras.Input((40, 4))
    conv, dense = layers.Conv1D(6, 5, padding="same", activation="relu"), layers.Dense(2)

    def strand(values):
        return dense(layers.Flatten()(layers.MaxPooling1D(2)(conv(values))))

    model = keras.Model(inputs, layers.Average()([strand(inputs), strand(keras.ops.flip(inputs, axis=(1, 2)))]))
    path = tmp_path / "reverse_complement.onnx"
    keras_to_onnx(model, path)
    assert ops_without_a_local_rule(path, 40) == []
    assert head_kinds(path, 40) == (["DenseHead"], 2)
    assert_fast_equals_naive(path, random_onehot(2, 40, seed=10, n_fraction=0.05), batch_size=50)
    assert_scorers_agree_on_random_values(path, 40)


@pytest.mark.filterwarnings("ignore:The tensor attributes")  # torch's export of nn.LSTM, harmless
@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_a_recurrent_layer_after_the_conv_trunk_keeps_the_trunk_windowed(tmp_path, framework):
    """DanQ's form: conv, pool, then a bidirectional LSTM, which both exporters feed time-major (a Transpose that
    moves the batch off the first axis). That Transpose and all after it are computed in full, global by nature as
    the recurrent layer is (no notice, but named as such); the trunk before it stays windowed, rather than the whole
    model falling back to naive ISM."""
    path = tmp_path / f"danq_{framework}.onnx"
    if framework == "torch":
        torch = pytest.importorskip("torch")
        from onnxism_converters import torch_to_onnx

        class DanQ(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = torch.nn.Conv1d(4, 8, 5)
                self.lstm = torch.nn.LSTM(8, 6, batch_first=True, bidirectional=True)
                self.dense = torch.nn.Linear(12 * 9, 2)

            def forward(self, x):
                hidden = torch.nn.functional.max_pool1d(torch.relu(self.conv(x)), 4).transpose(1, 2)
                return self.dense(self.lstm(hidden)[0].flatten(1))

        torch.manual_seed(7)
        torch_to_onnx(DanQ().eval(), torch.zeros(2, 4, 40), path)
    else:
        pytest.importorskip("tf2onnx")
        import keras

        from onnxism_converters import keras_to_onnx

        keras.utils.set_random_seed(7)
        layers = keras.layers
        inputs = keras.Input((40, 4))
        hidden = layers.MaxPooling1D(4)(layers.Conv1D(8, 5, activation="relu")(inputs))
        hidden = layers.Bidirectional(layers.LSTM(6, return_sequences=True))(hidden)
        keras_to_onnx(keras.Model(inputs, layers.Dense(2)(layers.Flatten()(hidden))), path)
    model = onnxism.load(path)
    plan = build_plan(model, 40, model.output_names).plan
    assert ops_without_a_local_rule(path, 40) == []
    by_nature = [str(notice) for notice in plan.analysis.split_notices()[0]]
    assert any(text.startswith("Transpose node") and "before the LSTM node" in text for text in by_nature)
    windowed = [key for key, mode in plan.analysis.modes.items() if mode == "windowed"]
    assert any(plan.analysis.rules[key].__class__.__name__ == "LocalRule" for key in windowed)  # conv and pool
    with warnings.catch_warnings():
        warnings.simplefilter("error", onnxism.OnnxismWarning)
        assert_fast_equals_naive(path, random_onehot(2, 40, seed=11, n_fraction=0.05), batch_size=50)
