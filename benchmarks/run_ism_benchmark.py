"""ISM benchmark: naive vs fast onnxism, and the peer packages fastISM and tangermeme, side by side, in one run.

For each model and length: seconds per sequence of each method at each batch size (median of --repeats runs).
fast is timed on whole sequences (--fast-seqs of them), as users run it: its batches group substitutions by
window start, so a short window would not show its real batch sizes. naive and the fastISM package, whose cost
per position is uniform, are timed on a window of --positions positions in the middle of the sequences and
scaled to whole sequences (the reference pass they run once per chunk is counted in the window's time, so the
scaling slightly overstates them, by about one forward pass in 3 x --positions). Batch sizes: naive from 1 up (it
is fastest at small batches on some models: BPNet's wide activations stay in cache), fast from 16 up (below, its
per-call cost dominates). Each batch size is timed with each --workers count (onnxruntime calls in flight, each on
its share of the cores), naive and fast alike, and each method's best combination is compared. Writes a Markdown
table and a JSON file (every combination's time) under benchmarks/results/.

The peers, each in a virtual environment of its own that the script makes under benchmarks/ on first use
(git-ignored), run in a worker process on the same weights, and their batch size is swept
(benchmarks/batch_sweep.py): --fastism-batch / --tangermeme-batch in ascending order until a size is no faster
than the best so far or fails (out of memory, say: recorded, and the end of that model's sweep); when the first
size is the best, it is halved while that helps. The table shows each at its best batch size; the JSON keeps every
size timed and why the sweep stopped.

- fastISM package (0.5.1, Keras 2, the Keras build): it batches over sequences only, so batch B is timed on
  max(B, --seqs) sequences, on the central window.
- tangermeme 1.6.0 ``saturation_mutagenesis`` (PyTorch, the zoo's PyTorch build, in a venv with torch pinned to
  the CPU release 2.13.0, so on the CPU whatever --device), its fast path (``fast=True``, torch.export) forced: it
  tries that path only when a job would take more than ``_FAST_MIN_SECONDS`` (30 s) plain and keeps it only when
  it is not slower than plain on a check batch (``_FAST_MAX_RELATIVE_TIME``); the worker sets both attributes of
  tangermeme.saturation_mutagenesis (to 0 and infinity) and makes its fallback warning an error, so that a
  fallback is recorded as a failure, never timed as the fast path. Timed on --fast-seqs whole sequences, as fast is,
  with ``raw_outputs=True``: the outputs for all 3 alternatives at every position, the quantity onnxism returns
  (its default form, the centred delta on the observed base, and ``hypothetical=True``'s 4 bases are derived from
  them). The set-up each call repeats (capture, its own check against ``fast=False``, a first batch run plain) is
  left out, as fast's set-up is. Sequence 0's deltas are checked against onnxism fast ISM's on the ONNX export of
  the same PyTorch build: the largest difference is recorded.

    python benchmarks/run_ism_benchmark.py                          # the README's configuration
    python benchmarks/run_ism_benchmark.py --fastism --tangermeme   # + the peer packages (own venvs)
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
from benchmarks import peers  # noqa: E402
from benchmarks.inputs import model_entry, random_sequences  # noqa: E402
from benchmarks.machine import describe_machine  # noqa: E402
from benchmarks.report import write_report  # noqa: E402
from onnxism.runtime.workers import resolve_workers  # noqa: E402
from onnxism_converters.zoo import export_zoo_model  # noqa: E402

DEFAULT_MODELS = ["basset:1000", "basset:2000", "factorized_basset:1000", "factorized_basset:2000", "bpnet:1000",
                  "bpnet:2000", "beluga:2000"]
# powers of two up to 512: each peer is swept from its first size up (benchmarks.batch_sweep)
FASTISM_BATCHES = [4, 8, 16, 32, 64, 128, 256, 512]
TANGERMEME_BATCHES = [16, 32, 64, 128, 256, 512]


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
    parser.add_argument("--fastism-batch", type=int, nargs="+", default=FASTISM_BATCHES, help="batch sizes swept "
                        "in ascending order until one is no faster (halved below the first while that helps)")
    parser.add_argument("--tangermeme", action="store_true", help="also time tangermeme's saturation_mutagenesis, "
                        "its fast path forced, on the PyTorch build (own venv)")
    parser.add_argument("--tangermeme-batch", type=int, nargs="+", default=TANGERMEME_BATCHES, help="swept as "
                        "--fastism-batch")
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
            seqs = random_sequences(max(args.seqs, args.fast_seqs, *(args.fastism_batch if args.fastism else [])),
                                    length)
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
            if args.fastism or args.tangermeme:
                time_peers(args, name, length, framework, path, seqs, window, folder, result)
            rows.append(result)
            write_outputs(args, machine, rows)  # after each model: an interrupted run keeps what it measured


def time_peers(args, name, length, framework, path, seqs, window, folder, result):
    """The fastISM package and tangermeme, each at every batch size of its sweep, into ``result``: "methods" gets
    their seconds per sequence by batch size, "sweeps" every result and why the sweep stopped, and
    "tangermeme_check" the largest difference between tangermeme's deltas and onnxism's on sequence 0."""
    seqs_path = os.path.join(folder, "seqs.npy")
    np.save(seqs_path, seqs)
    if args.fastism:  # fastISM builds the same spec (same weights) in Keras 2
        results = peers.fastism_sweep(name, length, window, seqs_path, args.seqs, args.repeats, args.fastism_batch)
        record_sweep(result, "fastISM", results, scale=length / args.positions)
    if args.tangermeme:  # the same spec built in PyTorch
        check_path = os.path.join(folder, f"{name}_{length}-tangermeme.npz")
        results = peers.tangermeme_sweep(name, length, seqs_path, args.fast_seqs, args.repeats, check_path,
                                         args.tangermeme_batch)
        record_sweep(result, "tangermeme", results)
        if os.path.exists(check_path):
            torch_path = path if framework == "torch" else export(name, length, "torch", folder)
            check = peers.compare_deltas(check_path, torch_path, seqs[:1], args.device)
            result["tangermeme_check"] = check
            print(f"{name} {length} tangermeme vs onnxism fast, sequence 0: largest difference "
                  f"{check['max_abs_difference']:.3g} (largest delta {check['max_abs_delta']:.3g})", flush=True)


def record_sweep(result, method, results, scale=1.0):
    times, sweep = peers.summarise(results, scale)
    if times:
        result["methods"][method] = times
    result.setdefault("sweeps", {})[method] = sweep
    if sweep["error"]:
        result[f"{method}_error"] = sweep["error"]


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


# method (the JSON key), the flag that runs it, its column
PEERS = (("fastISM", "fastism", "fastISM package"), ("tangermeme", "tangermeme", "tangermeme fast (torch)"))


def write_outputs(args, machine, rows):
    peers_run = [(method, header) for method, flag, header in PEERS if getattr(args, flag)]
    lines = [
        f"Seconds per sequence (all 3 alternatives at every position; median of {args.repeats} runs), best batch "
        f"size in brackets (xW: W onnxruntime calls in flight, each on its share of the cores; workers timed: "
        f"{', '.join(map(str, args.workers))}). fast: {args.fast_seqs} whole sequences. naive and fastISM: "
        f"{args.positions} central positions, scaled to the whole sequence, naive on {args.seqs} sequences. Speed-ups "
        f"are ratios of the best times. Paired: naive and fast at those batch sizes and workers run alternately "
        f"{args.pairs} times, median (range) of the pairs' ratios. Set-up is the one-time cost of a fast-ISM plan "
        "per loaded model (analysis, graph building, onnxruntime sessions), not included.",
    ]
    if peers_run:
        lines.append(peer_caption(args))
    header = ["model", "L", "naive", "fast", *(header for _, header in peers_run), "fast / naive",
              "paired fast / naive", *(f"fast vs {m}" for m, _ in peers_run), "fast set-up (s)"]
    lines += ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        best = {m: min(v.items(), key=lambda kv: kv[1]) for m, v in row["methods"].items()}

        def cell(method):
            if method not in best:
                return row.get(f"{method}_error", "not run")
            return f"{best[method][1]:.3f} [{best[method][0]}]"

        def versus(method):
            return f"{best[method][1] / best['fast'][1]:.1f}x faster" if method in best else "-"

        paired = row.get("paired")
        pairs = (f"{paired['ratio']:.1f}x ({min(paired['ratios']):.1f}x to {max(paired['ratios']):.1f}x)"
                 if paired else "-")
        label = row["model"] + (" (torch export)" if row["framework"] == "torch" else "")
        cells = [label, str(row["length"]), cell("naive"), cell("fast"), *(cell(m) for m, _ in peers_run),
                 f"{best['naive'][1] / best['fast'][1]:.1f}x", pairs, *(versus(m) for m, _ in peers_run),
                 f"{row.get('setup_seconds', {}).get('fast', 0):.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    checks = [f"{row['model']} {row['length']} {row['tangermeme_check']['max_abs_difference']:.2g} (of "
              f"{row['tangermeme_check']['max_abs_delta']:.2g})" for row in rows if "tangermeme_check" in row]
    if checks:
        lines += ["", "tangermeme against onnxism fast ISM on sequence 0 (every position, base and output element): "
                  "largest absolute difference of the deltas (largest absolute delta): " + "; ".join(checks) + "."]
    write_report(args, machine, {"rows": rows}, lines)


def peer_caption(args):
    """How the peers were timed, for the table's caption."""
    parts = []
    if args.fastism:
        parts.append(f"fastISM package 0.5.1 (Keras 2): batch B on max(B, {args.seqs}) sequences, the "
                     f"{args.positions} central positions scaled to the whole sequence.")
    if args.tangermeme:
        parts.append(f"tangermeme 1.6.0 saturation_mutagenesis on the PyTorch build, its fast path forced, "
                     f"raw_outputs=True, {args.fast_seqs} whole sequences; the set-up it repeats per call "
                     "(capture, its check against fast=False, a first batch run plain) not included.")
    return (" ".join(parts) + " Peers' batch sizes swept from the first asked for, doubling until a size is no "
            "faster or fails (halved below the first while that helps); the JSON keeps every size timed.")

if __name__ == "__main__":
    main()
