"""The peer packages that the ISM benchmark times beside onnxism, each in a virtual environment of its own under
benchmarks/ (git-ignored), made on first use, and run in a worker process that sweeps the batch size
(benchmarks.batch_sweep): the fastISM package (Keras 2) and tangermeme (PyTorch).
"""

import json
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))

# fastism 0.5.1 declares `tensorflow` (which would pull a Keras 3 release it cannot use): install the Keras 2
# stack first, then fastism without its declared dependencies.
FASTISM_PINS = ["tensorflow-cpu==2.15.1", "numpy==1.26.4", "protobuf==4.25.9", "pydot<2"]
# tangermeme declares torch>=2.0, which pip would meet with the newest CUDA build (GBs): torch is pinned, in the
# same command, to the CPU release that pip here takes from the machine's own wheels.
TANGERMEME_PINS = ["tangermeme==1.6.0", "torch==2.13.0"]


def venv_python(name, *installs):
    """The Python of benchmarks/.NAME-venv, made with ``pip install`` of each argument list in turn if missing."""
    venv = os.path.join(HERE, f".{name}-venv")
    python = os.path.join(venv, "bin", "python")
    if not os.path.exists(python):
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        for packages in installs:
            subprocess.run([python, "-m", "pip", "install", "--quiet", *packages], check=True)
    return python


def fastism_python():
    return venv_python("fastism", FASTISM_PINS, ["--no-deps", "fastism==0.5.1"])


def tangermeme_python():
    return venv_python("tangermeme", TANGERMEME_PINS)


def run_sweep(label, command, unit="s/seq"):
    """Run a worker, print its batch sizes as they come; returns its results (benchmarks.batch_sweep's dicts),
    with an error appended when it died (killed for memory, say) before it reported a failure."""
    results = []
    with tempfile.TemporaryFile("w+") as stderr:  # a file, not a pipe: a chatty worker cannot block on it
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True) as worker:
            for line in worker.stdout:
                if line.startswith("{"):
                    results.append(json.loads(line))
                    print(f"{label} {describe(results[-1], unit)}", flush=True)
        stderr.seek(0)
        last = (stderr.read().strip().splitlines() or [""])[-1][:200]
    if not results or (worker.returncode != 0 and not results[-1]["error"]):
        reason = ("killed (out of memory?)" if worker.returncode in (-9, 137) else
                  f"exit code {worker.returncode}" if worker.returncode else "reported nothing")
        after = f" after batch {results[-1]['batch']}" if results else ""
        results.append({"batch": None, "error": f"worker {reason}{after}: {last}".rstrip(": ")})
        print(f"{label} {results[-1]['error']}", flush=True)
    return results


def describe(result, unit):
    if result["error"]:
        return f"batch {result['batch']} failed: {result['error']}"
    return f"batch {result['batch']}: {result['per_sequence']:.3f} {unit}"


def summarise(results, scale=1.0):
    """({batch: seconds per sequence x scale}, the sweep's record for the JSON: every result and why it stopped)."""
    times = {r["batch"]: r["per_sequence"] * scale for r in results if not r["error"]}
    failed = [r for r in results if r["error"]]
    if failed:
        at = f" at batch {failed[-1]['batch']}" if failed[-1]["batch"] is not None else ""
        stopped = f"failed{at}: {failed[-1]['error']}"
    elif times and results[-1]["batch"] != min(times, key=times.get):
        stopped = f"batch {results[-1]['batch']} no faster than batch {min(times, key=times.get)}"
    else:
        stopped = "every batch size asked for was timed"
    return times, {"results": results, "stopped": stopped, "error": failed[-1]["error"] if failed else None}


def fastism_sweep(name, length, window, seqs_path, min_seqs, repeats, batches):
    """fastISM's seconds per sequence for the window (not yet scaled to whole sequences), per batch size."""
    command = [fastism_python(), os.path.join(HERE, "fastism_worker.py"), name, str(length), str(window[0]),
               str(window[1]), seqs_path, str(min_seqs), str(repeats), *map(str, batches)]
    return run_sweep(f"{name} {length} fastISM", command, unit=f"s/seq on {window[1] - window[0]} positions")


def tangermeme_sweep(name, length, seqs_path, count, repeats, check_path, batches):
    """tangermeme's seconds per whole sequence (its fast path forced) per batch size; writes sequence 0's deltas."""
    command = [tangermeme_python(), os.path.join(HERE, "tangermeme_worker.py"), name, str(length), seqs_path,
               str(count), str(repeats), check_path, *map(str, batches)]
    return run_sweep(f"{name} {length} tangermeme", command)


def compare_deltas(check_path, onnx_path, seq, device):
    """Sequence ``seq`` (shape (1, L, 4))'s deltas from tangermeme (``check_path``) against onnxism fast ISM's on the
    ONNX export of the same PyTorch build: the largest absolute difference, and the largest absolute delta."""
    import onnxism

    theirs = np.load(check_path)
    ours = onnxism.ism(onnx_path, seq, method="fast", device=device)
    difference = max(float(np.abs(ours[name][0] - theirs[name]).max()) for name in theirs.files)
    largest = max(float(np.abs(ours[name][0]).max()) for name in theirs.files)
    return {"max_abs_difference": difference, "max_abs_delta": largest, "outputs": list(theirs.files)}
