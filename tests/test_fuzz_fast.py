"""Fast ISM against naive ISM on random graphs (``random_graphs.py``): seeds 0-199 here, 200-799 marked slow; and
seeds 0-49 (50-299 slow) in the op forms of opsets 11, 13 and 17.

Each seed is a different stack of convolutions (any kernel, dilation, stride, asymmetric or auto pads, depthwise),
pools (overlapping, padded, ceil_mode), pads in three modes, crops, upsampling, transposed convolutions, residual
joins, channel concats, per-position layers and heads at several depths. Fast ISM must equal naive ISM (the
project's bound: 1e-4 of the largest output) and must not fall back to naive ISM as a whole.
"""

import warnings

import numpy as np
import pytest

import onnxism
from conftest import random_onehot
from random_graphs import random_model

LENGTH = 40


def _check(seed, opset=18):
    model = onnxism.load(random_model(seed, LENGTH, opset=opset))
    seqs = random_onehot(2, LENGTH, seed=seed, n_fraction=0.05)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fast = onnxism.ism(model, seqs, method="fast")
    fallbacks = [str(w.message) for w in caught if "naive ISM" in str(w.message)]
    assert not fallbacks, fallbacks
    naive = onnxism.ism(model, seqs, method="naive")
    predictions = onnxism.predict(model, seqs)
    for name in naive:
        bound = 1e-4 * max(1.0, float(np.abs(predictions[name]).max()))
        np.testing.assert_allclose(fast[name], naive[name], rtol=0, atol=bound, err_msg=f"seed {seed}, {name}")
    return model, seqs, predictions


@pytest.mark.parametrize("seed", range(200))
def test_fast_equals_naive_on_random_graphs(seed):
    _check(seed)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(200, 800))
def test_fast_equals_naive_on_more_random_graphs(seed):
    _check(seed)


def _check_older(seed, opset):
    """The seed's network in the op forms of ``opset``: the same predictions as at opset 18 (so the older forms are
    really exercised on the same network), and fast equal to naive."""
    model, seqs, predictions = _check(seed, opset)
    assert [entry.version for entry in model.proto.opset_import if entry.domain in ("", "ai.onnx")] == [opset]
    current = onnxism.predict(onnxism.load(random_model(seed, LENGTH)), seqs)
    for name, value in current.items():
        np.testing.assert_allclose(predictions[name], value, rtol=0, atol=1e-5 * max(1.0, float(np.abs(value).max())))


@pytest.mark.parametrize("seed", range(50))
@pytest.mark.parametrize("opset", [11, 13, 17])
def test_fast_equals_naive_at_older_opsets(opset, seed):
    _check_older(seed, opset)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(50, 300))
@pytest.mark.parametrize("opset", [11, 13, 17])
def test_fast_equals_naive_at_older_opsets_more(opset, seed):
    _check_older(seed, opset)
