"""The pass protocol (``passes/base.py``): a pipeline threads the model and its context through its passes in
order, a declared refusal passes through with the pass named on it, and any other failure is a PassError naming
the pass, the original chained."""

import dataclasses

import pytest
from onnx import TensorProto, helper

from onnxism.errors import ModelError, UnsupportedGraphError
from onnxism.passes.base import Pass, PassError, PassResult, run_pipeline, unchanged
from onnxism.passes.pipeline import LOAD, LoadContext


def _model():
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 10, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10, 4])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def test_passes_run_in_order_and_their_facts_reach_the_passes_after_them():
    seen = []

    def first(proto, ctx):
        seen.append(("first", ctx.dilated))
        return PassResult(proto, False, "", {"dilated": 3})

    def second(proto, ctx):
        seen.append(("second", ctx.dilated))
        return unchanged(proto)

    model = _model()
    run = run_pipeline((Pass("first", first), Pass("second", second)), model, LoadContext())
    assert seen == [("first", 0), ("second", 3)] and run.ctx.dilated == 3 and run.proto is model
    assert [name for name, _ in run.results] == ["first", "second"] and not run.changed("first")


def test_a_declared_refusal_passes_through_with_the_pass_named():
    def refuse(proto, ctx):
        raise UnsupportedGraphError("no such form", node_name="n", op_type="Op")

    with pytest.raises(UnsupportedGraphError, match="no such form") as caught:
        run_pipeline((Pass("refuser", refuse),), _model(), LoadContext())
    assert caught.value.pass_name == "refuser" and caught.value.op_type == "Op"


def test_a_bug_in_a_pass_is_a_pass_error_naming_the_pass():
    def broken(proto, ctx):
        return {}["missing"]

    with pytest.raises(PassError, match=r"pass 'broken' failed: KeyError: 'missing'") as caught:
        run_pipeline((Pass("broken", broken),), _model(), LoadContext())
    assert isinstance(caught.value.__cause__, KeyError) and not isinstance(caught.value, ModelError)


def test_load_runs_the_load_pipeline_and_a_failing_pass_names_itself(monkeypatch):
    """``onnxism.load`` runs LOAD's passes; a bug in one (here the batch-unroll pass made to fail) is not turned into
    a refusal of the model or skipped: it surfaces as a PassError naming the pass."""
    import onnxism
    from onnxism.passes import pipeline

    def broken(proto, ctx):
        raise RuntimeError("boom")

    steps = tuple(dataclasses.replace(step, run=broken) if step.name == "batch_unroll" else step for step in LOAD)
    monkeypatch.setattr(pipeline, "LOAD", steps)
    from onnxism.model import loading

    monkeypatch.setattr(loading, "LOAD", steps)
    with pytest.raises(PassError, match="pass 'batch_unroll' failed: RuntimeError: boom"):
        onnxism.load(_model())
