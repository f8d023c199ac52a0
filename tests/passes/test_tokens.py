"""Models that take bases as integer ids (N, L): an embedding (``nn.Embedding``, Keras ``Embedding``) or a one-hot
op inside the model. Loaded with ``tokens=``, they are read as one-hot models (``onnxism/passes/fold_tokens.py``).

References: ISM computed in PyTorch and in Keras on the ids themselves, every mutant through the framework model;
TISM against torch.autograd on the framework model with its lookup written as the linear map of the one-hot input
that it equals (embedding rows; the one-hot itself).
"""

import warnings

import numpy as np
import onnx
import onnxruntime
import pytest

import onnxism
from onnxism.model.tokens import parse_tokens

from cli_helpers import assert_clean_failure, onnxism_cli
from conftest import random_onehot

LENGTH = 20
#: "_ACGTN": id 0 is padding (never a base), A=1, C=2, G=3, T=4, N=5
OFFSET_TOKENS = "_ACGTN"


def _torch_modules():
    import torch
    import torch.nn.functional as F
    from torch import nn

    class Embedded(nn.Module):
        """Embedding of 6 ids (0: padding) -> conv trunk with a dilated residual -> profile and counts."""

        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(6, 8, padding_idx=0)
            self.a = nn.Conv1d(8, 8, 5, padding=2)
            self.b = nn.Conv1d(8, 8, 3, padding=2, dilation=2)
            self.profile = nn.Conv1d(8, 2, 7, padding=3)
            self.counts = nn.Linear(8, 1)

        def lookup(self, onehot):
            """The embedding as the linear map of a one-hot (N, L, 4) input it equals ("_ACGTN")."""
            rows = self.embed.weight
            return onehot @ rows[1:5] + (1 - onehot.sum(-1, keepdim=True)) * rows[5]

        def trunk(self, h):
            h = torch.relu(self.a(h.transpose(1, 2)))
            h = h + torch.relu(self.b(h))
            return self.profile(h), self.counts(h.mean(2))

        def forward(self, ids):
            return self.trunk(self.embed(ids))

    class OneHotted(nn.Module):
        """F.one_hot(ids, 4) -> conv -> dense on the mean."""

        def __init__(self):
            super().__init__()
            self.a = nn.Conv1d(4, 8, 5, padding=2)
            self.counts = nn.Linear(8, 2)

        def lookup(self, onehot):
            return onehot

        def trunk(self, h):
            return (self.counts(torch.relu(self.a(h.transpose(1, 2))).mean(2)),)

        def forward(self, ids):
            return self.trunk(F.one_hot(ids, 4).float())

    class Positional(Embedded):
        """Embedded, plus a learned table along the length added to the embedding (a positional encoding: the
        model's own Add, not part of the lookup)."""

        def __init__(self):
            super().__init__()
            self.position = nn.Parameter(torch.zeros(LENGTH, 8))

        def lookup(self, onehot):
            return super().lookup(onehot) + self.position

        def forward(self, ids):
            return self.trunk(self.embed(ids) + self.position)

    return {"embedded": Embedded, "onehotted": OneHotted, "positional": Positional}


@pytest.fixture(scope="module", params=[("embedded", True), ("embedded", False), ("onehotted", True),
                                        ("onehotted", False), ("positional", True)],
                ids=lambda p: f"{p[0]}-{'dynamo' if p[1] else 'legacy'}")
def torch_token_model(request, tmp_path_factory):
    """(path, torch module, tokens) of a torch module taking ids, exported by one of torch's exporters."""
    torch = pytest.importorskip("torch")
    from onnxism_converters import torch_to_onnx

    kind, dynamo = request.param
    torch.manual_seed(7)
    module = _torch_modules()[kind]().eval()
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    path = tmp_path_factory.mktemp("tokens") / f"{kind}.onnx"
    names = ["counts"] if kind == "onehotted" else ["profile", "counts"]
    torch_to_onnx(module, torch.ones(2, LENGTH, dtype=torch.long), path, dynamo=dynamo, input_name="ids",
                  output_names=names)
    return path, module, "ACGT" if kind == "onehotted" else OFFSET_TOKENS


def _ids(seqs, tokens):
    """(N, L, 4) one-hot (all-zero for N) -> the model's ids."""
    tokens = parse_tokens(tokens)
    table = np.array(tokens.ids + ((tokens.n,) if tokens.n is not None else (-1,)))
    bases = np.where(seqs.sum(2) == 0, 4, seqs.argmax(2))
    return table[bases]


def _framework_ism(run, seqs, tokens):
    """ISM by running every mutant's ids through ``run`` (ids (M, L) -> list of (M, ...) arrays), per output."""
    ids = _ids(seqs, tokens)
    base_ids = np.array(parse_tokens(tokens).ids)
    count, length = ids.shape
    mutants = np.repeat(ids[:, None, None, :], length, 1).repeat(4, 2)  # (N, L, 4, L)
    for i in range(length):
        mutants[:, i, :, i] = base_ids
    references = run(ids)
    values = run(mutants.reshape(-1, length))
    return [value.reshape((count, length, 4) + value.shape[1:]) - reference[:, None, None]
            for value, reference in zip(values, references)]


def _torch_run(module):
    import torch

    def run(ids):
        with torch.no_grad():
            return [value.numpy() for value in module(torch.tensor(ids, dtype=torch.long))]
    return run


def _seqs(count=3, seed=3, with_n=True):
    seqs = random_onehot(count, LENGTH, seed=seed)
    if with_n:
        seqs[1, 0] = 0  # an N at the first position and one inside
        seqs[-1, 9] = 0
    return seqs


def _assert_close(got, want):
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * max(1.0, np.abs(want).max()))


@pytest.mark.parametrize("method", ["naive", "fast"])
def test_ism_of_a_torch_token_model_equals_ism_in_pytorch(torch_token_model, method):
    """Both torch exporters, an Embedding (ids 1-5, with N) and F.one_hot (no N): every mutant's ids through the
    module. Fast ISM windows the whole trunk (no notice: nothing in full, no fallback)."""
    path, module, tokens = torch_token_model
    model = onnxism.load(path, tokens=tokens)
    assert model.input_name == "ids" and model.layout == "NLC" and model.length == LENGTH
    seqs = _seqs(with_n=parse_tokens(tokens).n is not None)
    want = _framework_ism(_torch_run(module), seqs, tokens)
    with warnings.catch_warnings():
        warnings.simplefilter("error", onnxism.OnnxismWarning)
        got = onnxism.ism(model, seqs, method=method, batch_size=11)
    assert list(got) == model.output_names
    for name, expected in zip(model.output_names, want):
        _assert_close(got[name], expected)


def test_tism_of_a_torch_token_model_equals_autograd(torch_token_model):
    """The gradient of each output's sum with respect to the one-hot input, the lookup as the linear map it is,
    minus its value at the reference base."""
    import torch

    path, module, tokens = torch_token_model
    model = onnxism.load(path, tokens=tokens)
    seqs = _seqs(with_n=parse_tokens(tokens).n is not None)
    onehot = torch.tensor(seqs, requires_grad=True)
    outputs = module.trunk(module.lookup(onehot))
    for name, output in zip(model.output_names, outputs):
        gradient, = torch.autograd.grad(output.sum(), onehot, retain_graph=True)
        gradient = gradient.numpy()
        want = gradient - (gradient * seqs).sum(2, keepdims=True)
        got = onnxism.tism(model, seqs, targets={name: "sum"}, outputs=[name])[name]
        _assert_close(got, want)


def test_the_folded_graph_equals_the_model_on_the_ids(torch_token_model):
    """predict on one-hot equals onnxruntime on the model's own graph fed the ids."""
    path, _, tokens = torch_token_model
    model = onnxism.load(path, tokens=tokens)
    seqs = _seqs(5, seed=9, with_n=parse_tokens(tokens).n is not None)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    fixed = session.get_inputs()[0].shape[0]
    ids = _ids(seqs, tokens)
    rows = [session.run(None, {"ids": ids[n:n + fixed] if isinstance(fixed, int) else ids})
            for n in (range(0, 4, fixed) if isinstance(fixed, int) else [0])]
    expected = [np.concatenate([part[k] for part in rows]) for k in range(len(model.output_names))]
    got = onnxism.predict(model, seqs[:len(expected[0])])
    for name, want in zip(model.output_names, expected):
        np.testing.assert_array_equal(got[name], want)


@pytest.fixture(scope="module", params=["int32", "float32", "masked"])
def keras_token_model(request, tmp_path_factory):
    """(path, keras model, tokens): Keras Embedding of ids (an int32 input, or Keras's default float32 one that
    tf2onnx casts) -> Conv1D -> GlobalAveragePooling1D -> Dense, through tf2onnx; "masked": Embedding with
    mask_zero (id 0 is padding) -> per-position Dense -> GlobalAveragePooling1D under the mask -> Dense, whose graph
    reads a mask of the ids besides the embedding."""
    keras = pytest.importorskip("keras")
    from onnxism_converters import keras_to_onnx

    keras.utils.set_random_seed(5)
    masked = request.param == "masked"
    inputs = keras.Input((LENGTH,), dtype="int32" if masked else request.param)
    if masked:
        h = keras.layers.Embedding(6, 6, mask_zero=True)(inputs)
        h = keras.layers.Dense(8, activation="relu")(h)
    else:
        h = keras.layers.Embedding(5, 6)(inputs)
        h = keras.layers.Conv1D(8, 5, padding="same", activation="relu")(h)
        h = keras.layers.Conv1D(8, 3, padding="valid", dilation_rate=2, activation="relu")(h)
    outputs = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling1D()(h))
    model = keras.Model(inputs, outputs)
    path = tmp_path_factory.mktemp("keras_tokens") / f"embedded_{request.param}.onnx"
    keras_to_onnx(model, path)
    return path, model, OFFSET_TOKENS if masked else "ACGTN"


@pytest.mark.parametrize("method", ["naive", "fast"])
def test_ism_of_a_keras_token_model_equals_ism_in_keras(keras_token_model, method):
    path, keras_model, tokens = keras_token_model
    model = onnxism.load(path, tokens=tokens)
    seqs = _seqs()
    want = _framework_ism(lambda ids: [keras_model.predict(ids.astype(np.float32), verbose=0, batch_size=512)],
                          seqs, tokens)
    with warnings.catch_warnings():
        warnings.simplefilter("error", onnxism.OnnxismWarning)
        got = onnxism.ism(model, seqs, method=method)
    _assert_close(got[model.output_names[0]], want[0])


def test_tokens_parse_by_position_and_by_name():
    assert parse_tokens("ACGTN").ids == (0, 1, 2, 3) and parse_tokens("ACGTN").n == 4
    assert parse_tokens("_acgt").ids == (1, 2, 3, 4) and parse_tokens("_acgt").n is None
    named = parse_tokens("A=7, C=8,G=9,T=10,N=11")
    assert named.ids == (7, 8, 9, 10) and named.n == 11
    assert parse_tokens({"a": 3, "C": 2, "G": 1, "T": 0}).ids == (3, 2, 1, 0)


@pytest.mark.parametrize("spec, message", [
    ("ACG", "give no id for T"),
    ("ACGTA", "names A twice"),
    ("A=0,C=1,G=2,T=2", "the same id"),
    ("A=0,C=1,G=2,T=x", "not an integer"),
    ("A=0,C=1,G=2,T=-3", "non-negative"),
    ("A=0,C=1,G=2,T=3,U=4", "names 'U'"),
])
def test_bad_tokens_are_refused_in_one_line(spec, message):
    with pytest.raises(onnxism.InputError, match=message):
        parse_tokens(spec)


def _tiny_token_graph(middle, dtype=np.float32):
    """ids (N, L) int64 -> ``middle`` nodes -> "emb" (N, L, 3) of ``dtype`` (the table's) -> ReduceMean over the
    length -> "y"."""
    table = onnx.numpy_helper.from_array(_TABLE.astype(dtype), "table")
    nodes = middle + [onnx.helper.make_node("ReduceMean", ["emb"], ["y"], axes=[1], keepdims=0)]
    graph = onnx.helper.make_graph(
        nodes, "g", [onnx.helper.make_tensor_value_info("ids", onnx.TensorProto.INT64, ["N", 12])],
        [onnx.helper.make_tensor_value_info("y", onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype)), ["N", 3])],
        [table])
    return onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)], ir_version=10)


#: rows of ids 0-4; float64 rows that float32 would round
_TABLE = np.arange(15).reshape(5, 3) / 3 + 1e-9


def test_a_token_model_without_tokens_asks_for_them():
    model = _tiny_token_graph([onnx.helper.make_node("Gather", ["table", "ids"], ["emb"])])
    with pytest.raises(onnxism.ModelError, match="tokens='ACGTN'"):
        onnxism.load(model)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_fold_is_exact_and_drops_the_table(dtype):
    """Every position's embedding is exactly its id's row (a float64 table is folded in float64), and the
    embedding table the lookup read is no longer in the graph."""
    loaded = onnxism.load(_tiny_token_graph([onnx.helper.make_node("Gather", ["table", "ids"], ["emb"])], dtype),
                          tokens="ACGTN")
    assert "table" not in {init.name for init in loaded.proto.graph.initializer}
    seqs = random_onehot(2, 12, seed=1, n_fraction=0.2)
    proto = onnx.ModelProto()
    proto.CopyFrom(loaded.proto)
    proto.graph.output.append(onnx.helper.make_tensor_value_info(
        "emb", onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype)), None))
    session = onnxruntime.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    got = session.run(["emb"], {"ids": seqs})[0]
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, _TABLE.astype(dtype)[_ids(seqs, "ACGTN")])


def test_a_mask_of_the_ids_is_folded_too():
    """A padding mask read by the model (ids != N's id, as Keras's mask_zero and attention masks do) becomes a
    folded boolean tensor beside the embedding (both read by model ops: a Relu, a Where with the Relu's output):
    the masked mean over the length equals the model's on the ids."""
    four = onnx.helper.make_node("Constant", [], ["four"], value=onnx.numpy_helper.from_array(np.array(4, np.int64)))
    axes = onnx.helper.make_node("Constant", [], ["axes"], value=onnx.numpy_helper.from_array(np.array([2], np.int64)))
    zero = onnx.numpy_helper.from_array(np.zeros(1, np.float32), "zero")
    middle = [four, axes, onnx.helper.make_node("Gather", ["table", "ids"], ["e"]),
              onnx.helper.make_node("Equal", ["ids", "four"], ["is_n"]),
              onnx.helper.make_node("Not", ["is_n"], ["kept"]),
              onnx.helper.make_node("Unsqueeze", ["kept", "axes"], ["mask"]),
              onnx.helper.make_node("Relu", ["e"], ["r"]),
              onnx.helper.make_node("Where", ["mask", "r", "zero"], ["emb"])]
    model = _tiny_token_graph(middle)
    model.graph.initializer.append(zero)
    loaded = onnxism.load(model, tokens="ACGTN")
    assert {node.op_type for node in loaded.proto.graph.node} >= {"MatMul", "Cast", "Where"}
    seqs = random_onehot(3, 12, seed=6, n_fraction=0.3)
    ids = _ids(seqs, "ACGTN")
    want = np.where((ids != 4)[..., None], _TABLE.astype(np.float32)[ids], 0).mean(1)  # (the table is positive)
    np.testing.assert_allclose(onnxism.predict(loaded, seqs)["y"], want, rtol=1e-6)
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    np.testing.assert_array_equal(onnxism.predict(loaded, seqs)["y"], session.run(["y"], {"ids": ids})[0])
    np.testing.assert_allclose(onnxism.ism(loaded, seqs, method="fast")["y"],
                               onnxism.ism(loaded, seqs, method="naive")["y"], rtol=0, atol=1e-5)


@pytest.mark.parametrize("middle, message", [
    ([onnx.helper.make_node("Transpose", ["ids"], ["t"], perm=[1, 0]),
      onnx.helper.make_node("Gather", ["table", "t"], ["emb"])], "reach a Transpose node"),
    ([onnx.helper.make_node("Gather", ["ids", "ids"], ["e"], axis=1),
      onnx.helper.make_node("Gather", ["table", "e"], ["emb"])], "gathers from the ids themselves"),
    ([onnx.helper.make_node("ReduceMax", ["ids"], ["m"], keepdims=1, axes=[1]),
      onnx.helper.make_node("Gather", ["table", "m"], ["emb"])], "reach a ReduceMax node"),
])
def test_a_lookup_that_is_not_per_position_is_refused(middle, message):
    with pytest.raises(onnxism.ModelError, match=message):
        onnxism.load(_tiny_token_graph(middle), tokens="ACGTN")


def test_a_lookup_that_mixes_positions_fails_the_check():
    """Ids shifted by a constant that differs per position (an Add of a (12,) vector): per-element, but not a
    lookup of the id alone, so the check on random ids refuses it."""
    shift = onnx.helper.make_node("Constant", [], ["shift"], value=onnx.numpy_helper.from_array(
        np.array([0, 1] * 6, np.int64)))
    model = _tiny_token_graph([shift, onnx.helper.make_node("Mul", ["ids", "shift"], ["s"]),
                               onnx.helper.make_node("Gather", ["table", "s"], ["emb"])])
    with pytest.raises(onnxism.ModelError, match="not a lookup of each position's id alone"):
        onnxism.load(model, tokens="ACGT")


def test_sequences_with_n_need_an_id_for_n():
    """Without an id for N, an N is refused up front (in one line naming it), by every method."""
    model = onnxism.load(_tiny_token_graph([onnx.helper.make_node("Gather", ["table", "ids"], ["emb"])]),
                         tokens="ACGT")
    seqs = random_onehot(3, 12, seed=2)
    seqs[1, 4] = 0
    for method in (onnxism.ism, onnxism.tism, onnxism.predict):
        with pytest.raises(onnxism.InputError, match="N at sequence 1, position 4, and the model's tokens .* no id"):
            method(model, seqs)
    assert onnxism.ism(model, seqs[[0, 2]])["y"].shape == (2, 12, 4, 3)


def test_cli_runs_and_compiles_a_token_model(torch_token_model, tmp_path):
    """run --tokens equals the API; without --tokens, one line asking for them; info names the tokens; the
    compiled fast ISM graph takes one-hot input in plain onnxruntime and gives the same scores."""
    path, _, tokens = torch_token_model
    seqs = _seqs(2, with_n=parse_tokens(tokens).n is not None)
    np.save(tmp_path / "seqs.npy", seqs)
    assert_clean_failure(onnxism_cli("run", path, tmp_path / "seqs.npy", "-o", tmp_path / "x.npz"), "tokens=")
    assert not (tmp_path / "x.npz").exists()
    result = onnxism_cli("run", path, tmp_path / "seqs.npy", "-o", tmp_path / "s.npz", "--tokens", tokens)
    assert result.returncode == 0, result.stderr
    model = onnxism.load(path, tokens=tokens)
    expected = onnxism.ism(model, seqs, method="naive")
    with np.load(tmp_path / "s.npz") as saved:
        for name, want in expected.items():
            _assert_close(saved[name], want)
    info = onnxism_cli("info", path, "--tokens", tokens)
    assert info.returncode == 0 and "tokens:   " + parse_tokens(tokens).describe() in info.stdout
    compiled = tmp_path / "ism.onnx"
    result = onnxism_cli("compile", path, "--method", "fast", "-o", compiled, "--tokens", tokens)
    assert result.returncode == 0, result.stderr
    session = onnxruntime.InferenceSession(str(compiled), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[1:] == [LENGTH, 4]
    positions = np.arange(LENGTH, dtype=np.int64)
    got = session.run([f"{name}__ism" for name in model.output_names], {"ids": seqs, "positions": positions})
    for value, want in zip(got, expected.values()):
        _assert_close(value, want)


def test_targets_of_a_token_model_keep_its_tokens():
    """ISM of a target (folded into a second model) still refuses an N the tokens have no id for, and equals the
    target applied to the whole output's ISM."""
    model = onnxism.load(_tiny_token_graph([onnx.helper.make_node("Gather", ["table", "ids"], ["emb"])]),
                         tokens="ACGT")
    seqs = random_onehot(2, 12, seed=4)
    whole = onnxism.ism(model, seqs, method="naive")["y"]
    assert np.abs(whole).max() > 0.1
    for method in ("naive", "fast"):
        summed = onnxism.ism(model, seqs, method=method, targets={"y": "sum"})["y"]
        np.testing.assert_allclose(summed, whole.sum(-1), rtol=0, atol=1e-5)
    seqs[0, 3] = 0
    with pytest.raises(onnxism.InputError, match="no id for N"):
        onnxism.ism(model, seqs, targets={"y": "sum"})
