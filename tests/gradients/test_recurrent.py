"""RNN, GRU and LSTM gradients (``onnxism/gradients/rules/recurrent.py``) against independent oracles.

- Every supported form (GRU with ``linear_before_reset`` 0 and 1, LSTM, RNN; forward, reverse and bidirectional;
  with and without bias and initial states; Y, Y_h and Y_c each used or not) against central finite differences in
  float64 of onnx's reference evaluator, itself first checked against onnxruntime's forward pass: the gradient
  graph in float64 (reference evaluator) within 1e-6, in float32 (onnxruntime) within 2e-4, relative to the largest
  entry.
- DanQ-like torch models (Conv1d, ReLU, MaxPool1d, bidirectional batch-first LSTM, GRU or RNN, Linear) through
  the legacy torch exporter (the dynamo one in ``test_gradients``' architecture suite): ``onnxism.tism`` against
  the Taylor term built from torch autograd's gradient, within 1e-5.
- Keras's Bidirectional(LSTM) through tf2onnx against tf.GradientTape, within 1e-5.
- The forms the rule does not compute are refused by name, and so is a Loop whose body reads the sequence.
"""

import numpy as np
import onnx
import pytest
from onnx.reference import ReferenceEvaluator

import onnxism
from onnxism.errors import UnsupportedGraphError
from onnxism.gradients import build_gradient_model, seed_name
from onnxism.runtime.sessions import make_session

from gradient_cases import LENGTH, recurrent_case, to_float64

STEP = 1e-6


FORMS = {
    "gru_bidirectional": {},
    "gru_reset_before": {"reset_after": 0},
    "gru_reverse_initial": {"direction": "reverse", "initial": True},
    "gru_forward_no_bias_last_state": {"direction": "forward", "bias": False, "outputs": ("Y_h",),
                                       "activations": ["Sigmoid", "Tanh"]},
    "gru_reset_before_bidirectional_initial": {"reset_after": 0, "initial": True, "outputs": ("Y",)},
    "lstm_bidirectional": {"op": "LSTM", "outputs": ("Y", "Y_h", "Y_c")},
    "lstm_forward_initial": {"op": "LSTM", "direction": "forward", "initial": True,
                                     "outputs": ("Y", "Y_c")},
    "lstm_reverse_no_bias": {"op": "LSTM", "direction": "reverse", "bias": False, "outputs": ("Y_h",)},
    "rnn_bidirectional_initial": {"op": "RNN", "initial": True},
    "rnn_reverse_last_state": {"op": "RNN", "direction": "reverse", "outputs": ("Y_h",), "activations": ["Tanh"]},
}


def _finite_differences(run, x, seeds):
    """d/dx of sum(seed * y) by central differences, every element of x: (S, N, L, 4)."""
    count = x.size
    eye = np.eye(count).reshape((count,) + x.shape)
    y_plus = run((x[None] + STEP * eye).reshape((-1,) + x.shape[1:])).reshape(count, x.shape[0], -1)
    y_minus = run((x[None] - STEP * eye).reshape((-1,) + x.shape[1:])).reshape(count, x.shape[0], -1)
    diff = (y_plus - y_minus) / (2 * STEP)
    return np.einsum("enk,sk->se", diff, seeds.reshape(len(seeds), -1)).reshape((len(seeds),) + x.shape)


@pytest.mark.parametrize("name", sorted(FORMS))
def test_recurrent_gradient_matches_finite_differences(name):
    proto = recurrent_case(**FORMS[name])
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, LENGTH, 4))
    oracle = ReferenceEvaluator(to_float64(proto))
    ort = make_session(proto.SerializeToString(), "cpu").run(None, {"x": x.astype(np.float32)})[0]
    np.testing.assert_allclose(oracle.run(None, {"x": x})[0], ort, atol=1e-5)  # the oracle is onnxruntime's cell

    model = onnxism.load(proto)
    graph = build_gradient_model(model, ["y"], LENGTH)
    seeds = rng.standard_normal((2,) + model.output_shapes(LENGTH)["y"])
    expected = _finite_differences(lambda v: oracle.run(None, {"x": v})[0], x, seeds)
    scale = max(1.0, np.abs(expected).max())
    exact = ReferenceEvaluator(to_float64(graph)).run(["gradient"], {"x": x, seed_name("y"): seeds})[0]
    np.testing.assert_allclose(exact, expected, atol=1e-6 * scale, rtol=0)
    session = make_session(graph.SerializeToString(), "cpu")
    fast = session.run(["gradient"], {"x": x.astype(np.float32), seed_name("y"): seeds.astype(np.float32)})[0]
    np.testing.assert_allclose(fast, expected, atol=2e-4 * scale, rtol=0)


@pytest.mark.parametrize("form, why", [
    ({"lengths": 5}, "sequence_lens"),
    ({"lengths": LENGTH}, "sequence_lens"),
    ({"clip": 3.0}, "clip"),
    ({"activations": ["Sigmoid", "Relu"] * 2}, r"activations \['Sigmoid', 'Relu', 'Sigmoid', 'Relu'\]"),
    ({"op": "LSTM", "input_forget": 1}, "input_forget=1"),
])
def test_unsupported_recurrent_forms_are_refused(form, why):
    with pytest.raises(UnsupportedGraphError, match=f"no gradient rule for (GRU|LSTM) node .*{why}"):
        build_gradient_model(onnxism.load(recurrent_case(**form)), ["y"], LENGTH)



@pytest.mark.parametrize("recurrent", ["danq_lstm", "danq_gru", "danq_rnn"])
def test_danq_tism_matches_torch_autograd(recurrent, tmp_path):
    """``onnxism.tism`` of a DanQ-like model through the legacy exporter (torch's GRU is linear_before_reset=1)
    equals the Taylor term of torch autograd's gradient; its compiled TISM graph passes onnx's full check. (The
    dynamo exports of the LSTM and GRU models, which write layout=0, are in ``test_gradients``' architecture
    suite.)"""
    torch = pytest.importorskip("torch")
    from onnxism_converters import torch_to_onnx

    from architectures import LENGTH as LONG
    from architectures import modern

    torch.manual_seed(2)
    module = modern()[recurrent].eval()
    path = tmp_path / "danq.onnx"
    torch_to_onnx(module, torch.zeros(2, 4, LONG), path, dynamo=False, output_names=["out"])
    seqs = np.eye(4, dtype=np.float32)[np.random.default_rng(8).integers(0, 4, (3, LONG))]
    got = onnxism.tism(path, seqs)["out"]  # (N, L, 4, 2)

    x = torch.tensor(seqs.transpose(0, 2, 1), requires_grad=True)
    out = module(x)
    grads = np.stack([torch.autograd.grad(out[:, k].sum(), x, retain_graph=True)[0].numpy().transpose(0, 2, 1)
                      for k in range(out.shape[1])], axis=-1)  # (N, L, 4, 2)
    expected = grads - (grads * seqs[..., None]).sum(axis=2, keepdims=True)
    assert np.abs(expected).max() > 1e-3
    np.testing.assert_allclose(got, expected, atol=1e-5 * np.abs(expected).max(), rtol=0)
    onnx.checker.check_model(onnxism.compile_tism(path), full_check=True)  # its Scans' bodies are valid ONNX


def _keras_danq(recurrent):
    keras = pytest.importorskip("keras")
    from keras import layers

    from architectures import LENGTH as LONG

    keras.utils.set_random_seed(0)
    x = keras.Input((LONG, 4))
    h = layers.MaxPooling1D(4)(layers.Conv1D(6, 9, padding="same", activation="relu")(x))
    h = layers.Bidirectional(recurrent(4, return_sequences=True))(h)
    return keras.Model(x, layers.Dense(2)(layers.Flatten()(h)))


def test_keras_lstm_gradient_matches_tensorflow(tmp_path):
    """tf2onnx writes a Keras Bidirectional(LSTM) as one LSTM node with its activations named and initial states
    of zeros expanded to the batch: the gradient graph against tf.GradientTape within 1e-5."""
    keras = pytest.importorskip("keras")
    tf = pytest.importorskip("tensorflow")
    from onnxism_converters import keras_to_onnx

    module = _keras_danq(keras.layers.LSTM)
    proto = keras_to_onnx(module)
    assert "LSTM" in [node.op_type for node in proto.graph.node]
    seqs = np.eye(4, dtype=np.float32)[np.random.default_rng(9).integers(0, 4, (3, module.input_shape[1]))]
    got = onnxism.tism(proto, seqs, attribution="gradient")
    got = next(iter(got.values()))  # (N, L, 4, 2)
    x = tf.constant(seqs)
    rows = []
    for k in range(2):
        with tf.GradientTape() as tape:
            tape.watch(x)
            target = tf.reduce_sum(module(x)[:, k])
        rows.append(tape.gradient(target, x).numpy())
    expected = np.stack(rows, axis=-1)
    np.testing.assert_allclose(got, expected, atol=1e-5 * np.abs(expected).max(), rtol=0)


def test_a_loop_reading_the_sequence_is_refused_not_skipped():
    """tf2onnx leaves a Keras 3 GRU as a Loop whose body reads the sequence from the outer scope; its gradient was
    once silently zero (the path looked at explicit inputs only). Now it is refused, naming the Loop."""
    from onnx import TensorProto, helper

    from gradient_cases import Case

    c = Case(18)
    x = c.ncl()
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]), helper.make_node("Tanh", [x], ["step"])], "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("step", TensorProto.FLOAT, None)])
    looped = c.op("Loop", [c.const(np.int64(1)), c.const(np.bool_(True))], body=body)
    proto = c.model(c.op("Squeeze", [looped, c.ints([0])]))
    with pytest.raises(UnsupportedGraphError, match="no gradient rule for Loop node"):
        build_gradient_model(onnxism.load(proto), ["y"], LENGTH)
