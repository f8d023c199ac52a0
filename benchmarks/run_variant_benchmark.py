"""Variant scoring throughput: onnxism's fast path (SNVs as substitution rows of fast ISM's graph, one reference pass
per window) against the two forward passes per variant that peers run, and peak memory from 10^3 to 10^5 variants.

    python benchmarks/run_variant_benchmark.py --out benchmarks/results/variants_cpu

For each model (a zoo model exported from PyTorch, random weights) and each set of SNVs on a random 2 Mb genome:
  two-pass   the reference and the alternative window of every variant through the model (onnxism.predict at its
             default batch; windows cut from the genome as onnxism cuts them), what gReLU, tangermeme and Kipoi do
  naive B    ``onnxism variants --method naive --bin B``: one reference pass per window, a forward pass per variant
  fast B     ``onnxism variants --bin B``: one reference pass per window, a fast-ISM row per variant (a window of
             one variant: naive's two passes)
  tangermeme ``tangermeme.variant_effect.substitution_effect`` (1.6, --tangermeme) on the same windows as B = 1, a
             window per variant, its batch size swept (32 to 256), the same spec built in PyTorch in its own venv
Variant sets: "sparse", SNVs at random positions (one per kb on average, so with B = 1 every variant has its own
window); "dense", every alternative at consecutive positions (saturation of a region, as an MPRA or a fine-mapped
locus gives). Each time is the median of --repeats runs after a warm-up (sessions and plans built), seconds for the
whole set end to end (VCF read, genome read, table written). The check: the largest difference between fast B and
naive B (same windows), relative to the largest |output| on the reference.

--rss N...: peak resident memory of ``onnxism variants`` in a fresh process for N sparse SNVs each, on --rss-model.
"""

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import numpy as np  # noqa: E402

import onnxism  # noqa: E402
from benchmarks import peers  # noqa: E402
from benchmarks.inputs import model_entry  # noqa: E402
from benchmarks.machine import describe_machine  # noqa: E402
from benchmarks.report import write_report  # noqa: E402
from onnxism.genome import Genome  # noqa: E402
from onnxism.methods.variants import allele_windows, plan_variants  # noqa: E402
from onnxism.sequences.text import ONEHOT_ROWS  # noqa: E402
from onnxism_converters.zoo import export_zoo_model  # noqa: E402

GENOME_LENGTH = 2_000_000
HEADER = "##fileformat=VCFv4.2\n##contig=<ID=chr1,length={length}>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"


def write_genome(folder, seed=0):
    text = "".join(np.random.default_rng(seed).choice(list("ACGT"), GENOME_LENGTH))
    path = os.path.join(folder, "genome.fa")
    with open(path, "w") as fasta:
        fasta.write(">chr1\n" + "\n".join(text[i:i + 80] for i in range(0, len(text), 80)) + "\n")
    return path, text


def snvs(text, kind, count, seed=1):
    """(pos, ref, alt) 1-based SNVs: ``sparse`` at random distinct positions, ``dense`` every alternative at
    consecutive positions from the middle of the genome."""
    rng = np.random.default_rng(seed)
    if kind == "sparse":
        positions = np.sort(rng.choice(np.arange(5000, GENOME_LENGTH - 5000), count, replace=False))
        return [(int(p) + 1, text[p], "ACGT"[("ACGT".index(text[p]) + 1 + int(rng.integers(3))) % 4])
                for p in positions]
    first = GENOME_LENGTH // 2
    records = [(first + i + 1, text[first + i], alt) for i in range(count // 3 + 1)
               for alt in "ACGT" if alt != text[first + i]]
    return records[:count]


def write_vcf(path, records):
    with open(path, "w") as vcf:
        vcf.write(HEADER.format(length=GENOME_LENGTH))
        vcf.writelines(f"chr1\t{p}\tv{i}\t{r}\t{a}\t.\tPASS\t.\n" for i, (p, r, a) in enumerate(records))
    return path


def time_table(model, vcf, genome, out, method, bin_size, repeats, targets=None):
    options = dict(method=method, bin_size=bin_size, targets=targets, force=True)
    onnxism.variants_to_table(model, vcf, genome, out, **options)  # warm-up
    runs = []
    for _ in range(repeats):
        began = time.perf_counter()
        onnxism.variants_to_table(model, vcf, genome, out, **options)
        runs.append(time.perf_counter() - began)
    with open(out) as handle:
        table = list(csv.DictReader(handle, delimiter="\t"))
    return statistics.median(runs), table


def time_two_pass(model, vcf_records, genome_path, repeats):
    """Seconds to run every variant's reference and alternative window through the model."""
    plan = plan_variants(model)

    def run():
        began = time.perf_counter()
        with Genome(genome_path) as genome:
            for low in range(0, len(vcf_records), 1024):
                windows = []
                for pos, ref, alt in vcf_records[low:low + 1024]:
                    variant = _Variant(pos, ref, alt)
                    windows.extend(allele_windows(plan, genome, variant))
                onnxism.predict(model, ONEHOT_ROWS[np.stack(windows)])
        return time.perf_counter() - began

    run()
    return statistics.median(run() for _ in range(repeats))


class _Variant:
    """What ``allele_windows`` reads of a variant."""

    def __init__(self, pos, ref, alt):
        self.pos, self.ref, self.alt, self.contig, self.chrom = pos, ref, alt, "chr1", "chr1"
        self.start = pos - 1


def time_tangermeme(entry, records, genome_path, folder, repeats):
    """tangermeme's best seconds for the whole set (each variant in its own centred window), and its sweep."""
    name, length = model_entry(entry)
    windows, rows = [], []
    with Genome(genome_path) as genome:
        for index, (pos, _, alt) in enumerate(records):
            first = pos - 1 - length // 2
            windows.append(genome.codes("chr1", first, first + length))
            rows.append((index, length // 2, "ACGT".index(alt)))
    windows_path, rows_path = os.path.join(folder, "tm_windows.npy"), os.path.join(folder, "tm_rows.npy")
    np.save(windows_path, ONEHOT_ROWS[np.stack(windows)].astype(np.uint8))
    np.save(rows_path, np.array(rows, np.int64))
    command = [peers.tangermeme_python(), os.path.join(HERE, "tangermeme_variant_worker.py"), name, str(length),
               windows_path, rows_path, str(repeats), "32", "64", "128", "256"]
    results = peers.run_sweep(f"{entry} tangermeme", command, unit="s/variant")
    times, sweep = peers.summarise(results, scale=len(records))
    return (min(times.values()) if times else None), sweep


def largest_difference(fast, naive, names):
    scale = max(abs(float(row[name])) for row in naive for name in names if name.endswith("/ref")) or 1.0
    worst = max(abs(float(a[name]) - float(b[name])) for a, b in zip(fast, naive) for name in names)
    return worst / scale


def peak_rss(model_path, vcf, genome, out):
    """Peak resident memory (MiB) of ``onnxism variants`` on ``vcf`` in a fresh process, and its seconds."""
    wrapper = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
               "r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
               "assert r.returncode == 0, r.stderr; "
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, time.perf_counter() - t)")
    command = [sys.executable, "-c", wrapper, sys.executable, "-m", "onnxism", "variants", model_path, "--vcf", vcf,
               "--genome", genome, "-o", out, "--force"]
    kib, seconds = subprocess.run(command, capture_output=True, text=True, check=True).stdout.split()
    return int(kib) / 1024, float(seconds)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["basset:1000", "bpnet:1000"], help="NAME:LENGTH entries")
    parser.add_argument("--variants", type=int, default=1500, help="SNVs per set")
    parser.add_argument("--bins", type=int, nargs="+", default=[1, 100])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rss", type=int, nargs="*", default=[1000, 10000, 100000])
    parser.add_argument("--tangermeme", action="store_true", help="also time tangermeme's substitution_effect")
    parser.add_argument("--targets", default=None, help="onnxism's targets (e.g. sum: one column per output "
                        "instead of one per element; the two-pass and tangermeme columns compute every element)")
    parser.add_argument("--rss-model", default="examples/motif_model.onnx",
                        help="an .onnx file, or a NAME:LENGTH zoo entry")
    parser.add_argument("--out", default=os.path.join(HERE, "results", "variants_cpu"))
    args = parser.parse_args()
    machine, rows, memory = describe_machine("cpu"), [], []
    with tempfile.TemporaryDirectory() as folder:
        genome, text = write_genome(folder)
        paths = {}
        for entry in dict.fromkeys(args.models + ([args.rss_model] if args.rss else [])):
            if entry.endswith(".onnx"):
                paths[entry] = entry
                continue
            name, length = model_entry(entry)
            paths[entry] = os.path.join(folder, f"{name}_{length}.onnx")
            export_zoo_model(name, "torch", paths[entry], length=length)
        for entry in args.models:
            model = onnxism.load(paths[entry])
            for kind in ("sparse", "dense"):
                records = snvs(text, kind, args.variants)
                vcf = write_vcf(os.path.join(folder, f"{kind}.vcf"), records)
                row = {"model": entry, "set": kind, "variants": len(records),
                       "two_pass": time_two_pass(model, records, genome, args.repeats)}
                print(f"{entry} {kind} two-pass: {len(records) / row['two_pass']:.1f} variants/s", flush=True)
                if args.tangermeme:
                    row["tangermeme"], row["tangermeme_sweep"] = time_tangermeme(entry, records, genome, folder,
                                                                                 args.repeats)
                for bin_size in args.bins:
                    out = os.path.join(folder, "effects.tsv")
                    seconds = {}
                    tables = {}
                    for method in ("naive", "fast"):
                        seconds[method], tables[method] = time_table(model, vcf, genome, out, method, bin_size,
                                                                     args.repeats, args.targets)
                        print(f"{entry} {kind} {method} bin {bin_size}: {len(records) / seconds[method]:.1f} "
                              "variants/s", flush=True)
                    names = [column for column in tables["fast"][0] if "/" in column]
                    row[f"bin {bin_size}"] = dict(seconds, check=largest_difference(tables["fast"], tables["naive"],
                                                                                    names))
                rows.append(row)
                write_outputs(args, machine, rows, memory)
        for count in args.rss:
            vcf = write_vcf(os.path.join(folder, f"rss_{count}.vcf"), snvs(text, "sparse", count, seed=2))
            mib, seconds = peak_rss(paths[args.rss_model], vcf, genome, os.path.join(folder, "rss.tsv"))
            memory.append({"variants": count, "peak_rss_mib": mib, "seconds": seconds})
            print(f"{args.rss_model} {count} variants: peak RSS {mib:.0f} MiB, {seconds:.1f} s", flush=True)
            write_outputs(args, machine, rows, memory)


def write_outputs(args, machine, rows, memory):
    lines = [
        f"Variants per second, end to end (VCF read, windows read from a random 2 Mb genome, table written; median "
        f"of {args.repeats} runs after a warm-up). two-pass: every variant's reference and alternative window "
        "through the model (what peers do). naive B / fast B: `onnxism variants --method naive|fast --bin B` (one "
        "reference pass per window; a forward pass, or a fast-ISM row, per variant). Check: largest |fast - naive| "
        "on the same windows, relative to the largest |reference output|.", "",
        "| model | set | variants | two-pass | tangermeme | " + " | ".join(
            f"naive B={b} | fast B={b} | fast B={b} / two-pass | check B={b}" for b in args.bins) + " |",
        "|---|---|---|---|---|" + "---|---|---|---|" * len(args.bins),
    ]
    for row in rows:
        peer = f"{row['variants'] / row['tangermeme']:.1f}" if row.get("tangermeme") else "not run"
        cells = [row["model"], row["set"], str(row["variants"]), f"{row['variants'] / row['two_pass']:.1f}", peer]
        for b in args.bins:
            result = row[f"bin {b}"]
            cells += [f"{row['variants'] / result['naive']:.1f}", f"{row['variants'] / result['fast']:.1f}",
                      f"{row['two_pass'] / result['fast']:.1f}x", f"{result['check']:.1e}"]
        lines.append("| " + " | ".join(cells) + " |")
    if memory:
        lines += ["", f"Peak resident memory of `onnxism variants` ({args.rss_model}, sparse SNVs, fast, B = 1), "
                  "in a fresh process:", "", "| variants | peak RSS (MiB) | seconds |", "|---|---|---|"]
        lines += [f"| {m['variants']} | {m['peak_rss_mib']:.0f} | {m['seconds']:.1f} |" for m in memory]
    write_report(args, machine, {"rows": rows, "memory": memory}, lines)


if __name__ == "__main__":
    main()
