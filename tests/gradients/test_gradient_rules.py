"""The gradient rules as a table: every registered op has a float64 finite-difference case, and every rule is a
documented, named function of its family's module.

The cases themselves run in ``test_gradients.py`` (one graph per op form, ``gradient_cases.CASES``). The two
selections that only a model with a fixed batch can hold (their constant indices or lengths are per row) are checked
here: the gradient graph in float64 (onnx's reference evaluator) within 1e-6 and in float32 (onnxruntime) within
2e-4 of central differences in float64 (step 1e-6), both relative to the largest entry.
"""

import numpy as np
import pytest
from onnx.reference import ReferenceEvaluator

import onnxism
from onnxism.gradients import build_gradient_model, seed_name
from onnxism.gradients.rules import RULES, rule
from onnxism.runtime.sessions import make_session

from gradient_cases import CASES, LENGTH, Case, to_float64

STEP = 1e-6
BATCH = 2


def _gather_elements(c, x):
    """Each row its own positions, some twice, some never (a fixed batch: the indices have the batch's size)."""
    rng = np.random.default_rng(11)
    return c.op("GatherElements", [x, c.ints(rng.integers(0, LENGTH, (BATCH, 4, LENGTH)))], axis=2)


def _reverse_sequence(c, x):
    """tf's reverse of each row's first lengths[n] positions (a fixed batch: one length per row)."""
    time_major = c.op("Transpose", [x], perm=[2, 0, 1])
    reversed_ = c.op("ReverseSequence", [time_major, c.ints([LENGTH, 7])], batch_axis=1, time_axis=0)
    return c.op("Transpose", [reversed_], perm=[1, 2, 0])


FIXED_BATCH_CASES = {"gather_elements": _gather_elements, "reverse_sequence": _reverse_sequence}


def test_every_rule_has_a_finite_difference_case():
    """A rule added without a case in ``gradient_cases.CASES`` (or here) fails this, named with its family."""
    covered = set()
    for build in CASES.values():
        covered |= {node.op_type for node in build().graph.node}
    for build in FIXED_BATCH_CASES.values():
        c = Case(opset=18)
        build(c, c.ncl())
        covered |= {node.op_type for node in c.nodes}
    missing = sorted(f"{op_type} ({RULES[op_type].__module__})" for op_type in set(RULES) - covered)
    assert not missing, f"no finite-difference case for: {', '.join(missing)}"


def test_every_rule_is_a_documented_function_of_a_family_module():
    """One registration style: named functions (no lambdas), each with a one-line summary of what it computes."""
    for op_type, vjp in RULES.items():
        assert vjp.__name__ != "<lambda>", op_type
        assert vjp.__module__.startswith("onnxism.gradients."), (op_type, vjp.__module__)
        summary = (vjp.__doc__ or "").strip().splitlines()
        assert summary and summary[0].strip(), f"the rule of {op_type} has no docstring"


def test_an_op_registered_twice_is_an_error():
    before = dict(RULES)
    with pytest.raises(ValueError, match="two gradient rules for Relu: .*pointwise._relu and"):
        @rule("Relu")
        def _again(ctx, node, gouts):
            """Nothing."""
    assert RULES == before


def test_a_unary_rule_gives_nothing_without_a_cotangent_or_an_input_on_the_path():
    class Context:
        def __init__(self, active):
            self.active = active

        def needs(self, name):
            return name in self.active

    from onnx import helper

    node = helper.make_node("Relu", ["x"], ["y"])
    assert RULES["Relu"](Context({"x"}), node, [None]) == {}
    assert RULES["Relu"](Context(set()), node, ["g"]) == {}


@pytest.mark.parametrize("name", sorted(FIXED_BATCH_CASES))
def test_fixed_batch_selection_matches_finite_differences(name):
    c = Case(opset=18)
    proto = c.model(FIXED_BATCH_CASES[name](c, c.ncl()))
    proto.graph.input[0].type.tensor_type.shape.dim[0].dim_value = BATCH
    model = onnxism.load(proto)
    assert model.fixed_batch == BATCH
    graph = build_gradient_model(model, ["y"], LENGTH)
    rng = np.random.default_rng(12)
    x = rng.standard_normal((BATCH, LENGTH, 4))
    seeds = rng.standard_normal((2,) + model.output_shapes(LENGTH)["y"])
    evaluator = ReferenceEvaluator(to_float64(proto))
    expected = _central_differences(lambda rows: evaluator.run(None, {"x": rows})[0], x, seeds)
    scale = max(1.0, np.abs(expected).max())
    assert np.abs(expected).max() > 0.1  # the op passes the sequence on

    exact = ReferenceEvaluator(to_float64(graph)).run(["gradient"], {"x": x, seed_name("y"): seeds})[0]
    np.testing.assert_allclose(exact, expected, atol=1e-6 * scale, rtol=0)
    session = make_session(graph.SerializeToString(), "cpu")
    fast = session.run(["gradient"], {"x": x.astype(np.float32), seed_name("y"): seeds.astype(np.float32)})[0]
    np.testing.assert_allclose(fast, expected, atol=2e-4 * scale, rtol=0)


def _central_differences(run, x, seeds):
    """d/dx of sum over rows n of <seed, y[n]>, (S, *x.shape), for a model run at x's fixed batch."""
    flat = np.zeros(x.size)
    rows = []
    for k in range(x.size):
        flat[k] = STEP
        step = flat.reshape(x.shape)
        rows.append(((run(x + step) - run(x - step)) / (2 * STEP)).reshape(-1))
        flat[k] = 0
    jacobian = np.stack(rows)  # (x entries, y entries)
    per_row = np.tile(seeds.reshape(len(seeds), -1), (1, len(x)))  # one seed for every row, as the graph's
    return (per_row @ jacobian.T).reshape((len(seeds),) + x.shape)
