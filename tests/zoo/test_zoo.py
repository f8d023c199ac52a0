"""The zoo through the converters: ONNX predictions and ISM against the source framework on the same weights."""

import numpy as np
import pytest

import onnxism

from conftest import FULL_ZOO, SMALL_ZOO, random_onehot


def framework_predict(framework, model, seqs):
    """Predictions computed in the source framework itself, as a list in output order."""
    if framework == "torch":
        import torch

        with torch.no_grad():
            out = model(torch.from_numpy(np.ascontiguousarray(seqs.transpose(0, 2, 1))))
        out = out if isinstance(out, tuple) else (out,)
        return [o.numpy() for o in out]
    out = model(seqs, training=False)
    out = out if isinstance(out, (list, tuple)) else [out]
    return [np.asarray(o) for o in out]


def framework_ism(framework, model, seqs):
    """ISM in the framework: every mutant built by hand, run in one framework call per sequence."""
    results = None
    for n in range(len(seqs)):
        length = seqs.shape[1]
        mutants = np.repeat(seqs[n:n + 1], length * 4, axis=0).reshape(length, 4, length, 4)
        for i in range(length):
            mutants[i, :, i, :] = np.eye(4, dtype=np.float32)
        values = framework_predict(framework, model, np.concatenate([seqs[n:n + 1], mutants.reshape(-1, length, 4)]))
        deltas = [(v[1:] - v[:1]).reshape((length, 4) + v.shape[1:]) for v in values]
        if results is None:
            results = [np.zeros((len(seqs),) + d.shape, np.float32) for d in deltas]
        for result, delta in zip(results, deltas):
            result[n] = delta
    return results


def check_predictions(path, framework, model, seqs, expected_layout):
    loaded = onnxism.load(path)
    assert loaded.layout == expected_layout
    got = onnxism.predict(loaded, seqs)
    expected = framework_predict(framework, model, seqs)
    assert len(got) == len(expected)
    for value, reference in zip(got.values(), expected):
        scale = max(1.0, np.abs(reference).max())
        np.testing.assert_allclose(value.reshape(reference.shape), reference, rtol=0, atol=2e-5 * scale)


@pytest.mark.parametrize("name", SMALL_ZOO)
@pytest.mark.parametrize("framework, layout", [("torch", "NCL"), ("keras", "NLC")])
def test_converted_small_zoo_matches_framework(zoo_export, name, framework, layout):
    path, model = zoo_export(name, framework)
    check_predictions(path, framework, model, random_onehot(4, onnxism.load(path).length, seed=11), layout)


@pytest.mark.parametrize("name", ["basset_small", "bpnet_small"])
def test_legacy_torch_export_matches(zoo_export, name):
    path, model = zoo_export(name, "torch", dynamo=False)
    check_predictions(path, "torch", model, random_onehot(3, onnxism.load(path).length, seed=12), "NCL")


@pytest.mark.parametrize("name", SMALL_ZOO)
def test_torch_and_keras_builds_of_one_spec_agree(zoo_export, name):
    """The zoo gives both frameworks the same weights, so their ONNX files compute the same function."""
    seqs = random_onehot(3, onnxism.load(zoo_export(name, "torch")[0]).length, seed=13)
    from_torch = onnxism.predict(zoo_export(name, "torch")[0], seqs)
    from_keras = onnxism.predict(zoo_export(name, "keras")[0], seqs)
    for a, b in zip(from_torch.values(), from_keras.values()):
        np.testing.assert_allclose(a, b.reshape(a.shape), rtol=0, atol=2e-5 * max(1.0, np.abs(a).max()))


@pytest.mark.parametrize("name", ["basset_small", "bpnet_small", "beluga_small"])
@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_naive_ism_matches_framework_ism(zoo_export, name, framework):
    path, model = zoo_export(name, framework)
    seqs = random_onehot(2, onnxism.load(path).length, seed=14)
    got = onnxism.ism(path, seqs)
    expected = framework_ism(framework, model, seqs)
    for value, reference in zip(got.values(), expected):
        reference = reference.reshape(value.shape)
        scale = max(1.0, np.abs(reference).max())
        np.testing.assert_allclose(value, reference, rtol=0, atol=1e-4 * scale)
        bases = seqs.argmax(axis=2)
        assert np.all(np.take_along_axis(value, bases[:, :, None].reshape(bases.shape + (1,) + (1,) * (value.ndim - 3)),
                                         axis=2) == 0)


# tf2onnx needs more than this machine's 24 GiB to convert the full-size Keras Beluga (Dense 67840 x 2003): its
# Keras route is covered by beluga_small, its full size by the PyTorch route.
FULL_ZOO_ROUTES = [(name, framework, layout) for name in FULL_ZOO for framework, layout in
                   (("torch", "NCL"), ("keras", "NLC")) if (name, framework) != ("beluga", "keras")]


@pytest.mark.slow
@pytest.mark.parametrize("name, framework, layout", FULL_ZOO_ROUTES)
def test_converted_full_zoo_matches_framework(zoo_export, name, framework, layout):
    path, model = zoo_export(name, framework)
    check_predictions(path, framework, model, random_onehot(2, onnxism.load(path).length, seed=15), layout)
