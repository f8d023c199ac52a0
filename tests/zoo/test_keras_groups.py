"""Grouped Keras convolutions through the Keras converter (``keras_groups.py``): CREsted's LegNet, whose depthwise
convolutions are Conv1D with groups, and grouped convolutions of every kind, against Keras; fast ISM against
naive ISM against ISM run in Keras."""

import numpy as np
import pytest

import onnxism

from conftest import keras_tism, random_onehot
from fast_checks import assert_fast_equals_naive
from lab_models import legnet
from test_zoo import framework_ism

pytest.importorskip("tf2onnx")


def _assert_matches_keras(path, model, seqs):
    got = list(onnxism.predict(path, seqs).values())
    want = model(seqs, training=False)
    want = [np.asarray(w) for w in (want if isinstance(want, (list, tuple)) else [want])]
    for value, reference in zip(got, want):
        np.testing.assert_allclose(value.reshape(reference.shape), reference, rtol=0,
                                   atol=2e-5 * max(1.0, np.abs(reference).max()))


def test_legnet_converts_and_fast_ism_is_exact(tmp_path):
    from onnxism_converters import keras_to_onnx
    from onnxism_converters.keras_groups import grouped_convolutions

    model = legnet(length=32)
    assert grouped_convolutions(model) == ["stage0_eff_dw_conv", "stage1_eff_dw_conv"]
    path = tmp_path / "legnet.onnx"
    proto = keras_to_onnx(model, path)
    assert any(node.op_type == "Conv" and any(a.name == "group" and a.i == 16 for a in node.attribute)
               for node in proto.graph.node)  # the depthwise convolution is one grouped ONNX Conv
    seqs = random_onehot(3, 32, seed=3)
    _assert_matches_keras(path, model, seqs)
    naive, _ = assert_fast_equals_naive(path, seqs[:2])
    (want_ism,) = framework_ism("keras", model, seqs[:2])  # every mutant run by the framework itself
    (got_ism,) = naive.values()
    np.testing.assert_allclose(got_ism, want_ism.reshape(got_ism.shape), rtol=0,
                               atol=1e-4 * max(1.0, np.abs(want_ism).max()))
    # TISM through the grouped convolutions against tf.GradientTape
    want_tism = keras_tism(model, seqs[:2])
    (got_tism,) = onnxism.tism(path, seqs[:2], targets="sum").values()
    np.testing.assert_allclose(got_tism, want_tism, rtol=0, atol=1e-5 * max(1.0, np.abs(want_tism).max()))


@pytest.mark.parametrize("groups, padding, dilation, strides, filters", [
    (2, "causal", 2, 1, 6),   # groups of 4 channels: one convolution per group
    (8, "valid", 1, 2, 16),   # depthwise with a multiplier of 2, strided
    (8, "same", 3, 1, 8),     # depthwise, dilated
])
def test_grouped_conv1d_of_each_kind_matches_keras(tmp_path, groups, padding, dilation, strides, filters):
    import keras

    from onnxism_converters import keras_to_onnx

    inputs = keras.Input((30, 4))
    h = keras.layers.Conv1D(8, 3, padding="same")(inputs)
    h = keras.layers.Conv1D(filters, 3, groups=groups, padding=padding, dilation_rate=dilation, strides=strides,
                            activation="relu")(h)
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(h)))
    rng = np.random.default_rng(groups)
    for layer in model.layers:
        layer.set_weights([w + rng.standard_normal(w.shape).astype(np.float32) for w in layer.get_weights()])
    path = tmp_path / "grouped.onnx"
    keras_to_onnx(model, path)
    _assert_matches_keras(path, model, random_onehot(3, 30, seed=4))


def test_a_failed_check_is_an_error_and_no_file(tmp_path, monkeypatch):
    """The check compares with the model itself: a converted graph that computes something else is refused."""
    import keras

    from onnxism_converters import keras_export, keras_to_onnx

    inputs = keras.Input((20, 4))
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(keras.layers.Conv1D(3, 3)(inputs))))
    monkeypatch.setattr(keras_export, "ungroup", lambda m: keras.Model(inputs, keras.layers.Dense(2)(
        keras.layers.Flatten()(keras.layers.Conv1D(3, 3)(inputs)))))
    with pytest.raises(onnxism.ModelError, match="disagrees with the framework on output"):
        keras_to_onnx(model, tmp_path / "wrong.onnx")
    assert not (tmp_path / "wrong.onnx").exists()


def test_grouped_conv1d_in_sequential_and_nested_models(tmp_path):
    import keras

    from onnxism_converters import keras_to_onnx

    sequential = keras.Sequential([keras.Input((20, 4)), keras.layers.Conv1D(8, 3, padding="same"),
                                   keras.layers.Conv1D(8, 3, groups=8, padding="same", bias_initializer="ones"),
                                   keras.layers.Flatten(), keras.layers.Dense(2)])
    inputs = keras.Input((20, 4))
    inner = keras.Model(inputs, keras.layers.Conv1D(8, 3, groups=2, padding="same")(keras.layers.Conv1D(8, 1)(inputs)))
    outer_inputs = keras.Input((20, 4))
    nested = keras.Model(outer_inputs, keras.layers.Dense(2)(keras.layers.Flatten()(inner(outer_inputs))))
    for name, model in (("sequential", sequential), ("nested", nested)):
        path = tmp_path / f"{name}.onnx"
        keras_to_onnx(model, path)
        _assert_matches_keras(path, model, random_onehot(3, 20, seed=5))
