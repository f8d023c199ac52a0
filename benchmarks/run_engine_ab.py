"""Engine A/B: fast ISM's speed per sequence with this checkout's engine against the engine (``onnxism/``) of
commit REV, on the same exported models and sequences.

Each round runs both engines once, in fresh processes, in alternating order (so that a drift of the machine's speed
falls on both); a process loads the model, builds its plan and sessions (not timed), then times ``onnxism.ism`` of
whole sequences with the defaults (batch size and workers). Reports the medians of the per-sequence seconds, the
median and range of the per-round ratios (baseline / this), and the largest difference between the two engines'
scores. Writes Markdown and JSON under benchmarks/results/; needs the [torch] extra (the zoo models are exported
through PyTorch).

    python benchmarks/run_engine_ab.py --baseline 6692cbc --models beluga:2000 bpnet:1000
"""

import argparse
import os
import statistics
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from benchmarks.inputs import model_entry, random_sequences  # noqa: E402
from benchmarks.machine import describe_machine  # noqa: E402
from benchmarks.report import write_report  # noqa: E402
from benchmarks.run_setup_benchmark import baseline_engine, fresh_process  # noqa: E402
from onnxism_converters.zoo import export_zoo_model  # noqa: E402

DEFAULT_MODELS = ["basset:1000", "bpnet:1000", "deepsea:1000", "beluga:2000"]

#: Run in a fresh process: sys.argv = [engine root, model path, sequences .npy, scores .npz]; prints one JSON line.
MEASURE = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np
import onnxism
assert onnxism.__file__.startswith(sys.argv[1]), onnxism.__file__
model = onnxism.load(sys.argv[2])
seqs = np.load(sys.argv[3])
middle = seqs.shape[1] // 2
onnxism.ism(model, seqs[:1], positions=(middle, middle + 2))  # builds the plan and sessions, not timed
began = time.perf_counter()
scores = onnxism.ism(model, seqs)
seconds = (time.perf_counter() - began) / len(seqs)
np.savez(sys.argv[4], **scores)
print(json.dumps({"seconds": seconds}))
"""


def measure(engine, path, seqs_path, scores_path):
    return fresh_process(MEASURE, [engine, path, seqs_path, scores_path], os.path.dirname(path))["seconds"]


def largest_difference(first, second):
    with np.load(first) as a, np.load(second) as b:
        return max(float(np.abs(a[name] - b[name]).max()) for name in a.files)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", required=True, help="the commit whose engine is measured beside this one")
    parser.add_argument("--models", nargs="+", default=DEFAULT_MODELS, help="NAME:LENGTH entries")
    parser.add_argument("--sequences", type=int, default=2, help="whole sequences scored per run")
    parser.add_argument("--repeats", type=int, default=5, help="rounds (each engine once per round)")
    parser.add_argument("--out", default=None, help="default: benchmarks/results/engine_ab_REV")
    args = parser.parse_args()
    args.out = args.out or os.path.join(HERE, "results", f"engine_ab_{args.baseline}")

    machine = describe_machine("cpu")
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        engines = {"this": ROOT, "baseline": baseline_engine(args.baseline, os.path.join(folder, "baseline"))}
        for entry in args.models:
            name, length = model_entry(entry)
            path = os.path.join(folder, f"{name}_{length}.onnx")
            export_zoo_model(name, "torch", path, length=length)
            seqs_path = os.path.join(folder, "seqs.npy")
            np.save(seqs_path, random_sequences(args.sequences, length))
            runs = {label: [] for label in engines}
            for round_ in range(args.repeats):
                for label in (("this", "baseline") if round_ % 2 else ("baseline", "this")):
                    runs[label].append(measure(engines[label], path, seqs_path, os.path.join(folder, f"{label}.npz")))
                    print(f"{name} {length} {label}: {runs[label][-1]:.3f} s per sequence", flush=True)
            ratios = [old / new for old, new in zip(runs["baseline"], runs["this"])]
            rows.append({"model": name, "length": length, "runs": runs, "ratios": ratios,
                         "this": statistics.median(runs["this"]), "baseline": statistics.median(runs["baseline"]),
                         "max_difference": largest_difference(os.path.join(folder, "this.npz"),
                                                              os.path.join(folder, "baseline.npz"))})
    lines = [
        f"Fast ISM, seconds per sequence ({args.sequences} whole sequences per run, the default batch size and "
        f"workers), this checkout against the engine of {args.baseline}: each engine once per round in a fresh "
        f"process, in alternating order, {args.repeats} rounds; medians, and the median (range) of the rounds' "
        "ratios.",
        "",
        f"| model | L | {args.baseline} | this checkout | {args.baseline} / this, per round | max difference of the "
        "scores |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        ratios = row["ratios"]
        lines.append(f"| {row['model']} | {row['length']} | {row['baseline']:.3f} | {row['this']:.3f} | "
                     f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}x to {max(ratios):.2f}x) | "
                     f"{row['max_difference']:.1e} |")
    write_report(args, machine, {"rows": rows}, lines)


if __name__ == "__main__":
    main()
