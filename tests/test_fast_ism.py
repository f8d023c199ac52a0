"""Fast ISM equals naive ISM: the zoo through both export paths, and an architecture suite broader than fastISM's.

Tolerance (stated): max |fast - naive| <= 1e-4 * max(1, max |output|), every position, edges included.
"""

import warnings

import numpy as np
import pytest

import onnxism
from onnxism.fast.windows import Notice, Reason
from onnxism.fast.executor import FastISM, compiled_plan
from onnxism.fast.plan import build_plan
from onnxism.graph.probe import probe_shapes
from onnxism.methods.naive import NaiveISM
from onnxism.runtime.weights import attach
from architectures import ARCHITECTURES, KERAS_MODERN, LENGTH, MODERN, export_architecture, keras_modern
from conftest import SMALL_ZOO, random_onehot
from onnx_builders import conv_model, linear_heads_model, resize_model, wrapped_residual_model


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


@pytest.mark.parametrize("layout", ["NLC", "NCL"])
def test_fast_on_a_handmade_graph(layout):
    assert_fast_equals_naive(conv_model(layout=layout), random_onehot(3, 20, seed=1, n_fraction=0.1))


def test_fast_on_the_bundled_example(example_model, example_seqs):
    naive, fast = assert_fast_equals_naive(example_model, example_seqs[:3])
    assert np.abs(naive["logit"]).max() > 1  # a trained model with real effects


@pytest.mark.parametrize("name", SMALL_ZOO)
@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_fast_equals_naive_on_the_zoo(zoo_export, name, framework):
    path, _ = zoo_export(name, framework)
    length = onnxism.load(path).length
    assert_fast_equals_naive(path, random_onehot(2, length, seed=21, n_fraction=0.02), batch_size=97)
    assert_scorers_agree_on_random_values(path, length)


def head_kinds(model, length):
    """The kinds of linear global layers fast ISM updates incrementally in ``model`` (``fast/linear.py``)."""
    model = onnxism.load(model)
    plan = build_plan(model, length, model.output_names).plan
    return sorted({type(head).__name__ for head in plan.heads.values()}), len(plan.dense_heads)


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


def test_fast_chooses_its_default_batch_from_its_widest_window():
    """On the CPU, fast's default batch holds about 2 ** 21 values of its widest windowed tensor (a power of two in
    [16, 256]); a given batch size is kept, and naive keeps the length-scaled default."""
    from onnxism.methods.ism import plan_ism

    def batch(model, length, method="fast", batch_size=None):
        seqs = random_onehot(1, length, seed=0)
        return plan_ism(model, seqs, method=method, batch_size=batch_size).make_scorer().batch_size

    assert batch(conv_model(length=20), 20) == 256  # 5-column windows of 3 channels
    wide = wrapped_residual_model(length=40, channels=800)  # windows up to 15 columns x 800 channels
    assert batch(wide, 40) == 128  # 2 ** 21 / 12000 = 175: 2 ** 7.45
    assert batch(conv_model(length=20), 20, batch_size=7) == 7
    assert batch(conv_model(length=20), 20, method="naive") == 256  # 131072 / L, clipped to [8, 256]


def test_fast_and_tism_hold_no_session_of_the_whole_model():
    """Fast ISM and TISM run graphs of their own: the output-shape probe lets its session go, so no extra copy of
    the weights stays beside theirs; predict and naive keep theirs for reuse."""
    model = onnxism.load(conv_model())
    seqs = random_onehot(2, 20, seed=1)
    onnxism.ism(model, seqs, method="fast")
    onnxism.tism(model, seqs)
    assert model.cache.sessions == {}
    onnxism.predict(model, seqs)
    assert len(model.cache.sessions) == 1
    onnxism.ism(model, seqs, positions=(3, 9), method="naive", workers=1)
    assert len(model.cache.sessions) == 1


def test_fast_on_a_length_agnostic_graph():
    assert_fast_equals_naive(conv_model(length="L"), random_onehot(2, 31, seed=2))


def test_the_ism_graph_returns_deltas_from_its_sequences_tables():
    """The executor's ISM graph, run by plain onnxruntime: it takes its batch's sequence's rows of the reference
    tables (here sequence 2 of 3) and each dense head's weight rows of the batch's window, and returns output
    changes."""
    import onnxruntime as ort

    from onnxism.fast.indices import gather_indices

    model = onnxism.load(linear_heads_model())
    seqs = random_onehot(3, 30, seed=5)
    plan, graphs = build_plan(model, 30, model.output_names, deltas=True)
    assert len(plan.dense_heads) == 2
    reference = ort.InferenceSession(attach(graphs.reference_model, graphs.weights).SerializeToString(),
                                     providers=["CPUExecutionProvider"])
    ism = ort.InferenceSession(attach(graphs.ism_model, graphs.weights).SerializeToString(),
                               providers=["CPUExecutionProvider"])
    tables = reference.run([f"{name}__ref" for name in plan.tables], {model.input_name: seqs})
    naive = onnxism.ism(model, seqs, method="naive")
    position = 17
    alternatives = [b for b in range(4) if seqs[2, position, b] == 0]
    pos = np.full(len(alternatives), position)
    feeds = {f"{name}__ref": table[2 * plan.table_rows[name]:3 * plan.table_rows[name]]
             for name, table in zip(plan.tables, tables)}
    feeds[plan.input_window] = np.eye(4, dtype=np.float32)[alternatives][:, None, :]
    for spec in plan.gathers:
        feeds[spec.index_name] = gather_indices(spec, plan.analysis.windows.get(spec.source), np.zeros_like(pos),
                                                pos, 1)
    for head in plan.dense_heads:
        window = plan.analysis.windows[head.source]
        start = window.start[position]
        feeds[head.window_input] = head.weight_rows[start:start + window.width]
    for name, delta in zip(model.output_names, ism.run(plan.ism_outputs, feeds)):
        np.testing.assert_allclose(delta, naive[name][2, position, alternatives], rtol=0, atol=1e-4, err_msg=name)


def test_the_runner_binds_only_rows_inside_the_chunks_tables():
    """The runner binds a batch's table rows by pointer: rows past the chunk's tables are refused before the run,
    rather than read from whatever memory follows (sequences [1, 3) of a chunk of 2)."""
    from onnxism.fast.runner import BoundRunner

    model = onnxism.load(linear_heads_model())
    compiled = compiled_plan(model, 30, model.output_names, "cpu")
    plan = compiled.plan
    runner = BoundRunner(plan, compiled.reference, compiled.ism, compiled.weight_rows, model.input_name, "cpu")
    runner.start_chunk(random_onehot(2, 30, seed=1))
    with pytest.raises(IndexError, match=r"rows \[30, 90\) of '.*__ref' are outside its 60 rows"):
        runner.batch(1, 3, {}, [0] * len(plan.dense_heads))


def test_fixed_batch_graph_falls_back_to_naive_with_a_notice():
    with pytest.warns(onnxism.OnnxismWarning, match="using exact naive ISM"):
        assert_fast_equals_naive(conv_model(batch=2, baked_batch=True), random_onehot(2, 20, seed=3))


def _after_conv(op_type, *inputs, opset=18, **attrs):
    """x (N, 12, 4) -> Conv(k=3, same) -> ``op_type`` (node "under_test") -> Conv(k=3, same) -> Flatten: a model
    around one op."""
    from gradient_cases import Case

    c = Case(opset)
    conv = c.op("Conv", [c.ncl(), c.w(3, 4, 3), c.w(3)], pads=[1, 1])
    node = c.op(op_type, [conv, *(c.ints(v) if isinstance(v, list) else v for v in inputs)], **attrs)
    c.nodes[-1].name = "under_test"
    return c.model(c.op("Flatten", [c.op("Conv", [node, c.w(2, 3, 3), c.w(2)], pads=[1, 1])], axis=1))


def test_op_without_a_local_rule_is_computed_in_full_with_a_notice():
    model = _after_conv("MeanVarianceNormalization", axes=[1])  # point-wise along the length, but no rule
    with pytest.warns(onnxism.OnnxismWarning, match="no local rule for MeanVarianceNormalization"):
        assert_fast_equals_naive(model, random_onehot(2, 12, seed=4))


@pytest.mark.parametrize("op_type, axis, by_nature", [
    ("TopK", 2, True), ("TopK", -1, True), ("TopK", 1, False),
    ("LpNormalization", -1, True), ("ReduceMax", 2, True), ("CumSum", 2, True),
])
def test_global_by_nature_is_decided_by_the_axes(op_type, axis, by_nature):
    """A node computed in full goes without a notice only where its own axes take in the length (a top-k, a
    reduction, a normalisation, a running sum along it): over the channels a TopK is point-wise but has no rule,
    so it gets a notice, and so would any op whose rule over the channels went missing."""
    from gradient_cases import Case

    c = Case(18)
    conv = c.op("Conv", [c.ncl(), c.w(3, 4, 3), c.w(3)], pads=[1, 1])
    if op_type == "TopK":
        node = c.op("TopK", [conv, c.ints([2])], outputs=2, axis=axis)[0]
    elif op_type == "CumSum":
        node = c.op("CumSum", [conv, c.ints(axis)])
    elif op_type == "ReduceMax":
        node = c.op("ReduceMax", [conv, c.ints([axis])], keepdims=1)
    else:
        node = c.op(op_type, [conv], axis=axis)
    c.nodes[-1].name = "under_test"
    model = c.model(c.op("Flatten", [c.op("Relu", [node])], axis=1))
    expected, no_rule = build_plan(onnxism.load(model), 12, ["y"]).plan.analysis.split_notices()
    named = ([notice.node for notice in notices] for notices in (expected, no_rule))
    assert tuple(named) == ((["under_test"], []) if by_nature else ([], ["under_test"]))
    if not by_nature:
        with pytest.warns(onnxism.OnnxismWarning, match="no local rule for TopK node 'under_test'"):
            assert_fast_equals_naive(model, random_onehot(2, 12, seed=4))


@pytest.mark.parametrize("axis, p, windowed", [(1, 2, True), (-2, 1, True), (2, 2, False), (-1, 1, False)])
def test_lp_normalization_over_the_channels_is_windowed(axis, p, windowed):
    """An LpNormalization over the channels is point-wise along the length; over the length it is global by
    nature (computed in full, without a notice)."""
    model = _after_conv("LpNormalization", axis=axis, p=p)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert_fast_equals_naive(model, random_onehot(3, 12, seed=5, n_fraction=0.1))
    mode = build_plan(onnxism.load(model), 12, ["y"]).plan.analysis.modes["under_test"]
    assert mode == ("windowed" if windowed else "full")


@pytest.mark.parametrize("attrs", [
    {"p": 2, "kernel_shape": [2], "strides": [1], "pads": [1, 0]},
    {"p": 1, "kernel_shape": [3], "strides": [2], "pads": [0, 2]},
    {"p": 3, "kernel_shape": [3], "strides": [2], "pads": [1, 2], "dilations": [2]},
    {"kernel_shape": [3], "auto_pad": "SAME_LOWER"},
    {"p": 2, "kernel_shape": [3], "strides": [3], "ceil_mode": 1},
    {"p": 2, "kernel_shape": [3], "strides": [2], "ceil_mode": 1},
], ids=["p2-pad", "p1-strided", "p3-dilated", "same", "ceil", "ceil-overhang"])
def test_lp_pools_are_windowed(attrs):
    """An LpPool ((sum |x|^p over the window)^(1/p); its pads count as zeros) is windowed like an AveragePool, with
    any p, stride, dilation or pads; with ceil_mode, a last window reaching past the end pad (whose handling
    onnxruntime and onnx's reference differ on) is computed in full."""
    model = _after_conv("LpPool", **attrs)
    overhang = attrs.get("ceil_mode") and (12 - 3) % attrs["strides"][0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore" if overhang else "error")
        assert_fast_equals_naive(model, random_onehot(3, 12, seed=2, n_fraction=0.1))
    mode = build_plan(onnxism.load(model), 12, ["y"]).plan.analysis.modes["under_test"]
    assert mode == ("full" if overhang else "windowed")


@pytest.mark.parametrize("axis, windowed", [(1, True), (2, False), (-1, False)])
def test_running_sums(axis, windowed):
    """CumSum along the channels is windowed; along the length it is global by nature: computed in full, without
    a notice."""
    model = _after_conv("CumSum", [axis])
    seqs = random_onehot(2, 12, seed=5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert_fast_equals_naive(model, seqs)
    plan = build_plan(onnxism.load(model), 12, ["y"]).plan
    assert (plan.analysis.modes["under_test"] == "windowed") == windowed


def test_a_join_with_a_global_tensor_is_global_by_nature():
    """A squeeze-excitation gate (the trunk times a function of its mean over the length) changes every column:
    computed in full as expected, with no notice of a missing rule."""
    from gradient_cases import Case

    c = Case(18)
    trunk = c.op("Relu", [c.op("Conv", [c.ncl(), c.w(3, 4, 3), c.w(3)], pads=[1, 1])])
    gate = c.op("Sigmoid", [c.op("ReduceMean", [trunk, c.ints([2])], keepdims=1)])
    joined = c.op("Mul", [trunk, gate])
    c.nodes[-1].name = "gated"
    model = c.model(c.op("Flatten", [c.op("Conv", [joined, c.w(2, 3, 3), c.w(2)], pads=[1, 1])], axis=1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert_fast_equals_naive(model, random_onehot(2, 12, seed=8))
    by_nature, no_rule = build_plan(onnxism.load(model), 12, ["y"]).plan.analysis.split_notices()
    assert no_rule == [] and any(notice.node == "gated" for notice in by_nature)


def test_a_join_with_a_tensor_of_shapes_alone_is_announced():
    """A tensor computed from the batch's shape alone (a computed constant expanded to the trunk's Shape) is
    computed in full but is the same for every substitution: the op joining it to the trunk is computed in full for
    want of a rule, so it gets the notice, where a join with a tensor that changes everywhere (the gate above) does
    not. (The Expand of a constant itself is read as its row: next test.)"""
    from gradient_cases import Case

    c = Case(18)
    trunk = c.op("Relu", [c.op("Conv", [c.ncl(), c.w(3, 4, 3), c.w(3)], pads=[1, 1])])
    offsets = c.op("Expand", [c.op("Sigmoid", [c.w(1, 3, 12)]), c.op("Shape", [trunk])])  # not a constant's Expand
    c.op("Add", [trunk, offsets])
    c.nodes[-1].name = "offset"
    model = c.model(c.op("Flatten", [c.op("Conv", [c.nodes[-1].output[0], c.w(2, 3, 3), c.w(2)], pads=[1, 1])],
                                     axis=1))
    with pytest.warns(onnxism.OnnxismWarning, match="Add node 'offset' .it joins a tensor computed from the batch"):
        assert_fast_equals_naive(model, random_onehot(2, 12, seed=8))
    by_nature, no_rule = build_plan(onnxism.load(model), 12, ["y"]).plan.analysis.split_notices()
    assert [notice.node for notice in no_rule] == ["offset"]


@pytest.mark.parametrize("op_type, tile", [("Add", False), ("Mul", True), ("Max", False)])
def test_an_elementwise_op_of_a_constant_broadcast_along_the_batch_is_windowed(op_type, tile):
    """A constant expanded (Expand to the trunk's Shape) or tiled (Tile by [N, 1, 1]) to the batch, joined to the
    trunk by an element-wise op, is read as its one row (``normalise``): the op is windowed, with no notice."""
    from gradient_cases import Case

    c = Case(18)
    trunk = c.op("Relu", [c.op("Conv", [c.ncl(), c.w(3, 4, 3), c.w(3)], pads=[1, 1])])
    shape = c.op("Shape", [trunk])
    if tile:
        rows = c.op("Concat", [c.op("Slice", [shape, c.ints([0]), c.ints([1])]), c.ints([1, 1])], axis=0)
        constant = c.op("Tile", [c.w(1, 3, 12), rows])
    else:
        constant = c.op("Expand", [c.w(3, 12), shape])  # a lower rank, broadcast by the Expand
    c.op(op_type, [trunk, constant])
    c.nodes[-1].name = "under_test"
    model = c.model(c.op("Flatten", [c.op("Conv", [c.nodes[-1].output[0], c.w(2, 3, 3), c.w(2)], pads=[1, 1])],
                                     axis=1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert_fast_equals_naive(model, random_onehot(2, 12, seed=8))
    assert build_plan(onnxism.load(model), 12, ["y"]).plan.analysis.modes["under_test"] == "windowed"


@pytest.mark.parametrize("dynamo", [True, False], ids=["dynamo", "legacy"])
def test_positional_embeddings_of_a_range_are_windowed(tmp_path, dynamo):
    """A learned positional embedding looked up at ``arange(L)`` and added to the trunk: the legacy exporter writes
    the Range of the length from the input's Shape and the lookup as a Gather from the table (200 x 8 values),
    computed from constants once the length is folded; its value is then a constant that varies along the length,
    so the Add is windowed (until this version only values of up to 64 entries were known: it was computed in full,
    and everything after it, with the notice). The dynamo exporter writes the lookup's result as a constant."""
    torch = pytest.importorskip("torch")
    from torch import nn

    class Positional(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.position, self.b = nn.Conv1d(4, 8, 5, padding=2), nn.Embedding(200, 8), nn.Conv1d(8, 3, 3)
            self.d = nn.Linear(3 * 198, 2)

        def forward(self, x):
            h = torch.relu(self.a(x)) + self.position(torch.arange(x.shape[2], device=x.device)).T
            return self.d(torch.relu(self.b(h)).flatten(1))

    torch.manual_seed(6)
    model = _assert_windowed_without_notice(Positional(), 200, tmp_path / "positional.onnx", dynamo, seed=4)
    assert ("Range" in {node.op_type for node in model.proto.graph.node}) == (not dynamo)


@pytest.mark.parametrize("dynamo", [True, False], ids=["dynamo", "legacy"])
def test_sequences_padded_by_concatenated_constants_are_windowed(tmp_path, dynamo):
    """``torch.cat([torch.zeros(n, 4, 3), x, torch.full((n, 4, 4), 0.25)], 2)``: padding written as a Concat of
    tensors made for the batch (the dynamo exporter's Expand of a scalar, the legacy exporter's ConstantOfShape)
    is a shift and a constant (``normalise``): windowed, with no notice (before, computed in full with one)."""
    torch = pytest.importorskip("torch")
    from torch import nn

    class Padded(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.d = nn.Conv1d(4, 6, 5), nn.Linear(6 * 43, 2)

        def forward(self, x):
            n = x.shape[0]
            x = torch.cat([torch.zeros(n, 4, 3), x, torch.full((n, 4, 4), 0.25)], 2)
            return self.d(torch.relu(self.a(x)).flatten(1))

    torch.manual_seed(7)
    _assert_windowed_without_notice(Padded(), 40, tmp_path / "padded.onnx", dynamo, seed=3)


def _assert_windowed_without_notice(module, length, path, dynamo, seed):
    """Export ``module`` (its input (N, 4, ``length``)) to ``path`` with the dynamo or the legacy exporter: fast ISM
    computes nothing in full for want of a rule and equals naive without any notice. Returns the loaded model."""
    import torch
    from converters import torch_to_onnx

    torch_to_onnx(module.eval(), torch.zeros(2, 4, length), path, dynamo=dynamo)
    model = onnxism.load(path)
    assert build_plan(model, length, model.output_names).plan.analysis.split_notices()[1] == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert_fast_equals_naive(model, random_onehot(2, length, seed=seed, n_fraction=0.05))
    return model


@pytest.mark.parametrize("dynamo", [True, False], ids=["dynamo", "legacy"])
def test_expand_as_and_l2_normalisation_are_windowed(tmp_path, dynamo):
    """torch's F.normalize over the channels and ``expand_as`` write an Expand whose shape is computed from the
    tensor's Shape (with the batch, so not a constant; the dynamo exporter's Shape-15 takes a range of axes): it
    broadcasts the channels only, so it is windowed, and nothing is computed in full but the Flatten of the Dense
    head."""
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F
    from torch import nn
    from converters import torch_to_onnx

    class Normalised(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv1d(4, 6, 5, padding=2), nn.Conv1d(6, 5, 3, padding=1)
            self.d = nn.Linear(5 * 30, 2)

        def forward(self, x):
            h = F.normalize(self.a(x), dim=1)
            h = F.relu(self.b(h))
            h = h * torch.sigmoid(h.mean(1, keepdim=True)).expand_as(h)
            return h, self.d(h.flatten(1))

    torch.manual_seed(5)
    path = tmp_path / "normalised.onnx"
    torch_to_onnx(Normalised().eval(), torch.zeros(2, 4, 30), path, dynamo=dynamo)
    model = onnxism.load(path)
    assert "Expand" in {node.op_type for node in model.proto.graph.node}
    notices = build_plan(model, 30, model.output_names).plan.analysis.notices
    assert [notice.op for notice in notices] in (["Reshape"], ["Flatten"]), notices
    assert_fast_equals_naive(model, random_onehot(2, 30, seed=4, n_fraction=0.05))


@pytest.mark.parametrize("dynamo", [True, False], ids=["dynamo", "legacy"])
def test_per_position_einsums_are_windowed(tmp_path, dynamo):
    """An Einsum contracting the channels with a weight ("ncl,cd->ndl", "ncl,dc->nld") is a Dense at each
    position, and one of two tensors at the same positions ("ncl,ncl->nl") a dot product at each: windowed. One
    whose weight varies along the length ("ncl,cl->nl", "nlc,lc->nl") is rewritten as a product and a sum over the
    channels, windowed; one that mixes positions ("ncl,ncm->nlm") is computed in full. Fast equals naive
    throughout."""
    torch = pytest.importorskip("torch")
    from torch import nn
    from converters import torch_to_onnx

    class Einsums(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv1d(4, 6, 5, padding=2), nn.Conv1d(5, 4, 3, padding=1)
            self.c = nn.Conv1d(3, 3, 3, padding=1)
            self.w1, self.w2 = nn.Parameter(torch.randn(6, 5) / 2), nn.Parameter(torch.randn(3, 4) / 2)
            self.positional, self.along = nn.Parameter(torch.randn(3, 30)), nn.Parameter(torch.randn(30, 3))

        def forward(self, x):
            h = torch.relu(torch.einsum("ncl,cd->ndl", self.a(x), self.w1))
            h = torch.einsum("ncl,dc->nld", self.b(h), self.w2)  # (N, L, 3)
            profile = torch.tanh(h).transpose(1, 2)
            weighted = torch.einsum("ncl,cl->nl", profile, self.positional)
            weighted = weighted + torch.einsum("nlc,lc->nl", h, self.along)
            similarity = torch.einsum("ncl,ncm->nlm", profile, profile).mean((1, 2))
            dot = torch.einsum("ncl,ncl->nl", profile, torch.sigmoid(self.c(profile)))
            return profile, weighted, similarity, dot

    torch.manual_seed(6)
    path = tmp_path / "einsums.onnx"
    torch_to_onnx(Einsums().eval(), torch.zeros(2, 4, 30), path, dynamo=dynamo)
    model = onnxism.load(path)
    plan = build_plan(model, 30, model.output_names).plan
    einsums = {node.name or f"node{index}": node.input for index, node in enumerate(model.proto.graph.node)
               if node.op_type == "Einsum"}
    assert len(einsums) == 6
    modes = plan.analysis.modes
    assert sorted(modes[key] for key in einsums if key in modes) == ["full", "windowed", "windowed", "windowed"]
    products = [key for key in modes if key.endswith("__product")]
    assert len(products) == 2 and {modes[key] for key in products} == {"windowed"}, modes
    assert [notice.op for notice in plan.analysis.notices] == ["Einsum"], plan.analysis.notices
    assert_fast_equals_naive(model, random_onehot(2, 30, seed=4, n_fraction=0.05))


@pytest.mark.parametrize("op_type, include_pad", [("MaxPool", 0), ("AveragePool", 0), ("AveragePool", 1)])
@pytest.mark.parametrize("pads", [(0, 0), (1, 1), (2, 0)])
def test_ceil_mode_pools_are_windowed(op_type, include_pad, pads):
    """A ceil_mode pool whose last window reaches past the end pad (12 columns, kernel 3, stride 2: one more
    window than floor mode) is windowed; an AveragePool divides by the columns it counts, the pads too where
    count_include_pad says so, never the overhang."""
    attrs = {"count_include_pad": include_pad} if op_type == "AveragePool" else {}
    model = _after_conv(op_type, kernel_shape=[3], strides=[2], pads=list(pads), ceil_mode=1, **attrs)
    loaded = onnxism.load(model)
    assert loaded.output_shapes()["y"][0] == 2 * ((12 + sum(pads) - 3) // 2 + 2)  # the overhanging window is there
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert_fast_equals_naive(model, random_onehot(3, 12, seed=7, n_fraction=0.1))
    assert build_plan(loaded, 12, ["y"]).plan.analysis.modes["under_test"] == "windowed"


@pytest.mark.parametrize("op_type", ["Softmax", "LogSoftmax", "Hardmax"])
@pytest.mark.parametrize("opset, axis", [(11, 1), (12, -2), (11, None), (13, 1)])
def test_softmax_axes_by_opset(op_type, opset, axis):
    """Before opset 13 a Softmax over axis 1 of (N, C, L) normalises channels and length together (2-D at the axis):
    global along the length, unlike the same node from opset 13 on."""
    model = _after_conv(op_type, opset=opset, **({} if axis is None else {"axis": axis}))
    assert_fast_equals_naive(model, random_onehot(2, 12, seed=6))


def test_fast_window_and_batch_invariance(zoo_export):
    path, _ = zoo_export("bpnet_small", "torch")
    seqs = random_onehot(3, 100, seed=22)
    full = onnxism.ism(path, seqs, method="fast", batch_size=50)
    window = onnxism.ism(path, seqs, method="fast", positions=(0, 7), batch_size=13)
    for name in full:
        np.testing.assert_allclose(window[name], full[name][:, :7], rtol=0, atol=1e-5)


#: The linear global layers each architecture must get as incremental heads (the rest are computed in full).
EXPECTED_HEADS = {
    "valid_even_kernel": ["DenseHead"], "same_even_dilated": ["MeanHead"],
    "strided_conv_overlapping_padded_pools": ["DenseHead"], "outputs_at_different_depths": ["DenseHead"],
    "cropping": ["DenseHead"], "global_avg_and_max_heads": ["MeanHead"], "delta_convs_dilated_stacked": ["DenseHead"],
    "strided_conv_transposes": ["DenseHead"], "reverse_complement_average": ["DenseHead"],
    "softmax_pooling_and_channel_groups": ["DenseHead"], "grouped_and_depthwise_convs": ["DenseHead"],
    "gated_activations_and_length_split": ["DenseHead"], "constant_flanks_and_position_channels": ["DenseHead"],
}


#: How each architecture's delta convolutions sum their contributions (``graphs._delta_conv``): "column" when
#: the input changes on fewer columns than the taps, "tap" otherwise; the rest have none.
EXPECTED_DELTA_CONVS = {"delta_convs_dilated_stacked": ["column", "tap"], "conv_transpose_as_conv": ["column"],
                        "gated_activations_and_length_split": ["column"]}


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


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_fast_equals_naive_on_architecture(name, tmp_path):
    path, _ = export_architecture(name, tmp_path)
    length = LENGTH
    assert head_kinds(path, length)[0] == EXPECTED_HEADS.get(name, [])
    assert delta_conv_modes(path, length) == EXPECTED_DELTA_CONVS.get(name, [])
    assert ops_without_a_local_rule(path, length) == []
    seqs = random_onehot(2, length, seed=5, n_fraction=0.05)
    assert_fast_equals_naive(path, seqs, batch_size=50)
    assert_scorers_agree_on_random_values(path, length)


@pytest.mark.parametrize("name", MODERN)
def test_fast_equals_naive_on_modern_layers(name, tmp_path):
    """Attention, normalisations over the length, running sums, sorting and gating are global: computed in full,
    exactly. Comparisons of windowed tensors (a Softplus's threshold, masks from two depths) are windowed."""
    path, _ = export_architecture(name, tmp_path)
    if name == "softplus_where_head":
        model = onnxism.load(path)
        assert build_plan(model, LENGTH, model.output_names).plan.analysis.notices == []
    if name == "instance_norm":  # normalised over the length: global by nature, so no notice
        model = onnxism.load(path)
        analysis = build_plan(model, LENGTH, model.output_names).plan.analysis
        instance = [notice for notice in analysis.notices if notice.op == "InstanceNormalization"]
        assert instance and all(notice.by_nature for notice in instance)
    assert_fast_equals_naive(path, random_onehot(2, LENGTH, seed=6, n_fraction=0.05), batch_size=50)


@pytest.mark.parametrize("name", KERAS_MODERN)
def test_fast_equals_naive_on_modern_keras_layers(name, tmp_path):
    """Through tf2onnx: Keras's GELU (Erfc) loads; its crop (a Slice of every axis, the batch from 0 to the end) is
    windowed; the rest as in PyTorch. The GroupNormalization model once made fast ISM fall back to naive: its
    analysis looked nodes up by id() of protobuf elements, which do not last."""
    from converters import keras_to_onnx

    path = tmp_path / f"{name}.onnx"
    keras_to_onnx(keras_modern(name), path)
    model = onnxism.load(path)
    notices = build_plan(model, LENGTH, model.output_names).plan.analysis.notices
    if name in ("upsample_crop_pad", "constant_flanks"):  # the flanks' Concat: a shift and a constant (normalise)
        assert [notice.op for notice in notices] == ["Reshape"]  # the Flatten before the Dense
    if name == "chrombpnet":  # only the two counts' poolings are computed in full
        by_nature, no_rule = build_plan(model, LENGTH, model.output_names).plan.analysis.split_notices()
        assert no_rule == [] and [notice.op for notice in by_nature] == ["ReduceMean"] * 2
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert_fast_equals_naive(path, random_onehot(2, LENGTH, seed=7, n_fraction=0.05), batch_size=50)
    assert not [w for w in caught if "naive ISM" in str(w.message)]  # no fallback


def test_keras_conv1d_transpose_is_windowed_through_its_shape_arithmetic(tmp_path):
    """tf2onnx writes Keras's Conv1DTranspose as a ConvTranspose whose output is cropped by a Slice and a Pad with
    bounds computed from its Shape: those bounds do not depend on the batch, so they fold into constants and the
    whole layer is windowed (no op computed in full), 'same' with stride 2 and 'valid' with stride 3."""
    pytest.importorskip("tf2onnx")
    import keras

    from converters import keras_to_onnx

    keras.utils.set_random_seed(4)
    layers = keras.layers
    inputs = keras.Input((40, 4))
    hidden = layers.Conv1D(6, 3, padding="same", activation="relu")(inputs)
    hidden = layers.Conv1DTranspose(5, 5, strides=2, padding="same", activation="relu")(hidden)
    hidden = layers.Conv1DTranspose(3, 4, strides=3, padding="valid")(hidden)
    model = keras.Model(inputs, layers.Dense(2)(layers.Flatten()(hidden)))
    path = tmp_path / "conv1d_transpose.onnx"
    keras_to_onnx(model, path)
    assert ops_without_a_local_rule(path, 40) == []
    plan = build_plan(onnxism.load(path), 40, onnxism.load(path).output_names).plan
    assert "folded" in plan.analysis.modes.values()
    assert_fast_equals_naive(path, random_onehot(2, 40, seed=8, n_fraction=0.05), batch_size=50)


def test_resize_in_every_mode_onnxruntime_runs_is_windowed():
    """The Resize op along the length, linear (half_pixel, as torch's TorchScript exporter writes upsampling;
    align_corners to 3L), linear antialiased down to L, nearest by 1.5: each is read off onnxruntime as weighted
    taps (2, 2, 5) or a column map (1), and nothing but the Flatten is computed in full."""
    model = onnxism.load(resize_model())
    plan = build_plan(model, 40, model.output_names).plan
    resizes = [rule for key, rule in plan.analysis.rules.items() if getattr(rule, "column_map", None) is not None]
    assert [np.atleast_2d(rule.column_map).shape[0] for rule in resizes] == [2, 2, 5, 1]
    assert ops_without_a_local_rule(model, 40) == []
    assert_fast_equals_naive(model, random_onehot(2, 40, seed=6, n_fraction=0.05), batch_size=50)
    assert_scorers_agree_on_random_values(model, 40)


def test_a_length_map_reading_too_many_columns_is_computed_in_full(monkeypatch):
    """A Resize whose outputs each read more than MAX_RESIZE_TAPS input columns has no local rule: the first Resize
    and all after it are computed in full, exactly, with the notice (here with the limit lowered to 1, so that the
    2-tap linear Resize exceeds it)."""
    import onnxism.graph.length_map as length_map

    monkeypatch.setattr(length_map, "MAX_RESIZE_TAPS", 1)
    model = onnxism.load(resize_model())
    notices = ops_without_a_local_rule(model, 40)
    assert [notice.op for notice in notices] == ["Resize"]  # the first; the rest read a full tensor
    with pytest.warns(onnxism.OnnxismWarning, match="no local rule for Resize"):
        assert_fast_equals_naive(model, random_onehot(2, 40, seed=12, n_fraction=0.05), batch_size=50)


def test_length_maps_are_read_at_any_length():
    """The comb probe reads a Resize's map with a few onnxruntime runs whatever the length: at 6000 columns (the map
    of the x2 linear Resize alone has 72 M entries) every Resize is windowed, and fast equals naive at both ends and
    inside."""
    length = 6000
    model = onnxism.load(resize_model(length=length))
    assert ops_without_a_local_rule(model, length) == []
    seqs = random_onehot(1, length, seed=14, n_fraction=0.05)
    for positions in [(0, 3), (2999, 3002), (length - 3, length)]:
        fast = onnxism.ism(model, seqs, method="fast", positions=positions)
        naive = onnxism.ism(model, seqs, method="naive", positions=positions)
        for name in naive:
            scale = max(1.0, float(np.abs(naive[name]).max()))
            np.testing.assert_allclose(fast[name], naive[name], rtol=0, atol=1e-4 * scale)


def assert_keras_model_windowed(path, heads, seed):
    """The Keras model exported to ``path``: nothing on its windowed paths computed in full, the linear ``heads``
    formed, and fast equal to naive on one-hot (with N) and on random values."""
    assert ops_without_a_local_rule(path, 40) == []
    assert head_kinds(path, 40)[0] == heads
    assert_fast_equals_naive(path, random_onehot(2, 40, seed=seed, n_fraction=0.05), batch_size=50)
    assert_scorers_agree_on_random_values(path, 40)


def test_keras_upsampling1d_is_windowed(tmp_path):
    """tf2onnx writes Keras's UpSampling1D as Unsqueeze, Tile along the new axis and a Reshape merging it into the
    length, whose target is computed from the tensor's Shape and the batch: the Tile is pointwise along the length
    and the Reshape local (input column i becomes columns [i*k, i*k + k)), so the whole model is windowed."""
    pytest.importorskip("tf2onnx")
    import keras

    from converters import keras_to_onnx

    keras.utils.set_random_seed(5)
    layers = keras.layers
    inputs = keras.Input((40, 4))
    hidden = layers.Conv1D(6, 5, padding="same", activation="relu")(inputs)
    hidden = layers.UpSampling1D(2)(hidden)
    hidden = layers.Conv1D(5, 3, padding="same", activation="relu")(hidden)
    hidden = layers.UpSampling1D(3)(hidden)
    hidden = layers.MaxPooling1D(4)(hidden)
    model = keras.Model(inputs, layers.Dense(2)(layers.Flatten()(hidden)))
    path = tmp_path / "upsampling1d.onnx"
    keras_to_onnx(model, path)
    assert_keras_model_windowed(path, ["DenseHead"], seed=9)


def test_keras_dense_per_position_is_windowed(tmp_path):
    """tf2onnx writes a Keras Dense on a (N, L, C) tensor as Reshape to (N * L, C), MatMul, Reshape back (its target
    from the tensor's Shape), then the bias: the batch leaves the first axis in between. ``normalise`` computes the
    MatMul on the tensor itself, so the Dense is point-wise and the convolution after it windowed."""
    pytest.importorskip("tf2onnx")
    import keras

    from converters import keras_to_onnx

    keras.utils.set_random_seed(8)
    layers = keras.layers
    inputs = keras.Input((40, 4))
    hidden = layers.Conv1D(8, 5, padding="same", activation="relu")(inputs)
    hidden = layers.Dense(6, activation="relu", bias_initializer="random_normal")(hidden)
    hidden = layers.Conv1D(5, 3, padding="same", activation="relu")(hidden)
    model = keras.Model(inputs, [layers.Dense(2)(layers.GlobalAveragePooling1D()(hidden)),
                                 layers.Dense(1, bias_initializer="random_normal")(hidden)])
    path = tmp_path / "dense_per_position.onnx"
    keras_to_onnx(model, path)
    assert_keras_model_windowed(path, ["MeanHead"], seed=12)


def test_keras_separable_depthwise_and_layer_norm_are_windowed(tmp_path):
    """SeparableConv1D and DepthwiseConv1D (tf2onnx: Conv with group), and LayerNormalization in the two forms
    tf2onnx writes, by the layout around it: the moments as ReduceMean over the channels, or as GlobalAveragePool of
    the (N, L, C) tensor, which is a mean over the channels too there (point-wise along the length); so the whole
    trunk is windowed."""
    pytest.importorskip("tf2onnx")
    import keras
    import onnx

    from converters import keras_to_onnx

    keras.utils.set_random_seed(9)
    layers = keras.layers

    def layer_norm():
        return layers.LayerNormalization(beta_initializer="random_normal", gamma_initializer="random_normal")

    inputs = keras.Input((40, 4))
    hidden = layers.Conv1D(8, 5, padding="same", activation="relu")(inputs)
    hidden = layers.SeparableConv1D(8, 7, padding="same", activation="relu")(hidden)
    hidden = layers.MaxPooling1D(2)(layer_norm()(hidden))
    hidden = layers.DepthwiseConv1D(3, padding="same", bias_initializer="random_normal")(hidden)
    model = keras.Model(inputs, layers.Dense(2)(layers.Flatten()(layer_norm()(hidden))))
    path = tmp_path / "separable_layer_norm.onnx"
    keras_to_onnx(model, path)
    ops = [node.op_type for node in onnx.load(path).graph.node]
    assert "GlobalAveragePool" in ops and "ReduceMean" in ops
    assert_keras_model_windowed(path, ["DenseHead"], seed=13)


def test_keras_softmax_pooling_is_windowed(tmp_path):
    """Enformer-style softmax pooling in Keras: Reshape((L/2, 2, C)) of the values and of their logits, a softmax
    over the pairs, a weighted sum; then maxout over channel pairs (a Reshape of the channels alone). tf2onnx
    writes each Reshape with a target from the tensor's Shape and the batch: the length split is local, the channel
    reshape point-wise, so the whole trunk is windowed."""
    pytest.importorskip("tf2onnx")
    import keras
    from keras import ops

    from converters import keras_to_onnx

    keras.utils.set_random_seed(6)
    layers = keras.layers
    inputs = keras.Input((40, 4))
    hidden = layers.Conv1D(8, 5, padding="same", activation="relu")(inputs)
    logits = layers.Reshape((20, 2, 8))(layers.Dense(8, use_bias=False)(hidden))
    pooled = ops.sum(layers.Reshape((20, 2, 8))(hidden) * layers.Softmax(axis=2)(logits), axis=2)
    grouped = ops.max(layers.Reshape((20, 4, 2))(pooled), axis=3)
    model = keras.Model(inputs, layers.Dense(2)(layers.Flatten()(grouped)))
    path = tmp_path / "softmax_pooling.onnx"
    keras_to_onnx(model, path)
    assert_keras_model_windowed(path, ["DenseHead"], seed=10)


def test_keras_reverse_complement_average_is_windowed(tmp_path):
    """tf2onnx writes Keras's ops.flip along the length and the channels as ReverseSequence between Transposes that
    put the length first; whole-sequence reversals become reversed Slices (``normalise.probed_rewrites``), so
    both strands of a model averaged over the sequence and its reverse complement are windowed."""
    pytest.importorskip("tf2onnx")
    import keras

    from converters import keras_to_onnx

    keras.utils.set_random_seed(6)
    layers = keras.layers
    inputs = keras.Input((40, 4))
    conv, dense = layers.Conv1D(6, 5, padding="same", activation="relu"), layers.Dense(2)

    def strand(values):
        return dense(layers.Flatten()(layers.MaxPooling1D(2)(conv(values))))

    model = keras.Model(inputs, layers.Average()([strand(inputs), strand(keras.ops.flip(inputs, axis=(1, 2)))]))
    path = tmp_path / "reverse_complement.onnx"
    keras_to_onnx(model, path)
    assert ops_without_a_local_rule(path, 40) == []
    assert head_kinds(path, 40) == (["DenseHead"], 2)
    assert_fast_equals_naive(path, random_onehot(2, 40, seed=10, n_fraction=0.05), batch_size=50)
    assert_scorers_agree_on_random_values(path, 40)


@pytest.mark.filterwarnings("ignore:The tensor attributes")  # torch's export of nn.LSTM, harmless
@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_a_recurrent_layer_after_the_conv_trunk_keeps_the_trunk_windowed(tmp_path, framework):
    """DanQ's form: conv, pool, then a bidirectional LSTM, which both exporters feed time-major (a Transpose that
    moves the batch off the first axis). That Transpose and all after it are computed in full (with the notice);
    the trunk before it stays windowed, rather than the whole model falling back to naive ISM."""
    path = tmp_path / f"danq_{framework}.onnx"
    if framework == "torch":
        torch = pytest.importorskip("torch")
        from converters import torch_to_onnx

        class DanQ(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = torch.nn.Conv1d(4, 8, 5)
                self.lstm = torch.nn.LSTM(8, 6, batch_first=True, bidirectional=True)
                self.dense = torch.nn.Linear(12 * 9, 2)

            def forward(self, x):
                hidden = torch.nn.functional.max_pool1d(torch.relu(self.conv(x)), 4).transpose(1, 2)
                return self.dense(self.lstm(hidden)[0].flatten(1))

        torch.manual_seed(7)
        torch_to_onnx(DanQ().eval(), torch.zeros(2, 4, 40), path)
    else:
        pytest.importorskip("tf2onnx")
        import keras

        from converters import keras_to_onnx

        keras.utils.set_random_seed(7)
        layers = keras.layers
        inputs = keras.Input((40, 4))
        hidden = layers.MaxPooling1D(4)(layers.Conv1D(8, 5, activation="relu")(inputs))
        hidden = layers.Bidirectional(layers.LSTM(6, return_sequences=True))(hidden)
        keras_to_onnx(keras.Model(inputs, layers.Dense(2)(layers.Flatten()(hidden))), path)
    model = onnxism.load(path)
    plan = build_plan(model, 40, model.output_names).plan
    assert [notice.op for notice in ops_without_a_local_rule(path, 40)] == ["Transpose"]
    windowed = [key for key, mode in plan.analysis.modes.items() if mode == "windowed"]
    assert any(plan.analysis.rules[key].__class__.__name__ == "LocalRule" for key in windowed)  # conv and pool
    with pytest.warns(onnxism.OnnxismWarning,
                      match=r"no local rule for Transpose node .* \(the batch leaves the first axis there, before the "
                            r"LSTM node"):
        assert_fast_equals_naive(path, random_onehot(2, 40, seed=11, n_fraction=0.05), batch_size=50)


def narrow_convs(model, length):
    """How many Convs/ConvTransposes fast ISM builds in the narrow whole-length form (``_narrow_whole_conv``)."""
    model = onnxism.load(model)
    nodes = build_plan(model, length, model.output_names).graphs.ism_model.graph.node
    return sum(node.op_type == "Concat" and node.output[0].endswith("narrow_conv") for node in nodes)


@pytest.mark.parametrize("head", ["conv_1_channel", "conv_transpose_2_channels", "conv_even_kernel_same",
                                  "conv_transpose_shorter"])
def test_narrow_whole_length_heads_equal_naive(head, tmp_path):
    """Profile-style heads (few output channels, 'same' length, on a trunk whose window is the whole length) run as
    a Gemm and a diagonal sum with exact ends; every position of the output, edges included, matches naive."""
    torch = pytest.importorskip("torch")
    from torch import nn
    from converters import torch_to_onnx

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


@pytest.mark.slow
@pytest.mark.parametrize("name, framework", [("basset", "torch"), ("factorized_basset", "keras"), ("bpnet", "keras"),
                                             ("bpnet", "torch"), ("deepsea", "torch"), ("beluga", "torch")])
def test_fast_equals_naive_on_the_full_size_zoo_at_both_ends(zoo_export, name, framework):
    path, _ = zoo_export(name, framework)
    model = onnxism.load(path)
    seqs = random_onehot(1, model.length, seed=23, n_fraction=0.01)
    for positions in ((0, 6), (model.length // 2 - 3, model.length // 2 + 3), (model.length - 6, model.length)):
        assert_fast_equals_naive(model, seqs, positions=positions)


def test_a_windowed_tensor_broadcast_along_the_length_is_computed_in_full():
    """A Conv as wide as the sequence gives one column, which an Add with a constant (1, C, L) broadcasts along
    the length: every output column changes with every substitution, so the Add has no window of its own (a rule
    that took the one column's window for the output's missed the rest)."""
    from onnx import TensorProto, helper, numpy_helper

    length, rng = 12, np.random.default_rng(8)
    weight = numpy_helper.from_array(rng.standard_normal((3, 4, length)).astype(np.float32), "w")
    offsets = numpy_helper.from_array(rng.standard_normal((1, 3, length)).astype(np.float32), "offsets")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["c"]), helper.make_node("Add", ["c", "offsets"], ["y"])], "broadcast",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4, length])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3, length])], [weight, offsets])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 10
    assert build_plan(onnxism.load(model), length, ["y"]).plan.analysis.notices == [Notice("node1", "Add", Reason.NO_RULE)]
    assert_fast_equals_naive(model, random_onehot(2, length, seed=3))
