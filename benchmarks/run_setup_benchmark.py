"""Set-up benchmark: the one-time cost per loaded model of fast ISM (probe, analysis, graph building and both
onnxruntime sessions, as ``onnxism.ism`` builds them on the CPU), of TISM (the gradient graph of the first output
and its session) and of naive ISM (the model's own session, which ``predict`` uses too), in seconds and in
memory.

Each measurement runs in a fresh Python process: it loads the model, then builds the method's graphs and sessions;
it reports the seconds of that build, the process's peak resident memory, and what it holds once the build is
done. With ``--baseline REV``, the engine (``onnxism/``) of commit REV is measured the same way on the same
exported models, this checkout and REV alternating in each round. Medians of --repeats rounds. Writes Markdown and
JSON under benchmarks/results/; needs the [torch] extra (the zoo models are exported through PyTorch).

    python benchmarks/run_setup_benchmark.py --baseline 31431ef
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from benchmarks.inputs import model_entry  # noqa: E402
from benchmarks.machine import describe_machine  # noqa: E402
from benchmarks.report import write_report  # noqa: E402
from onnxism_converters.zoo import export_zoo_model  # noqa: E402

DEFAULT_MODELS = ["basset:1000", "bpnet:1000", "beluga:2000"]

#: Run in a fresh process: sys.argv = [engine root, model path, length, method]; prints one JSON line.
MEASURE = """
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
import onnxism
from onnxism.methods.tism import gradient_session
try:  # this engine's compiled fast plan, or an earlier engine's (before the plan was split from its sessions)
    from onnxism.fast.executor import compiled_plan as _compiled
except ImportError:
    from onnxism.fast.method import _compiled

def resident():
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize()

def peak():  # this process's own high-water mark (getrusage's would count the parent's pages at the fork)
    with open("/proc/self/status") as handle:
        return next(int(line.split()[1]) * 1024 for line in handle if line.startswith("VmHWM:"))

model = onnxism.load(sys.argv[2])
loaded = resident()
began = time.perf_counter()
if sys.argv[4] == "fast":
    _compiled(model, int(sys.argv[3]), model.output_names, "cpu", 1)
elif sys.argv[4] == "tism":
    gradient_session(model, model.output_names[0], int(sys.argv[3]), "cpu")
else:
    model.session("cpu")
seconds = time.perf_counter() - began
print(json.dumps({"seconds": seconds, "loaded": loaded, "held": resident(), "peak": peak()}))
"""


def fresh_process(code, arguments, folder):
    """Runs Python ``code`` with ``arguments`` in a fresh process in ``folder`` (not the checkout: its onnxism/
    would come first) and returns the last JSON line it prints; exits with its last error line if it fails."""
    done = subprocess.run([sys.executable, "-c", code, *map(str, arguments)], capture_output=True, text=True,
                          cwd=folder)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        raise SystemExit(f"the measurement failed: {(done.stderr.strip().splitlines() or ['no output'])[-1]}")
    return json.loads(lines[-1])


def measure(engine, path, length, method):
    return fresh_process(MEASURE, [engine, path, length, method], os.path.dirname(path))


def baseline_engine(revision, folder):
    """The ``onnxism/`` folder of ``revision``, unpacked into ``folder``; returns the folder."""
    os.makedirs(folder)
    archive = subprocess.run(["git", "-C", ROOT, "archive", revision, "onnxism"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", folder], input=archive.stdout, check=True)
    return folder


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=DEFAULT_MODELS, help="NAME:LENGTH entries")
    parser.add_argument("--methods", nargs="+", default=["fast", "tism", "naive"], choices=["fast", "tism", "naive"])
    parser.add_argument("--baseline", help="a commit whose engine is measured beside this checkout's")
    parser.add_argument("--repeats", type=int, default=3, help="rounds (each engine once per round)")
    parser.add_argument("--out", default=os.path.join(HERE, "results", "setup_cpu"))
    args = parser.parse_args()

    machine = describe_machine("cpu")
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        engines = {"this": ROOT}
        if args.baseline:
            engines["baseline"] = baseline_engine(args.baseline, os.path.join(folder, "baseline"))
        for entry in args.models:
            name, length = model_entry(entry)
            path = os.path.join(folder, f"{name}_{length}.onnx")
            export_zoo_model(name, "torch", path, length=length)
            for method in args.methods:
                runs = {label: [] for label in engines}
                for _ in range(args.repeats):
                    for label, engine in engines.items():
                        runs[label].append(measure(engine, path, length, method))
                        print(f"{name} {length} {method} {label}: {runs[label][-1]['seconds']:.2f} s", flush=True)
                row = {"model": name, "length": length, "method": method, "file_bytes": os.path.getsize(path),
                       "runs": runs}
                for label, values in runs.items():
                    row[label] = {key: statistics.median(value[key] for value in values)
                                  for key in ("seconds", "loaded", "held", "peak")}
                rows.append(row)
    write_outputs(args, machine, rows)


def write_outputs(args, machine, rows):
    gib = 2.0 ** 30
    labels = ["this"] + (["baseline"] if args.baseline else [])
    names = {"this": "this checkout", "baseline": f"baseline ({args.baseline})"}
    lines = [
        "Set-up per loaded model: fast ISM (probe, analysis, graph building, both onnxruntime sessions; CPU, one "
        "thread per session, as `onnxism.ism` builds them), TISM (the first output's gradient graph and its "
        "session, as `onnxism.tism` builds it) and naive ISM (the model's own session, `predict`'s too), each "
        f"measurement in a fresh process, median of "
        f"{args.repeats} rounds{', the engines alternating' if args.baseline else ''}. Memory in GiB: the "
        "process's peak, and what it holds once the set-up is done, both counting the loaded model "
        "(its size after loading in brackets).",
        "",
        "| model | L | method | " + " | ".join(f"set-up (s), {names[label]}" for label in labels)
        + (" | set-up, baseline / this" if args.baseline else "")
        + " | " + " | ".join(f"peak / held (GiB), {names[label]}" for label in labels) + " |",
        "|---|---|---|" + "---|" * (2 * len(labels) + (1 if args.baseline else 0)),
    ]
    for row in rows:
        cells = [f"{row[label]['seconds']:.2f}" for label in labels]
        if args.baseline:
            cells.append(f"{row['baseline']['seconds'] / row['this']['seconds']:.1f}x")
        cells += [f"{row[label]['peak'] / gib:.2f} / {row[label]['held'] / gib:.2f} "
                  f"({row[label]['loaded'] / gib:.2f})" for label in labels]
        lines.append(f"| {row['model']} | {row['length']} | {row['method']} | " + " | ".join(cells) + " |")
    write_report(args, machine, {"rows": rows}, lines)


if __name__ == "__main__":
    main()
