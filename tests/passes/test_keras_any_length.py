"""Keras models of any length, `keras.Input((None, 4))`, where tf2onnx writes what it cannot see as shape arithmetic:
dilated convolutions as SpaceToBatchND, an undilated Conv and BatchToSpaceND (Reshapes of the batch around the Conv),
rewritten on loading as the dilated Conv they compute (``onnxism/passes/space_to_batch.py``); and pads and bounds
computed from a tensor's shape, which TISM reads as the constants they are at the length it runs at
(``fast/probe.shape_arithmetic``).

References: ISM computed in Keras on every mutant, and tf.GradientTape, on the same model.
"""

import warnings

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import onnxism

from conftest import assert_ism_matches, keras_tism, random_onehot

LENGTH = 37  # a length no dilation here divides, so TensorFlow pads and crops


def _keras_model(kind):
    """("residual") a BPNet-like trunk of dilations 2 and 4 with "same" padding and residual Adds, a profile and a
    counts head; ("paddings") dilated Conv1Ds with "valid" padding (dilation 3), "causal" padding (dilation 2) and a
    SeparableConv1D (depthwise, dilation 5, "same"). The input takes any length."""
    import keras

    keras.utils.set_random_seed(7)
    inputs = keras.Input((None, 4))
    layers = keras.layers
    if kind == "residual":
        x = layers.Conv1D(8, 5, padding="same", activation="relu")(inputs)
        for dilation in (2, 4):
            x = layers.Add()([x, layers.Conv1D(8, 3, padding="same", dilation_rate=dilation, activation="relu")(x)])
        profile = layers.Reshape((-1,))(layers.Conv1D(1, 7, padding="same")(x))
        counts = layers.Dense(1)(layers.GlobalAveragePooling1D()(x))
        return keras.Model(inputs, [profile, counts])
    x = layers.Conv1D(6, 3, padding="valid", dilation_rate=3, activation="relu")(inputs)
    x = layers.Conv1D(6, 3, padding="causal", dilation_rate=2, activation="tanh")(x)
    x = layers.SeparableConv1D(6, 3, padding="same", dilation_rate=5, activation="relu")(x)
    return keras.Model(inputs, layers.Dense(2)(layers.GlobalMaxPooling1D()(x)))


@pytest.fixture(scope="module", params=[("residual", 17), ("paddings", 17), ("paddings", 12)],
                ids=lambda p: f"{p[0]}-opset{p[1]}")
def keras_any_length(request, tmp_path_factory):
    """(path, keras model, the dilations of the convolutions tf2onnx writes as space-to-batch: those of "same"
    padding; it writes those of "valid" and "causal" padding as dilated Convs itself)."""
    pytest.importorskip("keras")
    from onnxism_converters import keras_to_onnx

    kind, opset = request.param
    model = _keras_model(kind)
    path = tmp_path_factory.mktemp("space_to_batch") / f"{kind}.onnx"
    keras_to_onnx(model, path, opset=opset)  # (before 13, Squeeze and Unsqueeze take their axes as attributes)
    return path, model, [2, 4] if kind == "residual" else [5]


def _keras_ism(model, seqs):
    """Per output, (N, L, 4, *shape): every mutant through the Keras model."""
    count, length = seqs.shape[:2]
    mutants = np.repeat(seqs[:, None], length * 4, 1).reshape(count, length, 4, length, 4)
    for i in range(length):
        mutants[:, i, :, i] = np.eye(4, dtype=np.float32)
    values = model.predict(mutants.reshape(-1, length, 4), verbose=0, batch_size=512)
    references = model.predict(seqs, verbose=0)
    if not isinstance(values, list):
        values, references = [values], [references]
    return [value.reshape((count, length, 4) + value.shape[1:]) - reference[:, None, None]
            for value, reference in zip(values, references)]


def test_the_space_to_batch_form_is_there_and_rewritten(keras_any_length):
    path, _, rewritten = keras_any_length
    written = onnx.load(str(path))
    assert written.graph.input[0].type.tensor_type.shape.dim[1].dim_param  # any length

    def space_to_batch(graph):
        return [node for node in graph.node if "SpaceToBatchND" in node.name or "BatchToSpaceND" in node.name]

    def dilations(graph):
        return sorted(max(a.ints) for node in graph.node if node.op_type == "Conv" for a in node.attribute
                      if a.name == "dilations" and max(a.ints) > 1)

    assert space_to_batch(written.graph)
    model = onnxism.load(path)
    assert model.length is None and model.dilated == len(rewritten)
    assert not space_to_batch(model.proto.graph)  # all of it dropped, shape arithmetic included
    assert dilations(model.proto.graph) == sorted(dilations(written.graph) + rewritten)


def test_ism_and_tism_equal_keras(keras_any_length):
    """Naive and fast ISM against ISM in Keras at a length no dilation divides (fast with no notice: every layer
    windowed), TISM against tf.GradientTape (from opset 13 on, as TISM needs)."""
    path, keras_model, _ = keras_any_length
    model = onnxism.load(path)
    seqs = random_onehot(2, LENGTH, seed=3, n_fraction=0.1)
    assert_ism_matches(model, seqs, dict(zip(model.output_names, _keras_ism(keras_model, seqs))), batch_size=32)
    if max(entry.version for entry in model.proto.opset_import if entry.domain in ("", "ai.onnx")) < 13:
        with pytest.raises(onnxism.UnsupportedGraphError, match="opset >= 13"):  # TISM's own limit
            onnxism.tism(model, seqs)
        return
    for k, name in enumerate(model.output_names):
        want = keras_tism(keras_model, seqs, k if len(model.output_names) > 1 else None)
        got = onnxism.tism(model, seqs, targets={name: "sum"}, outputs=[name])[name]
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * max(1.0, np.abs(want).max()))


def _halves_graph():
    """x (N, 20, 4) -> Pad -> Reshape to (2 N, 10, 4): the two halves of each sequence as rows -> Conv (k = 3, no
    pads) -> Reshape to (N, 16, 3) -> Slice -> y. It has the space-to-batch shape (twice the rows inside) but is a
    convolution of each half on its own, not a dilated one."""
    rng = np.random.default_rng(0)
    nodes = [helper.make_node("Pad", ["x", "no_pads"], ["padded"]),
             helper.make_node("Reshape", ["padded", "halves"], ["rows"]),
             helper.make_node("Transpose", ["rows"], ["ncl"], perm=[0, 2, 1]),
             helper.make_node("Conv", ["ncl", "w"], ["conv"]),
             helper.make_node("Transpose", ["conv"], ["nlc"], perm=[0, 2, 1]),
             helper.make_node("Reshape", ["nlc", "joined"], ["back"]),
             helper.make_node("Slice", ["back", "zero", "sixteen", "one"], ["y"])]
    graph = helper.make_graph(
        nodes, "halves", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 20, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 16, 3])],
        [numpy_helper.from_array(rng.normal(size=(3, 4, 3)).astype(np.float32), "w"),
         numpy_helper.from_array(np.zeros(6, np.int64), "no_pads"),
         numpy_helper.from_array(np.array([-1, 10, 4], np.int64), "halves"),
         numpy_helper.from_array(np.array([-1, 16, 3], np.int64), "joined"),
         numpy_helper.from_array(np.array([0], np.int64), "zero"),
         numpy_helper.from_array(np.array([16], np.int64), "sixteen"),
         numpy_helper.from_array(np.array([1], np.int64), "one")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10)


def test_a_convolution_of_the_halves_is_not_taken_for_a_dilated_one():
    """No split of the pads makes the dilated Conv equal it, so the graph is kept; every method stays exact."""
    model = onnxism.load(_halves_graph())
    assert model.dilated == 0
    seqs = random_onehot(2, 20, seed=1)
    naive = onnxism.ism(model, seqs, method="naive")["y"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", onnxism.OnnxismWarning)  # computed in full
        fast = onnxism.ism(model, seqs, method="fast")["y"]
    np.testing.assert_allclose(fast, naive, rtol=0, atol=1e-5 * max(1.0, np.abs(naive).max()))


def test_info_names_the_dilated_convolutions(keras_any_length):
    from cli_helpers import onnxism_cli

    path, _, rewritten = keras_any_length
    result = onnxism_cli("info", path, "--methods", "--length", "50")
    assert result.returncode == 0, result.stderr
    assert f"dilated:  {len(rewritten)} dilated convolution(s)" in result.stdout
    assert "fast ISM: windowed" in result.stdout


def test_tism_reads_pads_computed_from_shapes():
    """A Conv1DTranspose (strides 2, "same") of any length: tf2onnx crops its output by a Pad whose pads it computes
    from the input's shape, which TISM refused ("its pads are not a constant") before it read them at the length;
    against tf.GradientTape, and fast ISM against Keras."""
    keras = pytest.importorskip("keras")
    from onnxism_converters import keras_to_onnx

    keras.utils.set_random_seed(2)
    layers = keras.layers
    inputs = keras.Input((None, 4))
    x = layers.Conv1D(8, 5, padding="same", activation="relu")(inputs)
    x = layers.Conv1DTranspose(4, 4, strides=2, padding="same", activation="tanh")(x)
    keras_model = keras.Model(inputs, layers.Dense(2)(layers.GlobalAveragePooling1D()(x)))
    model = onnxism.load(keras_to_onnx(keras_model))
    assert any(node.op_type == "Pad" and node.input[1] not in {init.name for init in model.proto.graph.initializer}
               for node in model.proto.graph.node)
    seqs = random_onehot(2, LENGTH, seed=5)
    want = keras_tism(keras_model, seqs)
    got = onnxism.tism(model, seqs, targets="sum")[model.output_names[0]]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * max(1.0, np.abs(want).max()))
    (wanted,) = _keras_ism(keras_model, seqs)
    assert_ism_matches(model, seqs, {model.output_names[0]: wanted}, methods=["fast"])
