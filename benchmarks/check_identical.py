"""Bit-for-bit check: fast ISM, naive ISM, TISM and the compiled fast graph of this checkout's engine against the
engine (``onnxism/``) of commit REV, on the same exported models and sequences.

The models are exported once, with this checkout's converters and test builders: the model zoo's small models
(PyTorch's two exporters and Keras), the architecture suites of the tests (PyTorch and Keras), random graphs, models
whose loading rewrites them (a reverse-complement stack, token inputs, Keras any-length models), models with extra
inputs or linear heads, and the bundled example. Then each engine scores them in a fresh Python process, and every
array (each output of each method) must have the same shape, type and bytes; the notices each engine gives and the
errors it raises must be the same text. Exits non-zero on any difference.

    python benchmarks/check_identical.py --baseline 9522aa5
    python benchmarks/check_identical.py --baseline 9522aa5 --quick          # a subset, in about a minute

onnxruntime's CPU kernels differ between CPUs (AVX2, AVX-512), so bit-for-bit holds between two engines on one
machine, not between machines: the check runs both engines here. ``--hashes FILE`` also writes the SHA-256 of every
baseline array (what ``benchmarks/results/identical_REV.json`` holds, with the machine that made it).
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests"), os.path.join(ROOT, "tests", "passes")]  # helpers and tests
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

from benchmarks.machine import describe_machine  # noqa: E402
from benchmarks.run_setup_benchmark import baseline_engine  # noqa: E402

#: Run in a fresh process: sys.argv = [engine root, cases .json, output folder]. Writes OUT/NAME.npz per case and
#: OUT/notices.json ({case: {method: [warnings..., or "error: ..."]}}).
SCORE = r'''
import json, os, sys, warnings
sys.path.insert(0, sys.argv[1])
import numpy as np
import onnxism
assert onnxism.__file__.startswith(sys.argv[1]), onnxism.__file__
from onnxism.cli import main as cli

cases = json.load(open(sys.argv[2]))
out = sys.argv[3]
notices = {}

def record(case, method, call):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = call()
            error = None
        except onnxism.OnnxismError as err:
            result, error = {}, f"error: {type(err).__name__}: {err}"
    said = [str(w.message) for w in caught if issubclass(w.category, onnxism.OnnxismWarning)]
    notices.setdefault(case["name"], {})[method] = said + ([error] if error else [])
    return result

def compiled(case, model, seqs, folder):
    import onnxruntime as ort
    path = os.path.join(folder, case["name"] + ".fast.onnx")
    if cli(["compile", case["path"], "-o", path, "--method", "fast", "--force"]):
        raise onnxism.InputError("compile failed")
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    length = seqs.shape[1]
    positions = np.array([0, length // 2, length - 1, -2], np.int64)
    feeds = {model.input_name: model.to_model_layout(seqs), "positions": positions}
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds)))

for case in cases:
    model = onnxism.load(case["path"], **case.get("load", {}))
    seqs = np.load(case["seqs"])
    extras = {name: np.load(path) for name, path in case.get("extras", {}).items()} or None
    arrays = {}
    methods = {
        "fast": lambda: onnxism.ism(model, seqs, extra_inputs=extras),
        "naive": lambda: onnxism.ism(model, seqs, method="naive", extra_inputs=extras),
        "fast_sum": lambda: onnxism.ism(model, seqs, targets="sum", extra_inputs=extras),
        "fast_window": lambda: onnxism.ism(model, seqs, positions=(1, seqs.shape[1] // 2), batch_size=7,
                                           extra_inputs=extras),
        "tism": lambda: onnxism.tism(model, seqs, extra_inputs=extras),
        "centred": lambda: onnxism.tism(model, seqs, targets="sum", attribution="centred", extra_inputs=extras),
        "predict": lambda: onnxism.predict(model, seqs, extra_inputs=extras),
        "compiled": lambda: compiled(case, model, seqs, out),
    }
    for method in case["methods"]:
        for key, value in record(case, method, methods[method]).items():
            arrays[f"{method}/{key}"] = value
    np.savez(os.path.join(out, case["name"] + ".npz"), **arrays)
    print(case["name"], len(arrays), flush=True)
json.dump(notices, open(os.path.join(out, "notices.json"), "w"), indent=1, sort_keys=True)
'''

EXACT = ["fast", "naive", "fast_sum", "fast_window", "tism", "centred", "predict"]


def onehot(count, length, seed, n_fraction=0.05):
    rng = np.random.default_rng(seed)
    seqs = np.eye(4, dtype=np.float32)[rng.integers(0, 4, size=(count, length))]
    if n_fraction:
        seqs[rng.random((count, length)) < n_fraction] = 0.0
    return seqs


def export_cases(folder, quick):
    """Writes every model and its sequences into ``folder``; returns the cases (name, path, seqs, methods, ...)."""
    import onnx

    cases = []

    def add(name, proto_or_path, length, methods=EXACT, count=2, n_fraction=0.05, **extra):
        path = os.path.join(folder, f"{name}.onnx")
        if not isinstance(proto_or_path, str):
            onnx.save(proto_or_path, path)
        elif proto_or_path != path:
            path = proto_or_path
        seqs = os.path.join(folder, f"{name}.seqs.npy")
        np.save(seqs, onehot(count, length, len(cases), n_fraction))
        cases.append(dict(name=name, path=path, seqs=seqs, methods=list(methods), **extra))
        print(f"exported {name}", flush=True)

    example = os.path.join(ROOT, "examples", "motif_model.onnx")
    cases.append(dict(name="example", path=example, seqs=os.path.join(ROOT, "examples", "seqs.npy"),
                      methods=EXACT + ["compiled"]))

    from onnxism_converters.zoo import export_zoo_model

    zoo = ["basset_small", "bpnet_small"] if quick else ["basset_small", "factorized_basset_small", "bpnet_small",
                                                         "deepsea_small", "beluga_small"]
    for name in zoo:
        for framework, dynamo in (("torch", True), ("torch", False), ("keras", True)):
            label = f"{name}-{framework}" + ("" if dynamo else "-legacy")
            path = os.path.join(folder, f"{label}.onnx")
            export_zoo_model(name, framework, path, dynamo=dynamo)
            length = onnx.load(path).graph.input[0].type.tensor_type.shape.dim
            length = max(d.dim_value for d in length)
            add(label, path, length, EXACT + (["compiled"] if framework == "torch" and dynamo else []))

    import random_graphs

    seeds = range(4) if quick else range(30)
    for seed in seeds:
        add(f"random{seed}", random_graphs.random_model(seed), 40)
        if not quick and seed < 15:
            add(f"random{seed}-idioms", random_graphs.random_model(seed, idioms=True), 40)
        if not quick and seed < 5:
            add(f"random{seed}-opset13", random_graphs.random_model(seed, opset=13), 40)

    import onnx_builders

    add("linear_heads", onnx_builders.linear_heads_model(), 30)
    add("wrapped_residual", onnx_builders.wrapped_residual_model(), 40)
    add("resize", onnx_builders.resize_model(), 40)
    extra_path = os.path.join(folder, "extra.npy")
    np.save(extra_path, np.random.default_rng(5).standard_normal((2, 2)).astype(np.float32))
    add("extra_input", onnx_builders.conv_model(extra_input=True), 20, extras={"extra": extra_path})
    add("fixed_batch", onnx_builders.conv_model(batch=2, baked_batch=True), 20, count=3)  # falls back to naive
    if quick:
        return cases

    from pathlib import Path

    import torch

    import architectures

    for name in architectures.ARCHITECTURES + architectures.MODERN:
        path, _ = architectures.export_architecture(name, Path(folder))
        add(f"arch_{name}", str(path), architectures.LENGTH)
    from onnxism_converters import keras_to_onnx, torch_to_onnx

    for name in architectures.KERAS_MODERN:
        path = os.path.join(folder, f"keras_{name}.onnx")
        keras_to_onnx(architectures.keras_modern(name), path)
        add(f"keras_{name}", path, architectures.LENGTH)

    import test_batch_unroll
    import test_keras_any_length
    import test_tokens

    for form, dynamo in (("slices", True), ("slices", False), ("chunk", True), ("view", True)):
        label = f"stacked_{form}" + ("" if dynamo else "-legacy")
        path = os.path.join(folder, f"{label}.onnx")
        torch_to_onnx(test_batch_unroll._perturbed(form, seed=3), torch.zeros(2, 4, test_batch_unroll.LENGTH),
                      path, dynamo=dynamo, output_names=["profile", "counts"])
        add(label, path, test_batch_unroll.LENGTH)
    for kind, tokens in (("embedded", test_tokens.OFFSET_TOKENS), ("onehotted", "ACGT")):
        torch.manual_seed(7)
        module = test_tokens._torch_modules()[kind]().eval()
        with torch.no_grad():
            for parameter in module.parameters():
                parameter.add_(0.1 * torch.randn_like(parameter))
        path = os.path.join(folder, f"tokens_{kind}.onnx")
        names = ["counts"] if kind == "onehotted" else ["profile", "counts"]
        torch_to_onnx(module, torch.ones(2, test_tokens.LENGTH, dtype=torch.long), path, input_name="ids",
                      output_names=names)
        add(f"tokens_{kind}", path, test_tokens.LENGTH, n_fraction=0.0, load={"tokens": tokens})
    for kind in ("residual", "paddings"):
        path = os.path.join(folder, f"keras_any_{kind}.onnx")
        keras_to_onnx(test_keras_any_length._keras_model(kind), path, opset=17)
        add(f"keras_any_{kind}", path, test_keras_any_length.LENGTH)
    return cases


def score(engine, cases_path, out):
    os.makedirs(out)
    done = subprocess.run([sys.executable, "-c", SCORE, engine, cases_path, out], cwd=out, text=True,
                          capture_output=True)
    if done.returncode:
        raise SystemExit(f"scoring with the engine at {engine} failed:\n{done.stderr[-3000:]}")


def compare(cases, first, second):
    """The differences between the two engines' arrays and notices, one line each."""
    differences = []
    with open(os.path.join(first, "notices.json")) as a, open(os.path.join(second, "notices.json")) as b:
        notices = json.load(a), json.load(b)
    for case in cases:
        name = case["name"]
        if notices[0].get(name) != notices[1].get(name):
            differences.append(f"{name}: notices differ: {notices[0].get(name)} != {notices[1].get(name)}")
        with np.load(os.path.join(first, f"{name}.npz")) as a, np.load(os.path.join(second, f"{name}.npz")) as b:
            if set(a.files) != set(b.files):
                differences.append(f"{name}: arrays differ: {sorted(a.files)} != {sorted(b.files)}")
            for key in sorted(set(a.files) & set(b.files)):
                x, y = a[key], b[key]
                if x.shape != y.shape or x.dtype != y.dtype:
                    differences.append(f"{name} {key}: {x.shape} {x.dtype} != {y.shape} {y.dtype}")
                elif x.tobytes() != y.tobytes():
                    gap = np.nanmax(np.abs(x.astype(np.float64) - y.astype(np.float64)))
                    differences.append(f"{name} {key}: values differ (largest difference {gap:.3g})")
    return differences


def hashes(cases, folder):
    result = {}
    for case in cases:
        with np.load(os.path.join(folder, f"{case['name']}.npz")) as arrays:
            result[case["name"]] = {key: hashlib.sha256(arrays[key].tobytes()).hexdigest() for key in arrays.files}
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", required=True, help="the commit whose engine this checkout's must equal")
    parser.add_argument("--quick", action="store_true", help="a subset of the cases (no architecture suites)")
    parser.add_argument("--hashes", default=None, help="write the baseline's array hashes to this .json file")
    parser.add_argument("--keep", default=None, help="a folder to keep the models and scores in")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        folder = args.keep or temporary
        models = os.path.join(folder, "models")
        os.makedirs(models, exist_ok=True)
        cases = export_cases(models, args.quick)
        cases_path = os.path.join(folder, "cases.json")
        with open(cases_path, "w") as handle:
            json.dump(cases, handle)
        engine = baseline_engine(args.baseline, os.path.join(folder, "baseline_engine"))
        score(engine, cases_path, os.path.join(folder, "baseline"))
        score(ROOT, cases_path, os.path.join(folder, "this"))
        differences = compare(cases, os.path.join(folder, "baseline"), os.path.join(folder, "this"))
        arrays = sum(len(found) for found in hashes(cases, os.path.join(folder, "this")).values())
        if args.hashes:
            with open(args.hashes, "w") as handle:
                json.dump({"machine": describe_machine("cpu"), "baseline": args.baseline,
                           "arrays": hashes(cases, os.path.join(folder, "baseline"))}, handle, indent=1,
                          sort_keys=True)
    for line in differences:
        print(line)
    print(f"{len(cases)} models, {arrays} arrays: "
          + (f"{len(differences)} differences from {args.baseline}" if differences
             else f"identical to {args.baseline}, bit for bit"))
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
