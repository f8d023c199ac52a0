"""``onnxism export triton`` and ``onnxism serve`` from the command line: what they write, and one clear line for
each bad input, with nothing half-written."""

import os
import sys

import numpy as np
import onnxruntime as ort

import onnxism

from cli_helpers import MODEL, SEQS, assert_clean_failure, onnxism_cli


def test_export_writes_one_folder_per_method(tmp_path):
    repo = tmp_path / "repo"
    done = onnxism_cli("export", "triton", MODEL, "-o", repo, "--methods", "fast", "tism", "--targets", "sum",
                       "--name", "motif")
    assert done.returncode == 0, done.stderr
    assert sorted(os.listdir(repo)) == ["motif_fast", "motif_tism"]
    assert sorted(os.listdir(repo / "motif_fast" / "1")) == ["model.onnx"]
    session = ort.InferenceSession(str(repo / "motif_tism" / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
    seqs = np.load(SEQS).astype(np.float32)
    (logit, tism) = session.run(["logit", "logit__tism"], {"onehot": seqs})
    np.testing.assert_allclose(tism, onnxism.tism(MODEL, seqs, targets="sum")["logit"], rtol=1e-6, atol=1e-6)
    assert tism.shape == (8, 200, 4)


def test_python_backend_writes_the_twin(tmp_path):
    done = onnxism_cli("export", "triton", MODEL, "-o", tmp_path / "repo", "--backend", "python")
    assert done.returncode == 0, done.stderr
    folder = tmp_path / "repo" / "motif_model_fast"
    assert sorted(os.listdir(folder / "1")) == ["model.onnx", "model.py"]
    config = (folder / "config.pbtxt").read_text()
    assert 'backend: "python"' in config and "KIND_CPU" in config and 'string_value: "200"' in config


def test_bad_export_requests_write_nothing(tmp_path):
    repo = tmp_path / "repo"
    assert onnxism_cli("export", "triton", MODEL, "-o", repo).returncode == 0
    before = sorted(os.listdir(repo))
    assert_clean_failure(onnxism_cli("export", "triton", MODEL, "-o", repo, "--methods", "tism", "fast"), "exists")
    assert_clean_failure(onnxism_cli("export", "triton", MODEL, "-o", repo, "--backend", "python", "--kind", "gpu",
                                     "--name", "other"), "use --kind cpu")
    assert_clean_failure(onnxism_cli("export", "triton", MODEL, "-o", repo, "--max-batch-size", "0", "--name", "x"),
                         "--max-batch-size must be a positive integer")
    assert_clean_failure(onnxism_cli("export", "triton", SEQS, "-o", repo, "--name", "y"), "")
    assert sorted(os.listdir(repo)) == before
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".onnxism-")]


def test_serve_refuses_what_it_cannot_start(tmp_path):
    (tmp_path / "repo").mkdir()
    assert_clean_failure(onnxism_cli("serve", tmp_path / "repo", "--python", tmp_path / "python"),
                         "is not a Python interpreter")
    assert_clean_failure(onnxism_cli("serve", tmp_path / "repo", "--python", sys.executable),
                         "has no nvidia-pytriton")
    assert_clean_failure(onnxism_cli("serve", tmp_path / "missing", "--python", sys.executable), "is not a folder")
