"""Shared fixtures: zoo models exported once per session, random one-hot sequences, and the loop oracle."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import numpy as np
import pytest

import onnxism

SMALL_ZOO = ["basset_small", "factorized_basset_small", "bpnet_small", "deepsea_small", "beluga_small"]
FULL_ZOO = ["basset", "factorized_basset", "bpnet", "deepsea", "beluga"]
EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def random_onehot(count, length, *, seed=0, n_fraction=0.0):
    """(count, length, 4) float32 one-hot; a fraction of positions set to N (all zeros)."""
    rng = np.random.default_rng(seed)
    seqs = np.eye(4, dtype=np.float32)[rng.integers(0, 4, size=(count, length))]
    if n_fraction:
        seqs[rng.random((count, length)) < n_fraction] = 0.0
    return seqs


def slow_from(count, total):
    """0 .. total - 1 as pytest parameters, those from ``count`` on marked slow: the default run (``-m "not slow"``)
    takes the first ``count``, the whole suite all of them."""
    return [value if value < count else pytest.param(value, marks=pytest.mark.slow) for value in range(total)]


def assert_ism_matches(model, seqs, wanted, methods=("naive", "fast"), **options):
    """ISM of ``model`` by each of ``methods`` (``options`` passed on), raising no notice (nothing computed in full,
    no fallback), equals ``wanted`` ({output name: (N, L, 4, ...)}) to 1e-5 of each output's largest magnitude."""
    import warnings

    for method in methods:
        with warnings.catch_warnings():
            warnings.simplefilter("error", onnxism.OnnxismWarning)
            got = onnxism.ism(model, seqs, method=method, **options)
        for name, want in wanted.items():
            np.testing.assert_allclose(got[name], want, rtol=0, atol=1e-5 * max(1.0, np.abs(want).max()))


def keras_tism(keras_model, seqs, output=None):
    """The reference TISM of the sum of a Keras model's output (its ``output``-th, where it has several), from
    tf.GradientTape: (N, L, 4), zero at the reference base."""
    import tensorflow as tf

    onehot = tf.constant(seqs)
    with tf.GradientTape() as tape:
        tape.watch(onehot)
        outputs = keras_model(onehot)
        total = tf.reduce_sum(outputs if output is None else outputs[output])
    gradient = tape.gradient(total, onehot).numpy()
    return gradient - (gradient * seqs).sum(2, keepdims=True)


def loop_ism(model, seqs, start=0, end=None):
    """The oracle: a plain loop that builds each mutant by hand and calls onnxism.predict on it."""
    model = onnxism.load(model)
    end = seqs.shape[1] if end is None else end
    reference = onnxism.predict(model, seqs)
    out = {name: np.zeros((len(seqs), end - start, 4) + value.shape[1:], np.float32)
           for name, value in reference.items()}
    for n in range(len(seqs)):
        for i in range(start, end):
            for b in range(4):
                if seqs[n, i, b] == 1:
                    continue
                mutant = seqs[n:n + 1].copy()
                mutant[0, i] = 0
                mutant[0, i, b] = 1
                for name, value in onnxism.predict(model, mutant).items():
                    out[name][n, i - start, b] = value[0] - reference[name][n]
    return out


def require_cuda():
    """Skip the calling test unless onnxruntime can really run on CUDA here; with ONNXISM_REQUIRE_CUDA=1 (a GPU
    machine's run), fail instead, so that a CUDA set-up that does not start is never taken for a pass."""
    fail = pytest.fail if os.environ.get("ONNXISM_REQUIRE_CUDA") == "1" else pytest.skip
    if not onnxism.cuda_available():
        fail("onnxruntime's CUDA provider is not installed")
    from onnx_builders import conv_model

    try:
        onnxism.load(conv_model()).session("cuda")
    except onnxism.DeviceError as err:
        fail(f"CUDA provider present but no usable GPU: {err}")


@pytest.fixture(scope="session")
def zoo_export(tmp_path_factory):
    """``zoo_export(name, framework, dynamo=True)`` -> (onnx path, framework model), exported once per session."""
    cache = {}
    folder = tmp_path_factory.mktemp("zoo")

    def get(name, framework, dynamo=True):
        key = (name, framework, dynamo)
        if not name.endswith("_small"):  # full-size models are large: exported per call, never kept
            cache.clear()
        if key not in cache:
            pytest.importorskip("torch" if framework == "torch" else "tf2onnx")
            from onnxism_converters.zoo import export_zoo_model

            path = folder / f"{name}-{framework}-{'dynamo' if dynamo else 'legacy'}.onnx"
            _, framework_model = export_zoo_model(name, framework, path, dynamo=dynamo)
            cache[key] = (str(path), framework_model)
        return cache[key]

    return get


@pytest.fixture(scope="session")
def example_model():
    return os.path.join(EXAMPLES, "motif_model.onnx")


@pytest.fixture(scope="session")
def example_seqs():
    return np.load(os.path.join(EXAMPLES, "seqs.npy"))
