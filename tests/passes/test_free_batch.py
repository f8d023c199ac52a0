"""Models exported with a fixed batch size (torch.onnx.export without dynamic axes, the default of both of its
exporters) take any batch once loaded, where the rewrite computes the same rows (``onnxism/passes/free_batch.py``).

References: the PyTorch module's own predictions, and naive ISM for fast ISM.
"""

import warnings

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import onnxism

from cli_helpers import onnxism_cli
from conftest import random_onehot
from onnx_builders import conv_model


def _fixed_export(tmp_path, dynamo, batch):
    """(path, module, length): the small Basset of the zoo (its Flatten is a Reshape to [batch, features] with
    dynamo, a Flatten without), exported with no dynamic axis from an example of ``batch`` sequences."""
    torch = pytest.importorskip("torch")
    if dynamo:
        pytest.importorskip("onnxscript")
    from onnxism_converters.zoo.architectures import build_spec
    from onnxism_converters.zoo.to_torch import build_torch

    spec = build_spec("basset_small")
    module = build_torch(spec).eval()
    path = tmp_path / f"fixed_{dynamo}_{batch}.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.zeros(batch, 4, spec.length),), str(path), dynamo=dynamo,
                          opset_version=18 if dynamo else 17, input_names=["seqs"])
    assert onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim[0].dim_value == batch
    return path, module, spec.length


@pytest.mark.parametrize("dynamo, batch", [(True, 1), (False, 1), (True, 4)])
def test_a_fixed_batch_torch_export_takes_any_batch(tmp_path, dynamo, batch):
    import torch

    path, module, length = _fixed_export(tmp_path, dynamo, batch)
    model = onnxism.load(path)
    assert model.fixed_batch is None and model.exported_batch == batch
    seqs = random_onehot(7, length, seed=1)
    predicted = onnxism.predict(model, seqs, batch_size=5)
    with torch.no_grad():
        expected = module(torch.tensor(seqs.transpose(0, 2, 1))).numpy()
    (name,) = predicted
    np.testing.assert_allclose(predicted[name], expected, rtol=1e-5, atol=1e-5)
    naive = onnxism.ism(model, seqs[:2], method="naive")
    with warnings.catch_warnings():
        warnings.simplefilter("error", onnxism.OnnxismWarning)  # fast ISM runs: no fallback
        fast = onnxism.ism(model, seqs[:2], method="fast")
    np.testing.assert_allclose(fast[name], naive[name], rtol=0, atol=1e-4 * max(1.0, np.abs(naive[name]).max()))
    info = onnxism_cli("info", path)
    assert f"batch any (exported fixed at {batch}; freed on loading)" in info.stdout


def test_a_graph_that_mixes_the_batch_is_not_freed():
    """y adds the mean of the whole input, batch included: at the fixed batch of 1 that is each sequence's own, at
    any other it mixes sequences. The rewritten graph runs but its rows differ, so the batch stays fixed, and every
    method still gets each sequence's own scores."""
    proto = conv_model(batch=1)
    graph = proto.graph
    graph.output[0].name = "y"
    for node in graph.node:
        if node.output[0] == "y":
            node.output[0] = "per_sequence"
    graph.node.extend([helper.make_node("ReduceMean", ["x"], ["overall"], keepdims=0),
                       helper.make_node("Add", ["per_sequence", "overall"], ["y"])])
    model = onnxism.load(proto)
    assert model.fixed_batch == 1 and model.exported_batch is None
    seqs = random_onehot(3, 20, seed=2)
    one_by_one = [onnxism.predict(model, seqs[n:n + 1])["y"] for n in range(3)]
    np.testing.assert_allclose(onnxism.predict(model, seqs)["y"], np.concatenate(one_by_one), rtol=1e-6)
    with pytest.warns(onnxism.OnnxismWarning, match="fixed batch size \\(1\\) that loading could not free"):
        fast = onnxism.ism(model, seqs[:1], method="fast")
    np.testing.assert_allclose(fast["y"], onnxism.ism(model, seqs[:1], method="naive")["y"], atol=1e-6)


def test_a_reshape_to_the_batch_with_a_zero_entry_is_left_as_it_is():
    """A Reshape target with a zero entry under allowzero keeps its meaning only as written: not rewritten, so the
    check fails and the batch stays fixed."""
    from onnxism.passes.free_batch import _rewritten

    proto = conv_model(batch=1, layout="NCL")
    graph = proto.graph
    for node in graph.node:
        if node.output[0] == "y":
            node.output[0] = "m"
    graph.initializer.append(numpy_helper.from_array(np.array([1, 3, 0], np.int64), "target"))
    graph.node.extend([helper.make_node("Reshape", ["m", "target"], ["y"], allowzero=1)])
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 0]))
    rewritten = _rewritten(proto, 1)
    reshape = [node for node in rewritten.graph.node if node.op_type == "Reshape"][0]
    assert reshape.input[1] == "target" and reshape.attribute[0].i == 1


@pytest.mark.parametrize("dynamo", [True, False])
def test_a_fixed_batch_export_of_any_length_takes_any_batch(tmp_path, dynamo):
    """The small BPNet of the zoo exported with a fixed batch of 1 and a dynamic length: loading checks the freed
    batch at lengths of its own, and the model then runs batched at another length, as the module does."""
    torch = pytest.importorskip("torch")
    if dynamo:
        pytest.importorskip("onnxscript")
    from onnxism_converters.zoo.architectures import build_spec
    from onnxism_converters.zoo.to_torch import build_torch

    spec = build_spec("bpnet_small")
    module = build_torch(spec).eval()
    path = tmp_path / "any_length.onnx"
    example = (torch.zeros(1, 4, spec.length),)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            length = torch.export.Dim("length", min=16, max=100000)
            torch.onnx.export(module, example, str(path), dynamo=True, external_data=False, opset_version=18,
                              input_names=["seqs"], dynamic_shapes=({2: length},))
        else:
            torch.onnx.export(module, example, str(path), dynamo=False, opset_version=17, input_names=["seqs"],
                              dynamic_axes={"seqs": {2: "L"}})
    model = onnxism.load(path)
    assert model.length is None and model.fixed_batch is None and model.exported_batch == 1
    seqs = random_onehot(5, 77, seed=3)
    predicted = onnxism.predict(model, seqs, batch_size=5)
    with torch.no_grad():
        expected = module(torch.tensor(seqs.transpose(0, 2, 1)))
    for name, want in zip(model.output_names, expected):
        np.testing.assert_allclose(predicted[name], want.numpy(), rtol=1e-5, atol=1e-5)
    naive = onnxism.ism(model, seqs[:2], method="naive")
    with warnings.catch_warnings():
        warnings.simplefilter("error", onnxism.OnnxismWarning)  # fast ISM runs: no fallback
        fast = onnxism.ism(model, seqs[:2], method="fast")
    for name in model.output_names:
        np.testing.assert_allclose(fast[name], naive[name], rtol=0,
                                   atol=1e-4 * max(1.0, np.abs(naive[name]).max()))
