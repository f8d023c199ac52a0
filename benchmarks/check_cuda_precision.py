"""How far ISM scores on CUDA are from the CPU's, with onnxism's CUDA provider options
(``runtime/sessions.CUDA_OPTIONS``) and with others (--settings; by default onnxruntime's own: TF32 math and the
exhaustive cuDNN algorithm search). Not a timed benchmark: a precision check that needs a GPU, to back that choice
with figures.

For each model: naive ISM on the CPU over a central window is the reference; naive and fast ISM on CUDA, with each
setting, are compared with it as max |difference| / max |reference| over every output (fast must meet
1e-4 against naive, with a floor of 1 under max |reference|: this is stricter). Writes
benchmarks/results/cuda_precision.md / .json.

    python benchmarks/check_cuda_precision.py --models basset:1000 factorized_basset:1000 bpnet:1000 beluga:2000
"""

import argparse
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import numpy as np  # noqa: E402

import onnxism  # noqa: E402
from benchmarks.inputs import model_entry, random_sequences  # noqa: E402
from benchmarks.machine import describe_machine  # noqa: E402
from benchmarks.report import write_report  # noqa: E402
from benchmarks.run_ism_benchmark import export  # noqa: E402
from onnxism.runtime import sessions  # noqa: E402


def relative_error(got, want):
    """max over the outputs of max |got - want| / max |want| (no floor of 1: stricter than the fast-vs-naive
    criterion where the scores are small)."""
    return max(float(np.abs(got[name] - want[name]).max()) / float(np.abs(want[name]).max()) for name in want)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["basset:1000", "factorized_basset:1000", "bpnet:1000",
                                                        "beluga:2000"])
    parser.add_argument("--seqs", type=int, default=2)
    parser.add_argument("--positions", type=int, default=40)
    parser.add_argument("--settings", nargs="+", default=["cudnn_conv_algo_search=HEURISTIC",
                                                          "cudnn_conv_algo_search=EXHAUSTIVE",
                                                          "use_tf32=1,cudnn_conv_algo_search=EXHAUSTIVE"],
                        help="CUDA provider options compared with onnxism's own (KEY=VALUE[,KEY=VALUE])")
    parser.add_argument("--out", default=os.path.join(HERE, "results", "cuda_precision"))
    args = parser.parse_args()
    defaults = dict(sessions.CUDA_OPTIONS)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for entry in args.models:
            name, length = model_entry(entry)
            path = export(name, length, "torch", folder)
            seqs = random_sequences(args.seqs, length)
            window = (length // 2 - args.positions // 2, length // 2 + args.positions // 2)
            reference = onnxism.ism(path, seqs, method="naive", positions=window)
            row = {"model": name, "length": length,
                   "largest score": max(float(np.abs(value).max()) for value in reference.values())}
            for setting in [""] + args.settings:
                sessions.CUDA_OPTIONS.clear()
                sessions.CUDA_OPTIONS.update(defaults, **dict(item.split("=") for item in setting.split(",") if item))
                model = onnxism.load(path)  # fresh sessions for each setting
                for method in ("naive", "fast"):
                    got = onnxism.ism(model, seqs, method=method, positions=window, device="cuda")
                    key = f"{method} {setting or 'onnxism'}"
                    row[key] = relative_error(got, reference)
                    print(name, length, key, f"{row[key]:.2e}", flush=True)
            sessions.CUDA_OPTIONS.clear()
            sessions.CUDA_OPTIONS.update(defaults)
            rows.append(row)
    columns = [f"{method} {setting}" for setting in ["onnxism"] + args.settings for method in ("naive", "fast")]
    lines = [f"max |CUDA - CPU| / max |CPU| of ISM scores ({args.seqs} sequences x {args.positions} central "
             "positions, all 3 alternatives; the reference: naive ISM on the CPU). onnxism: its CUDA sessions' options "
             f"({', '.join(f'{k}={v}' for k, v in defaults.items())}); the others override those; "
             "use_tf32=1,cudnn_conv_algo_search=EXHAUSTIVE are onnxruntime's defaults.", "",
             "| model | L | largest score | " + " | ".join(columns) + " |", "|---|---|---|" + "---|" * len(columns)]
    for row in rows:
        lines.append(f"| {row['model']} | {row['length']} | {row['largest score']:.2g} | "
                     + " | ".join(f"{row[column]:.1e}" for column in columns) + " |")
    write_report(args, describe_machine("cuda"), {"rows": rows}, lines)


if __name__ == "__main__":
    main()
