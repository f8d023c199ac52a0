"""Virtual environments of their own for the tools some tests run for real (modisco-lite), made once beside the
repository (``.tool-venvs/``, ignored by git) with pip from the package registry, so that their pins never meet the
project's. A tool that cannot be installed here skips its tests, saying why."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FOLDER = os.path.join(ROOT, ".tool-venvs")


def tool_python(name, *requirements):
    """The Python of the tool environment ``name``, with ``requirements`` installed (once)."""
    venv = os.path.join(FOLDER, name)
    python = os.path.join(venv, "bin", "python")
    done = os.path.join(venv, ".installed")
    wanted = " ".join(requirements)
    if os.path.exists(done) and open(done).read() == wanted:
        return python
    made = subprocess.run([sys.executable, "-m", "venv", "--clear", venv], capture_output=True, text=True)
    if made.returncode:
        pytest.skip(f"cannot make a virtual environment for {name}: {made.stderr.strip()[-300:]}")
    installed = subprocess.run([python, "-m", "pip", "install", "--quiet", *requirements], capture_output=True,
                               text=True, timeout=1800)
    if installed.returncode:
        pytest.skip(f"cannot install {wanted} for the {name} tests: {installed.stderr.strip()[-300:]}")
    with open(done, "w") as handle:
        handle.write(wanted)
    return python
