"""TISM benchmark: one forward pass, onnxism TISM, torch autograd and fast ISM side by side, in one run.

All on the same torch-built zoo model (its ONNX export for onnxism), the same sequences, the same machine;
seconds per sequence, median of --repeats runs. Cases:

- single target: one scalar (the first element of the output) per sequence; TISM = one forward + one backward.
- many targets: every element of an output (BPNet's profile: one target per output position). TISM runs one
  backward per target, batched over seeds; torch autograd runs the same batched backward (the input repeated
  once per seed, one backward per block of seeds).

Fast ISM is timed on whole sequences (--fast-seqs of them) at its default batch size, as users run it (its
batches group substitutions by window start, so a short central window would misstate it); it yields every output
element of every alternative in one run, so it is the same work for one target or for all. Writes Markdown and
JSON under benchmarks/results/.

    python benchmarks/run_tism_benchmark.py
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import numpy as np  # noqa: E402

import onnxism  # noqa: E402
from benchmarks.inputs import random_sequences  # noqa: E402
from benchmarks.machine import describe_machine  # noqa: E402
from benchmarks.report import write_report  # noqa: E402
from onnxism_converters.zoo import export_zoo_model  # noqa: E402

# NAME:LENGTH:OUTPUT:KIND — KIND "one" (its first element) or "all" (every element)
DEFAULT_CASES = ["basset:1000:logits:one", "basset:1000:logits:all", "factorized_basset:1000:logits:one",
                 "bpnet:1000:counts:one", "bpnet:1000:profile:all", "beluga:2000:probabilities:one"]


def median_seconds(fn, repeats):
    fn()  # warm-up: graphs, sessions, allocations
    runs = []
    for _ in range(repeats):
        began = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - began)
    return statistics.median(runs)


def torch_gradient(module, seqs, output_index, seeds, block):
    """d(sum(seed * output))/dx for every seed row, batched like onnxism: input repeated per seed in a block."""
    import torch

    x = torch.tensor(seqs.transpose(0, 2, 1).copy())
    count = len(seqs)
    for first in range(0, len(seeds), block):
        part = torch.tensor(seeds[first:first + block])
        s = len(part)
        xs = x.repeat(s, 1, 1).requires_grad_(True)
        out = module(xs)
        out = out[output_index] if isinstance(out, (tuple, list)) else out
        weights = part.repeat_interleave(count, dim=0)
        (out * weights).sum().backward()
        _ = xs.grad.numpy()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="+", default=DEFAULT_CASES, help="NAME:LENGTH:OUTPUT:{one,all}")
    parser.add_argument("--seqs", type=int, default=8, help="sequences per single-target run")
    parser.add_argument("--many-seqs", type=int, default=2, help="sequences per many-target run")
    parser.add_argument("--fast-seqs", type=int, default=1, help="whole sequences timed for fast ISM")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (onnxruntime uses all cores)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=os.path.join(HERE, "results", "tism_cpu"))
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    machine = describe_machine(args.device)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for entry in args.cases:
            name, length, output, kind = entry.split(":")
            length = int(length)
            path = os.path.join(folder, f"{name}_{length}.onnx")
            _, module = export_zoo_model(name, "torch", path, length=length)
            module.eval()
            model = onnxism.load(path)
            count = args.seqs if kind == "one" else args.many_seqs
            seqs = random_sequences(count, length)
            shape = model.output_shapes(length)[output]
            target = tuple(0 for _ in shape) if kind == "one" else "all"
            targets = int(np.prod(shape)) if kind == "all" else 1
            seeds = np.eye(int(np.prod(shape)), dtype=np.float32).reshape((-1,) + shape)[: targets]
            index = model.output_names.index(output)
            row = {"model": name, "length": length, "output": output, "targets": targets, "seqs": count}
            timings = {
                "forward": lambda: onnxism.predict(model, seqs, device=args.device),
                "tism": lambda: onnxism.tism(model, seqs, targets={output: target}, device=args.device),
                "torch_autograd": lambda: torch_gradient(module, seqs, index, seeds, max(1, 128 // count)),
                "fast_ism": lambda: onnxism.ism(model, seqs[:args.fast_seqs], outputs=[output], device=args.device),
            }
            per_sequence = {"fast_ism": 1.0 / min(args.fast_seqs, count)}
            for method, fn in timings.items():
                seconds = median_seconds(fn, args.repeats) * per_sequence.get(method, 1.0 / count)
                row[method] = seconds
                print(f"{name} {length} {output} [{targets} target(s)] {method}: {seconds:.4f} s/seq", flush=True)
            rows.append(row)
    write_outputs(args, machine, rows)


def write_outputs(args, machine, rows):
    lines = [
        f"Seconds per sequence, median of {args.repeats} runs; torch autograd on {args.threads} threads. Forward: "
        "one prediction. TISM: all 4 bases at every position for the given targets. Fast ISM: every output "
        f"element for all 3 alternatives at every position ({args.fast_seqs} whole sequence(s) timed).",
        "",
        "| model | L | output (targets) | forward | TISM | torch autograd | fast ISM | TISM / forward | "
        "torch / TISM | fast ISM / TISM |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['model']} | {row['length']} | {row['output']} ({row['targets']}) | {row['forward']:.4f} | "
            f"{row['tism']:.4f} | {row['torch_autograd']:.4f} | {row['fast_ism']:.3f} | "
            f"{row['tism'] / row['forward']:.2f}x | {row['torch_autograd'] / row['tism']:.2f}x | "
            f"{row['fast_ism'] / row['tism']:.2f}x |"
        )
    write_report(args, machine, {"rows": rows}, lines)


if __name__ == "__main__":
    main()
