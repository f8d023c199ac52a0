"""``score_rows``: chosen substitutions of a chunk (the rows variants are scored by) give the entries of full ISM,
for fast ISM and naive ISM, with and without targets, whatever the rows' order and repetitions."""

import numpy as np
import pytest

import onnxism
from onnxism.methods.ism import plan_ism

from cli_helpers import MODEL
from conftest import random_onehot


def _rows(rng, count, length, size):
    seq = rng.integers(0, count, size)
    pos = rng.integers(0, length, size)
    base = rng.integers(0, 4, size)
    return seq, pos, base


@pytest.mark.parametrize("method", ["fast", "naive"])
@pytest.mark.parametrize("targets", [None, "sum"])
def test_rows_are_the_entries_of_full_ism(method, targets):
    seqs = random_onehot(5, 200, seed=4, n_fraction=0.02)
    model = onnxism.load(MODEL)
    full = onnxism.ism(model, seqs, method="naive", targets=targets)["logit"]
    reference = onnxism.predict(model, seqs)["logit"]
    scorer = plan_ism(model, seqs, method=method, targets=targets, batch_size=7).make_scorer()
    seq, pos, base = _rows(np.random.default_rng(2), len(seqs), 200, 300)
    got_reference, deltas = scorer.score_rows(seqs, seq, pos, base)
    expected = full[seq, pos, base]
    observed = seqs[seq, pos, base] == 1  # the reference base: ISM's entry is exactly 0, a row's delta ~0
    np.testing.assert_allclose(deltas["logit"][~observed], expected[~observed], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(deltas["logit"][observed], 0, atol=1e-5)
    want = reference if targets is None else reference.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(got_reference["logit"], want.reshape(got_reference["logit"].shape), rtol=1e-5,
                               atol=1e-6)


def test_rows_through_dense_heads_in_any_order():
    from onnx_builders import linear_heads_model

    model = onnxism.load(linear_heads_model())
    seqs = random_onehot(4, 30, seed=6)
    full = onnxism.ism(model, seqs, method="naive")
    scorer = plan_ism(model, seqs, batch_size=5).make_scorer()
    seq, pos, base = _rows(np.random.default_rng(9), 4, 30, 200)
    _, deltas = scorer.score_rows(seqs, seq, pos, base)
    for name, value in full.items():
        expected = np.where((seqs[seq, pos, base] == 1).reshape((-1,) + (1,) * (value.ndim - 3)), 0,
                            value[seq, pos, base])
        np.testing.assert_allclose(deltas[name], expected, rtol=1e-5, atol=1e-5)
