"""``onnxism convert`` by route, from files the tests write: a torch.export program (.pt2), a TorchScript file,
CREsted's LegNet as a .keras file, a SavedModel folder; each output against the framework's predictions, fast ISM
against naive; bad files and options as one line. Each route runs once through a subprocess; the bad cases run
in-process through the same entry point (``onnxism.cli.main``), one of them through a subprocess too."""

import os

import numpy as np
import pytest

import onnxism

from cli_helpers import assert_clean_failure, onnxism_cli
from conftest import random_onehot
from fast_checks import assert_fast_equals_naive
from lab_models import enformer_attention, legnet


def _torch_predict(module, seqs, layout="NCL"):
    import torch

    x = seqs.transpose(0, 2, 1) if layout == "NCL" else seqs
    with torch.no_grad():
        return module(torch.from_numpy(np.ascontiguousarray(x))).numpy()


def _conv_net(torch, layout="NCL"):
    """conv -> ReLU -> conv -> mean over the length: takes any length."""
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv1d(4, 6, 5, padding=2), nn.Conv1d(6, 3, 3, padding=1)
            self.channels_last = layout == "NLC"

        def forward(self, x):
            if self.channels_last:
                x = x.transpose(1, 2)
            return self.b(torch.relu(self.a(x))).mean(-1)

    torch.manual_seed(0)
    return Net().eval()


def _fails_in_process(capsys, message, *args):
    """``onnxism convert ARGS`` in this process: a non-zero exit and one line on stderr naming ``message``."""
    from onnxism.cli import main

    capsys.readouterr()
    assert main(["convert", *map(str, args)]) != 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("onnxism: error: ") and message in lines[0], lines


def _only_output(path, seqs):
    (value,) = onnxism.predict(path, seqs).values()
    return value


def test_pt2_program_fixed_and_any_length(tmp_path):
    torch = pytest.importorskip("torch")
    module = _conv_net(torch)
    length = torch.export.Dim("length", min=8)
    batch = torch.export.Dim("batch")
    program = torch.export.export(module, (torch.zeros(2, 4, 30),), dynamic_shapes=({0: batch, 2: length},))
    torch.export.save(program, tmp_path / "net.pt2")
    for flags, out in (([], "any.onnx"), (["--length", "30", "--batch", "3"], "fixed.onnx")):
        result = onnxism_cli("convert", tmp_path / "net.pt2", "-o", tmp_path / out, *flags)
        assert result.returncode == 0, result.stderr
    for length in (30, 57):
        seqs = random_onehot(3, length, seed=length)
        np.testing.assert_allclose(_only_output(tmp_path / "any.onnx", seqs), _torch_predict(module, seqs),
                                   rtol=0, atol=1e-5)
    fixed = onnxism.load(tmp_path / "fixed.onnx")
    assert fixed.length == 30 and 3 in (fixed.fixed_batch, fixed.exported_batch)
    seqs = random_onehot(3, 30, seed=1)
    np.testing.assert_allclose(_only_output(fixed, seqs), _torch_predict(module, seqs), rtol=0, atol=1e-5)


def test_pt2_enformer_attention_then_fast_ism(tmp_path, capsys):
    """A user's route for Enformer: torch.export.save, then onnxism convert; lgamma and xlogy are translated. A
    program of one batch size converts for that batch size only."""
    torch = pytest.importorskip("torch")
    module, example = enformer_attention(length=24)
    batch = torch.export.Dim("batch")
    torch.export.save(torch.export.export(module, (example,), dynamic_shapes=({0: batch},)), tmp_path / "enformer.pt2")
    torch.export.save(torch.export.export(module, (example,)), tmp_path / "one_batch.pt2")
    result = onnxism_cli("convert", tmp_path / "enformer.pt2", "-o", tmp_path / "enformer.onnx")
    assert result.returncode == 0, result.stderr
    seqs = random_onehot(2, 24, seed=6)
    want = _torch_predict(module, seqs)
    np.testing.assert_allclose(_only_output(tmp_path / "enformer.onnx", seqs), want, rtol=0,
                               atol=2e-5 * max(1.0, np.abs(want).max()))
    assert onnxism.load(tmp_path / "enformer.onnx").fixed_batch is None  # fast ISM can batch it (no fallback)
    assert_fast_equals_naive(tmp_path / "enformer.onnx", seqs)
    _fails_in_process(capsys, "was exported for length 24 only", tmp_path / "enformer.pt2", "-o",
                      tmp_path / "any.onnx", "--length", "any")
    _fails_in_process(capsys, "was exported for batch size 2 only: pass --batch 2", tmp_path / "one_batch.pt2",
                      "-o", tmp_path / "b.onnx")
    _fails_in_process(capsys, "was exported for batch size 2, not 3", tmp_path / "one_batch.pt2", "-o",
                      tmp_path / "b.onnx", "--batch", "3")
    assert onnxism_cli("convert", tmp_path / "one_batch.pt2", "-o", tmp_path / "b.onnx", "--batch", "2").returncode == 0
    one_batch = onnxism.load(tmp_path / "b.onnx")
    assert 2 in (one_batch.fixed_batch, one_batch.exported_batch)


@pytest.mark.parametrize("layout", ["NCL", "NLC"])
def test_torchscript_file(tmp_path, capsys, layout):
    torch = pytest.importorskip("torch")
    module = _conv_net(torch, layout)
    torch.jit.save(torch.jit.script(module), tmp_path / "net.pt")
    result = onnxism_cli("convert", tmp_path / "net.pt", "-o", tmp_path / "net.onnx", "--length", "any",
                         "--layout", layout)
    assert result.returncode == 0, result.stderr
    model = onnxism.load(tmp_path / "net.onnx")
    assert model.layout == layout
    for length in (20, 41):
        seqs = random_onehot(2, length, seed=length)
        np.testing.assert_allclose(_only_output(model, seqs), _torch_predict(module, seqs, layout), rtol=0,
                                   atol=1e-5)
    _fails_in_process(capsys, "give --length", tmp_path / "net.pt", "-o", tmp_path / "x.onnx")


def test_legnet_keras_file(tmp_path):
    pytest.importorskip("tf2onnx")
    model = legnet(length=32)
    model.save(tmp_path / "legnet.keras")
    result = onnxism_cli("convert", tmp_path / "legnet.keras", "-o", tmp_path / "legnet.onnx")
    assert result.returncode == 0, result.stderr
    seqs = random_onehot(3, 32, seed=8)
    want = np.asarray(model(seqs, training=False))
    np.testing.assert_allclose(_only_output(tmp_path / "legnet.onnx", seqs), want, rtol=0,
                               atol=2e-5 * max(1.0, np.abs(want).max()))


def test_savedmodel_folder_with_two_outputs(tmp_path):
    """A Keras 3 export (``model.export``): the serving signature's outputs keep their names."""
    pytest.importorskip("tf2onnx")
    import keras

    inputs = keras.Input((20, 4))
    h = keras.layers.Flatten()(keras.layers.Conv1D(4, 3, activation="relu", bias_initializer="ones")(inputs))
    model = keras.Model(inputs, [keras.layers.Dense(2)(h), keras.layers.Dense(3)(h)])
    model.export(tmp_path / "saved", verbose=False)
    result = onnxism_cli("convert", tmp_path / "saved", "-o", tmp_path / "saved.onnx")
    assert result.returncode == 0, result.stderr
    seqs = random_onehot(3, 20, seed=10)
    got = onnxism.predict(tmp_path / "saved.onnx", seqs)
    assert list(got) == ["output_0", "output_1"]
    for value, want in zip(got.values(), model(seqs)):
        np.testing.assert_allclose(value, np.asarray(want), rtol=0, atol=1e-5)


def test_bad_files_and_options_are_one_line(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    (tmp_path / "junk.pt2").write_bytes(b"not a zip")
    (tmp_path / "junk.pt").write_bytes(b"not a zip")
    torch.save(_conv_net(torch).state_dict(), tmp_path / "weights.pth")
    (tmp_path / "model.onnx").write_bytes(b"")
    out = tmp_path / "o.onnx"
    cases = [
        (("junk.pt2",), "cannot load junk.pt2 as a torch.export program"),
        (("junk.pt", "--length", "20"), "cannot load junk.pt as TorchScript"),
        (("weights.pth", "--length", "20"), "a state dict needs its module's code"),
        (("missing.pt2",), "not found"),
        (("model.onnx",), "cannot convert"),
        (("junk.pt", "--length", "-3"), "--length takes a length, or 'any', not '-3'"),
        (("junk.pt", "--length", "20", "--batch", "some"), "--batch takes 'dynamic', or a batch size"),
    ]
    assert_clean_failure(onnxism_cli("convert", tmp_path / "junk.pt2", "-o", out), cases[0][1])
    for args, message in cases:
        _fails_in_process(capsys, message, tmp_path / args[0], *args[1:], "-o", out)
        assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".onnxism")] == []


def test_torchscript_enformer_attention_through_the_legacy_exporter(tmp_path):
    """Traced to TorchScript, Enformer's attention goes through the legacy exporter with its lgamma and xlogy
    translations."""
    torch = pytest.importorskip("torch")
    module, example = enformer_attention(length=24)
    with pytest.warns(torch.jit.TracerWarning):
        traced = torch.jit.trace(module, example)
    torch.jit.save(traced, tmp_path / "enformer.pt")
    result = onnxism_cli("convert", tmp_path / "enformer.pt", "-o", tmp_path / "enformer.onnx", "--length", "24")
    assert result.returncode == 0, result.stderr
    seqs = random_onehot(3, 24, seed=9)
    want = _torch_predict(module, seqs)
    np.testing.assert_allclose(_only_output(tmp_path / "enformer.onnx", seqs), want, rtol=0,
                               atol=2e-5 * max(1.0, np.abs(want).max()))


def test_without_torch_the_pip_command_is_the_one_line(tmp_path):
    """torch hidden from the subprocess (a package named torch that fails to import, first on its path)."""
    hidden = tmp_path / "hide" / "torch"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text("raise ImportError(\"No module named 'torch'\")\n")
    (tmp_path / "net.pt2").write_bytes(b"not read")
    path = os.pathsep.join(filter(None, [str(tmp_path / "hide"), os.environ.get("PYTHONPATH")]))
    result = onnxism_cli("convert", tmp_path / "net.pt2", "-o", tmp_path / "net.onnx",
                         env={**os.environ, "PYTHONPATH": path})
    assert_clean_failure(result, "pip install 'onnxism[torch]'")
    assert not (tmp_path / "net.onnx").exists()
