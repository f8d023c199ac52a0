"""Fast ISM falls back to exact naive ISM on a declared UnsupportedGraphError only, decided in one place
(``methods/fallback.py``), with a notice saying why; any other exception inside the analysis or the builder is a
bug and fails loudly, without a notice and without a fallback."""

import warnings

import numpy as np
import pytest

import onnxism
from onnxism.errors import UnsupportedGraphError
from onnxism.passes.base import PassError

from conftest import random_onehot
from onnx_builders import conv_model, wrapped_residual_model


def _no_fallback_notice(caught):
    return not any("using exact naive ISM" in str(w.message) for w in caught)


def test_an_unexpected_exception_in_the_builder_fails_loudly(monkeypatch):
    """A bug in a lowering (here the native convolution, made to raise) propagates from ``ism``: no notice, no
    naive ISM computed in its place."""
    from onnxism.fast.build import lower

    def broken(*args, **kwargs):
        raise RuntimeError("a bug in the builder")

    monkeypatch.setattr(lower, "conv_native", broken)
    model = onnxism.load(wrapped_residual_model(length=40))
    with warnings.catch_warnings(record=True) as caught, pytest.raises(RuntimeError, match="a bug in the builder"):
        warnings.simplefilter("always")
        onnxism.ism(model, random_onehot(1, 40, seed=1))
    assert _no_fallback_notice(caught)


def test_an_unexpected_exception_in_a_key_lookup_is_not_a_fallback(monkeypatch):
    """KeyError and ValueError were once caught as 'cannot analyse': now they propagate like any bug."""
    from onnxism.fast import plan

    def broken(*args, **kwargs):
        raise KeyError("a tensor the analysis never saw")

    monkeypatch.setattr(plan, "analyse", broken)
    with pytest.raises(KeyError, match="a tensor the analysis never saw"):
        onnxism.ism(conv_model(), random_onehot(1, 20, seed=2))


def test_a_bug_in_a_normalising_pass_names_the_pass(monkeypatch):
    from onnxism.passes.normalise import fixpoint

    def broken(*args, **kwargs):
        raise IndexError("off by one")

    monkeypatch.setattr(fixpoint, "GraphIndex", broken)
    with pytest.raises(PassError, match="pass 'exporter_forms' failed: IndexError: off by one"):
        onnxism.ism(conv_model(), random_onehot(1, 20, seed=3))


def test_a_declared_refusal_falls_back_to_naive_with_a_notice(monkeypatch):
    from onnxism.fast import plan

    def refuse(*args, **kwargs):
        raise UnsupportedGraphError("a form fast ISM does not read")

    model = onnxism.load(conv_model())
    seqs = random_onehot(2, 20, seed=4)
    expected = onnxism.ism(model, seqs, method="naive")
    monkeypatch.setattr(plan, "analyse", refuse)
    with pytest.warns(onnxism.OnnxismWarning, match=r"\(a form fast ISM does not read\); using exact naive ISM"):
        got = onnxism.ism(onnxism.load(conv_model()), seqs)
    np.testing.assert_array_equal(got["y"], expected["y"])
