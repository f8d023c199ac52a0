"""Throughput of ISM sharded over Ray actors (``onnxism run --ray``) against the single-process run, on the bundled
example model and its 8 sequences tiled to ``--count`` (20,000 by default), with each run's result checked bit for
bit against the single-process archive.

Each repeat times, in turn (the order rotated from repeat to repeat, as the machine is shared): the single-process
``ism_to_npz``; then ``ism_on_ray`` with 1 and with 2 actors (the shards: actors started, model loaded in each, the
input hashed and sent shard by shard, each shard's archive written) followed by ``merge_shards`` (the merged
archive), timed apart. One local Ray (``ray.init(num_cpus=2)``) serves every repeat, as a standing cluster would;
its start is timed once. The per-shard figures come from the manifests: the seconds each shard took in its actor.

    python benchmarks/run_ray_benchmark.py --repeats 3 --out benchmarks/results/ray_cpu
"""

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import onnxism  # noqa: E402
from benchmarks.machine import describe_machine  # noqa: E402
from benchmarks.report import write_report  # noqa: E402
from onnxism.scale import ism_on_ray, merge_shards  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(ROOT, "examples", "motif_model.onnx")
SEQS = os.path.join(ROOT, "examples", "seqs.npy")


def identical(path, wanted):
    with np.load(path) as got:
        return list(got.files) == list(wanted) and all(
            got[key].dtype == wanted[key].dtype and np.array_equal(got[key], wanted[key]) for key in wanted)


def time_single(seqs, folder):
    path = os.path.join(folder, "single.npz")
    began = time.perf_counter()
    onnxism.ism_to_npz(MODEL, seqs, path, force=True)
    return time.perf_counter() - began, path


def time_ray(seqs, folder, actors, shard_size, wanted):
    shards = os.path.join(folder, f"ray{actors}")
    merged = shards + ".npz"
    began = time.perf_counter()
    ism_on_ray(MODEL, seqs, shards, actors=actors, shard_size=shard_size, force=True)
    scored = time.perf_counter() - began
    merge_shards(shards, merged, force=True)
    merging = time.perf_counter() - began - scored
    with open(os.path.join(shards, "manifest.json")) as handle:
        reports = list(json.load(handle)["completed"].values())
    same = identical(merged, wanted)
    shutil.rmtree(shards)
    os.remove(merged)
    return {"shards_s": scored, "merge_s": merging, "identical": same,
            "shard_seconds": [report["seconds"] for report in reports]}


def measure(args, folder):
    import ray

    seqs_path = os.path.join(folder, "seqs.npy")
    np.save(seqs_path, np.tile(np.load(SEQS), (args.count // 8 + 1, 1, 1))[:args.count])
    seqs = np.load(seqs_path, mmap_mode="r")
    began = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    cluster_start = time.perf_counter() - began
    runs = {"single": [], "ray1": [], "ray2": []}
    try:
        single, path = time_single(seqs, folder)
        with np.load(path) as archive:
            wanted = {key: archive[key] for key in archive.files}
        runs["single"].append(single)
        for repeat in range(args.repeats):
            order = ["ray1", "ray2", "single"]
            order = order[repeat % 3:] + order[:repeat % 3]
            for name in order:
                if name == "single":
                    if repeat:
                        runs["single"].append(time_single(seqs, folder)[0])
                else:
                    runs[name].append(time_ray(seqs, folder, int(name[-1]), args.shard_size, wanted))
            print(f"repeat {repeat + 1}: {json.dumps({k: v[-1] for k, v in runs.items()}, default=str)[:400]}",
                  flush=True)
    finally:
        ray.shutdown()
    return cluster_start, runs


def summarise(args, cluster_start, runs):
    count, size = args.count, args.shard_size
    single = statistics.median(runs["single"])
    rows, data = [], {"cluster_start_s": cluster_start, "runs": runs}
    rows.append(f"| single process | - | {single:.1f} | - | {count / single:.0f} | 1.00 | yes |")
    for actors in (1, 2):
        results = runs[f"ray{actors}"]
        shards = statistics.median(result["shards_s"] for result in results)
        merge = statistics.median(result["merge_s"] for result in results)
        total = shards + merge
        same = "yes" if all(result["identical"] for result in results) else "NO"
        rows.append(f"| Ray, {actors} actor{'s' if actors > 1 else ''} | {shards:.1f} | {total:.1f} | {merge:.1f} "
                    f"| {count / total:.0f} | {single / total:.2f} | {same} |")
    shard_seconds = statistics.median(second for result in runs["ray1"] for second in result["shard_seconds"])
    per_seq = single / count
    fixed = shard_seconds - size * per_seq
    # the driver's own time with 1 actor: the run's time less the time its shards took in the actor
    start = statistics.median(result["shards_s"] - sum(result["shard_seconds"]) for result in runs["ray1"])
    data.update(single_s=single, per_sequence_s=per_seq, shard_s=shard_seconds, per_shard_fixed_s=fixed,
                run_fixed_s=start)
    return data, [
        f"ISM (fast, CPU) of the example model on {count} sequences of 200 bp, shards of {size}; median of "
        f"{args.repeats} repeats (single process: {len(runs['single'])}). 'shards' is `ism_on_ray` (actors started, "
        "the model loaded in each, the input hashed and sent, each shard's archive written); 'total' adds "
        "`merge_shards`. 'identical': every array equal to the single-process archive's, bit for bit.",
        "",
        "| run | shards (s) | total (s) | merge (s) | seq/s | vs single | identical |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"Per sequence, single process: {1e3 * per_seq:.2f} ms. Per shard of {size} in an actor (1 actor): "
        f"{shard_seconds:.2f} s, of which {fixed:+.2f} s beyond {size} sequences at the single-process rate. "
        f"Fixed cost per run (1 actor: 'shards' minus its shards' time in the actor): {start:.1f} s. Cluster start "
        f"(`ray.init`, once): {cluster_start:.1f} s.",
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--shard-size", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "ray_cpu"))
    parser.add_argument("--summarise", default=None, metavar="RESULTS.json",
                        help="no run: the table again from the measurements of an earlier results file")
    args = parser.parse_args()
    if args.summarise:
        with open(args.summarise) as handle:
            earlier = json.load(handle)
        for name in ("count", "shard_size", "repeats"):
            setattr(args, name, earlier["args"][name])
        cluster_start, runs = earlier["cluster_start_s"], earlier["runs"]
    else:
        with tempfile.TemporaryDirectory() as folder:
            cluster_start, runs = measure(args, folder)
    data, lines = summarise(args, cluster_start, runs)
    write_report(args, describe_machine("cpu"), data, lines)


if __name__ == "__main__":
    main()
