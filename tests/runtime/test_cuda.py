"""The CUDA path on a GPU: fast ISM, naive ISM, TISM, predict, large weights beside the graphs, the compiled
standalone graph and the CLI, each on CUDA against the CPU (naive ISM there as the reference for every ISM score).

Skipped where onnxruntime cannot run on CUDA; with ONNXISM_REQUIRE_CUDA=1 (a GPU machine's run) that is a failure.
The zoo comes through the PyTorch export, which needs no TensorFlow."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import onnxism
from onnxism.fast.executor import FastISM, compiled_plan
from onnxism.fast.standalone import build_standalone_fast_model
from onnxism.methods.naive import NaiveISM
from onnxism.runtime import weights

from conftest import EXAMPLES, FULL_ZOO, SMALL_ZOO, random_onehot, require_cuda
from onnx_builders import linear_heads_model

pytestmark = pytest.mark.cuda


@pytest.fixture(autouse=True)
def cuda():
    require_cuda()


def assert_close(got, want, tolerance=1e-4):
    """Each output within ``tolerance`` of its largest magnitude (at least 1), as the fast-vs-naive criterion."""
    assert got.keys() == want.keys()
    for name in want:
        assert got[name].shape == want[name].shape, name
        scale = max(1.0, float(np.abs(want[name]).max()))
        np.testing.assert_allclose(got[name], want[name], rtol=0, atol=tolerance * scale, err_msg=name)


@pytest.mark.parametrize("name", SMALL_ZOO)
def test_fast_and_naive_on_cuda_equal_naive_on_the_cpu(zoo_export, name):
    path, _ = zoo_export(name, "torch")
    model = onnxism.load(path)
    seqs = random_onehot(3, model.length, seed=31, n_fraction=0.02)
    cpu = onnxism.ism(model, seqs, method="naive")
    for method in ("fast", "naive"):
        for batch_size in (7, 512):
            assert_close(onnxism.ism(model, seqs, method=method, device="cuda", batch_size=batch_size), cpu)


@pytest.mark.parametrize("name", SMALL_ZOO)
def test_fast_on_cuda_equals_naive_on_random_values(zoo_export, name):
    """Continuous inputs (not one-hot), straight through the scorers."""
    model = onnxism.load(zoo_export(name, "torch")[0])
    length = model.length
    values = np.random.default_rng(32).random((2, length, 4)).astype(np.float32)
    args = (model, model.output_names, model.output_shapes(length), (0, length))
    _, naive = NaiveISM(*args, batch_size=64).score(values)
    compiled = compiled_plan(args[0], length, args[1], "cuda")
    _, fast = FastISM(args[0], compiled, *args[1:], batch_size=64, device="cuda").score(values)
    assert_close(fast, naive)


@pytest.mark.slow
@pytest.mark.parametrize("name", FULL_ZOO)
def test_fast_on_cuda_equals_naive_on_the_full_size_zoo(zoo_export, name):
    """Full-size models, every position: fast on CUDA against naive on CUDA, and naive on CUDA against the CPU's
    on the sequence ends and a central window."""
    path, _ = zoo_export(name, "torch")
    model = onnxism.load(path)
    length = model.length
    seqs = random_onehot(2, length, seed=33, n_fraction=0.01)
    naive = onnxism.ism(model, seqs, method="naive", device="cuda")
    assert_close(onnxism.ism(model, seqs, method="fast", device="cuda"), naive)
    for window in ((0, 12), (length // 2 - 6, length // 2 + 6), (length - 12, length)):
        cpu = onnxism.ism(model, seqs, method="naive", positions=window)
        assert_close({key: value[:, window[0]:window[1]] for key, value in naive.items()}, cpu)


def test_linear_heads_and_weights_beside_the_graphs_on_cuda(monkeypatch):
    """Dense and sum heads updated incrementally on the GPU, with every weight handed to the sessions beside
    their graphs (``runtime/weights.py``: SessionOptions.add_external_initializers on CUDA)."""
    model, seqs = linear_heads_model(), random_onehot(3, 30, seed=34, n_fraction=0.05)
    cpu = onnxism.ism(model, seqs, method="naive")
    assert_close(onnxism.ism(model, seqs, method="fast", device="cuda", batch_size=7), cpu)
    monkeypatch.setattr(weights, "EXTERNAL_BYTES", 0)
    for method in ("fast", "naive"):
        assert_close(onnxism.ism(model, seqs, method=method, device="cuda", batch_size=7), cpu)


@pytest.mark.parametrize("name", ["basset_small", "bpnet_small", "beluga_small"])
def test_tism_and_predict_on_cuda_equal_the_cpu(zoo_export, name):
    path, _ = zoo_export(name, "torch")
    model = onnxism.load(path)
    seqs = random_onehot(3, model.length, seed=35)
    assert_close(onnxism.predict(model, seqs, device="cuda"), onnxism.predict(model, seqs), 1e-5)
    assert_close(onnxism.tism(model, seqs, device="cuda"), onnxism.tism(model, seqs), 1e-5)


def test_compiled_fast_graph_on_cuda_in_plain_onnxruntime(zoo_export, tmp_path):
    """The standalone graph that `onnxism compile` writes, run by onnxruntime's CUDA provider with no onnxism."""
    path, _ = zoo_export("bpnet_small", "torch")
    model = onnxism.load(path)
    length = model.length
    seqs = random_onehot(2, length, seed=36)
    positions = np.array([0, 1, length // 2, length - 1], np.int64)
    compiled = tmp_path / "bpnet.ism.onnx"
    compiled.write_bytes(build_standalone_fast_model(model, model.output_names, length).SerializeToString())
    np.save(tmp_path / "x.npy", model.to_model_layout(seqs))
    np.save(tmp_path / "positions.npy", positions)
    script = textwrap.dedent(f"""
        import sys
        import numpy as np
        import onnxruntime as ort
        if hasattr(ort, "preload_dlls"):
            ort.preload_dlls()
        session = ort.InferenceSession({str(compiled)!r}, providers=[("CUDAExecutionProvider", {{"use_tf32": "0"}})])
        assert session.get_providers()[0] == "CUDAExecutionProvider", session.get_providers()
        assert "onnxism" not in sys.modules
        feeds = {{{model.input_name!r}: np.load({str(tmp_path / "x.npy")!r}),
                  "positions": np.load({str(tmp_path / "positions.npy")!r})}}
        names = [o.name for o in session.get_outputs()]
        np.savez({str(tmp_path / "got.npz")!r}, **dict(zip(names, session.run(names, feeds))))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    want = onnxism.ism(model, seqs, method="naive")
    with np.load(tmp_path / "got.npz") as got:
        assert_close({name: got[f"{name}__ism"] for name in model.output_names},
                     {name: value[:, positions] for name, value in want.items()})


def test_cli_run_on_cuda_equals_the_cpu(tmp_path, example_model):
    outs = {}
    for device in ("cpu", "cuda"):
        outs[device] = tmp_path / f"{device}.npz"
        done = subprocess.run([sys.executable, "-m", "onnxism", "run", example_model,
                               os.path.join(EXAMPLES, "seqs.npy"), "-o", outs[device],
                               "--device", device], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
    with np.load(outs["cpu"]) as cpu, np.load(outs["cuda"]) as gpu:
        assert sorted(cpu.files) == sorted(gpu.files)
        assert_close({name: gpu[name] for name in gpu.files}, {name: cpu[name] for name in cpu.files})
    assert np.abs(np.load(outs["cpu"])["logit"]).max() > 1  # a trained model's real effects
