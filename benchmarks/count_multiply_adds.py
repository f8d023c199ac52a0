"""Multiply-adds per substitution of naive and fast ISM, counted from what onnxruntime actually ran.

The bound this gives: at an equal rate of multiply-adds per second, fast / naive cannot exceed naive's count over
fast's. naive scores a substitution with one forward pass of the model (counted on one sequence at batch 1); fast
ISM is run on whole sequences and its count (both of its graphs, the reference pass included) divided by their
3 x L substitutions (the sessions onnxism runs once to probe shapes, unoptimised, are not counted). Counted from
onnxruntime's profiler: every Conv, ConvTranspose, Gemm and MatMul node it ran (after its graph optimisations, the
fused and blocked forms included), with the shapes it ran them on. Other ops
(gathers, reorders, element-wise) are passes over memory and count nothing. With --results (a JSON of
run_ism_benchmark.py), also the rate each method reached at its best time there. Writes --out .md and .json.

    python benchmarks/count_multiply_adds.py --models bpnet:1000 --results benchmarks/results/ism_cpu_93518ee.json
"""

import argparse
import contextlib
import gc
import glob
import itertools
import json
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import numpy as np  # noqa: E402
import onnx  # noqa: E402

import onnxism  # noqa: E402
from benchmarks.inputs import model_entry, random_sequences  # noqa: E402
from benchmarks.machine import describe_machine  # noqa: E402
from benchmarks.report import write_report  # noqa: E402
from benchmarks.run_ism_benchmark import DEFAULT_MODELS, export, exported_framework  # noqa: E402
from onnxism.runtime.sessions import import_onnxruntime  # noqa: E402


def node_multiply_adds(op, inputs, output):
    """Multiply-adds of one node run: ``inputs`` and ``output`` are the shapes it ran on (lists of ints; the weight
    is the second input)."""
    if op in ("Conv", "FusedConv"):  # every output value: C_in / group x kernel taps (weight (C_out, C_in/g, k...))
        return int(np.prod(output)) * int(np.prod(inputs[1][1:]))
    if op == "ConvTranspose":  # every input value: C_out / group x kernel taps (weight (C_in, C_out/g, k...))
        return int(np.prod(inputs[0])) * int(np.prod(inputs[1][1:]))
    if op in ("MatMul", "FusedMatMul"):  # every output value: the inner dimension
        return int(np.prod(output)) * int(inputs[0][-1])
    if op in ("Gemm", "FusedGemm"):  # A is (M, K), or (K, M) with transA
        return int(np.prod(output)) * int(inputs[0][1] if inputs[0][0] == output[0] else inputs[0][0])
    return 0


def session_multiply_adds(profile, graph_path):
    """Total multiply-adds of the node runs in one session's profile. The profiler leaves out the weights that
    onnxruntime pre-packed, so the shapes of a node's initializers are read from the optimised graph the session
    saved (``graph_path``, its weights apart)."""
    graph = onnx.load(graph_path, load_external_data=False).graph
    dims = {tensor.name: list(tensor.dims) for tensor in graph.initializer}
    inputs = {node.name: list(node.input) for node in graph.node}
    total = 0
    with open(profile) as handle:
        for event in json.load(handle):
            args = event.get("args", {})
            if event.get("cat") != "Node" or not event.get("name", "").endswith("_kernel_time"):
                continue
            ran = [list(shape.values())[0] for shape in args.get("input_type_shape", [])]
            output = [list(shape.values())[0] for shape in args.get("output_type_shape", [])]
            names = inputs.get(event["name"][:-len("_kernel_time")], [])
            if ran and len(names) >= 2 and names[1] in dims:  # the weight, listed or not
                ran = [ran[0], dims[names[1]]]
            if ran and output:
                total += node_multiply_adds(args["op_name"], ran, output[0])
    return total


def profiled_multiply_adds(folder):
    """Total multiply-adds of every session profiled under ``folder`` (``Profiling``)."""
    total = 0
    for graph_path in glob.glob(os.path.join(folder, "session*.onnx")):
        stem = graph_path[:-len(".onnx")]
        for profile in glob.glob(f"{stem}_profile*.json"):
            total += session_multiply_adds(profile, graph_path)
    return total


class Profiling:
    """Within the block, every onnxruntime session made writes a profile and its optimised graph under ``folder``
    (session<k>_profile_*.json, session<k>.onnx, its weights in session<k>.data)."""

    def __init__(self, folder):
        self.ort, self.folder = import_onnxruntime(), folder

    def __enter__(self):
        ort, folder, made = self.ort, self.folder, itertools.count()
        plain = ort.SessionOptions

        class Options(plain):
            """Profiles its session, unless the session only probes shapes (onnxism makes those unoptimised)."""

            @property
            def graph_optimization_level(self):
                return plain.graph_optimization_level.__get__(self)

            @graph_optimization_level.setter
            def graph_optimization_level(self, level):
                plain.graph_optimization_level.__set__(self, level)
                if level == ort.GraphOptimizationLevel.ORT_DISABLE_ALL:  # a probe: not part of either method's cost
                    self.enable_profiling, self.optimized_model_filepath = False, ""

            def __init__(self):
                super().__init__()
                stem = os.path.join(folder, f"session{next(made)}")
                self.enable_profiling = True
                self.log_severity_level = 3  # (it warns that a blocked-layout graph is specific to this machine)
                self.profile_file_prefix = f"{stem}_profile"
                self.optimized_model_filepath = f"{stem}.onnx"
                self.add_session_config_entry("session.optimized_model_external_initializers_file_name",
                                              f"{os.path.basename(stem)}.data")
                self.add_session_config_entry("session.optimized_model_external_initializers_min_size_in_bytes",
                                              "1024")
        self.plain, self.ort.SessionOptions = plain, Options

    def __exit__(self, *exc):
        self.ort.SessionOptions = self.plain


def count(path, length, seqs):
    """(naive, fast) multiply-adds per substitution of the model at ``path``."""
    ort = import_onnxruntime()
    with tempfile.TemporaryDirectory() as folder:
        with Profiling(folder):
            session = ort.InferenceSession(path, ort.SessionOptions(), providers=["CPUExecutionProvider"])
        model = onnxism.load(path)
        layout = seqs[:1] if model.layout == "NLC" else seqs[:1].transpose(0, 2, 1)
        session.run(None, {model.input_name: layout})
        session.end_profiling()
        naive = profiled_multiply_adds(folder)
    with tempfile.TemporaryDirectory() as folder:
        with Profiling(folder):
            model = onnxism.load(path)
            onnxism.ism(model, seqs, method="fast", workers=1)
        del model  # its sessions end their profiles when they go
        gc.collect()
        fast = profiled_multiply_adds(folder) / (3 * length * len(seqs))
    return naive, fast


def best_seconds(results, name, length, method):
    for row in (results or {}).get("rows", []):
        if row["model"] == name and row["length"] == length:
            return min(row["methods"][method].values())
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=DEFAULT_MODELS, help="NAME:LENGTH entries")
    parser.add_argument("--seqs", type=int, default=1, help="whole sequences scored by fast ISM")
    parser.add_argument("--results", help="a run_ism_benchmark.py JSON: the rates at its best times")
    parser.add_argument("--out", default=os.path.join(HERE, "results", "multiply_adds"))
    args = parser.parse_args()
    with open(args.results) if args.results else contextlib.nullcontext() as handle:
        results = json.load(handle) if handle else None
    lines = ["Multiply-adds per substitution, in millions (M); rates in G multiply-adds per second at the best times "
             f"of {os.path.basename(args.results)}." if results else "Multiply-adds per substitution, in millions (M).",
             "",
             "| model | L | naive (M per substitution) | fast (M per substitution) | bound: naive / fast |"
             + (" naive rate (G/s) | fast rate (G/s) | fast / naive rate |" if results else ""),
             "|---|---|---|---|---|" + ("---|---|---|" if results else "")]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for entry in args.models:
            name, length = model_entry(entry)
            path = export(name, length, exported_framework(name, "keras"), folder)
            naive, fast = count(path, length, random_sequences(args.seqs, length))
            rows.append({"model": name, "length": length, "naive": naive, "fast": fast})
            line = f"| {name} | {length} | {naive / 1e6:.1f} | {fast / 1e6:.1f} | {naive / fast:.2f}x |"
            seconds = [best_seconds(results, name, length, method) for method in ("naive", "fast")]
            if results and None not in seconds:
                rates = [count_ * 3 * length / s / 1e9 for count_, s in zip((naive, fast), seconds)]
                line += f" {rates[0]:.0f} | {rates[1]:.0f} | {rates[1] / rates[0]:.2f} |"
            lines.append(line)
            print(line, flush=True)
    write_report(args, describe_machine("cpu"), {"rows": rows}, lines)


if __name__ == "__main__":
    main()
