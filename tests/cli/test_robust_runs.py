"""Runs that meet what a cluster does to them: a full disk, a scheduler's SIGTERM, a closed terminal's SIGHUP, SIGKILL,
a batch size beyond the machine's memory; each ends with one line, a non-zero exit and nothing left behind (and the
next run beside a killed one removes its scratch folder, saying so). Also the small ones of the same issue: a gzipped
FASTA whatever its name, a truncated .npy, an unknown option, a negative --positions, info --length, more workers than
cores, sequences on standard input, and a .venv made with a Python that is too old.

Real processes: ``onnxism`` runs in a subprocess and gets real signals; the full disk is a small tmpfs mounted by
the test where the machine lets it (skipped, saying why, where it does not).
"""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import onnxism

from cli_helpers import MODEL, SEQS, assert_clean_failure, onnxism_cli
from onnx_builders import conv_model


def _many(tmp_path, count):
    """The example's 8 sequences tiled to ``count``, saved beside the test."""
    path = tmp_path / f"seqs{count}.npy"
    np.save(path, np.tile(np.load(SEQS), (count // 8 + 1, 1, 1))[:count])
    return path


def _scratch(folder):
    return [name for name in os.listdir(folder) if name.startswith(".onnxism-")]


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs, mounted for the test and unmounted after it; skipped where mounting is not allowed."""
    folder = tmp_path / "small"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)], capture_output=True,
                             text=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip() or 'mount failed'}")
    yield folder
    subprocess.run(["umount", str(folder)], capture_output=True)


def test_an_archive_larger_than_the_free_space_is_refused_before_the_run(tmp_path, small_disk):
    """200 sequences need 1.3 MB (the archive's arrays, then the archive beside them) where 1 MiB is free."""
    result = onnxism_cli("run", MODEL, _many(tmp_path, 200), "--method", "naive", "-o", small_disk / "out.npz")
    assert_clean_failure(result, "not enough space for the archive")
    assert "free" in result.stderr and os.listdir(small_disk) == []


def test_a_disk_that_fills_up_is_an_error_at_the_reservation_not_a_bus_error(tmp_path, small_disk, monkeypatch):
    """With the free-space check passed (here skipped) and the disk filling up before the scratch files are made, the
    scratch files' reservation fails with one error; no SIGBUS, no scratch folder left, no output."""
    from onnxism.methods import writing

    monkeypatch.setattr(writing, "check_free_space", lambda *args: None)
    (small_disk / "filler").write_bytes(b"\0" * (900 << 10))
    seqs = np.load(_many(tmp_path, 200))
    with pytest.raises(onnxism.InputError, match="cannot reserve .* No space left on device"):
        onnxism.ism_to_npz(MODEL, seqs, small_disk / "out.npz", method="naive")
    assert sorted(os.listdir(small_disk)) == ["filler"]


def _started(tmp_path, output, *options):
    """A long run (naive ISM of 400 sequences) in a subprocess, once its scratch folder exists."""
    seqs = _many(tmp_path, 400)
    process = subprocess.Popen([sys.executable, "-m", "onnxism", "run", MODEL, str(seqs), "--method", "naive",
                                "--batch-size", "16", "-o", str(output), *options], stderr=subprocess.PIPE, text=True)
    for _ in range(600):
        if _scratch(output.parent) or process.poll() is not None:
            break
        time.sleep(0.05)
    assert _scratch(output.parent), "the run made no scratch folder"
    time.sleep(0.3)
    return process


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_stop_the_run_with_one_line_and_leave_nothing(tmp_path, signum):
    output = tmp_path / "out" / "scores.npz"
    output.parent.mkdir()
    output.write_bytes(b"the previous output")
    process = _started(tmp_path, output, "--force")
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signum
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines == [f"onnxism: stopped by {signal.Signals(signum).name}; no output written"]
    assert _scratch(output.parent) == [] and output.read_bytes() == b"the previous output"


def test_a_killed_run_s_scratch_is_removed_by_the_next_run_with_a_notice(tmp_path):
    output = tmp_path / "out" / "scores.npz"
    output.parent.mkdir()
    process = _started(tmp_path, output)
    process.kill()
    process.communicate(timeout=60)
    (left,) = _scratch(output.parent)
    assert left.startswith(f".onnxism-{process.pid}-")
    result = onnxism_cli("run", MODEL, SEQS, "--positions", "100:110", "-o", output)
    assert result.returncode == 0, result.stderr
    assert f"onnxism: notice: removed {output.parent / left}" in result.stderr
    assert f"(process {process.pid})" in result.stderr and _scratch(output.parent) == []


def test_a_batch_size_beyond_the_memory_is_refused_with_one_that_fits(tmp_path):
    result = onnxism_cli("run", MODEL, _many(tmp_path, 2000), "--method", "naive", "--batch-size", "100000000",
                         "-o", tmp_path / "out.npz")
    assert_clean_failure(result, "--batch-size 100000000 would take about")
    assert "use --batch-size" in result.stderr and not (tmp_path / "out.npz").exists()
    size = int(result.stderr.split("use --batch-size ")[1].split()[0])
    from onnxism.methods.memory import MEMORY_SHARE, available_memory, bytes_per_row

    per_row = bytes_per_row(onnxism.load(MODEL), 200)
    assert size * per_row <= MEMORY_SHARE * available_memory() * 1.1 < 2 * size * per_row * 1.1


def test_the_batch_memory_estimate_bounds_what_a_batch_takes(tmp_path):
    """The estimate per row, times the rows, is at least the memory naive ISM's batch really takes (its peak
    resident memory above the loaded model's, in a fresh process)."""
    code = ("import resource, sys, numpy as np, onnxism\n"
            "model = onnxism.load(sys.argv[1]); seqs = np.load(sys.argv[2])\n"
            "onnxism.ism(model, seqs[:1], method='naive', positions=(0, 2))\n"
            "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            "onnxism.ism(model, seqs, method='naive', batch_size=int(sys.argv[3]), workers=1)\n"
            "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024)")
    rows = 4096
    done = subprocess.run([sys.executable, "-c", code, MODEL, str(_many(tmp_path, 64)), str(rows)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    from onnxism.methods.memory import bytes_per_row

    assert int(done.stdout.split()[-1]) <= rows * bytes_per_row(onnxism.load(MODEL), 200)


def test_a_gzipped_fasta_is_read_whatever_its_name(tmp_path):
    import gzip

    text = open(os.path.join(os.path.dirname(MODEL), "seqs.fa"), "rb").read()
    (tmp_path / "named.fa").write_bytes(gzip.compress(text))
    result = onnxism_cli("run", MODEL, tmp_path / "named.fa", "--positions", "100:110", "-o", tmp_path / "a.npz")
    assert result.returncode == 0, result.stderr
    with np.load(tmp_path / "a.npz") as archive:
        expected = onnxism.ism(MODEL, np.load(SEQS), positions=(100, 110))["logit"]
        np.testing.assert_array_equal(archive["logit"], expected)


def test_a_truncated_npy_is_named_as_truncated(tmp_path):
    data = open(SEQS, "rb").read()
    (tmp_path / "cut.npy").write_bytes(data[:-100])
    result = onnxism_cli("run", MODEL, tmp_path / "cut.npy", "-o", tmp_path / "out.npz")
    assert_clean_failure(result, f"{tmp_path / 'cut.npy'} is truncated: its header promises 25600 bytes of array "
                                 "data, the file holds 25500")


def test_an_unknown_option_shows_the_verb_s_usage(tmp_path):
    result = onnxism_cli("run", MODEL, SEQS, "--bogus", "-o", tmp_path / "out.npz")
    assert result.returncode == 2
    assert "usage: onnxism run" in result.stderr
    assert "onnxism run: error: unrecognized arguments: --bogus" in result.stderr


def test_a_negative_positions_value_is_read_as_the_value(tmp_path):
    result = onnxism_cli("run", MODEL, SEQS, "--positions", "-10:5", "-o", tmp_path / "out.npz")
    assert_clean_failure(result, "invalid positions window [-10, 5) for sequences of length 200")


def test_info_length_is_checked_on_a_fixed_length_model_and_used_on_any_length(tmp_path):
    assert_clean_failure(onnxism_cli("info", MODEL, "--length", "300"), "--length 300 differs from the model's fixed "
                                                                         "length 200")
    assert onnxism_cli("info", MODEL, "--length", "200").returncode == 0
    import onnx

    onnx.save(conv_model(length="L"), tmp_path / "any.onnx")
    shown = onnxism_cli("info", tmp_path / "any.onnx", "--length", "30")
    assert shown.returncode == 0, shown.stderr
    assert "output:   y  shape (N, 3) at length 30" in shown.stdout


def test_more_workers_than_cores_run_with_a_notice(tmp_path):
    from onnxism.runtime.workers import usable_cores

    workers = usable_cores() + 1
    result = onnxism_cli("run", MODEL, SEQS, "--positions", "100:104", "--workers", workers, "-o", tmp_path / "o.npz")
    assert result.returncode == 0, result.stderr
    assert f"onnxism: notice: workers={workers} on {usable_cores()} core(s)" in result.stderr


@pytest.mark.parametrize("source", ["seqs.npy", "seqs.fa"])
def test_sequences_on_standard_input(tmp_path, source):
    with open(os.path.join(os.path.dirname(MODEL), source), "rb") as handle:
        result = subprocess.run([sys.executable, "-m", "onnxism", "run", MODEL, "-", "--positions", "100:110"],
                                stdin=handle, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "-> stdin.ism.npz" in result.stdout
    with np.load(tmp_path / "stdin.ism.npz") as archive:
        expected = onnxism.ism(MODEL, np.load(SEQS), positions=(100, 110))["logit"]
        np.testing.assert_array_equal(archive["logit"], expected)
    empty = subprocess.run([sys.executable, "-m", "onnxism", "run", MODEL, "-"], stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert_clean_failure(empty, "no sequences on standard input")


def test_a_venv_of_a_python_too_old_is_refused_with_how_to_start_again(tmp_path):
    """``make`` on a .venv whose Python is older than 3.10 (here a stand-in that says it is 3.8) stops with the way
    out (make clean) instead of failing in pip."""
    python = tmp_path / "venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text('#!/bin/sh\nif [ "$1" = "--version" ]; then echo "Python 3.8.10"; exit 0; fi\nexit 1\n')
    python.chmod(0o755)
    root = os.path.dirname(os.path.dirname(MODEL))
    result = subprocess.run(["make", "-C", root, "python-check", f"VENV={tmp_path / 'venv'}"], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode != 0
    assert "was made with Python 3.8.10; onnxism needs Python >= 3.10: run make clean" in result.stdout


def test_a_killed_run_s_scratch_file_is_removed_by_the_next_writer_beside_it(tmp_path):
    """Outputs written whole by a library (a picture, a bigWig, a table, a compiled model) use scratch files named
    after their process; one left by a process that is gone goes, one of a living process stays."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    abandoned = tmp_path / f".onnxism-{gone.pid}-old.onnx"
    abandoned.write_bytes(b"x" * 10)
    living = tmp_path / f".onnxism-{os.getpid()}-busy.onnx"
    living.write_bytes(b"y")
    result = onnxism_cli("compile", MODEL, "--method", "fast", "-o", tmp_path / "motif.ism.onnx")
    assert result.returncode == 0, result.stderr
    assert f"onnxism: notice: removed {abandoned} (10 B)" in result.stderr and f"(process {gone.pid})" in result.stderr
    assert not abandoned.exists() and living.exists()
    assert sorted(_scratch(tmp_path)) == [living.name] and (tmp_path / "motif.ism.onnx").exists()
