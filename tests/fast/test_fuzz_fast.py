"""Fast ISM against naive ISM on random graphs (``random_graphs.py``): seeds 0-199 here, 200-799 marked slow; and
seeds 0-49 (50-299 slow) in the op forms of opsets 11, 13 and 17; and the compiled standalone graph and ISM of weight
targets on a window of positions, seeds 0-99 (100-799 slow); and the graphs that also draw the exporters' idioms,
seeds 0-49 (50-299 slow; compiled and targets 0-24, 25-299 slow).

Each seed is a different stack of convolutions (any kernel, dilation, stride, asymmetric or auto pads, depthwise),
pools (overlapping, padded, ceil_mode), pads in three modes, crops, upsampling, transposed convolutions, residual
joins, channel concats, per-position layers and heads at several depths. Fast ISM must equal naive ISM (the
project's bound: 1e-4 of the largest output) and must not fall back to naive ISM as a whole.
"""

import warnings

import numpy as np
import pytest

import onnxism
from onnxism.fast.standalone import build_standalone_fast_model
from onnxism.runtime.sessions import make_session

from conftest import random_onehot, slow_from
from random_graphs import random_model

LENGTH = 40


def _check(seed, opset=18, idioms=False):
    model = onnxism.load(random_model(seed, LENGTH, opset=opset, idioms=idioms))
    seqs = random_onehot(2, LENGTH, seed=seed, n_fraction=0.05)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fast = onnxism.ism(model, seqs, method="fast")
    fallbacks = [str(w.message) for w in caught if "naive ISM" in str(w.message)]
    assert not fallbacks, fallbacks
    if idioms:  # every idiom has its rule: nothing is computed in full but by nature (after a global op)
        assert not [str(w.message) for w in caught], seed
    naive = onnxism.ism(model, seqs, method="naive")
    predictions = onnxism.predict(model, seqs)
    for name in naive:
        bound = 1e-4 * max(1.0, float(np.abs(predictions[name]).max()))
        np.testing.assert_allclose(fast[name], naive[name], rtol=0, atol=bound, err_msg=f"seed {seed}, {name}")
    return model, seqs, predictions


@pytest.mark.parametrize("seed", slow_from(200, 800))
def test_fast_equals_naive_on_random_graphs(seed):
    _check(seed)


@pytest.mark.parametrize("seed", slow_from(50, 300))
def test_fast_equals_naive_on_random_graphs_with_idioms(seed):
    """Graphs that also draw the exporters' idioms (``random_graphs.IDIOMS``: Einsums, expand_as, F.normalize,
    repeat and repeat_interleave, LpPool, constants broadcast along the batch): fast equals naive, with no notice
    at all."""
    _check(seed, idioms=True)


def _check_older(seed, opset):
    """The seed's network in the op forms of ``opset``: the same predictions as at opset 18 (so the older forms are
    really exercised on the same network), and fast equal to naive."""
    model, seqs, predictions = _check(seed, opset)
    assert [entry.version for entry in model.proto.opset_import if entry.domain in ("", "ai.onnx")] == [opset]
    current = onnxism.predict(onnxism.load(random_model(seed, LENGTH)), seqs)
    for name, value in current.items():
        bound = 1e-5 * max(1.0, float(np.abs(value).max()))
        np.testing.assert_allclose(predictions[name], value, rtol=0, atol=bound)


@pytest.mark.parametrize("seed", slow_from(50, 300))
@pytest.mark.parametrize("opset", [11, 13, 17])
def test_fast_equals_naive_at_older_opsets(opset, seed):
    _check_older(seed, opset)


def _check_compiled_and_targets(seed, idioms=False):
    """On the same graphs: the compiled standalone graph (every gather index computed in the graph) at 7 random
    positions, and fast ISM of 2 random weight targets per output on a random window of positions, against naive ISM
    (the targets applied to it in float64). A target's float32 rounding scales with its terms, so its bound is 1e-4
    of the largest sum of |weight| * |output| (at least 1)."""
    model = onnxism.load(random_model(seed, LENGTH, idioms=idioms))
    rng = np.random.default_rng(1000 + seed)
    seqs = random_onehot(2, LENGTH, seed=seed, n_fraction=0.05)
    naive = onnxism.ism(model, seqs, method="naive")
    predictions = onnxism.predict(model, seqs)

    session = make_session(build_standalone_fast_model(model, model.output_names, LENGTH).SerializeToString())
    positions = np.sort(rng.choice(LENGTH, 7, replace=False)).astype(np.int64)
    compiled = session.run([f"{name}__ism" for name in model.output_names],
                           {model.input_name: model.to_model_layout(seqs), "positions": positions})
    for name, value in zip(model.output_names, compiled):
        bound = 1e-4 * max(1.0, float(np.abs(predictions[name]).max()))
        np.testing.assert_allclose(value, naive[name][:, positions], rtol=0, atol=bound,
                                   err_msg=f"seed {seed}, {name} (compiled)")

    start = int(rng.integers(0, LENGTH - 10))
    stop = int(rng.integers(start + 1, LENGTH + 1))
    shapes = model.output_shapes(LENGTH)
    weights = {name: rng.standard_normal((2,) + shapes[name]).astype(np.float32) for name in model.output_names}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # notices are the first test's concern
        fast = onnxism.ism(model, seqs, method="fast", positions=(start, stop), targets=weights)
    for name, w in weights.items():
        flat = w.reshape(2, -1).astype(np.float64)
        expected = naive[name][:, start:stop].reshape(2, stop - start, 4, -1).astype(np.float64) @ flat.T
        terms = np.abs(predictions[name].reshape(2, -1)).astype(np.float64) @ np.abs(flat).T
        np.testing.assert_allclose(fast[name], expected, rtol=0, atol=1e-4 * max(1.0, float(terms.max())),
                                   err_msg=f"seed {seed}, {name} (targets)")


@pytest.mark.parametrize("seed", slow_from(100, 800))
def test_compiled_graph_and_targets_on_random_graphs(seed):
    _check_compiled_and_targets(seed)


@pytest.mark.parametrize("seed", slow_from(25, 300))
def test_compiled_graph_and_targets_on_random_graphs_with_idioms(seed):
    _check_compiled_and_targets(seed, idioms=True)
