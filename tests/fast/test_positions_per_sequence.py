"""The compiled fast-ISM graph with batch-first positions (``positions_per_sequence``): each sequence's own
positions, as a server batches requests; checked in plain onnxruntime against naive ISM at those positions."""

import numpy as np
import onnx
import onnxruntime
import pytest

import onnxism

from cli_helpers import MODEL
from conftest import random_onehot
from onnx_builders import conv_model


@pytest.mark.parametrize("source, length, layout", [(MODEL, 200, "NCL"), ("conv", 20, "NLC")])
def test_each_sequence_gets_its_own_positions(source, length, layout):
    model = onnxism.load(conv_model() if source == "conv" else source)
    seqs = random_onehot(5, length, seed=8, n_fraction=0.05)
    graph = onnxism.compile_fast(model, positions_per_sequence=True)
    onnx.checker.check_model(graph, full_check=True)
    rng = np.random.default_rng(3)
    positions = np.stack([rng.choice(np.arange(-length, length), 6, replace=False) for _ in range(len(seqs))])
    session = onnxruntime.InferenceSession(graph.SerializeToString())
    feed = seqs if layout == "NLC" else seqs.transpose(0, 2, 1)
    names = [output.name for output in session.get_outputs()]
    values = dict(zip(names, session.run(None, {model.input_name: feed, "positions": positions})))
    full = onnxism.ism(model, seqs, method="naive")
    for name, scores in full.items():
        expected = scores[np.arange(len(seqs))[:, None], positions % length]  # (n, P, 4, *shape)
        np.testing.assert_allclose(values[f"{name}__ism"], expected, rtol=1e-5, atol=1e-5)
    shared = onnxism.compile_fast(model)  # the default graph still takes one (P,) for every sequence
    assert [d.dim_param or d.dim_value for d in shared.graph.input[-1].type.tensor_type.shape.dim] == ["positions"]
    assert [d.dim_param for d in graph.graph.input[-1].type.tensor_type.shape.dim] == ["n", "positions"]


def test_cli_writes_the_batch_first_graph(tmp_path):
    from cli_helpers import assert_clean_failure, onnxism_cli

    out = tmp_path / "served.onnx"
    result = onnxism_cli("compile", MODEL, "--method", "fast", "--positions-per-sequence", "-o", out)
    assert result.returncode == 0, result.stderr
    graph = onnx.load(out)
    assert [d.dim_param for d in graph.graph.input[-1].type.tensor_type.shape.dim] == ["n", "positions"]
    assert_clean_failure(onnxism_cli("compile", MODEL, "--positions-per-sequence", "-o", tmp_path / "t.onnx"),
                         "--positions-per-sequence applies to --method fast")
