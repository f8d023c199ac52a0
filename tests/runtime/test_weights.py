"""Large weights beside their graphs (``onnxism/runtime/weights.py``): fast ISM's two graphs declare them as
placeholders and their sessions get the arrays, so that a large Dense layer is not serialised again and again.
Checked against sessions of the self-contained model (bit for bit) and against naive ISM, with every weight sent
beside its graph (the size threshold lowered) and with the default threshold on a model whose Dense weight passes
it."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import onnxism
from onnxism.fast.plan import build_plan
from onnxism.fast.standalone import build_standalone_fast_model
from onnxism.runtime import weights
from onnxism.runtime.sessions import make_session

from conftest import random_onehot
from onnx_builders import linear_heads_model


@pytest.fixture
def every_weight_beside(monkeypatch):
    """Every floating-point initializer counts as large."""
    monkeypatch.setattr(weights, "EXTERNAL_BYTES", 0)


def _arrays(proto):
    return {init.name: numpy_helper.to_array(init) for init in proto.graph.initializer}


def _holds_data(tensor):
    return bool(tensor.raw_data or tensor.float_data or tensor.int64_data or tensor.double_data)


def test_a_copy_with_placeholders_runs_the_same_and_attaches_back(every_weight_beside):
    proto = linear_heads_model()
    arrays, taken = _arrays(proto), {}
    copy = weights.copy_model(proto, arrays, taken)
    floats = {init.name for init in proto.graph.initializer if init.data_type == TensorProto.FLOAT}
    assert set(taken) == set(weights.placeholders(copy)) == floats == {"w", "b", "w1", "b1", "w2"}
    assert not any(_holds_data(init) for init in copy.graph.initializer if init.name in floats)
    assert all(_holds_data(init) for init in copy.graph.initializer if init.name not in floats)  # index tensors
    assert all(_holds_data(init) for init in proto.graph.initializer)  # the original is left whole
    assert [node.name for node in copy.graph.node] == [node.name for node in proto.graph.node]
    assert copy.graph.output == proto.graph.output and copy.opset_import == proto.opset_import

    seqs = random_onehot(3, 30, seed=1)
    expected = make_session(proto.SerializeToString()).run(None, {"x": seqs})
    beside = make_session(copy.SerializeToString(), weights=weights.session_weights(copy, taken))
    for want, got in zip(expected, beside.run(None, {"x": seqs})):
        np.testing.assert_array_equal(got, want)

    whole = weights.attach(copy, taken)
    assert not weights.placeholders(whole)
    assert {name: value.tobytes() for name, value in _arrays(whole).items()} == {
        name: value.tobytes() for name, value in arrays.items()}
    for want, got in zip(expected, make_session(whole.SerializeToString()).run(None, {"x": seqs})):
        np.testing.assert_array_equal(got, want)


def test_a_placeholder_without_its_array_is_an_error(every_weight_beside):
    taken = {}
    copy = weights.copy_model(linear_heads_model(), _arrays(linear_heads_model()), taken)
    del taken["w1"]
    with pytest.raises(ValueError, match="no array for the graph's weight 'w1'"):
        weights.session_weights(copy, taken)


def test_only_large_floating_point_weights_leave_the_graph():
    assert weights.detachable(np.zeros(weights.EXTERNAL_BYTES // 4, np.float32))
    assert not weights.detachable(np.zeros(weights.EXTERNAL_BYTES // 4 - 1, np.float32))
    assert not weights.detachable(np.zeros(weights.EXTERNAL_BYTES, np.int64))


def test_fast_ism_with_every_weight_beside_its_graphs(every_weight_beside):
    """Both graphs of the executor (whose ISM graph takes the dense heads' weight windows as inputs, bound by the
    runner) and the compiled standalone graph."""
    model = onnxism.load(linear_heads_model())
    plan, graphs = build_plan(model, 30, model.output_names, deltas=True)
    assert {"w", "w1", "w2"} <= set(weights.placeholders(graphs.reference_model))
    assert not any(name.startswith("ism__") for name in weights.placeholders(graphs.ism_model))  # no weight rows
    assert {head.window_input for head in plan.dense_heads} <= {value.name for value in graphs.ism_model.graph.input}
    seqs = random_onehot(3, 30, seed=4, n_fraction=0.1)
    naive = onnxism.ism(model, seqs, method="naive")
    fast = onnxism.ism(model, seqs, method="fast", batch_size=7)
    for name in model.output_names:
        np.testing.assert_allclose(fast[name], naive[name], rtol=0, atol=1e-4 * max(1.0, np.abs(naive[name]).max()))
    positions = np.array([0, 13, 29], np.int64)
    standalone = build_standalone_fast_model(model, model.output_names, 30)
    assert not weights.placeholders(standalone)
    got = make_session(standalone.SerializeToString()).run([f"{name}__ism" for name in model.output_names],
                                                          {"x": seqs, "positions": positions})
    for name, value in zip(model.output_names, got):
        want = naive[name][:, positions]
        np.testing.assert_allclose(value, want, rtol=0, atol=1e-4 * max(1.0, np.abs(want).max()))


def _large_dense_model(length=64, channels=32, outputs=300, seed=0):
    """Conv (4 -> channels, k=5, same) -> Relu -> Flatten -> Gemm (transB) to ``outputs``: a Dense weight of
    channels * length * outputs floats (2.3 MiB by default), past the default threshold."""
    rng = np.random.default_rng(seed)
    inits = [numpy_helper.from_array((0.3 * rng.standard_normal(shape)).astype(np.float32), name)
             for name, shape in (("w", (channels, 4, 5)), ("b", (channels,)),
                                 ("dense", (outputs, channels * length)), ("bias", (outputs,)))]
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[2, 2]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("Flatten", ["r"], ["f"]),
             helper.make_node("Gemm", ["f", "dense", "bias"], ["y"], transB=1)]
    graph = helper.make_graph(nodes, "large_dense", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                                  ["N", 4, length])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", outputs])], inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    onnx.checker.check_model(proto)
    return proto


def test_a_large_dense_weight_is_never_serialised_with_the_graphs():
    """At the default threshold: the reference graph declares the 2.3 MiB Dense weight and does not carry it, the
    ISM graph takes the batch's weight rows as an input (the plan keeps them, for the runner to bind), the plan
    lets the graphs' arrays go once both sessions hold them, and fast equals naive."""
    model = onnxism.load(_large_dense_model())
    plan, graphs = build_plan(model, 64, model.output_names, deltas=True)
    assert weights.placeholders(graphs.reference_model) == ["dense"]
    assert weights.placeholders(graphs.ism_model) == []
    (head,) = plan.dense_heads
    assert head.weight_rows.shape == (64, 32, 300)
    assert len(graphs.reference_model.SerializeToString()) < 100_000
    assert len(graphs.ism_model.SerializeToString()) < 100_000
    seqs = random_onehot(2, 64, seed=6)
    fast = onnxism.ism(model, seqs, method="fast")
    naive = onnxism.ism(model, seqs, method="naive")
    np.testing.assert_allclose(fast["y"], naive["y"], rtol=0, atol=1e-4 * max(1.0, np.abs(naive["y"]).max()))
    (compiled,) = model.cache.fast_plans.values()  # the plan and its sessions, not the graphs or their arrays
    assert sorted(vars(compiled)) == ["ism", "plan", "reference", "weight_rows"]
    assert not any(isinstance(value, onnx.ModelProto) for value in vars(compiled.plan).values())



def test_tism_with_every_weight_beside_its_gradient_graph(monkeypatch):
    """The gradient graph's session gets its weights beside the graph: the same numbers, bit for bit, as the
    self-contained graph's (whose TISM ``test_tism.py`` checks against autograd and finite differences)."""
    seqs = random_onehot(3, 30, seed=8)
    inline = onnxism.tism(onnxism.load(linear_heads_model()), seqs)
    monkeypatch.setattr(weights, "EXTERNAL_BYTES", 0)
    copy, beside_it = weights.detached_copy(linear_heads_model())
    assert set(beside_it) == set(weights.placeholders(copy)) == {"w", "b", "w1", "b1", "w2"}
    beside = onnxism.tism(onnxism.load(linear_heads_model()), seqs)
    assert set(beside) == set(inline)
    for name in inline:
        np.testing.assert_array_equal(beside[name], inline[name])


def test_the_models_own_session_with_every_weight_beside_it(monkeypatch):
    """``predict`` and naive ISM run the model's own session, made from a copy of it with its weights beside:
    the same numbers, bit for bit, as from the whole model, which stays whole."""
    seqs = random_onehot(2, 30, seed=9, n_fraction=0.05)
    whole = onnxism.load(linear_heads_model())
    expected = onnxism.predict(whole, seqs), onnxism.ism(whole, seqs, method="naive")
    monkeypatch.setattr(weights, "EXTERNAL_BYTES", 0)
    beside = onnxism.load(linear_heads_model())
    got = onnxism.predict(beside, seqs), onnxism.ism(beside, seqs, method="naive")
    for want, have in zip(expected, got):
        assert set(have) == set(want)
        for name in want:
            np.testing.assert_array_equal(have[name], want[name])
    assert all(_holds_data(init) for init in beside.proto.graph.initializer)
