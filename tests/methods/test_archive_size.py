"""The archive's size: ``compress`` deflates it (numpy's own reader gives back the same arrays), and an archive
larger than ``writing.LARGE_ARCHIVE`` is announced before the run, output by output, with the figures numpy reads
back from the finished file."""

import re
import warnings
import zipfile

import numpy as np
import pytest

import onnxism
from onnxism.methods import writing

from cli_helpers import onnxism_cli
from conftest import random_onehot
from onnx_builders import conv_model

UNITS = {"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9}


def test_a_compressed_archive_holds_the_same_arrays_deflated(tmp_path):
    seqs = random_onehot(40, 20, seed=4, n_fraction=0.1)
    plain = onnxism.ism_to_npz(conv_model(), seqs, tmp_path / "plain.npz")
    deflated = onnxism.ism_to_npz(conv_model(), seqs, tmp_path / "deflated.npz", compress=True)
    with np.load(plain) as left, np.load(deflated) as right:
        assert sorted(left.files) == sorted(right.files)
        for key in left.files:
            np.testing.assert_array_equal(left[key], right[key])
    with zipfile.ZipFile(deflated) as archive:
        assert {entry.compress_type for entry in archive.infolist()} == {zipfile.ZIP_DEFLATED}
    assert deflated.stat().st_size < plain.stat().st_size


def test_the_cli_compresses_on_request(tmp_path):
    np.save(tmp_path / "seqs.npy", random_onehot(4, 20, seed=5))
    conv_model_path = tmp_path / "model.onnx"
    conv_model_path.write_bytes(conv_model().SerializeToString())
    result = onnxism_cli("run", "model.onnx", "seqs.npy", "--compress", "-o", "out.npz", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    with zipfile.ZipFile(tmp_path / "out.npz") as archive:
        assert {entry.compress_type for entry in archive.infolist()} == {zipfile.ZIP_DEFLATED}


def test_a_large_archive_is_announced_with_each_output_s_size(tmp_path, monkeypatch):
    monkeypatch.setattr(writing, "LARGE_ARCHIVE", 50_000)
    seqs = random_onehot(300, 20, seed=6)
    with pytest.warns(onnxism.OnnxismWarning) as caught:
        path = onnxism.ism_to_npz(conv_model(), seqs, tmp_path / "out.npz")
    message = str(caught[0].message)
    with np.load(path) as archive:
        total = sum(archive[key].nbytes for key in ("y", "reference/y", "onehot"))
        output = archive["y"].nbytes + archive["reference/y"].nbytes
    stated = re.fullmatch(r".*out\.npz will hold ([\d.]+) (\w+) \(y ([\d.]+) (\w+)\); --targets \(sum, an index\) "
                          r"or --outputs make it smaller", message)
    assert stated, message
    assert float(stated[1]) * UNITS[stated[2]] == pytest.approx(total, rel=5e-3)
    assert float(stated[3]) * UNITS[stated[4]] == pytest.approx(output, rel=5e-3)


def test_a_small_archive_is_not_announced(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        onnxism.ism_to_npz(conv_model(), random_onehot(3, 20), tmp_path / "out.npz")
