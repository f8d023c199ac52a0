"""Models that stack the sequences with their reverse complement along the batch, run their layers once on the
stack and take the parts apart (``onnxism/passes/batch_unroll.py``): unrolled on loading into one copy of the layers
per part, so that fast ISM windows them and TISM follows each sequence's rows.

References: ISM computed in PyTorch on every mutant, and torch.autograd's gradient, on the same module.
"""

import warnings

import numpy as np
import onnx
import pytest

import onnxism

from cli_helpers import onnxism_cli
from conftest import assert_ism_matches, keras_tism, random_onehot
from onnx_builders import conv_model

LENGTH = 26


def _module(form):
    """A conv trunk run on cat([x, rc(x)], 0); the profile averages the forward part with the flipped reverse part,
    the counts average the two parts; the parts are taken apart by slicing (y[:n], y[n:]), by ``chunk(2)``, or
    ("view") the profile by slicing and the counts by ``view(2, n, 2).mean(0)``, or ("view_profile") both by a
    view and a mean (the profile's parts unflipped), or ("view_map") the counts so and the outer product of the
    profile with itself, (2n, L, L), by ``view(2, n, L, L).mean(0)``."""
    import torch
    from torch import nn

    class StackedReverseComplement(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv1d(4, 8, 5, padding=2)
            self.b = nn.Conv1d(8, 8, 3, padding=2, dilation=2)
            self.profile = nn.Conv1d(8, 1, 7, padding=3)
            self.counts = nn.Linear(8, 2)

        def trunk(self, x):
            h = torch.relu(self.a(x))
            h = h + torch.relu(self.b(h))
            return self.profile(h)[:, 0], self.counts(h.mean(2))

        def forward(self, x):
            n = x.shape[0]
            profile, counts = self.trunk(torch.cat([x, x.flip(1, 2)], 0))
            if form == "chunk":
                forward_profile, reverse_profile = profile.chunk(2)
                forward_counts, reverse_counts = counts.chunk(2)
            else:
                forward_profile, reverse_profile = profile[:n], profile[n:]
                forward_counts, reverse_counts = counts[:n], counts[n:]
            if form == "view":
                return (forward_profile + reverse_profile.flip(-1)) / 2, counts.view(2, n, 2).mean(0)
            if form == "view_profile":  # a view whose last dimension is the length
                return profile.view(2, n, -1).mean(0), counts.view(2, n, 2).mean(0)
            if form == "view_map":  # a view of two dims that follow the length
                pairs = profile[:, :, None] * profile[:, None, :]
                return pairs.view(2, n, *pairs.shape[1:]).mean(0), counts.view(2, n, 2).mean(0)
            return (forward_profile + reverse_profile.flip(-1)) / 2, (forward_counts + reverse_counts) / 2

    return StackedReverseComplement


def _perturbed(form, seed, scale=0.1):
    """The module of ``form`` in eval mode, its parameters drawn with ``seed`` and moved by ``scale`` normal noise."""
    import torch

    torch.manual_seed(seed)
    module = _module(form)().eval()
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.add_(scale * torch.randn_like(parameter))
    return module


@pytest.fixture(scope="module", params=[("slices", True), ("slices", False), ("chunk", True), ("view", True),
                                        ("view", False)],
                ids=lambda p: f"{p[0]}-{'dynamo' if p[1] else 'legacy'}")
def stacked_model(request, tmp_path_factory):
    torch = pytest.importorskip("torch")
    from onnxism_converters import torch_to_onnx

    kind, dynamo = request.param
    module = _perturbed(kind, seed=3)
    path = tmp_path_factory.mktemp("stacked") / f"{kind}.onnx"
    torch_to_onnx(module, torch.zeros(2, 4, LENGTH), path, dynamo=dynamo, output_names=["profile", "counts"])
    return path, module


def _torch_ism(module, seqs):
    """(N, L, 4, *shape) per output: every mutant through the module, in one batch per sequence."""
    import torch

    results = None
    length = seqs.shape[1]
    for n, seq in enumerate(seqs):
        mutants = np.repeat(seq[None], length * 4, 0).reshape(length, 4, length, 4)
        for i in range(length):
            mutants[i, :, i] = np.eye(4, dtype=np.float32)
        batch = np.concatenate([seq[None], mutants.reshape(-1, length, 4)])
        with torch.no_grad():
            values = [value.numpy() for value in module(torch.tensor(batch.transpose(0, 2, 1)))]
        if results is None:
            results = [np.zeros((len(seqs), length, 4) + value.shape[1:], np.float32) for value in values]
        for result, value in zip(results, values):
            result[n] = (value[1:] - value[0]).reshape((length, 4) + value.shape[1:])
    return dict(zip(["profile", "counts"], results))


def _torch_tism(module, seqs, name):
    """TISM of the sum of output ``name``, from torch.autograd on the module."""
    import torch

    onehot = torch.tensor(seqs.transpose(0, 2, 1), requires_grad=True)
    output = dict(zip(["profile", "counts"], module(onehot)))[name]
    gradient, = torch.autograd.grad(output.sum(), onehot)
    gradient = gradient.numpy().transpose(0, 2, 1)
    return gradient - (gradient * seqs).sum(2, keepdims=True)


def test_the_stack_is_unrolled_on_loading(stacked_model):
    model = onnxism.load(stacked_model[0])
    assert model.unrolled == 1
    stacks = [node for node in model.proto.graph.node if node.op_type == "Concat" and "seqs" in node.input]
    assert stacks == []
    assert sum(node.op_type == "Conv" for node in model.proto.graph.node) == 6  # 3 convolutions, once per part
    read = {name for node in model.proto.graph.node for name in node.input} | set(model.output_names)
    assert all(name in read for node in model.proto.graph.node for name in node.output)  # no dead nodes left


@pytest.mark.parametrize("method", ["naive", "fast"])
def test_ism_of_a_stacked_model_equals_ism_in_pytorch(stacked_model, method):
    """Fast ISM windows both copies (no notice: nothing computed in full, no fallback)."""
    path, module = stacked_model
    seqs = random_onehot(2, LENGTH, seed=5, n_fraction=0.1)
    assert_ism_matches(path, seqs, _torch_ism(module, seqs), methods=[method], batch_size=13)


def test_tism_of_a_stacked_model_equals_autograd(stacked_model):
    path, module = stacked_model
    seqs = random_onehot(3, LENGTH, seed=8)
    for name in ("profile", "counts"):
        want = _torch_tism(module, seqs, name)
        got = onnxism.tism(path, seqs, targets={name: "sum"}, outputs=[name])[name]
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * max(1.0, np.abs(want).max()))


def test_the_compiled_graph_of_a_stacked_model_equals_naive(stacked_model):
    """``compile --method fast`` writes the unrolled model's fast ISM, run here by plain onnxruntime."""
    from onnxism.fast.standalone import build_standalone_fast_model
    from onnxism.runtime.sessions import make_session

    model = onnxism.load(stacked_model[0])
    seqs = random_onehot(2, LENGTH, seed=12)
    positions = np.array([0, 5, LENGTH - 1], np.int64)
    session = make_session(build_standalone_fast_model(model, model.output_names, LENGTH).SerializeToString())
    got = session.run([f"{name}__ism" for name in model.output_names],
                      {model.input_name: model.to_model_layout(seqs), "positions": positions})
    expected = onnxism.ism(model, seqs, method="naive")
    for name, value in zip(model.output_names, got):
        want = expected[name][:, positions]
        np.testing.assert_allclose(value, want, rtol=0, atol=1e-5 * max(1.0, np.abs(want).max()))


def test_info_says_the_stack_is_unrolled(stacked_model):
    result = onnxism_cli("info", stacked_model[0], "--methods")
    assert result.returncode == 0, result.stderr
    assert "unrolled" in result.stdout and "TISM:     supported" in result.stdout
    assert "computed on the full length: nothing global" in result.stdout


def _export_any_length(module, path, dynamo):
    """``module`` exported with a dynamic batch and a dynamic length."""
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            dims = {0: torch.export.Dim("batch", min=1), 2: torch.export.Dim("length", min=16, max=100000)}
            torch.onnx.export(module, (torch.zeros(2, 4, LENGTH),), str(path), dynamo=True, external_data=False,
                              opset_version=18, input_names=["seqs"], output_names=["profile", "counts"],
                              dynamic_shapes=(dims,), verbose=False)
        else:
            torch.onnx.export(module, (torch.zeros(2, 4, LENGTH),), str(path), dynamo=False, opset_version=18,
                              input_names=["seqs"], output_names=["profile", "counts"],
                              dynamic_axes={"seqs": {0: "n", 2: "L"}})
    return path


@pytest.fixture(scope="module", params=[("slices", False), ("chunk", True), ("view", False),
                                        ("view_profile", False), ("view_profile", True)],
                ids=lambda p: f"{p[0]}-{'dynamo' if p[1] else 'legacy'}")
def any_length_stacked_model(request, tmp_path_factory):
    """(path, module): a stacked model exported with a dynamic length, which loading checks at the lengths of
    ``sequence_model.CHECK_LENGTHS``."""
    pytest.importorskip("torch")
    kind, dynamo = request.param
    module = _perturbed(kind, seed=4)
    return _export_any_length(module, tmp_path_factory.mktemp("any_length") / f"{kind}.onnx", dynamo), module


def test_a_stacked_model_of_any_length_is_unrolled(any_length_stacked_model):
    """Unrolled on loading (checked at lengths of its own), then scored at a length it was not checked at: naive
    and fast ISM against ISM in PyTorch (fast with no notice: each copy windowed), TISM against autograd."""
    path, module = any_length_stacked_model
    model = onnxism.load(path)
    assert model.length is None and model.unrolled == 1
    seqs = random_onehot(2, 37, seed=6, n_fraction=0.1)
    assert_ism_matches(model, seqs, _torch_ism(module, seqs), batch_size=16)
    for name in ("profile", "counts"):
        expected = _torch_tism(module, seqs, name)
        got = onnxism.tism(model, seqs, targets={name: "sum"}, outputs=[name])[name]
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5 * max(1.0, np.abs(expected).max()))


def test_a_stack_taken_apart_by_a_view_of_two_dims_of_the_length_is_kept_at_any_length(tmp_path):
    """``pairs.view(2, n, L, L).mean(0)``: each part's shape (n, L, L) has two dims that follow the length, which a
    Reshape target of constants cannot say (the unroll writes -1 for one at most), so a model of any length keeps
    its stack (computed exactly, in full, with a notice); exported with a fixed length, the same module is
    unrolled."""
    torch = pytest.importorskip("torch")
    from onnxism_converters import torch_to_onnx

    module = _perturbed("view_map", seed=5)
    model = onnxism.load(_export_any_length(module, tmp_path / "any.onnx", dynamo=False))
    assert model.length is None and model.unrolled == 0
    seqs = random_onehot(2, 30, seed=3)
    want = _torch_ism(module, seqs)
    with pytest.warns(onnxism.OnnxismWarning, match="Concat"):
        got = onnxism.ism(model, seqs, method="fast")
    for name, expected in want.items():
        np.testing.assert_allclose(got[name], expected, rtol=0, atol=1e-5 * max(1.0, np.abs(expected).max()))
    fixed = tmp_path / "fixed.onnx"
    torch_to_onnx(module, torch.zeros(2, 4, LENGTH), fixed, dynamo=False, output_names=["profile", "counts"])
    assert onnxism.load(fixed).unrolled == 1


@pytest.fixture(scope="module", params=[LENGTH, None], ids=["fixed-length", "any-length"])
def keras_stacked_model(request, tmp_path_factory):
    """(path, keras model): a layer that runs a Keras trunk (Conv1D, GlobalAveragePooling1D, Dense) on
    concatenate([x, flip(x, (1, 2))], 0) and averages y[:n] and y[n:], through tf2onnx (ReverseSequence flips,
    Slices with bounds from the batch's shape); with an input of any length, its dilated Conv1D is written as
    space-to-batch too (``space_to_batch.py``)."""
    keras = pytest.importorskip("keras")
    from onnxism_converters import keras_to_onnx

    class StackedReverseComplement(keras.layers.Layer):
        def __init__(self, trunk, **kwargs):
            super().__init__(**kwargs)
            self.trunk = trunk

        def call(self, x):
            n = keras.ops.shape(x)[0]
            y = self.trunk(keras.ops.concatenate([x, keras.ops.flip(x, axis=(1, 2))], axis=0))
            return (y[:n] + y[n:]) / 2

    keras.utils.set_random_seed(6)
    trunk = keras.Sequential([keras.layers.Conv1D(8, 5, padding="same", activation="relu"),
                              keras.layers.Conv1D(8, 3, padding="same", dilation_rate=2, activation="relu"),
                              keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(2)])
    inputs = keras.Input((request.param, 4))
    model = keras.Model(inputs, StackedReverseComplement(trunk)(inputs))
    path = tmp_path_factory.mktemp("keras_stacked") / "stacked.onnx"
    keras_to_onnx(model, path)
    return path, model


@pytest.mark.parametrize("method", ["naive", "fast"])
def test_ism_and_tism_of_a_keras_stacked_model(keras_stacked_model, method):
    """ISM against every mutant through the Keras model; TISM against tf.GradientTape."""
    path, keras_model = keras_stacked_model
    model = onnxism.load(path)
    assert model.unrolled == 1 and model.dilated == (model.length is None)
    seqs = random_onehot(2, LENGTH, seed=4)
    mutants = np.repeat(seqs[:, None], LENGTH * 4, 1).reshape(2, LENGTH, 4, LENGTH, 4)
    for i in range(LENGTH):
        mutants[:, i, :, i] = np.eye(4, dtype=np.float32)
    values = keras_model.predict(mutants.reshape(-1, LENGTH, 4), verbose=0, batch_size=256)
    reference = keras_model.predict(seqs, verbose=0)
    want = values.reshape(2, LENGTH, 4, -1) - reference[:, None, None]
    assert_ism_matches(model, seqs, {model.output_names[0]: want}, methods=[method])
    want = keras_tism(keras_model, seqs)
    got = onnxism.tism(model, seqs, targets="sum")[model.output_names[0]]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * max(1.0, np.abs(want).max()))


def _stacked_graph(mixing):
    """x (N, 4, 12) -> Concat([x, 2 x], 0) -> Conv -> [a batch-mixing ReduceMean over axis 0 added, if ``mixing``]
    -> Slice rows [0, N) -> y."""
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(0)
    nodes = [helper.make_node("Mul", ["x", "two"], ["doubled"]),
             helper.make_node("Concat", ["x", "doubled"], ["stack"], axis=0),
             helper.make_node("Conv", ["stack", "w"], ["conv"], pads=[1, 1]),
             helper.make_node("Shape", ["x"], ["shape"]),
             helper.make_node("Slice", ["shape", "zero", "one"], ["n"])]
    top = "conv"
    if mixing:
        nodes += [helper.make_node("ReduceMean", ["conv"], ["mean"], axes=[0], keepdims=1),
                  helper.make_node("Add", ["conv", "mean"], ["mixed"])]
        top = "mixed"
    nodes.append(helper.make_node("Slice", [top, "zero", "n", "zero"], ["y"]))
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 4, 12])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["N", 3, 12])],
        [numpy_helper.from_array(rng.normal(size=(3, 4, 3)).astype(np.float32), "w"),
         numpy_helper.from_array(np.array(2, np.float32), "two"),
         numpy_helper.from_array(np.array([0], np.int64), "zero"),
         numpy_helper.from_array(np.array([1], np.int64), "one")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10)


@pytest.mark.parametrize("mixing", [False, True])
def test_a_stack_whose_parts_mix_is_kept(mixing):
    """A ReduceMean over the batch inside the stack mixes the parts: unrolling it would change the outputs, so the
    check keeps the model as it is (computed exactly, the stack in full); without it the stack is unrolled."""
    model = onnxism.load(_stacked_graph(mixing))
    assert model.unrolled == (0 if mixing else 1)
    seqs = random_onehot(3, 12, seed=2)
    naive = onnxism.ism(model, seqs, method="naive")["y"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fast = onnxism.ism(model, seqs, method="fast")["y"]
    assert bool(caught) == mixing
    np.testing.assert_allclose(fast, naive, rtol=0, atol=1e-5 * max(1.0, np.abs(naive).max()))


def test_a_stack_taken_apart_otherwise_is_left_and_the_other_unrolled():
    """Beside a stack taken apart by a Slice, one taken apart by a Reshape to (2, N, ...), a Transpose and a mean
    over the parts (not a form the unroll reads): the first is unrolled, the second stays (fast ISM computes it in
    full, with a notice), and both outputs equal naive ISM."""
    from onnx import helper, numpy_helper

    model = _stacked_graph(False)
    graph = model.graph
    graph.node.extend([
        helper.make_node("Concat", ["x", "doubled"], ["stack2"], axis=0),
        helper.make_node("Conv", ["stack2", "w"], ["conv2"], pads=[1, 1]),
        helper.make_node("Reshape", ["conv2", "parts"], ["split2"]),
        helper.make_node("Transpose", ["split2"], ["moved"], perm=[1, 0, 2, 3]),
        helper.make_node("ReduceMean", ["moved"], ["z"], axes=[1], keepdims=0)])
    graph.initializer.append(numpy_helper.from_array(np.array([2, -1, 3, 12], np.int64), "parts"))
    graph.output.append(helper.make_tensor_value_info("z", onnx.TensorProto.FLOAT, ["N", 3, 12]))
    loaded = onnxism.load(model)
    assert loaded.unrolled == 1
    assert sum(node.op_type == "Concat" for node in loaded.proto.graph.node) == 1
    seqs = random_onehot(2, 12, seed=9)
    naive = onnxism.ism(loaded, seqs, method="naive")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fast = onnxism.ism(loaded, seqs, method="fast")
    assert any("Concat" in str(warning.message) for warning in caught)
    for name in ("y", "z"):
        np.testing.assert_allclose(fast[name], naive[name], rtol=0, atol=1e-5 * max(1.0, np.abs(naive[name]).max()))


def test_a_model_without_a_stack_is_left_alone():
    model = onnxism.load(conv_model())
    assert model.unrolled == 0
