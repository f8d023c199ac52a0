"""The CLI end to end through a subprocess: outputs, and every bad-input case as one line with no traceback."""

import gzip
import os
import subprocess
import sys

import numpy as np
import pytest

from cli_helpers import MODEL, SEQS, assert_clean_failure, onnxism_cli
from conftest import EXAMPLES, random_onehot
from onnx_builders import conv_model


def test_run_writes_scores_references_and_positions(tmp_path, example_seqs):
    out = tmp_path / "scores.npz"
    result = onnxism_cli("run", MODEL, SEQS, "-o", out, "--batch-size", "50")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("onnxism: scored 8 sequences x 200 positions") and result.stdout.count("\n") == 1
    with np.load(out) as archive:
        assert sorted(archive.files) == ["attribution", "logit", "onehot", "positions", "reference/logit"]
        import onnxism

        expected = onnxism.ism(MODEL, example_seqs)["logit"]
        np.testing.assert_allclose(archive["logit"], expected, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(archive["reference/logit"], onnxism.predict(MODEL, example_seqs)["logit"],
                                   rtol=1e-6)
        np.testing.assert_array_equal(archive["positions"], np.arange(200))
        np.testing.assert_array_equal(archive["onehot"], example_seqs.astype(np.uint8))
        assert archive["onehot"].dtype == np.uint8 and str(archive["attribution"]) == "delta"
    assert [p.name for p in tmp_path.iterdir()] == ["scores.npz"]  # no temporary files left


def test_run_fasta_with_window_matches_npy(tmp_path):
    out = tmp_path / "fa.npz"
    result = onnxism_cli("run", MODEL, os.path.join(EXAMPLES, "seqs.fa"), "-o", out, "--positions", "90:")
    assert result.returncode == 0, result.stderr
    full = tmp_path / "full.npz"
    assert onnxism_cli("run", MODEL, SEQS, "-o", full).returncode == 0
    with np.load(out) as a, np.load(full) as b:
        np.testing.assert_array_equal(a["logit"], b["logit"][:, 90:])
        assert list(a["ids"]) == [f"seq{n}" for n in range(8)]
        np.testing.assert_array_equal(a["positions"], np.arange(90, 200))


def test_run_without_output_writes_to_the_current_folder(tmp_path):
    """No -o: the sequences file's name with .ism.npz (.tism.npz for TISM) in the current folder, never over an
    existing file without --force."""
    fasta = tmp_path / "inputs" / "my.seqs.fa.gz"
    fasta.parent.mkdir()
    with open(os.path.join(EXAMPLES, "seqs.fa"), "rb") as plain, gzip.open(fasta, "wb") as packed:
        packed.write(plain.read())
    work = tmp_path / "work"
    work.mkdir()
    result = onnxism_cli("run", MODEL, fasta, "--positions", "0:20", cwd=work)
    assert result.returncode == 0, result.stderr
    assert result.stdout.rstrip().endswith("-> my.seqs.ism.npz")
    assert onnxism_cli("run", MODEL, SEQS, "--method", "tism", "--positions", "0:20", cwd=work).returncode == 0
    assert sorted(p.name for p in work.iterdir()) == ["my.seqs.ism.npz", "seqs.tism.npz"]
    with np.load(work / "my.seqs.ism.npz") as archive:
        assert archive["logit"].shape[:2] == (8, 20)
    assert_clean_failure(onnxism_cli("run", MODEL, fasta, cwd=work), "my.seqs.ism.npz")


def test_demo_recovers_the_planted_motif(tmp_path):
    out = tmp_path / "demo.npz"
    assert onnxism_cli("run", MODEL, SEQS, "-o", out).returncode == 0
    shown = subprocess.run([sys.executable, os.path.join(EXAMPLES, "show_motif.py"), str(out)],
                           capture_output=True, text=True)
    assert shown.returncode == 0, shown.stdout
    assert "located the planted motif in 8 of 8 sequences" in shown.stdout


def test_info_describes_the_model():
    result = onnxism_cli("info", MODEL)
    assert result.returncode == 0, result.stderr
    assert "input:    seqs  layout NCL (N, 4, L)  length 200" in result.stdout
    assert "output:   logit  shape (N, 1)" in result.stdout


def test_info_methods_says_how_fast_ism_and_tism_run_the_model(tmp_path):
    """--methods: the example's pooling is computed in full, and TISM runs it; a batch that cannot be freed makes
    fast ISM fall back; an op without a gradient rule (and without a local rule) is named; a length-agnostic model
    needs --length."""
    import onnx

    from gradient_cases import Case

    result = onnxism_cli("info", MODEL, "--methods")
    assert result.returncode == 0, result.stderr
    assert "fast ISM: windowed; global by nature, computed on the full length: ReduceMax node" in result.stdout
    assert "TISM:     supported" in result.stdout

    onnx.save(conv_model(batch=2, baked_batch=True), tmp_path / "fixed.onnx")
    result = onnxism_cli("info", tmp_path / "fixed.onnx", "--methods")
    assert "fast ISM: falls back to exact naive ISM: the graph has a fixed batch size (2)" in result.stdout
    assert "TISM:     supported" in result.stdout

    c = Case(opset=17)
    onnx.save(c.model(c.op("MeanVarianceNormalization", [c.op("Relu", [c.ncl()])], axes=[1])), tmp_path / "mvn.onnx")
    result = onnxism_cli("info", tmp_path / "mvn.onnx", "--methods")
    assert result.returncode == 0, result.stderr
    assert "no local rule, computed on the full length (exact, slower): MeanVarianceNormalization node" in result.stdout
    assert "TISM:     not supported: no gradient rule for MeanVarianceNormalization" in result.stdout

    onnx.save(conv_model(length="L"), tmp_path / "any_length.onnx")
    assert_clean_failure(onnxism_cli("info", tmp_path / "any_length.onnx", "--methods"), "give --length")
    result = onnxism_cli("info", tmp_path / "any_length.onnx", "--methods", "--length", "30")
    assert "fast ISM: windowed; updated incrementally (linear in a window): ReduceMean node" in result.stdout


def _bad_inputs(folder):
    """name -> (argument list for `run`, expected message fragment); files made in ``folder``."""
    folder.mkdir(exist_ok=True)
    rng_seqs = random_onehot(2, 200)
    files = {}

    def save(name, array):
        path = folder / name
        np.save(path, array)
        return path

    not_onehot = rng_seqs.copy()
    not_onehot[1, 17] = 0.5
    with_nan = rng_seqs.copy()
    with_nan[0, 3, 1] = np.nan
    (folder / "text.onnx").write_text("this is not a model")
    (folder / "unequal.fa").write_text(">a\nACGT\n>b\nACG\n")
    (folder / "letters.fa").write_text(">a\nACXT\n")
    import onnx

    no_input = conv_model()
    no_input.graph.input[0].type.tensor_type.shape.dim[2].dim_value = 7
    onnx.save(no_input, folder / "no_input.onnx")
    files.update({
        "missing model": ([folder / "none.onnx", SEQS], "model file not found"),
        "missing seqs": ([MODEL, folder / "none.npy"], "sequences file not found"),
        "not onnx": ([folder / "text.onnx", SEQS], "is not an ONNX model"),
        "no sequence input": ([folder / "no_input.onnx", SEQS], "no plausible sequence input"),
        "wrong rank": ([MODEL, save("rank.npy", rng_seqs[0])], "must have shape (N, L, 4)"),
        "wrong length": ([MODEL, save("length.npy", rng_seqs[:, :150])], "length 150, but the model takes length 200"),
        "wrong alphabet": ([MODEL, save("alphabet.npy", np.zeros((2, 200, 5), np.float32))], "4 channels"),
        "not one-hot": ([MODEL, save("soft.npy", not_onehot)], "not one-hot at sequence 1, position 17"),
        "nan": ([MODEL, save("nan.npy", with_nan)], "non-finite value (NaN or inf) at sequence 0, position 3"),
        "empty": ([MODEL, save("empty.npy", np.zeros((0, 200, 4), np.float32))], "is empty"),
        "unknown output": ([MODEL, SEQS, "--outputs", "logits"], "unknown output name 'logits'"),
        "invalid window": ([MODEL, SEQS, "--positions", "150:120"], "invalid positions window [150, 120)"),
        "window text": ([MODEL, SEQS, "--positions", "a:b"], "--positions must be two integers"),
        "fasta unequal": ([MODEL, folder / "unequal.fa"], "same length"),
        "fasta letters": ([MODEL, folder / "letters.fa"], "has 'X' at position 2"),
        "cuda missing": ([MODEL, SEQS, "--device", "cuda"], "cuda"),
        "no workers": ([MODEL, SEQS, "--workers", "0"], "workers must be a positive integer; got 0"),
        "workers with tism": ([MODEL, SEQS, "--method", "tism", "--workers", "2"],
                              "--workers applies to --method fast and naive only"),
    })
    return files


BAD_CASES = [
    "missing model", "missing seqs", "not onnx", "no sequence input", "wrong rank", "wrong length",
    "wrong alphabet", "not one-hot", "nan", "empty", "unknown output", "invalid window", "window text",
    "fasta unequal", "fasta letters", "cuda missing", "no workers", "workers with tism",
]


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_input_is_one_line_nonzero_and_writes_nothing(tmp_path, case):
    if case == "cuda missing":
        import onnxism

        if onnxism.cuda_available():
            pytest.skip("CUDA is available here")
    arguments, message = _bad_inputs(tmp_path / "inputs")[case]
    out = tmp_path / "out.npz"
    result = onnxism_cli("run", *arguments, "-o", out)
    assert_clean_failure(result, message)
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["inputs"]


def test_output_that_cannot_be_written(tmp_path):
    assert_clean_failure(onnxism_cli("run", MODEL, SEQS, "-o", tmp_path / "no" / "such" / "dir.npz"),
                         "does not exist")
    existing = tmp_path / "there.npz"
    existing.write_bytes(b"keep me")
    assert_clean_failure(onnxism_cli("run", MODEL, SEQS, "-o", existing), "exists; pass --force")
    assert existing.read_bytes() == b"keep me"
    assert_clean_failure(onnxism_cli("run", MODEL, SEQS, "-o", tmp_path), "is a directory")
    assert_clean_failure(onnxism_cli("run", MODEL, SEQS, "-o", tmp_path / "x.txt"), "must end in .npz")
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        assert_clean_failure(onnxism_cli("run", MODEL, SEQS, "-o", locked / "x.npz"), "not writable")


def test_force_overwrites(tmp_path):
    out = tmp_path / "o.npz"
    out.write_bytes(b"old")
    assert onnxism_cli("run", MODEL, SEQS, "-o", out, "--force").returncode == 0
    with np.load(out) as archive:
        assert archive["logit"].shape == (8, 200, 4, 1)


def test_convert_keras_file_then_run(tmp_path):
    pytest.importorskip("tf2onnx")
    import keras

    inputs = keras.Input((50, 4))
    x = keras.layers.Conv1D(4, 5, padding="same", activation="relu", bias_initializer="ones")(inputs)
    outputs = keras.layers.Dense(2, name="head")(keras.layers.Flatten()(x))
    model = keras.Model(inputs, outputs)
    model.save(tmp_path / "m.keras")
    # without the test session's settings that quiet TensorFlow: convert quiets it itself
    env = {name: value for name, value in os.environ.items() if not name.startswith("TF_")}
    result = onnxism_cli("convert", tmp_path / "m.keras", "-o", tmp_path / "m.onnx", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr
    seqs = random_onehot(2, 50)
    import onnxism

    np.testing.assert_allclose(onnxism.predict(tmp_path / "m.onnx", seqs)["head"], model(seqs).numpy(),
                               rtol=1e-5, atol=1e-5)
    assert_clean_failure(onnxism_cli("convert", tmp_path / "m.keras", "-o", tmp_path / "m.onnx"),
                         "exists; pass --force")
    assert_clean_failure(onnxism_cli("convert", tmp_path / "none.keras", "-o", tmp_path / "n.onnx"), "not found")


def test_convert_refuses_what_tf2onnx_leaves_unconverted(tmp_path):
    """tf2onnx writes a layer it cannot convert (a Conv2D with groups, which Keras 3 compiles with XLA) as the
    TensorFlow op it was, and onnxruntime then cannot load the file: convert says so and writes nothing."""
    pytest.importorskip("tf2onnx")
    import keras

    inputs = keras.Input((50, 4))
    x = keras.layers.Conv1D(8, 5, padding="same", activation="relu")(inputs)
    x = keras.layers.Conv2D(8, (3, 1), padding="same", groups=4)(keras.layers.Reshape((50, 1, 8))(x))
    keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(x))).save(tmp_path / "grouped.keras")
    assert_clean_failure(onnxism_cli("convert", tmp_path / "grouped.keras", "-o", tmp_path / "g.onnx"),
                         "TensorFlow ops left in the graph: StatefulPartitionedCall")
    assert not (tmp_path / "g.onnx").exists()


def test_run_is_ism_to_npz_and_takes_the_old_flag_spellings(tmp_path, example_seqs):
    """``onnxism run`` writes what ``onnxism.ism_to_npz`` writes (the CLI is a shell over it), whose scores are
    ``onnxism.ism``'s and references ``onnxism.predict``'s; ``--target`` and ``--extra-input``, the flags' former
    names, still work."""
    import onnxism

    api = onnxism.ism_to_npz(MODEL, example_seqs, tmp_path / "api.npz", positions=(100, 120), targets="sum")
    assert api == tmp_path / "api.npz"
    for flag in ("--targets", "--target"):
        out = tmp_path / f"cli{flag}.npz"
        result = onnxism_cli("run", MODEL, SEQS, "--positions", "100:120", flag, "sum", "-o", out)
        assert result.returncode == 0, result.stderr
        with np.load(out) as cli, np.load(api) as written:
            assert sorted(cli.files) == sorted(written.files) == ["attribution", "logit", "onehot", "positions",
                                                                   "reference/logit"]
            for key in written.files:
                np.testing.assert_array_equal(cli[key], written[key])
    with np.load(api) as written:
        np.testing.assert_array_equal(written["logit"],
                                      onnxism.ism(MODEL, example_seqs, positions=(100, 120), targets="sum")["logit"])
        np.testing.assert_allclose(written["reference/logit"], onnxism.predict(MODEL, example_seqs)["logit"][:, 0],
                                   rtol=0, atol=1e-6)
    model = tmp_path / "extra.onnx"
    import onnx

    onnx.save(conv_model(extra_input=True), model)
    np.save(tmp_path / "extra.npy", np.zeros((2, 2), np.float32))
    np.save(tmp_path / "seqs.npy", random_onehot(2, 20, seed=4))
    old = onnxism_cli("run", model, tmp_path / "seqs.npy", "--extra-input", f"extra={tmp_path / 'extra.npy'}",
                      "-o", tmp_path / "old.npz")
    assert old.returncode == 0, old.stderr


def test_compile_writes_what_compile_fast_and_compile_tism_return(tmp_path):
    import onnx

    import onnxism

    for method, build in (("fast", onnxism.compile_fast), ("tism", onnxism.compile_tism)):
        out = tmp_path / f"{method}.onnx"
        result = onnxism_cli("compile", MODEL, "--method", method, "-o", out)
        assert result.returncode == 0, result.stderr
        assert onnx.load(str(out)).SerializeToString() == build(MODEL).SerializeToString()
