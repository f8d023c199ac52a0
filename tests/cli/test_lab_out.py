"""From the example to what a lab uses next: TF-MoDISco's input files (read back with numpy, and run through the
real modisco-lite, which must find the planted motif), and pictures (read back with PIL; the logo's letters as tall
as the scores drawn)."""

import json
import os
import subprocess

import numpy as np
import pytest
from tool_venvs import tool_python

import onnxism

from cli_helpers import MODEL, SEQS, assert_clean_failure, onnxism_cli
from conftest import EXAMPLES, random_onehot
from onnx_builders import conv_model

MODISCO = "modisco-lite==3.0.0"


def test_the_modisco_files_hold_the_one_hot_and_the_centred_scores(tmp_path):
    seqs = np.load(SEQS)
    archive = onnxism.ism_to_npz(MODEL, seqs, tmp_path / "scores.npz", positions=(50, 150))
    result = onnxism_cli("modisco", archive, "-o", tmp_path / "modisco", "--window", "60:140")
    assert result.returncode == 0, result.stderr
    delta = onnxism.ism(MODEL, seqs, positions=(60, 140))["logit"][..., 0]
    with np.load(tmp_path / "modisco" / "ohe.npz") as ohe, np.load(tmp_path / "modisco" / "shap.npz") as shap:
        assert ohe.files == ["arr_0"] and shap.files == ["arr_0"]
        np.testing.assert_array_equal(ohe["arr_0"], seqs[:, 60:140].transpose(0, 2, 1))
        expected = (delta - delta.mean(axis=2, keepdims=True)).transpose(0, 2, 1)
        np.testing.assert_allclose(shap["arr_0"], expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("args, message", [
    (["--window", "10:20"], "window [10, 20) is not inside the positions"),
    (["--output", "nope"], "has no scores named 'nope'"),
    (["--window", "1:2:3"], "--window must be START:END"),
])
def test_bad_modisco_requests_are_one_line(tmp_path, args, message):
    archive = onnxism.ism_to_npz(MODEL, np.load(SEQS), tmp_path / "scores.npz", positions=(50, 150))
    assert_clean_failure(onnxism_cli("modisco", archive, "-o", tmp_path / "out", *args), message)


def test_projected_scores_cannot_feed_modisco(tmp_path):
    archive = onnxism.ism_to_npz(MODEL, np.load(SEQS), tmp_path / "p.npz", attribution="projected")
    assert_clean_failure(onnxism_cli("modisco", archive, "-o", tmp_path / "out"),
                         "holds projected scores, from which hypothetical scores cannot be recovered")


def test_an_output_of_several_elements_needs_an_index(tmp_path):
    archive = onnxism.ism_to_npz(conv_model(), random_onehot(2, 20, seed=1), tmp_path / "s.npz")
    assert_clean_failure(onnxism_cli("modisco", archive, "-o", tmp_path / "out"), "pick one element with --index")
    assert onnxism_cli("modisco", archive, "-o", tmp_path / "out", "--index", "2").returncode == 0


def test_modisco_lite_finds_the_planted_motif_in_the_example_s_ism(tmp_path):
    """ISM of the bundled example on 600 sequences with TGACTCA planted (examples/motif_sequences.py), through
    ``onnxism modisco`` into the real ``modisco motifs``: among its patterns is the motif or its reverse complement."""
    python = tool_python("modisco", MODISCO)
    import sys

    sys.path.insert(0, EXAMPLES)
    from motif_sequences import planted_onehot

    seqs, _ = planted_onehot(600, seed=5)
    archive = onnxism.ism_to_npz(MODEL, seqs, tmp_path / "scores.npz")
    folder = tmp_path / "modisco"
    assert onnxism_cli("modisco", archive, "-o", folder).returncode == 0
    modisco = os.path.join(os.path.dirname(python), "modisco")
    run = subprocess.run([modisco, "motifs", "-s", folder / "ohe.npz", "-a", folder / "shap.npz", "-n", "2000",
                          "-w", "200", "-o", tmp_path / "modisco.h5"], capture_output=True, text=True, timeout=1800)
    assert run.returncode == 0, run.stderr[-2000:]
    read = ("import h5py, json, sys, numpy as np\n"
            "found = []\n"
            "with h5py.File(sys.argv[1]) as f:\n"
            "    for group in ('pos_patterns', 'neg_patterns'):\n"
            "        for name in f.get(group, {}):\n"
            "            ppm = np.asarray(f[group][name]['sequence'])\n"
            "            found.append(''.join('ACGT'[i] for i in ppm.argmax(1)))\n"
            "print(json.dumps(found))")
    patterns = json.loads(subprocess.run([python, "-c", read, tmp_path / "modisco.h5"], capture_output=True,
                                         text=True, check=True).stdout)
    assert any("TGACTCA" in pattern or "TGAGTCA" in pattern for pattern in patterns), patterns


@pytest.mark.parametrize("kind, suffix", [("logo", ".png"), ("heatmap", ".svg"), ("logo", ".pdf")])
def test_pictures_are_valid_files(tmp_path, kind, suffix):
    pytest.importorskip("logomaker")
    archive = onnxism.ism_to_npz(MODEL, np.load(SEQS), tmp_path / "scores.npz")
    out = tmp_path / f"picture{suffix}"
    result = onnxism_cli("plot", archive, "--seq", "2", "--window", "100:130", "--kind", kind, "-o", out)
    assert result.returncode == 0, result.stderr
    data = out.read_bytes()
    if suffix == ".png":
        from PIL import Image

        with Image.open(out) as image:
            image.verify()
            assert image.format == "PNG" and image.size[0] > 300
    elif suffix == ".svg":
        assert data.lstrip().startswith(b"<?xml") and b"<svg" in data
    else:
        assert data.startswith(b"%PDF")


def test_the_logo_s_letters_are_as_tall_as_the_scores_drawn(tmp_path):
    pytest.importorskip("logomaker")
    from onnxism.io.pictures import draw

    seqs = np.load(SEQS)
    archive = onnxism.ism_to_npz(MODEL, seqs, tmp_path / "scores.npz")
    logo = draw(archive, tmp_path / "logo.png", sequence=3, window=(100, 120))
    delta = onnxism.ism(MODEL, seqs[3:4], positions=(100, 120))["logit"][0, :, :, 0].astype(np.float64)
    centred = delta - delta.mean(axis=1, keepdims=True)
    expected = (centred * seqs[3, 100:120]).sum(1)  # the observed base's centred score, per position
    heights = []
    for position in range(100, 120):
        glyphs = [logo.glyph_df.loc[position, base] for base in "ACGT"]
        heights.append(sum(glyph.ceiling - glyph.floor for glyph in glyphs if glyph.ceiling != glyph.floor)
                       * np.sign(sum(glyph.ceiling + glyph.floor for glyph in glyphs)))
    np.testing.assert_allclose(heights, expected, rtol=1e-5, atol=1e-7)
    letters = [next(base for base in "ACGT" if logo.glyph_df.loc[p, base].ceiling != logo.glyph_df.loc[p, base].floor)
               for p in range(100, 120) if abs(expected[p - 100]) > 1e-9]
    observed = ["ACGT"[i] for i, value in zip(seqs[3, 100:120].argmax(1), expected) if abs(value) > 1e-9]
    assert letters == observed  # each letter is the observed base


def test_a_picture_without_the_plot_extra_or_of_a_bad_kind_is_one_line(tmp_path):
    archive = onnxism.ism_to_npz(MODEL, np.load(SEQS), tmp_path / "scores.npz")
    assert_clean_failure(onnxism_cli("plot", archive, "--seq", "99", "-o", tmp_path / "x.png"),
                         "--seq 99 is not a sequence of")
    assert_clean_failure(onnxism_cli("plot", archive, "-o", tmp_path / "x.gif"), "must end in .png, .svg, .pdf")
