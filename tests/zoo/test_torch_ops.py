"""The translations of ``lgamma``, ``xlogy`` and ``amax`` given to both torch exporters (``torch_ops.py``), against
torch itself, and enformer-pytorch's attention with its gamma positional features through the public converter:
ONNX against torch, fast ISM against naive ISM against ISM run in torch."""

import numpy as np
import pytest

import onnxism

from conftest import random_onehot
from fast_checks import assert_fast_equals_naive
from lab_models import enformer_attention
from test_zoo import framework_ism

torch = pytest.importorskip("torch")
pytest.importorskip("onnxscript")

EXPORTERS = [pytest.param(True, id="dynamo"), pytest.param(False, id="legacy")]


class _Lambda(torch.nn.Module):
    def __init__(self, function):
        super().__init__()
        self.function = function

    def forward(self, x):
        return self.function(x)


class _Lambda2(_Lambda):
    def forward(self, x, y):
        return self.function(x, y)


def _run(proto, *arrays):
    import onnxruntime

    session = onnxruntime.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {i.name: a for i, a in zip(session.get_inputs(), arrays)})[0]


def _lgamma_points():
    """Log-spaced over [1e-3, 1e6] (Enformer's gamma concentrations, (2 x features per class)^2 at most, are inside),
    negative non-integers, and the poles 0, -1, -5."""
    points = np.concatenate([np.geomspace(1e-3, 1e6, 397), [-0.5, -1.5, -2.25, -7.7, 0.0, -1.0, -5.0]])
    return points.reshape(1, 4, -1)


@pytest.mark.parametrize("dynamo", EXPORTERS)
def test_lgamma_matches_torch_in_double_and_float(dynamo):
    from onnxism_converters import torch_to_onnx

    points = _lgamma_points()
    module = _Lambda(torch.lgamma)
    for dtype, tolerance in ((np.float64, 1e-13), (np.float32, 2e-6)):
        values = points.astype(dtype)
        proto = torch_to_onnx(module, torch.from_numpy(values), dynamo=dynamo, check=False)
        got = _run(proto, values).astype(np.float64)
        want = torch.lgamma(torch.from_numpy(values)).numpy().astype(np.float64)
        assert got.dtype == want.dtype
        poles = np.isinf(want)
        assert poles.sum() == 3 and np.all(got[poles] == np.inf)
        scale = np.maximum(1.0, np.abs(want[~poles]))
        assert np.max(np.abs(got[~poles] - want[~poles]) / scale) <= tolerance, dtype


@pytest.mark.parametrize("dynamo", EXPORTERS)
def test_xlogy_matches_torch_at_zeros_and_nan(dynamo):
    from onnxism_converters import torch_to_onnx

    x = np.array([[0.0, 0.0, 2.0, -1.5, 0.0, 3.0, 1.0, 0.5]], np.float32)
    y = np.array([[0.0, np.nan, 0.0, 2.0, 5.0, np.nan, np.inf, 1e-30]], np.float32)
    proto = torch_to_onnx(_Lambda2(torch.xlogy), torch.from_numpy(x), dynamo=dynamo, check=False,
                          extra_inputs={"y": torch.from_numpy(y)})
    np.testing.assert_allclose(_run(proto, x, y), torch.xlogy(torch.from_numpy(x), torch.from_numpy(y)).numpy(),
                               rtol=1e-6, equal_nan=True)


def test_amax_over_all_axes_exports():
    from onnxism_converters import torch_to_onnx

    x = np.random.default_rng(0).standard_normal((3, 4, 5)).astype(np.float32)
    proto = torch_to_onnx(_Lambda(lambda t: t / torch.amax(t)), torch.from_numpy(x), check=False,
                          dynamic_batch=False)
    np.testing.assert_array_equal(_run(proto, x), x / x.max())


@pytest.mark.parametrize("dynamo", EXPORTERS)
def test_enformer_attention_exports_and_fast_ism_is_exact(tmp_path, dynamo):
    """The positional features depend on the length only: exported for the example's length (the dynamo exporter
    folds them to constants), the model gives torch's predictions, and fast ISM naive ISM's."""
    from onnxism_converters import torch_to_onnx

    module, example = enformer_attention(length=24)
    path = tmp_path / "enformer.onnx"
    torch_to_onnx(module, example, path, dynamo=dynamo, output_names=["tracks"])
    seqs = random_onehot(3, 24, seed=5)
    with torch.no_grad():
        want = module(torch.from_numpy(seqs.transpose(0, 2, 1).copy())).numpy()
    got = onnxism.predict(path, seqs)["tracks"]
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-5 * max(1.0, np.abs(want).max()))
    assert np.abs(want).max() > 0.1  # the attention is live: its zero-initialised projection was moved
    naive, _ = assert_fast_equals_naive(path, seqs[:2])
    (want_ism,) = framework_ism("torch", module, seqs[:2])  # every mutant run by the framework itself
    (got_ism,) = naive.values()
    np.testing.assert_allclose(got_ism, want_ism.reshape(got_ism.shape), rtol=0,
                               atol=1e-4 * max(1.0, np.abs(want_ism).max()))
    # TISM through the attention against torch autograd: the gradient of the outputs' sum, minus its reference base
    onehot = torch.from_numpy(seqs[:2].transpose(0, 2, 1).copy()).requires_grad_(True)
    module(onehot).sum().backward()
    gradient = onehot.grad.numpy().transpose(0, 2, 1)
    want_tism = gradient - (gradient * seqs[:2]).sum(2, keepdims=True)
    (got_tism,) = onnxism.tism(path, seqs[:2], targets="sum").values()
    np.testing.assert_allclose(got_tism, want_tism, rtol=0, atol=1e-5 * max(1.0, np.abs(want_tism).max()))


def test_enformer_attention_refuses_any_length(tmp_path):
    """Its features take the length through Python (``math.log(seq_len)``): exported for any length it would be
    wrong at other lengths, and the converter's check at twice the length says so instead of writing it."""
    from onnxism_converters import torch_to_onnx

    module, example = enformer_attention(length=24)
    with pytest.raises(onnxism.ModelError, match=r"\(length 48\)"):
        torch_to_onnx(module, example, tmp_path / "any.onnx", dynamo=False, dynamic_length=True)
    assert not (tmp_path / "any.onnx").exists()
