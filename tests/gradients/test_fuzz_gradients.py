"""The gradient graph against float64 finite differences on the random graphs of ``random_graphs.py``.

Oracle: onnx's reference evaluator runs each graph in float64; directional central differences (3 random directions,
step 1e-6) of a random-weight target of the last output are compared with the gradient graph's (onnxruntime, float32)
inner product with the same directions; at opset 18 (800 seeds), in the forms of opsets 13 and 17 (200 each), and
on the graphs that also draw the exporters' idioms (300).
The evaluator computes some ops otherwise than onnxruntime (pools with pads, ceil_mode) or not at all (grouped
transposed convolutions): a graph whose float64 forward pass does not match onnxruntime's to 1e-5 has no trustworthy
oracle and is left out; every block of seeds must keep at least a third.
Every graph must have a gradient graph (no op refused).
"""

import numpy as np
import pytest
from onnx.reference import ReferenceEvaluator

import onnxism
from onnxism.gradients import build_gradient_model, seed_name
from onnxism.runtime.sessions import make_session

from conftest import slow_from
from gradient_cases import to_float64
from random_graphs import random_model

LENGTH = 40
BLOCK = 25


def _check(seed, opset=18, idioms=False):
    """'checked' or 'no oracle' for one seed; raises where the gradient is wrong."""
    proto = random_model(seed, LENGTH, opset=opset, idioms=idioms)
    model = onnxism.load(proto)
    name = model.output_names[-1]
    graph = build_gradient_model(model, [name], LENGTH)
    rng = np.random.default_rng(seed)
    x = rng.random((2, LENGTH, 4))
    x_model = x if model.layout == "NLC" else x.transpose(0, 2, 1)
    try:
        evaluator = ReferenceEvaluator(to_float64(proto))
        forward = evaluator.run([name], {model.input_name: x_model})[0]
    except Exception:  # noqa: BLE001 - an op the reference evaluator cannot run
        return "no oracle"
    expected = model.run(x.astype(np.float32), [name])[0]
    if forward.shape != expected.shape or np.abs(forward - expected).max() > 1e-5 * max(1.0, np.abs(expected).max()):
        return "no oracle"
    seeds = rng.standard_normal((1,) + expected.shape[1:])
    session = make_session(graph.SerializeToString(), "cpu")
    gradient = session.run(["gradient"], {model.input_name: x_model.astype(np.float32),
                                          seed_name(name): seeds.astype(np.float32)})[0][0].astype(np.float64)
    step = 1e-6
    for _ in range(3):
        direction = rng.standard_normal(x_model.shape)
        change = (evaluator.run([name], {model.input_name: x_model + step * direction})[0]
                  - evaluator.run([name], {model.input_name: x_model - step * direction})[0]) / (2 * step)
        numeric = change.reshape(2, -1) @ seeds.reshape(-1)
        analytic = (gradient * direction).reshape(2, -1).sum(1)
        np.testing.assert_allclose(analytic, numeric, rtol=0, atol=2e-4 * max(1.0, np.abs(numeric).max()),
                                   err_msg=f"seed {seed}")
    return "checked"


def _check_block(block, opset=18, idioms=False):
    outcomes = [_check(seed, opset, idioms) for seed in range(block * BLOCK, (block + 1) * BLOCK)]
    assert outcomes.count("checked") >= BLOCK // 3, outcomes


@pytest.mark.parametrize("block", slow_from(4, 32))
def test_gradient_equals_finite_differences_on_random_graphs(block):
    _check_block(block)


@pytest.mark.parametrize("block", slow_from(1, 8))
@pytest.mark.parametrize("opset", [13, 17])
def test_gradient_equals_finite_differences_at_older_opsets(opset, block):
    """The same networks in the forms older exporters write (``random_graphs.py``: reductions' and Squeeze's axes as
    attributes, LayerNormalization decomposed). The reference evaluator's GlobalMaxPool and BatchNormalization
    before opset 15 differ from onnxruntime, so fewer of these graphs have an oracle."""
    _check_block(block, opset)


@pytest.mark.parametrize("block", slow_from(1, 12))
def test_gradient_equals_finite_differences_on_random_graphs_with_idioms(block):
    """The graphs that also draw the exporters' idioms (``random_graphs.IDIOMS``: Einsums, expand_as,
    F.normalize, repeat and repeat_interleave, LpPool)."""
    _check_block(block, idioms=True)
