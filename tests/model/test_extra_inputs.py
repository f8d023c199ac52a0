"""Models with inputs besides the sequences (a BPNet-style control track and a late-merged per-sequence vector):
every substitution of a sequence gets that sequence's rows of them.

The reference is ISM computed in PyTorch on the same weights, one mutant at a time.
"""

import os
import re
import warnings

import numpy as np
import onnx
import onnxruntime
import pytest

import onnxism
from onnxism.fast.plan import build_plan

from cli_helpers import assert_clean_failure, onnxism_cli
from conftest import random_onehot
from onnx_builders import conv_model

LENGTH = 24


@pytest.fixture(scope="module")
def control_model(tmp_path_factory):
    """(path, torch module): conv trunk; the profile head reads the trunk concatenated with a control track
    (N, 2, L); the counts head reads the trunk's mean concatenated with a per-sequence vector (N, 2)."""
    torch = pytest.importorskip("torch")
    from torch import nn

    from onnxism_converters import torch_to_onnx

    class ControlNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv1d(4, 8, 5, padding=2)
            self.b = nn.Conv1d(8, 8, 3, padding=2, dilation=2)
            self.profile = nn.Conv1d(8 + 2, 2, 7, padding=3)
            self.counts = nn.Linear(8 + 2, 2)

        def forward(self, x, control, totals):
            h = torch.relu(self.a(x))
            h = h + torch.relu(self.b(h))
            return (self.profile(torch.cat([h, control], dim=1)),
                    self.counts(torch.cat([h.mean(2), totals], dim=1)))

    torch.manual_seed(4)
    module = ControlNet().eval()
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    path = tmp_path_factory.mktemp("extra") / "control.onnx"
    torch_to_onnx(module, torch.zeros(2, 4, LENGTH), path, output_names=["profile", "counts"],
                  extra_inputs={"control": torch.zeros(2, 2, LENGTH), "totals": torch.zeros(2, 2)})
    return path, module


def _extras(count, seed=0):
    rng = np.random.default_rng(seed)
    return {"control": rng.random((count, 2, LENGTH)).astype(np.float32),
            "totals": rng.random((count, 2)).astype(np.float32)}


def _torch_ism(module, seqs, extras, outputs=("profile", "counts")):
    """ISM in PyTorch, one mutant at a time: (N, L, 4, *shape) per output; ``extras`` in ``forward``'s order."""
    import torch

    def run(onehot, n):
        with torch.no_grad():
            values = module(torch.tensor(onehot.transpose(0, 2, 1)),
                            *(torch.tensor(value[n:n + 1]) for value in extras.values()))
        return [value[0].numpy() for value in values]

    length = seqs.shape[1]
    results = None
    for n in range(len(seqs)):
        reference = run(seqs[n:n + 1], n)
        if results is None:
            results = [np.zeros((len(seqs), length, 4) + value.shape, np.float32) for value in reference]
        for i in range(length):
            for base in range(4):
                mutant = seqs[n:n + 1].copy()
                mutant[0, i] = 0
                mutant[0, i, base] = 1
                for result, value, ref in zip(results, run(mutant, n), reference):
                    result[n, i, base] = value - ref
    return dict(zip(outputs, results))


def _assert_close(got, expected):
    for name, want in expected.items():
        np.testing.assert_allclose(got[name], want, rtol=0, atol=1e-5 * max(1.0, np.abs(want).max()))


def test_the_extra_inputs_are_found_with_their_shapes(control_model):
    model = onnxism.load(control_model[0])
    assert model.input_name == "seqs"
    assert [(extra.name, extra.shape) for extra in model.extra_inputs] == [("control", (2, LENGTH)), ("totals", (2,))]


@pytest.mark.parametrize("method", ["naive", "fast"])
def test_ism_with_extra_inputs_equals_ism_in_pytorch(control_model, method):
    """Each sequence's mutants get its own control rows (3 sequences, different controls). Fast ISM windows the
    profile head, which reads the trunk's window concatenated with the control track's columns there."""
    path, module = control_model
    seqs = random_onehot(3, LENGTH, seed=2)
    extras = _extras(3)
    expected = _torch_ism(module, seqs, extras)
    with warnings.catch_warnings():
        warnings.simplefilter("error", onnxism.OnnxismWarning)  # no fallback, nothing computed in full
        got = onnxism.ism(path, seqs, method=method, extra_inputs=extras, batch_size=7)
    _assert_close(got, expected)


def test_fast_ism_windows_the_layers_that_read_extra_inputs(control_model):
    model = onnxism.load(control_model[0])
    analysis = build_plan(model, LENGTH, model.output_names).plan.analysis
    concat = [key for key in analysis.modes if "cat" in key]
    assert [analysis.modes[key] for key in concat] == ["windowed", "full"]  # the profile's; the counts' (global)
    assert analysis.unchanged == {"control", "totals"}
    assert list(analysis.unchanged_windows) == ["control"]


@pytest.fixture(scope="module")
def merged_model(tmp_path_factory):
    """(path, torch module): a trunk that adds a convolution of the control track (an unchanged tensor as long as
    the sequence), scales by a per-sequence gain from the totals (unchanged, broadcast along the length), masks by
    the control track (Where) and returns, besides its profile and counts, an output of the totals alone."""
    torch = pytest.importorskip("torch")
    from torch import nn

    from onnxism_converters import torch_to_onnx

    class MergedNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv1d(4, 8, 5, padding=2)
            self.c = nn.Conv1d(2, 8, 3, padding=1)
            self.gain = nn.Linear(2, 8)
            self.b = nn.Conv1d(8, 8, 3, padding=2, dilation=2)
            self.counts = nn.Linear(8, 3)
            self.bias = nn.Linear(2, 1)

        def forward(self, x, control, totals):
            h = torch.relu(self.a(x)) + self.c(control)
            h = h * torch.sigmoid(self.gain(totals)).unsqueeze(-1)
            h = torch.where(control[:, :1] > 0.5, h, -h)
            h = torch.relu(self.b(h))
            return h, self.counts(h.mean(2)), self.bias(totals)

    torch.manual_seed(5)
    module = MergedNet().eval()
    path = tmp_path_factory.mktemp("merged") / "merged.onnx"
    torch_to_onnx(module, torch.zeros(2, 4, LENGTH), path, output_names=["profile", "counts", "bias"],
                  extra_inputs={"control": torch.zeros(2, 2, LENGTH), "totals": torch.zeros(2, 2)})
    return path, module


def test_fast_ism_with_extra_inputs_merged_into_the_trunk(merged_model):
    """Add, Mul and Where with unchanged operands are windowed: the whole trunk is, and fast equals ISM in PyTorch
    (an output of the extra inputs alone scores 0)."""
    path, module = merged_model
    model = onnxism.load(path)
    analysis = build_plan(model, LENGTH, model.output_names).plan.analysis
    assert {analysis.modes[key] for key in analysis.rules} == {"windowed"}
    assert sorted(key for key, mode in analysis.modes.items() if mode == "full") == ["node_linear_1", "node_mean"]
    seqs = random_onehot(3, LENGTH, seed=7)
    extras = _extras(3, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", onnxism.OnnxismWarning)
        got = onnxism.ism(path, seqs, method="fast", extra_inputs=extras, batch_size=11)
    expected = _torch_ism(module, seqs, extras, ("profile", "counts", "bias"))
    _assert_close(got, expected)
    assert not got["bias"].any()


def test_chunks_carry_their_own_rows_of_the_extra_inputs(control_model):
    """Many sequences in several chunks: every chunk's references equal predict on its own sequences."""
    path, _ = control_model
    seqs = random_onehot(40, LENGTH, seed=3)
    extras = _extras(40, seed=1)
    predicted = onnxism.predict(path, seqs, extra_inputs=extras)
    chunks = list(onnxism.ism_chunks(path, seqs, method="naive", extra_inputs=extras, batch_size=1,
                                     positions=(0, 2)))
    assert len(chunks) > 1
    for start, stop, reference, _ in chunks:
        for name, value in reference.items():
            np.testing.assert_allclose(value, predicted[name][start:stop], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("case, message", [
    ("missing", "the model has inputs besides the sequences (control, totals)"),
    ("unknown", "unknown extra input 'other'"),
    ("rows", "extra input 'control' has 2 rows for 3 sequences"),
    ("shape", "extra input 'totals' has shape (3, 3); the model takes (3, 2)"),
    ("nan", "extra input 'control' contains NaN or infinite values"),
    ("text", "extra input 'totals' is not numeric"),
    ("complex", "extra input 'totals' holds complex values (dtype complex64); the model takes float32"),
])
def test_bad_extra_inputs_are_named(control_model, case, message):
    seqs = random_onehot(3, LENGTH, seed=4)
    extras = _extras(3)
    if case == "missing":
        extras = None
    elif case == "unknown":
        extras["other"] = extras["totals"]
    elif case == "rows":
        extras["control"] = extras["control"][:2]
    elif case == "shape":
        extras["totals"] = np.zeros((3, 3), np.float32)
    elif case == "nan":
        extras["control"][1, 0, 5] = np.nan
    elif case == "complex":
        extras["totals"] = extras["totals"] + 0.5j
    else:
        extras["totals"] = np.array([["a", "b"]] * 3)
    with pytest.raises(onnxism.InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        onnxism.ism(control_model[0], seqs, method="naive", extra_inputs=extras)


def test_extra_inputs_for_a_model_without_them(control_model):
    seqs = random_onehot(2, 20, seed=5)
    with pytest.raises(onnxism.InputError, match="unknown extra input 'control'; .*none: it takes only the sequences"):
        onnxism.ism(conv_model(), seqs, extra_inputs={"control": np.zeros((2, 2))})
    with pytest.raises(onnxism.InputError, match="the model has inputs besides the sequences"):
        onnxism.tism(control_model[0], random_onehot(2, LENGTH))


def test_tism_with_extra_inputs_equals_the_gradient_in_pytorch(merged_model):
    """TISM holds the extra inputs at each sequence's values: its gradient of every output's sum equals torch
    autograd's on the same weights and inputs, minus the value at the reference base."""
    import torch

    path, module = merged_model
    seqs = random_onehot(3, LENGTH, seed=10)
    extras = _extras(3, seed=4)
    got = onnxism.tism(path, seqs, targets="sum", outputs=["profile", "counts"], extra_inputs=extras, batch_size=2)
    x = torch.tensor(seqs.transpose(0, 2, 1), requires_grad=True)
    profile, counts, _ = module(x, *(torch.tensor(value) for value in extras.values()))
    for name, value in (("profile", profile), ("counts", counts)):
        (gradient,) = torch.autograd.grad(value.sum(), x, retain_graph=True)
        gradient = gradient.numpy().transpose(0, 2, 1)  # (N, L, 4); each sequence's outputs depend on it alone
        expected = gradient - (gradient * seqs).sum(-1, keepdims=True)
        np.testing.assert_allclose(got[name], expected, rtol=0, atol=1e-5 * max(1.0, np.abs(expected).max()))


def test_a_dynamic_axis_that_is_not_the_length_is_refused():
    model = conv_model(extra_input=True)
    model.graph.input[1].type.tensor_type.shape.dim[1].dim_param = "features"
    with pytest.raises(onnxism.ModelError, match="input 'extra' has shape \\(N, features\\): its axis 1 is dynamic"):
        onnxism.load(model)


def test_values_an_integer_input_would_truncate_are_refused():
    """Whole numbers in a float array are cast to an int64 extra input; fractions are refused, not truncated."""
    from onnx import TensorProto

    model = conv_model(extra_input=True)
    model.graph.input[1].type.tensor_type.elem_type = TensorProto.INT64
    seqs = random_onehot(2, 20, seed=1)
    whole = onnxism.ism(model, seqs, method="naive", extra_inputs={"extra": np.full((2, 2), 3.0)})
    np.testing.assert_array_equal(whole["y"], onnxism.ism(model, seqs, method="naive",
                                                          extra_inputs={"extra": np.full((2, 2), 3)})["y"])
    with pytest.raises(onnxism.InputError, match="extra input 'extra' has values that are not whole numbers; "
                                                 "the model takes int64"):
        onnxism.ism(model, seqs, method="naive", extra_inputs={"extra": np.full((2, 2), 2.5)})


@pytest.mark.parametrize("elem_type, value, message", [
    ("INT32", np.full((2, 2), 2 ** 31, np.int64), "outside the range of int32 (2147483648 outside "
                                                   "[-2147483648, 2147483647])"),
    ("INT32", np.full((2, 2), -2.0 ** 31 - 1), "outside the range of int32 (-2147483649 outside"),
    ("INT64", np.full((2, 2), 2.0 ** 63), "outside the range of int64 (9223372036854775808 outside"),
    ("UINT8", np.full((2, 2), -1, np.int16), "outside the range of uint8 (-1 outside [0, 255])"),
    ("FLOAT", np.full((2, 2), 1e39), "outside the range of float32 (1e+39 outside [-3.40282e+38, 3.40282e+38])"),
])
def test_values_a_cast_would_wrap_or_make_infinite_are_refused(elem_type, value, message):
    """An integer cast wraps values beyond its range and a float one makes them infinite: both are refused; the
    extremes of the model's type are taken (the graph does not read the input: only the check is at stake)."""
    from onnx import TensorProto

    model = conv_model(extra_input=True)
    model.graph.input[1].type.tensor_type.elem_type = getattr(TensorProto, elem_type)
    seqs = random_onehot(2, 20, seed=1)
    with pytest.raises(onnxism.InputError, match=f"extra input 'extra' has values {re.escape(message)}"):
        onnxism.ism(model, seqs, method="naive", extra_inputs={"extra": value})
    dtype = onnx.helper.tensor_dtype_to_np_dtype(getattr(TensorProto, elem_type))
    info = np.iinfo(dtype) if np.issubdtype(dtype, np.integer) else np.finfo(dtype)
    for extreme in (info.min, info.max):
        onnxism.ism(model, seqs, method="naive", extra_inputs={"extra": np.full((2, 2), extreme, dtype)})


def test_cli_run_with_extra_inputs(control_model, tmp_path):
    path, _ = control_model
    seqs = random_onehot(3, LENGTH, seed=6)
    extras = _extras(3, seed=2)
    np.save(tmp_path / "seqs.npy", seqs)
    for name, value in extras.items():
        np.save(tmp_path / f"{name}.npy", value)
    out = tmp_path / "scores.npz"
    result = onnxism_cli("run", path, tmp_path / "seqs.npy", "-o", out,  # fast ISM, the default
                         "--extra-inputs", f"control={tmp_path / 'control.npy'}",
                         "--extra-inputs", f"totals={tmp_path / 'totals.npy'}")
    assert result.returncode == 0, result.stderr
    expected = onnxism.ism(path, seqs, method="naive", extra_inputs=extras)
    with np.load(out) as archive:
        _assert_close({name: archive[name] for name in expected}, expected)
    info = onnxism_cli("info", path)
    assert "extra:    control  shape (N, 2, 24)" in info.stdout and "extra:    totals  shape (N, 2)" in info.stdout
    missing = onnxism_cli("run", path, tmp_path / "seqs.npy", "-o", tmp_path / "x.npz")
    assert_clean_failure(missing, "--extra-inputs control=FILE.npy")
    bad = onnxism_cli("run", path, tmp_path / "seqs.npy", "-o", tmp_path / "x.npz", "--extra-inputs", "control")
    assert_clean_failure(bad, "--extra-inputs must be NAME=FILE.npy")
    absent = onnxism_cli("run", path, tmp_path / "seqs.npy", "-o", tmp_path / "x.npz",
                         "--extra-inputs", f"control={tmp_path / 'none.npy'}")
    assert_clean_failure(absent, f"--extra-inputs control: file not found: {tmp_path / 'none.npy'}")
    (tmp_path / "truncated.npy").write_bytes((tmp_path / "seqs.npy").read_bytes()[:200])
    truncated = onnxism_cli("run", path, tmp_path / "seqs.npy", "-o", tmp_path / "x.npz",
                            "--extra-inputs", f"control={tmp_path / 'truncated.npy'}")
    assert_clean_failure(truncated, f"--extra-inputs control: {tmp_path / 'truncated.npy'} is truncated")
    assert not os.path.exists(tmp_path / "x.npz")
    # the compiled fast ISM graph takes the extra inputs as the model does
    fast_graph = tmp_path / "c.onnx"
    assert onnxism_cli("compile", path, "-o", fast_graph, "--method", "fast").returncode == 0
    session = onnxruntime.InferenceSession(str(fast_graph), providers=["CPUExecutionProvider"])
    positions = np.array([0, 5, LENGTH - 1], np.int64)
    standalone = session.run(["profile__ism", "counts__ism"],
                             {"seqs": seqs.transpose(0, 2, 1), "positions": positions, **extras})
    for name, value in zip(["profile", "counts"], standalone):
        np.testing.assert_allclose(value, expected[name][:, positions], rtol=0, atol=1e-5)
    tism = onnxism_cli("run", path, tmp_path / "seqs.npy", "-o", tmp_path / "t.npz", "--method", "tism",
                       "--targets", "sum", "--extra-inputs", f"control={tmp_path / 'control.npy'}",
                       "--extra-inputs", f"totals={tmp_path / 'totals.npy'}")
    assert tism.returncode == 0, tism.stderr
    expected = onnxism.tism(path, seqs, targets="sum", extra_inputs=extras)
    with np.load(tmp_path / "t.npz") as archive:
        _assert_close({name: archive[name] for name in expected}, expected)
    # the compiled gradient graph takes the extra inputs as the model does
    gradient_graph = tmp_path / "g.onnx"
    assert onnxism_cli("compile", path, "-o", gradient_graph, "--outputs", "counts").returncode == 0
    session = onnxruntime.InferenceSession(str(gradient_graph), providers=["CPUExecutionProvider"])
    (standalone,) = session.run(["tism"], {"seqs": seqs.transpose(0, 2, 1), "seed__counts": np.ones((1, 2), np.float32),
                                           **extras})
    np.testing.assert_allclose(standalone[0].transpose(0, 2, 1), expected["counts"], rtol=0, atol=1e-6)
    assert onnx.load(path).graph.input[1].name == "control"


def test_fast_ism_on_a_keras_model_with_extra_inputs(tmp_path):
    """A Keras functional model with a control track (N, L, 2) and a per-sequence vector, through tf2onnx: the
    track's own convolution is added to the trunk, the track is concatenated to it, a gain from the vector
    multiplies it. The converted model predicts what Keras does on the same inputs, and fast ISM windows every
    layer before the pooling and equals naive."""
    pytest.importorskip("tf2onnx")
    import keras

    from onnxism_converters import keras_to_onnx

    length = 40
    seq = keras.Input((length, 4), name="seqs")
    control = keras.Input((length, 2), name="control")
    totals = keras.Input((2,), name="totals")
    h = keras.layers.Conv1D(8, 5, padding="same", activation="relu")(seq)
    h = keras.layers.Add()([h, keras.layers.Conv1D(8, 3, padding="same")(control)])
    h = keras.layers.Concatenate(axis=-1)([h, control])
    h = keras.layers.Conv1D(8, 3, padding="same", dilation_rate=2, activation="relu")(h)
    gain = keras.layers.Reshape((1, 8))(keras.layers.Dense(8, activation="sigmoid")(totals))
    h = keras.layers.Multiply()([h, gain])
    pooled = keras.layers.GlobalAveragePooling1D()(h)
    counts = keras.layers.Dense(2, name="counts")(keras.layers.Concatenate()([pooled, totals]))
    profile = keras.layers.Conv1D(1, 7, padding="same", name="profile")(h)
    model = keras.Model([seq, control, totals], [profile, counts])
    path = tmp_path / "multi.onnx"
    keras_to_onnx(model, path)
    loaded = onnxism.load(path)
    assert [(extra.name, extra.shape) for extra in loaded.extra_inputs] == [("control", (length, 2)), ("totals", (2,))]

    seqs = random_onehot(3, length, seed=9)
    rng = np.random.default_rng(9)
    extras = {"control": rng.random((3, length, 2)).astype(np.float32),
              "totals": rng.random((3, 2)).astype(np.float32)}
    predicted = onnxism.predict(path, seqs, extra_inputs=extras)
    in_keras = model([seqs, extras["control"], extras["totals"]])
    for name, value in zip(["profile", "counts"], in_keras):
        np.testing.assert_allclose(predicted[name], np.asarray(value), rtol=1e-5, atol=1e-5)

    analysis = build_plan(loaded, length, loaded.output_names).plan.analysis
    assert [notice.op for notice in analysis.notices] == ["ReduceMean"]  # the pooling: global by nature
    naive = onnxism.ism(path, seqs, method="naive", extra_inputs=extras)
    with warnings.catch_warnings():
        warnings.simplefilter("error", onnxism.OnnxismWarning)
        fast = onnxism.ism(path, seqs, method="fast", extra_inputs=extras, batch_size=32)
    _assert_close(fast, naive)
