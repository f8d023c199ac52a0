"""The executor: its default batch, its sessions, the ISM graph run by plain onnxruntime, the runner's row
binding, and the fallback to naive ISM."""


import numpy as np
import pytest

import onnxism
from onnxism.fast.executor import compiled_plan
from onnxism.fast.plan import build_plan
from onnxism.runtime.weights import attach

from conftest import random_onehot
from fast_checks import assert_fast_equals_naive
from onnx_builders import conv_model, linear_heads_model, wrapped_residual_model


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
