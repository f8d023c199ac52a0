"""ISM benchmark: naive vs fast onnxism (and the fastISM package) side by side, in one run, on one machine.

For each model and length: seconds per sequence of each method at each batch size (median of --repeats runs).
fast is timed on whole sequences (--fast-seqs of them), as users run it: its batches group substitutions by
window start, so a short window would not show its real batch sizes. naive and the fastISM package, whose cost
per position is uniform, are timed on a window of --positions positions in the middle of --seqs sequences and
scaled to whole sequences (the reference pass they run once per chunk is counted in the window's time, so the
scaling slightly overstates them, by about one forward pass in 3 x --positions). Batch sizes: naive from 1 up (it
is fastest at small batches on some models: BPNet's wide activations stay in cache), fast from 16 up (below, its
per-call cost dominates). Each batch size is timed with each --workers count (onnxruntime calls in flight, each on
its share of the cores), naive and fast alike, and each method's best combination is compared. Writes a Markdown
table and a JSON file (every combination's time) under benchmarks/results/.

    python benchmarks/run_ism_benchmark.py                          # the README's configuration
    python benchmarks/run_ism_benchmark.py --fastism                # + the fastISM package (own venv)
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import numpy as np  # noqa: E402

import onnxism  # noqa: E402
from benchmarks.inputs import model_entry, random_sequences  # noqa: E402
from benchmarks.machine import describe_machine  # noqa: E402
from benchmarks.report import write_report  # noqa: E402
from onnxism.runtime.workers import resolve_workers  # noqa: E402
from onnxism_converters.zoo import export_zoo_model  # noqa: E402

DEFAULT_MODELS = ["basset:1000", "basset:2000", "factorized_basset:1000", "factorized_basset:2000", "bpnet:1000",
                  "bpnet:2000", "beluga:2000"]
# fastism 0.5.1 declares `tensorflow` (which would pull a Keras 3 release it cannot use): install the Keras 2
# stack first, then fastism without its declared dependencies.
FASTISM_PINS = ["tensorflow-cpu==2.15.1", "numpy==1.26.4", "protobuf==4.25.9", "pydot<2"]


def exported_framework(name, framework):
    """The framework a zoo model is exported from: the full-size Keras Beluga cannot be converted on 24 GiB (tf2onnx
    runs out of memory), so Beluga comes from PyTorch (same weights)."""
    return "torch" if (name == "beluga" and framework == "keras") else framework


def export(name, length, framework, folder):
    path = os.path.join(folder, f"{name}_{length}-{framework}.onnx")
    export_zoo_model(name, framework, path, length=length)
    return path


def prepared(path, seqs, method, batch, window, device, setup=None, workers=None):
    """A function that runs one timed ISM of ``seqs`` (on ``window``, or whole sequences when None) and returns
    its seconds; the plan and sessions are built before (their time appended to ``setup``)."""
    model = onnxism.load(path)
    began = time.perf_counter()
    middle = seqs.shape[1] // 2
    onnxism.ism(model, seqs[:1], method=method, batch_size=batch, positions=(middle, middle + 2),
                device=device, workers=workers)  # builds graphs and sessions (once per loaded model) before timing
    if setup is not None:
        setup.append(time.perf_counter() - began)

    def run():
        began = time.perf_counter()
        onnxism.ism(model, seqs, method=method, batch_size=batch, positions=window, device=device, workers=workers)
        return time.perf_counter() - began
    return run


def time_onnxism(path, seqs, method, batch, window, repeats, device, setup=None, workers=None):
    run = prepared(path, seqs, method, batch, window, device, setup, workers)
    return [run() for _ in range(repeats)]


def fastism_python():
    venv = os.path.join(HERE, ".fastism-venv")
    python = os.path.join(venv, "bin", "python")
    if not os.path.exists(python):
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        subprocess.run([python, "-m", "pip", "install", "--quiet", *FASTISM_PINS], check=True)
        subprocess.run([python, "-m", "pip", "install", "--quiet", "--no-deps", "fastism==0.5.1"], check=True)
    return python


def time_fastism(key, length, seqs, batch, window, repeats, folder):
    path = os.path.join(folder, "seqs.npy")
    np.save(path, seqs)
    done = subprocess.run([fastism_python(), os.path.join(HERE, "fastism_worker.py"), key, str(length),
                           str(window[0]), str(window[1]), path, str(batch), str(repeats)],
                          capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        return [], (done.stderr.strip().splitlines() or ["no output"])[-1][:200]
    result = json.loads(lines[-1])
    return result["seconds"], result["error"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=DEFAULT_MODELS, help="NAME:LENGTH entries")
    parser.add_argument("--framework", default="keras", choices=["keras", "torch"])
    parser.add_argument("--seqs", type=int, default=4)
    parser.add_argument("--positions", type=int, default=30, help="mutated positions timed per sequence (naive, "
                        "fastISM)")
    parser.add_argument("--fast-seqs", type=int, default=4, help="whole sequences timed for fast")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--naive-batch", type=int, nargs="+", default=[1, 4, 16, 64, 256])
    parser.add_argument("--fast-batch", type=int, nargs="+", default=[16, 32, 64, 256])
    parser.add_argument("--pairs", type=int, default=5, help="alternating naive and fast runs at their best batch "
                        "sizes, for the paired ratio")
    parser.add_argument("--fastism", action="store_true", help="also time the fastISM package (own venv)")
    parser.add_argument("--fastism-batch", type=int, nargs="+", default=[4])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="onnxruntime calls in flight, each "
                        "count timed at each batch size, naive and fast alike")
    parser.add_argument("--out", default=os.path.join(HERE, "results", "ism_cpu"))
    args = parser.parse_args()

    for count in args.workers:
        resolve_workers(count, args.device)
    machine = describe_machine(args.device)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for entry in args.models:
            name, length = model_entry(entry)
            framework = exported_framework(name, args.framework)
            path = export(name, length, framework, folder)
            seqs = random_sequences(max(args.seqs, args.fast_seqs), length)
            middle = length // 2 - args.positions // 2
            window = (middle, middle + args.positions)
            scale = length / args.positions / args.seqs  # seconds for the window -> seconds per whole sequence
            result = {"model": name, "length": length, "framework": framework, "methods": {}}
            for method, batches in (("naive", args.naive_batch), ("fast", args.fast_batch)):
                for workers in args.workers:
                    for batch in batches:
                        setup = []
                        if method == "fast":  # whole sequences
                            runs = time_onnxism(path, seqs[:args.fast_seqs], method, batch, None, args.repeats,
                                                args.device, setup, workers)
                            per_sequence = statistics.median(runs) / args.fast_seqs
                        else:
                            runs = time_onnxism(path, seqs[:args.seqs], method, batch, window, args.repeats,
                                                args.device, setup, workers)
                            per_sequence = statistics.median(runs) * scale
                        result.setdefault("setup_seconds", {}).setdefault(method, setup[0])
                        result["methods"].setdefault(method, {})[config_key(batch, workers)] = per_sequence
                        print(f"{name} {length} {method} batch {batch} workers {workers}: {per_sequence:.3f} s/seq",
                              flush=True)
            if args.pairs:
                result["paired"] = paired_ratio(args, path, seqs, window, scale, result["methods"])
                print(f"{name} {length} paired fast / naive: {result['paired']['ratio']:.1f}x "
                      f"({min(result['paired']['ratios']):.1f}x to {max(result['paired']['ratios']):.1f}x)", flush=True)
            if args.fastism:  # fastISM builds the same spec (same weights) in Keras 2
                for batch in args.fastism_batch:
                    runs, error = time_fastism(name, length, seqs[:args.seqs], batch, window, args.repeats, folder)
                    if runs:
                        result["methods"].setdefault("fastISM", {})[batch] = statistics.median(runs) * scale
                        print(f"{name} {length} fastISM batch {batch}: {statistics.median(runs) * scale:.3f} s/seq")
                    else:
                        result["fastISM_error"] = error
                        print(f"{name} {length} fastISM failed: {error}")
            rows.append(result)
    write_outputs(args, machine, rows)


def config_key(batch, workers):
    """The JSON key of a timed combination: "BATCH" for one worker, "BATCHxWORKERS" otherwise."""
    return str(batch) if workers == 1 else f"{batch}x{workers}"


def parse_key(key):
    """(batch, workers) from ``config_key``'s text."""
    batch, _, workers = str(key).partition("x")
    return int(batch), int(workers or 1)


def paired_ratio(args, path, seqs, window, scale, methods):
    """naive and fast at their best batch sizes and worker counts, run alternately --pairs times: each pair's
    naive / fast, so that a change in the machine's speed between the sweeps (10 to 30% on a shared machine) falls
    on both."""
    best = {method: min(methods[method], key=methods[method].get) for method in ("naive", "fast")}
    (naive_batch, naive_workers), (fast_batch, fast_workers) = parse_key(best["naive"]), parse_key(best["fast"])
    naive = prepared(path, seqs[:args.seqs], "naive", naive_batch, window, args.device, workers=naive_workers)
    fast = prepared(path, seqs[:args.fast_seqs], "fast", fast_batch, None, args.device, workers=fast_workers)
    ratios = []
    for _ in range(args.pairs):
        per_naive = naive() * scale
        per_fast = fast() / args.fast_seqs
        ratios.append(per_naive / per_fast)
    return {"naive": best["naive"], "fast": best["fast"], "ratios": ratios, "ratio": statistics.median(ratios)}


def write_outputs(args, machine, rows):
    lines = [
        f"Seconds per sequence (all 3 alternatives at every position; median of {args.repeats} runs), best batch "
        f"size in brackets (xW: W onnxruntime calls in flight, each on its share of the cores; workers timed: "
        f"{', '.join(map(str, args.workers))}). fast: {args.fast_seqs} whole sequences. naive and fastISM: "
        f"{args.positions} central positions x {args.seqs} sequences, scaled to the whole sequence. Speed-ups are "
        f"ratios of the best times. Paired: naive and fast at those batch sizes and workers run alternately "
        f"{args.pairs} times, median (range) of the pairs' ratios. Set-up is the one-time cost of a fast-ISM plan "
        "per loaded model (analysis, graph building, onnxruntime sessions), not included.",
        "",
        "| model | L | naive | fast | fastISM package | fast / naive | paired fast / naive | fast vs fastISM | "
        "fast set-up (s) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        best = {m: min(v.items(), key=lambda kv: kv[1]) for m, v in row["methods"].items()}

        def cell(method):
            if method not in best:
                return row.get("fastISM_error", "not run") if method == "fastISM" else "-"
            return f"{best[method][1]:.3f} [{best[method][0]}]"

        ratio = best["naive"][1] / best["fast"][1]
        versus = f"{best['fastISM'][1] / best['fast'][1]:.1f}x faster" if "fastISM" in best else "-"
        paired = row.get("paired")
        pairs = (f"{paired['ratio']:.1f}x ({min(paired['ratios']):.1f}x to {max(paired['ratios']):.1f}x)"
                 if paired else "-")
        label = row["model"] + (" (torch export)" if row["framework"] == "torch" else "")
        lines.append(f"| {label} | {row['length']} | {cell('naive')} | {cell('fast')} | {cell('fastISM')} | "
                     f"{ratio:.1f}x | {pairs} | {versus} | {row.get('setup_seconds', {}).get('fast', 0):.1f} |")
    write_report(args, machine, {"rows": rows}, lines)


if __name__ == "__main__":
    main()
