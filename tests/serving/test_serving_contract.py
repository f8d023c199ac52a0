"""The served graphs (serving/contract.py) against the methods in process: every input and output batch-first,
fast ISM at each sequence's own positions equal to naive ISM there, TISM and predictions equal to onnxism's."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import onnxism
from onnxism.errors import InputError, UnsupportedGraphError
from onnxism.serving.contract import serving_graph

from conftest import random_onehot
from onnx_builders import conv_model, linear_heads_model


def _run(proto, feeds):
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [value.name for value in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds)))


def _codes(onehot):
    codes = onehot.argmax(-1).astype(np.uint8)
    codes[onehot.sum(-1) == 0] = 9  # any code past 3 is an N
    return codes


@pytest.mark.parametrize("layout", ["NLC", "NCL"])
@pytest.mark.parametrize("codes", [False, True])
def test_fast_graph_scores_each_sequences_own_positions_as_naive_ism(layout, codes):
    model = onnxism.load(conv_model(layout=layout, length=20))
    seqs = random_onehot(5, 20, seed=1, n_fraction=0.1)
    positions = np.random.default_rng(2).integers(-20, 20, size=(5, 6)).astype(np.int64)
    served = _run(serving_graph(model, "fast", codes=codes),
                  {"codes" if codes else "onehot": _codes(seqs) if codes else seqs, "positions": positions})
    naive = onnxism.ism(model, seqs, method="naive")["y"]  # (5, 20, 4, 3)
    wanted = np.stack([naive[k, positions[k] % 20] for k in range(5)])
    np.testing.assert_allclose(served["y__ism"], wanted, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(served["y"], onnxism.predict(model, seqs)["y"], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("layout", ["NLC", "NCL"])
def test_tism_graph_is_batch_first_tism(layout):
    model = onnxism.load(conv_model(layout=layout, length=20))
    seqs = random_onehot(4, 20, seed=3)
    served = _run(serving_graph(model, "tism"), {"onehot": seqs})
    np.testing.assert_allclose(served["y__tism"], onnxism.tism(model, seqs)["y"], rtol=1e-6, atol=1e-6)
    assert served["y__tism"].shape == (4, 20, 4, 3)


@pytest.mark.parametrize("targets", ["sum", (1,)])
def test_targets_are_fixed_in_fast_and_tism_graphs(targets):
    model = onnxism.load(conv_model(length=20))
    seqs = random_onehot(3, 20, seed=4)
    every = np.tile(np.arange(20, dtype=np.int64), (3, 1))
    fast = _run(serving_graph(model, "fast", targets=targets), {"onehot": seqs, "positions": every})
    tism = _run(serving_graph(model, "tism", targets=targets), {"onehot": seqs})
    np.testing.assert_allclose(fast["y__ism"], onnxism.ism(model, seqs, targets=targets, method="naive")["y"],
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(tism["y__tism"], onnxism.tism(model, seqs, targets=targets)["y"], rtol=1e-6,
                               atol=1e-6)
    assert fast["y__ism"].shape == tism["y__tism"].shape == (3, 20, 4)


def test_tism_graph_of_several_outputs_gives_each_its_own_gradient():
    model = onnxism.load(linear_heads_model(length=30))
    seqs = random_onehot(3, 30, seed=5)
    served = _run(serving_graph(model, "tism"), {"onehot": seqs})
    wanted = onnxism.tism(model, seqs)
    for name in ("y1", "y2", "y3"):
        np.testing.assert_allclose(served[f"{name}__tism"], wanted[name], rtol=1e-5, atol=1e-6)


def test_predict_graph_takes_codes():
    model = onnxism.load(conv_model(layout="NCL", length=20))
    seqs = random_onehot(4, 20, seed=6, n_fraction=0.2)
    served = _run(serving_graph(model, "predict", codes=True), {"codes": _codes(seqs)})
    np.testing.assert_allclose(served["y"], onnxism.predict(model, seqs)["y"], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("method", ["fast", "tism", "predict"])
def test_every_input_and_output_is_batch_first(method):
    proto = serving_graph(onnxism.load(linear_heads_model(length=30)), method)
    for value in list(proto.graph.input) + list(proto.graph.output):
        first = value.type.tensor_type.shape.dim[0]
        assert not first.HasField("dim_value"), f"{value.name} has a fixed first axis"
    assert len({value.type.tensor_type.shape.dim[0].dim_param for value in proto.graph.input}) == 1


def test_refusals():
    with pytest.raises(UnsupportedGraphError, match="batch 2"):
        serving_graph(conv_model(batch=2, length=20, baked_batch=True), "fast")
    with pytest.raises(InputError, match="unknown serving method"):
        serving_graph(conv_model(length=20), "naive")
    clash = conv_model(length=20)
    clash.graph.output[0].name = "onehot"
    clash.graph.node[-1].output[0] = "onehot"
    with pytest.raises(UnsupportedGraphError, match="named 'onehot'"):
        serving_graph(onnx.load_from_string(clash.SerializeToString()), "predict")
