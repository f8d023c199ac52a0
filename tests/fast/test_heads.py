"""Linear global layers updated incrementally (dense and mean heads, narrow whole-length heads), and Conv
epilogues folded into the Conv: each formed where it should be, each equal to naive ISM."""


import numpy as np
import pytest

import onnxism
from onnxism.fast.plan import build_plan

from conftest import random_onehot
from fast_checks import assert_fast_equals_naive, assert_scorers_agree_on_random_values, head_kinds, narrow_convs
from onnx_builders import linear_heads_model, wrapped_residual_model


def test_linear_heads_are_updated_incrementally_and_exactly():
    """Gemm with alpha, beta and transB on a length-major Flatten, a second dense head on other windows (batches
    grouped by both window starts), and a ReduceSum over the length: each formed, each equal to naive."""
    model = linear_heads_model()
    assert head_kinds(model, 30) == (["DenseHead", "MeanHead"], 2)
    for batch_size in (7, 1000):
        assert_fast_equals_naive(model, random_onehot(3, 30, seed=1, n_fraction=0.05), batch_size=batch_size)
    assert_scorers_agree_on_random_values(model, 30)


@pytest.mark.parametrize("shape, perm", [((2, 5, 7), [0, 2, 1]), ((2, 7, 5), [0, 1, 2]), ((2, 3, 7, 2), [0, 2, 1, 3])])
def test_dense_weight_rows_moved_block_by_block(monkeypatch, shape, perm):
    """A dense head's weight rows (``heads._weight_rows``), moved a few output columns at a time, are the weight's
    rows of each position in the rows layout, for a transposed (Gemm transB) weight too."""
    from onnxism.fast import heads as linear

    monkeypatch.setattr(linear, "ROWS_BLOCK", 3)
    size, outputs = int(np.prod(shape[1:])), 8
    for weight in (np.arange(size * outputs, dtype=np.float32).reshape(size, outputs),
                   np.arange(size * outputs, dtype=np.float32).reshape(outputs, size).T):
        rows = linear._weight_rows(weight, shape, perm)
        grid = weight.reshape(tuple(shape[1:]) + (outputs,))
        for position in range(shape[perm[1]]):
            at = np.take(grid, position, axis=perm[1] - 1)  # the other axes in their order, then the outputs
            rest = [d - 1 for d in perm[2:]]  # rows layout: the other axes in perm's order
            order = [sorted(a for a in range(len(shape) - 1) if a != perm[1] - 1).index(d) for d in rest]
            np.testing.assert_array_equal(rows[position], np.transpose(at, order + [len(order)]).reshape(-1, outputs))


@pytest.mark.parametrize("head", ["conv_1_channel", "conv_transpose_2_channels", "conv_even_kernel_same",
                                  "conv_transpose_shorter"])
def test_narrow_whole_length_heads_equal_naive(head, tmp_path):
    """Profile-style heads (few output channels, 'same' length, on a trunk whose window is the whole length) run as
    a Gemm and a diagonal sum with exact ends; every position of the output, edges included, matches naive."""
    torch = pytest.importorskip("torch")
    from torch import nn

    from onnxism_converters import torch_to_onnx

    length = 40
    layers = {"conv_1_channel": nn.Conv1d(8, 1, 7, padding=3),
              "conv_transpose_2_channels": nn.ConvTranspose1d(8, 2, 9, padding=4),
              "conv_even_kernel_same": nn.Conv1d(8, 3, 6, padding="same"),
              "conv_transpose_shorter": nn.ConvTranspose1d(8, 1, 5, padding=4)}  # L - 4 long: not this form

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.trunk = nn.Conv1d(4, 8, 41, padding=20)  # its window is the whole length
            self.head = layers[head]

        def forward(self, x):
            out = self.head(torch.relu(self.trunk(x)))
            return out, out.sum(2)

    torch.manual_seed(3)
    module = Net().eval()
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    path = tmp_path / f"{head}.onnx"
    torch_to_onnx(module, torch.zeros(2, 4, length), path, output_names=["profile", "total"])
    expected = 0 if head == "conv_transpose_shorter" else 1
    assert narrow_convs(path, length) == expected
    seqs = random_onehot(2, length, seed=7, n_fraction=0.05)
    assert_fast_equals_naive(path, seqs, batch_size=50)
    assert_scorers_agree_on_random_values(path, length)


@pytest.mark.parametrize("length", [40, 12])
def test_conv_epilogues_fold_and_reshaped_tensors_share_tables(length):
    """tf2onnx's Conv2D wrapping with a separate bias Add and Relu (``wrapped_residual_model``): each Conv of the
    ISM graph carries the bias and feeds the Relu directly (one onnxruntime kernel), the Convs gather from the
    tables of the tensors their wrappers reshape (no table per wrapper), and where the last Conv's output is the
    whole length (L = 12) its input and the residual are one Gather, the Conv padding the sequence ends itself."""
    model = wrapped_residual_model(length=length)
    loaded = onnxism.load(model)
    plan, graphs = build_plan(loaded, length, loaded.output_names, deltas=True)
    graph = graphs.ism_model.graph
    convs = [node for node in graph.node if node.op_type == "Conv"]
    assert len(convs) == 3
    for conv in convs:
        assert len(conv.input) == 3
        assert [node.op_type for node in graph.node if conv.output[0] in node.input] == ["Relu"]
    assert not [node for node in graph.node if node.op_type == "Add" and any(i.startswith("b_") for i in node.input)]
    assert {"first_relu", "sum0"} <= set(plan.tables)
    assert not [name for name in plan.tables if name.endswith(("_4d", "_nchw", "_conv", "_nhwc", "_pre"))]
    last_input = [spec for spec in plan.gathers if spec.source == "sum0" and spec.kind == "table"]
    assert len(last_input) == (1 if length == 12 else 2)
    pads = next(list(attribute.ints) for attribute in convs[-1].attribute if attribute.name == "pads")
    assert pads == ([0, 4, 0, 4] if length == 12 else [0, 0, 0, 0])
    assert_fast_equals_naive(model, random_onehot(2, length, seed=3, n_fraction=0.05), batch_size=7)
    assert_scorers_agree_on_random_values(model, length)
