"""Fixed-flank benchmark: naive and fast ISM on an MPRA model whose sequence sits between constant flanks.

MPRA models (Malinois, Gosai et al. 2024) score a short sequence (200 bp) between the fixed vector sequence that
surrounds it in the assay (200 bp on each side), concatenated inside the model: torch's
``cat([left.expand(n, -1, -1), x, right.expand(n, -1, -1)], 2)``. The model here has that input and a Basset-like
trunk (3 convolutions with batch norm and max pooling, 2 dense layers; seeded random weights), exported with the
dynamo exporter. Three columns, run alternately in each round, on the same sequences: naive ISM, fast ISM, and fast
ISM with the flanks' Concat computed in full (``normalise._concat_of_constants`` replaced, for this column only,
by a rule that never applies: fast ISM as it was before that rewrite, when a Concat of a tensor computed from the
batch's shape made everything after it full). Seconds per sequence (whole sequences), median of --repeats rounds, and
the ratios. Writes Markdown and JSON under benchmarks/results/; needs the [torch] extra.

    python benchmarks/run_flanks_benchmark.py
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import numpy as np  # noqa: E402

import onnxism  # noqa: E402
import onnxism.fast.normalise as normalise  # noqa: E402
from benchmarks.inputs import random_sequences  # noqa: E402
from benchmarks.machine import describe_machine  # noqa: E402
from benchmarks.report import write_report  # noqa: E402


def flanked_model(length, flank):
    """The seeded torch module: ``length`` bp between two random constant flanks of ``flank`` columns."""
    import torch
    from torch import nn

    torch.manual_seed(0)

    class Flanked(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("left", torch.rand(1, 4, flank))
            self.register_buffer("right", torch.rand(1, 4, flank))
            self.convs = nn.ModuleList([nn.Conv1d(4, 300, 19, padding=9), nn.Conv1d(300, 200, 11, padding=5),
                                        nn.Conv1d(200, 200, 7, padding=3)])
            self.norms = nn.ModuleList([nn.BatchNorm1d(300), nn.BatchNorm1d(200), nn.BatchNorm1d(200)])
            self.pools = (3, 4, 4)
            columns = length + 2 * flank
            for pool in self.pools:
                columns //= pool
            self.dense = nn.Linear(200 * columns, 200)
            self.out = nn.Linear(200, 3)

        def forward(self, x):
            n = x.shape[0]
            x = torch.cat([self.left.expand(n, -1, -1), x, self.right.expand(n, -1, -1)], dim=2)
            for conv, norm, pool in zip(self.convs, self.norms, self.pools):
                x = nn.functional.max_pool1d(torch.relu(norm(conv(x))), pool)
            return self.out(torch.relu(self.dense(x.flatten(1))))

    module = Flanked().eval()
    with torch.no_grad():
        for norm in module.norms:  # batch-norm statistics off their initial values
            norm.running_mean.uniform_(-0.2, 0.2)
            norm.running_var.uniform_(0.5, 1.5)
    return module


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--length", type=int, default=200, help="the scored sequence's length")
    parser.add_argument("--flank", type=int, default=200, help="each constant flank's length")
    parser.add_argument("--seqs", type=int, default=4, help="whole sequences timed per method and round")
    parser.add_argument("--repeats", type=int, default=5, help="rounds (each method once per round)")
    parser.add_argument("--out", default=os.path.join(HERE, "results", "flanks_cpu"))
    args = parser.parse_args()

    import torch

    from onnxism_converters import torch_to_onnx

    machine = describe_machine("cpu")
    seqs = random_sequences(args.seqs, args.length)
    rewrite = normalise._concat_of_constants
    methods = {"naive": ("naive", rewrite), "fast": ("fast", rewrite),
               "fast_without_rewrite": ("fast", lambda node, index, shapes: None)}
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "flanked.onnx")
        torch_to_onnx(flanked_model(args.length, args.flank), torch.zeros(2, 4, args.length), path)
        models, scores, times = {}, {}, {label: [] for label in methods}
        for label, (method, concat_rule) in methods.items():  # plans and sessions made (set-up, not timed)
            normalise._concat_of_constants = concat_rule
            models[label] = onnxism.load(path)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                onnxism.ism(models[label], seqs[:1], method=method, positions=(0, 2))
        for _ in range(args.repeats):
            for label, (method, concat_rule) in methods.items():
                normalise._concat_of_constants = concat_rule  # (the plan is kept on the model: set for safety)
                began = time.perf_counter()
                scores[label] = onnxism.ism(models[label], seqs, method=method)
                times[label].append((time.perf_counter() - began) / args.seqs)
        normalise._concat_of_constants = rewrite
    name = next(iter(scores["naive"]))
    largest = float(np.abs(scores["naive"][name]).max())
    row = {label: statistics.median(values) for label, values in times.items()}
    row["runs"] = times
    row["max_difference"] = {label: float(np.abs(scores[label][name] - scores["naive"][name]).max())
                             for label in ("fast", "fast_without_rewrite")}
    row["largest_score"] = largest
    write_outputs(args, machine, row)


def write_outputs(args, machine, row):
    lines = [
        f"Seconds per sequence ({args.length} bp between two constant {args.flank}-bp flanks, all 3 alternatives at "
        f"every position, {args.seqs} whole sequences), median of {args.repeats} rounds, the three methods "
        "alternating in each round; default batch sizes and workers. Max |fast - naive|: "
        f"{row['max_difference']['fast']:.2e} (largest |score| {row['largest_score']:.3g}).",
        "",
        "| naive | fast | fast, flanks' Concat computed in full (before) | naive / fast | naive / before |",
        "|---|---|---|---|---|",
        f"| {row['naive']:.3f} | {row['fast']:.3f} | {row['fast_without_rewrite']:.3f} | "
        f"{row['naive'] / row['fast']:.1f}x | {row['naive'] / row['fast_without_rewrite']:.2f}x |",
    ]
    write_report(args, machine, {"row": row}, lines)


if __name__ == "__main__":
    main()
