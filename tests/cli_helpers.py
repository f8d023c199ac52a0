"""Running the ``onnxism`` command in a subprocess, and what every bad-input case must look like: one line on
stderr, no traceback, a non-zero exit."""

import os
import subprocess
import sys

from conftest import EXAMPLES

MODEL = os.path.join(EXAMPLES, "motif_model.onnx")
SEQS = os.path.join(EXAMPLES, "seqs.npy")


def onnxism_cli(*args, cwd=None, env=None):
    return subprocess.run([sys.executable, "-m", "onnxism", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=300, env=env)


def assert_clean_failure(result, message):
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("onnxism: error: ")
    assert message in lines[0], lines[0]
