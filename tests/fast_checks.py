"""What the fast-ISM tests check again and again: fast against naive ISM (one-hot and random values), and what
the plan formed (heads, delta convolutions, notices, narrow convolutions)."""

import warnings

import numpy as np

import onnxism
from onnxism.fast.executor import FastISM, compiled_plan
from onnxism.fast.plan import build_plan
from onnxism.fast.windows import Reason
from onnxism.graph.probe import probe_shapes
from onnxism.methods.naive import NaiveISM

from conftest import random_onehot


def assert_fast_equals_naive(model, seqs, **kwargs):
    naive = onnxism.ism(model, seqs, method="naive", **kwargs)
    fast = onnxism.ism(model, seqs, method="fast", **kwargs)
    assert naive.keys() == fast.keys()
    for name in naive:
        scale = max(1.0, float(np.abs(naive[name]).max()))
        assert fast[name].shape == naive[name].shape
        np.testing.assert_allclose(fast[name], naive[name], rtol=0, atol=1e-4 * scale, err_msg=name)
    return naive, fast


def assert_scorers_agree_on_random_values(model, length, seed=0):
    """Random continuous inputs (not one-hot), straight through the scorers: the graphs agree there too."""
    model = onnxism.load(model)
    values = np.random.default_rng(seed).random((2, length, 4)).astype(np.float32)
    shapes = model.output_shapes(length)
    args = (model.output_names, shapes, (0, length))
    _, naive = NaiveISM(model, *args, batch_size=64).score(values)
    _, fast = FastISM(model, compiled_plan(model, length, model.output_names), *args, batch_size=64).score(values)
    for name in naive:
        scale = max(1.0, float(np.abs(naive[name]).max()))
        np.testing.assert_allclose(fast[name], naive[name], rtol=0, atol=1e-4 * scale, err_msg=name)


def head_kinds(model, length):
    """The kinds of linear global layers fast ISM updates incrementally in ``model`` (``fast/heads.py``)."""
    model = onnxism.load(model)
    plan = build_plan(model, length, model.output_names).plan
    return sorted({type(head).__name__ for head in plan.heads.values()}), len(plan.dense_heads)


def _after_conv(op_type, *inputs, opset=18, **attrs):
    """x (N, 12, 4) -> Conv(k=3, same) -> ``op_type`` (node "under_test") -> Conv(k=3, same) -> Flatten: a model
    around one op."""
    from gradient_cases import Case

    c = Case(opset)
    conv = c.op("Conv", [c.ncl(), c.w(3, 4, 3), c.w(3)], pads=[1, 1])
    node = c.op(op_type, [conv, *(c.ints(v) if isinstance(v, list) else v for v in inputs)], **attrs)
    c.nodes[-1].name = "under_test"
    return c.model(c.op("Flatten", [c.op("Conv", [node, c.w(2, 3, 3), c.w(2)], pads=[1, 1])], axis=1))


def _assert_windowed_without_notice(module, length, path, dynamo, seed):
    """Export ``module`` (its input (N, 4, ``length``)) to ``path`` with the dynamo or the legacy exporter: fast ISM
    computes nothing in full for want of a rule and equals naive without any notice. Returns the loaded model."""
    import torch

    from onnxism_converters import torch_to_onnx

    torch_to_onnx(module.eval(), torch.zeros(2, 4, length), path, dynamo=dynamo)
    model = onnxism.load(path)
    assert build_plan(model, length, model.output_names).plan.analysis.split_notices()[1] == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert_fast_equals_naive(model, random_onehot(2, length, seed=seed, n_fraction=0.05))
    return model


def delta_conv_modes(model, length):
    """The col2im mode of each delta convolution fast ISM builds for ``model``, in graph order."""
    model = onnxism.load(model)
    plan = build_plan(model, length, model.output_names).plan
    return ["column" if spec.column is not None else "tap" for spec in plan.gathers
            if spec.kind == "col2im" and spec.taps > 1]  # one tap: a strided ConvTranspose's window, not a delta


def ops_without_a_local_rule(model, length):
    """The nodes on a windowed path that fast ISM computes in full although they are not global by nature, those
    that join a tensor computed in full (a tensor none of this suite's models computes in full), and the Reshapes
    computed in full that are not a Flatten to (batch, features) (global by nature only then)."""
    model = onnxism.load(model)
    plan = build_plan(model, length, model.output_names).plan
    shape = [2, length, 4] if model.layout == "NLC" else [2, 4, length]
    shapes = probe_shapes(model.proto, model.input_name, shape)
    flattens = {node.name for node in model.proto.graph.node
                if node.name and len(shapes[node.output[0]]) == 2 and shapes[node.output[0]][0] == 2}
    return [notice for notice in plan.analysis.notices if not notice.by_nature
            or notice.reason == Reason.JOINS_FULL or (notice.op == "Reshape" and notice.node not in flattens)]


def assert_keras_model_windowed(path, heads, seed):
    """The Keras model exported to ``path``: nothing on its windowed paths computed in full, the linear ``heads``
    formed, and fast equal to naive on one-hot (with N) and on random values."""
    assert ops_without_a_local_rule(path, 40) == []
    assert head_kinds(path, 40)[0] == heads
    assert_fast_equals_naive(path, random_onehot(2, 40, seed=seed, n_fraction=0.05), batch_size=50)
    assert_scorers_agree_on_random_values(path, 40)


def narrow_convs(model, length):
    """How many Convs/ConvTransposes fast ISM builds in the narrow whole-length form
    (``build/convs.narrow_whole_conv``)."""
    model = onnxism.load(model)
    nodes = build_plan(model, length, model.output_names).graphs.ism_model.graph.node
    return sum(node.op_type == "Concat" and node.output[0].endswith("narrow_conv") for node in nodes)
