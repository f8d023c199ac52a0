"""The gradient graph against independent references.

- Every op case: central finite differences of the forward model in float64 (onnx's reference evaluator, so no
  onnxruntime and no onnxism code computes the reference), for every input element, two seeds, batch 2. The
  gradient graph runs both in float64 (reference evaluator) and in float32 (onnxruntime).
- Every zoo model through both exporters: torch autograd and tf.GradientTape on the same weights.
"""

import math

import numpy as np
import pytest
from onnx.reference import ReferenceEvaluator
from onnx.reference.op_run import OpRun

import onnxism
from onnxism.errors import UnsupportedGraphError
from onnxism.gradients import build_gradient_model, seed_name
from onnxism.runtime.sessions import make_session

from architectures import ARCHITECTURES, KERAS_MODERN, MODERN, export_architecture, keras_modern
from architectures import LENGTH as ARCHITECTURE_LENGTH
from conftest import SMALL_ZOO
from gradient_cases import CASES, LENGTH, Case, to_float64

STEP = 1e-6

# Where onnx's reference evaluator cannot be the forward oracle, onnxruntime is: in float64 where it has the
# kernels, else in float32 with a larger step (and a looser tolerance). The reference evaluator's AveragePool with
# ceil_mode averages other windows than onnxruntime does, its GlobalMaxPool reduces the channels too, and it cannot
# pad by negative amounts or pool with padding and indices; it lacks grouped ConvTranspose, its Gelu rounds to
# float32, and its LpNormalization with p = 1 divides by another norm than sum |x|.
FORWARD_BY_ORT64 = {"pad_and_crop", "max_pool_overlapping_padded", "lp_normalization_p1_last"}
FORWARD_BY_ORT32 = {"average_pool_ceil", "global_max_pool", "conv_transpose_group", "gelu"}
GRAPH_NOT_IN_REFERENCE = {"conv_group", "conv_transpose_group", "max_pool_overlapping_padded", "average_pool_ceil",
                          "global_max_pool", "pad_and_crop", "gelu", "lp_normalization_p1_last"}


class Erf(OpRun):
    """The reference evaluator's Erf rounds to float32; this one keeps float64 (finite differences need it)."""

    op_domain = ""

    def _run(self, x):
        return (np.vectorize(math.erf, otypes=[x.dtype])(x),)


def _forward(name, proto):
    if name in FORWARD_BY_ORT32:
        session = make_session(proto.SerializeToString(), "cpu")
        return lambda x: session.run(None, {"x": x.astype(np.float32)})[0].astype(np.float64), 1e-2
    if name in FORWARD_BY_ORT64:
        session = make_session(to_float64(proto).SerializeToString(), "cpu")
        return lambda x: session.run(None, {"x": x})[0], STEP
    evaluator = ReferenceEvaluator(to_float64(proto), new_ops=[Erf])
    return lambda x: evaluator.run(None, {"x": x})[0], STEP


def _finite_differences(run, step, x, seeds):
    """d/dx of sum(seed * y) by central differences, every element of x: (S, N, L, 4)."""
    count = x.size
    eye = np.eye(count).reshape((count,) + x.shape)
    plus = (x[None] + step * eye).reshape((-1,) + x.shape[1:])
    minus = (x[None] - step * eye).reshape((-1,) + x.shape[1:])
    y_plus = run(plus).reshape((count,) + (x.shape[0], -1))
    y_minus = run(minus).reshape((count,) + (x.shape[0], -1))
    diff = (y_plus - y_minus) / (2 * step)  # (elements, N, out): only the perturbed sequence moves
    flat_seeds = seeds.reshape(len(seeds), -1)
    return np.einsum("enk,sk->se", diff, flat_seeds).reshape((len(seeds),) + x.shape)


@pytest.mark.parametrize("name", sorted(CASES))
def test_op_gradient_matches_finite_differences(name):
    proto = CASES[name]()
    model = onnxism.load(proto)
    graph = build_gradient_model(model, ["y"], LENGTH)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, LENGTH, 4))
    out_shape = model.output_shapes(LENGTH)["y"]
    seeds = rng.standard_normal((2,) + out_shape)
    run, step = _forward(name, proto)
    expected = _finite_differences(run, step, x, seeds)
    scale = max(1.0, np.abs(expected).max())

    if name not in GRAPH_NOT_IN_REFERENCE:
        evaluator = ReferenceEvaluator(to_float64(graph), new_ops=[Erf])
        exact = evaluator.run(["gradient"], {"x": x, seed_name("y"): seeds})[0]
        assert exact.shape == expected.shape
        np.testing.assert_allclose(exact, expected, atol=1e-6 * scale, rtol=0)

    session = make_session(graph.SerializeToString(), "cpu")
    fast = session.run(["gradient"], {"x": x.astype(np.float32), seed_name("y"): seeds.astype(np.float32)})[0]
    assert fast.shape == expected.shape
    tolerance = 2e-3 if name in FORWARD_BY_ORT32 else 2e-4
    np.testing.assert_allclose(fast, expected, atol=tolerance * scale, rtol=0)


def test_reduce_prod_gradient_where_entries_are_zero():
    """The product over the 4 channels where one entry of a position is 0 (1 - one-hot, the others random: the
    gradient there is the product of the other three, elsewhere 0) or two are (all 0), against central differences
    in float64, which are exact for a product; prod / x would give NaN there."""
    proto = CASES["reduce_prod_attr"]()
    model = onnxism.load(proto)
    graph = build_gradient_model(model, ["y"], LENGTH)
    rng = np.random.default_rng(4)
    onehot = np.eye(4)[rng.integers(0, 4, (2, LENGTH))]
    x = (1 - onehot) * rng.uniform(0.5, 1.5, onehot.shape)
    x[:, :3, 0] = 0  # two zeros at the first positions (one where the one-hot is channel 0)
    seeds = rng.standard_normal((2,) + model.output_shapes(LENGTH)["y"])
    run, step = _forward("reduce_prod_attr", proto)
    expected = _finite_differences(run, step, x, seeds)
    session = make_session(graph.SerializeToString(), "cpu")
    got = session.run(["gradient"], {"x": x.astype(np.float32), seed_name("y"): seeds.astype(np.float32)})[0]
    alone = (x == 0) & ((x == 0).sum(-1, keepdims=True) == 1)
    assert alone[:, :3].sum() < 6 and alone.sum() > LENGTH
    assert (expected[:, alone] != 0).all() and (expected[:, ~alone] == 0).all()  # only a lone 0 has a gradient
    np.testing.assert_allclose(got, expected, atol=2e-4 * np.abs(expected).max(), rtol=0)


@pytest.mark.parametrize("scales, align", [((1, 1, 2), "half_pixel"), ((1, 1.75, 1), "align_corners")])
def test_the_selection_probe_tells_a_mix_from_copies(scales, align):
    """The labelled runs behind every selection find that a linear Resize is not one (its own rule transposes its
    map instead): along the channels with aligned corners, the midpoints of labels 12 apart are whole numbers, so
    only the second, shuffled run tells."""
    from onnx import helper

    from onnxism.gradients.selection import _copied_entries

    node = helper.make_node("Resize", ["x", "", "scales"], ["y"], mode="linear",
                            coordinate_transformation_mode=align)
    params = [None, np.asarray(scales, np.float32)]
    assert _copied_entries(node, params, (1, 4, LENGTH), 0, 0, 18) is None
    nearest = helper.make_node("Resize", ["x", "", "scales"], ["y"], mode="nearest")
    assert _copied_entries(nearest, params, (1, 4, LENGTH), 0, 0, 18) is not None


def test_an_op_without_a_rule_is_named():
    c = Case(opset=17)
    x = c.ncl()
    proto = c.model(c.op("MeanVarianceNormalization", [x], axes=[1]))
    with pytest.raises(UnsupportedGraphError, match="no gradient rule for MeanVarianceNormalization"):
        build_gradient_model(onnxism.load(proto), ["y"], LENGTH)


@pytest.mark.parametrize("build, why", [
    (lambda c, x: c.op("Resize", [x, "", c.const(np.float32([1, 1.75, 2]))], mode="linear"), "more than one axis"),
    (lambda c, x: c.op("Slice", [x, c.ints([-1]), c.ints([-2 ** 63]), c.ints([0]), c.ints([-1])]),
     "rows of the batch mix"),
    (lambda c, x: c.op("Gather", [x, c.ints([0, 0])], axis=0), "no one axis"),
    (lambda c, x: c.op("Gather", [x, c.op("ArgMax", [x], axis=1)], axis=2), "not constants"),
    (lambda c, x: c.op("Einsum", [x, c.w(1, 4, LENGTH)], equation="ncl,ncl->nl"), "index 'n' is broadcast"),
    (lambda c, x: c.op("Softmax", [x], axis=0), "normalises across the batch"),
    (lambda c, x: c.op("LpPool", [x], kernel_shape=[3], strides=[2], ceil_mode=1), "ceil_mode window past the end"),
])
def test_what_is_no_selection_or_contraction_is_refused(build, why):
    """Reversing the batch mixes rows; a Gather of fixed rows leaves no batch axis; indices computed from the
    sequence change with it; an Einsum index of the batch on one operand and size 1 on another broadcasts; a
    Softmax over the batch mixes rows; a linear Resize of two axes has no one-axis map; an LpPool's ceil_mode window
    past the end pad is computed otherwise by onnxruntime than by onnx's reference."""
    c = Case(opset=18)
    proto = c.model(build(c, c.ncl()))
    with pytest.raises(UnsupportedGraphError, match=why):
        build_gradient_model(onnxism.load(proto), ["y"], LENGTH)


def test_selections_of_a_model_with_a_fixed_batch_map_the_whole_tensor():
    """With a fixed batch the rows cannot be told apart by probing two batch sizes, so the map spans the whole
    tensor: a reverse complement, reflect padding and a Gather with repeats, against finite differences (a
    constant of the batch's size, one scale per row, keeps loading from freeing the batch)."""
    c = Case(opset=18)
    x = c.ncl()
    flipped = c.op("Slice", [x, c.ints([-1, -1]), c.ints([-2 ** 63, -2 ** 63]), c.ints([1, 2]), c.ints([-1, -1])])
    padded = c.op("Pad", [c.op("Mul", [flipped, x]), c.ints([0, 0, 2, 0, 0, 3])], mode="reflect")
    proto = c.model(c.op("Mul", [c.op("Gather", [padded, c.ints([0, 4, 4, 16])], axis=2), c.w(2, 1, 1)]))
    proto.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 2
    model = onnxism.load(proto)
    assert model.fixed_batch == 2
    graph = build_gradient_model(model, ["y"], LENGTH)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, LENGTH, 4))
    seeds = rng.standard_normal((2,) + model.output_shapes(LENGTH)["y"])
    evaluator = ReferenceEvaluator(to_float64(proto))
    expected = _finite_differences(lambda v: np.concatenate([evaluator.run(None, {"x": v[k:k + 2]})[0]
                                                             for k in range(0, len(v), 2)]), STEP, x, seeds)
    session = make_session(graph.SerializeToString(), "cpu")
    got = session.run(["gradient"], {"x": x.astype(np.float32), seed_name("y"): seeds.astype(np.float32)})[0]
    np.testing.assert_allclose(got, expected, atol=2e-4 * max(1.0, np.abs(expected).max()), rtol=0)


def test_an_op_off_the_sequence_path_needs_no_rule():
    c = Case(opset=17)
    x = c.ncl()
    offset = c.op("CumSum", [c.w(4, LENGTH), c.const(np.int64(1))])  # weights only: no rule needed
    proto = c.model(c.op("Add", [x, offset]))
    graph = build_gradient_model(onnxism.load(proto), ["y"], LENGTH)
    session = make_session(graph.SerializeToString(), "cpu")
    x = np.zeros((1, LENGTH, 4), np.float32)
    seed = np.ones((1, 1, 4, LENGTH), np.float32)
    assert np.allclose(session.run(["gradient"], {"x": x, seed_name("y"): seed[0]})[0], 1.0)


def test_old_opsets_are_refused_clearly():
    proto = CASES["relu"]()
    proto.opset_import[0].version = 11
    with pytest.raises(UnsupportedGraphError, match="opset >= 13"):
        build_gradient_model(onnxism.load(proto), ["y"], LENGTH)


def _framework_gradient(framework, module, x, seeds, outputs):
    """d/dx of sum over outputs of <seed, output>, per seed row, computed in the source framework."""
    rows = []
    for k in range(len(next(iter(seeds.values())))):
        if framework == "torch":
            import torch

            xt = torch.tensor(np.swapaxes(x, 1, 2), requires_grad=True)
            ys = module(xt)
            ys = ys if isinstance(ys, (tuple, list)) else [ys]
            sum((y * torch.tensor(seeds[o][k])).sum() for y, o in zip(ys, outputs)).backward()
            rows.append(np.swapaxes(xt.grad.numpy(), 1, 2))
        else:
            import tensorflow as tf

            xt = tf.constant(x)
            with tf.GradientTape() as tape:
                tape.watch(xt)
                ys = module(xt)
                ys = ys if isinstance(ys, (tuple, list)) else [ys]
                total = sum(tf.reduce_sum(y * seeds[o][k]) for y, o in zip(ys, outputs))
            rows.append(tape.gradient(total, xt).numpy())
    return np.stack(rows)


def _check_against_framework(path, module, framework, x, seed_count, seed):
    """The gradient graph of every output of the exported model against the source framework's gradients."""
    model = onnxism.load(path)
    outputs = model.output_names
    graph = build_gradient_model(model, outputs, model.length)
    shapes = model.output_shapes(model.length)
    rng = np.random.default_rng(seed)
    seeds = {o: rng.standard_normal((seed_count,) + shapes[o]).astype(np.float32) for o in outputs}
    feeds = {model.input_name: model.to_model_layout(x), **{seed_name(o): seeds[o] for o in outputs}}
    got = make_session(graph.SerializeToString(), "cpu").run(["gradient"], feeds)[0]
    if model.layout == "NCL":
        got = np.swapaxes(got, 2, 3)
    expected = _framework_gradient(framework, module, x, seeds, outputs)
    np.testing.assert_allclose(got, expected, atol=1e-5 * max(1.0, np.abs(expected).max()), rtol=0)


@pytest.mark.parametrize("name", ARCHITECTURES + MODERN)
def test_architecture_gradient_matches_torch(name, tmp_path):
    """The fast-ISM architecture suite (flips, strided and padded slices, upsampling, gathers) and newer layers
    (attention through Gathers or Einsums, group and instance normalisation, CumSum, TopK, L2 normalisation,
    Mish, Softplus's threshold) against torch autograd."""
    path, module = export_architecture(name, tmp_path)
    x = np.random.default_rng(5).random((3, ARCHITECTURE_LENGTH, 4)).astype(np.float32)
    _check_against_framework(path, module, "torch", x, seed_count=2, seed=5)


@pytest.mark.parametrize("name", KERAS_MODERN)
def test_keras_layer_gradient_matches_tensorflow(name, tmp_path):
    """Multi-head attention (Einsums), GroupNormalization, UpSampling1D / Cropping1D / ZeroPadding1D and a
    reverse-complement average (tf2onnx's ReverseSequence, its lengths from shapes), all after Keras's GELU, and
    ChromBPNet's two BPNets (cropped residuals, logsumexp of the counts)."""
    from onnxism_converters import keras_to_onnx

    module = keras_modern(name)
    path = tmp_path / f"{name}.onnx"
    keras_to_onnx(module, path)
    x = np.random.default_rng(6).random((3, ARCHITECTURE_LENGTH, 4)).astype(np.float32)
    _check_against_framework(path, module, "keras", x, seed_count=2, seed=6)


@pytest.mark.parametrize("framework", ["torch", "keras"])
@pytest.mark.parametrize("name", SMALL_ZOO)
def test_zoo_gradient_matches_the_source_framework(zoo_export, name, framework):
    path, module = zoo_export(name, framework)
    length = onnxism.load(path).length
    x = np.random.default_rng(5).random((3, length, 4)).astype(np.float32)  # not one-hot: any input point
    _check_against_framework(path, module, framework, x, seed_count=2, seed=5)


@pytest.mark.parametrize("name", ["basset_small", "bpnet_small"])
def test_legacy_torch_export_gradient(zoo_export, name):
    path, module = zoo_export(name, "torch", dynamo=False)
    x = np.random.default_rng(6).random((2, onnxism.load(path).length, 4)).astype(np.float32)
    _check_against_framework(path, module, "torch", x, seed_count=1, seed=6)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["basset", "factorized_basset", "bpnet", "deepsea", "beluga"])
def test_full_size_zoo_gradient_matches_torch(zoo_export, name):
    path, module = zoo_export(name, "torch")
    rng = np.random.default_rng(8)
    x = np.eye(4, dtype=np.float32)[rng.integers(0, 4, (2, onnxism.load(path).length))]
    _check_against_framework(path, module, "torch", x, seed_count=1, seed=8)
