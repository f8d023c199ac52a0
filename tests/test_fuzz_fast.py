"""Fast ISM against naive ISM on random graphs (``random_graphs.py``): seeds 0-199 here, 200-799 marked slow.

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


def _check(seed):
    model = onnxism.load(random_model(seed, LENGTH))
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


@pytest.mark.parametrize("seed", range(200))
def test_fast_equals_naive_on_random_graphs(seed):
    _check(seed)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(200, 800))
def test_fast_equals_naive_on_more_random_graphs(seed):
    _check(seed)
