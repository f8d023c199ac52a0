"""Served fast ISM against onnxism.ism in process: latency (p50, p99) and throughput at 1, 8 and 32 concurrent
clients, requests of 1 and 8 sequences at every position and of 1 sequence at 3 positions (a variant's request),
Triton's dynamic batching on and off.

    python benchmarks/run_serving_benchmark.py --out benchmarks/results/serving_cpu

The server is the tritonserver 2.51 that nvidia-pytriton bundles (python backend, CPU), on a repository written by
``onnxism export triton --backend python`` for --model (default: the bundled example), one instance; its
environment is --server-python (default: the one the tests make, .tool-venvs/triton). Clients are threads of one
process in that environment, each with its own HTTP connection (benchmarks/serving_clients.py), on the same machine
as the server. In process: ``onnxism.ism`` called on one request's sequences after another, one caller. Each
configuration sends max(4, 64 // clients) requests per client after one warm-up request each, --repeats times
(each figure is the median over the repeats of that repeat's p50, p99 and throughput).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

import onnxism  # noqa: E402
from benchmarks.machine import describe_machine  # noqa: E402
from onnxism.serving.launch import free_port, server_command, server_ready  # noqa: E402
from onnxism.serving.repository import export_triton  # noqa: E402


def percentile(values, fraction):
    return float(np.percentile(np.asarray(values), fraction * 100))


def in_process(model, size, positions, count, length):
    """Latencies of ``count`` calls of onnxism.ism on ``size`` random sequences at their first ``positions``
    positions, after one warm-up call."""
    rng = np.random.default_rng(0)
    onehot = np.eye(4, dtype=np.float32)[rng.integers(0, 4, size=(size, length))]
    onnxism.ism(model, onehot, positions=(0, positions))
    latencies = []
    for _ in range(count):
        begin = time.perf_counter()
        onnxism.ism(model, onehot, positions=(0, positions))
        latencies.append(time.perf_counter() - begin)
    return latencies


def summary(latencies, wall, size):
    return {"p50_ms": 1000 * statistics.median(latencies), "p99_ms": 1000 * percentile(latencies, 0.99),
            "seq_per_s": len(latencies) * size / wall, "requests": len(latencies)}


def medians(repeats):
    """The median over repeats of each figure of ``summary``."""
    return {key: statistics.median(repeat[key] for repeat in repeats) for key in repeats[0]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=os.path.join(ROOT, "examples", "motif_model.onnx"))
    parser.add_argument("--server-python", default=os.path.join(ROOT, ".tool-venvs", "triton", "bin", "python"))
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--requests", nargs="+", default=["1x0", "8x0", "1x3"], metavar="NxP",
                        help="request shapes: N sequences at their first P positions (0: every position)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", required=True, help="results path without suffix (.json and .md are written)")
    args = parser.parse_args()
    model = onnxism.load(args.model)
    length = model.sequence_length()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        repo = os.path.join(folder, "repo")
        export_triton(model, repo, backend="python", name="batched", max_batch_size=64, queue_delay_us=500)
        export_triton(model, repo, backend="python", name="single", dynamic_batching=False, max_batch_size=64)
        http_port = free_port()
        backends = os.path.join(folder, "backends")
        os.makedirs(backends)
        argv, env = server_command(args.server_python, repo, backends=backends, http_port=http_port,
                                   grpc_port=free_port())
        server = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 120
            while not server_ready(http_port) and time.monotonic() < deadline:
                time.sleep(0.3)
            for shape in args.requests:
                size, positions = (int(part) for part in shape.split("x"))
                positions = positions or length
                repeats = []
                for _ in range(args.repeats):
                    latencies = in_process(model, size, positions, 64, length)
                    repeats.append(summary(latencies, sum(latencies), size))
                rows.append({"how": "in process (onnxism.ism)", "clients": 1, "size": size, "positions": positions,
                             **medians(repeats)})
                print(rows[-1], flush=True)
                for clients in args.clients:
                    for name in ("batched", "single"):
                        each = max(4, 64 // clients)
                        repeats = []
                        for _ in range(args.repeats):
                            done = subprocess.run([args.server_python, os.path.join(HERE, "serving_clients.py"),
                                                   f"127.0.0.1:{http_port}", f"{name}_fast", str(clients), str(size),
                                                   str(each), str(length), str(positions)], capture_output=True,
                                                  text=True, check=True)
                            result = json.loads(done.stdout)
                            if result["errors"]:
                                raise SystemExit(f"clients failed: {result['errors'][:3]}")
                            repeats.append(summary(result["latencies"], result["wall"], size))
                        how = "served, dynamic batching" if name == "batched" else "served, no batching"
                        rows.append({"how": how, "clients": clients, "size": size, "positions": positions,
                                     **medians(repeats)})
                        print(rows[-1], flush=True)
        finally:
            server.terminate()
            server.wait(timeout=60)
    machine = describe_machine("cpu")
    with open(args.out + ".json", "w") as handle:
        json.dump({"machine": machine, "model": os.path.basename(args.model), "length": length, "rows": rows}, handle,
                  indent=1)
    lines = [f"Machine: {machine}. Model: {os.path.basename(args.model)} ({length} bp), fast ISM; median of "
             f"{args.repeats} repeats; command: python benchmarks/run_serving_benchmark.py --out "
             "benchmarks/results/serving_cpu", "",
             "| request (sequences x positions) | how | clients | p50 ms | p99 ms | sequences/s | vs in process |",
             "|---|---|---|---|---|---|---|"]
    base = {(row["size"], row["positions"]): row["seq_per_s"] for row in rows if row["how"].startswith("in process")}
    for row in rows:
        ratio = row["seq_per_s"] / base[row["size"], row["positions"]]
        lines.append(f"| {row['size']} x {row['positions']} | {row['how']} | {row['clients']} | {row['p50_ms']:.1f} | "
                     f"{row['p99_ms']:.1f} | {row['seq_per_s']:.0f} | {ratio:.2f}x |")
    with open(args.out + ".md", "w") as handle:
        handle.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
