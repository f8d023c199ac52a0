"""`onnxism compile --method fast`: the standalone fast-ISM graph, run by plain onnxruntime, against naive ISM."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import onnxism
from onnxism.fast.standalone import build_standalone_fast_model
from onnxism.runtime.sessions import make_session

from cli_helpers import MODEL, SEQS, assert_clean_failure, onnxism_cli
from conftest import random_onehot
from onnx_builders import conv_model, linear_heads_model, resize_model


@pytest.mark.parametrize("name, framework", [("bpnet_small", "keras"), ("basset_small", "torch"),
                                             ("factorized_basset_small", "keras"), ("beluga_small", "torch")])
def test_standalone_fast_graph_equals_naive_ism(zoo_export, name, framework):
    path, _ = zoo_export(name, framework)
    model = onnxism.load(path)
    length = model.length
    seqs = random_onehot(3, length, seed=11, n_fraction=0.05)
    positions = np.array([0, 1, length // 2, length - 2, length - 1], np.int64)
    session = make_session(build_standalone_fast_model(model, model.output_names, length).SerializeToString())
    names = [f"{output}__ism" for output in model.output_names]
    got = dict(zip(model.output_names, session.run(names, {model.input_name: model.to_model_layout(seqs),
                                                           "positions": positions})))
    expected = onnxism.ism(model, seqs, method="naive")
    for output in model.output_names:
        want = expected[output][:, positions]
        assert got[output].shape == want.shape
        np.testing.assert_allclose(got[output], want, atol=1e-4 * max(1.0, np.abs(want).max()), rtol=0)
    # negative positions count from the end, as in numpy; positions outside [-L, L) are refused
    from_end = session.run(names, {model.input_name: model.to_model_layout(seqs), "positions": positions - length})
    for output, value in zip(model.output_names, from_end):
        np.testing.assert_array_equal(value, got[output])
    for outside in (length, -length - 1):
        with pytest.raises(Exception, match="out of data bounds"):
            session.run(names, {model.input_name: model.to_model_layout(seqs), "positions": np.array([outside])})


def test_standalone_graph_with_linear_heads():
    """The standalone graph takes any positions in one call, so dense heads stay full there; the sum head is
    incremental in both. Either way it equals naive."""
    model = onnxism.load(linear_heads_model())
    seqs = random_onehot(2, 30, seed=3)
    positions = np.array([0, 7, 15, 29], np.int64)
    session = make_session(build_standalone_fast_model(model, model.output_names, 30).SerializeToString())
    got = session.run([f"{name}__ism" for name in model.output_names], {"x": seqs, "positions": positions})
    expected = onnxism.ism(model, seqs, method="naive")
    for name, value in zip(model.output_names, got):
        want = expected[name][:, positions]
        np.testing.assert_allclose(value, want, atol=1e-4 * max(1.0, np.abs(want).max()), rtol=0)


@pytest.mark.parametrize("name", ["strided_conv_transposes", "nearest_upsampling", "avgpool_excluding_pads",
                                  "linear_upsampling_and_gathers", "resize_modes", "reverse_complement_average",
                                  "softmax_pooling_and_channel_groups", "constant_flanks_and_position_channels"])
def test_standalone_graph_computes_every_gather_kind_in_the_graph(tmp_path, name):
    """The windows of a strided ConvTranspose (a per-row shift), a nearest Resize (a column map), an average
    pool that excludes its pads (divisors by output column), torch's linear upsampling (gathers along the length
    after ``normalise``, weights by output column), the Resize op's weighted taps, a Reshape splitting the
    length (softmax pooling) and constant flanks (a Pad and a constant by output column after ``normalise``), at
    both ends and inside: equal to naive."""
    if name == "resize_modes":
        model = onnxism.load(resize_model())
    else:
        torch = pytest.importorskip("torch")
        from onnxism_converters import torch_to_onnx

        from architectures import architectures

        torch.manual_seed(3)
        module = architectures()[name].eval()
        torch_to_onnx(module, torch.zeros(2, 4, 40), tmp_path / "model.onnx")
        model = onnxism.load(tmp_path / "model.onnx")
    seqs = random_onehot(2, 40, seed=9, n_fraction=0.05)
    positions = np.array([0, 1, 2, 17, 20, 37, 38, 39], np.int64)
    session = make_session(build_standalone_fast_model(model, model.output_names, 40).SerializeToString())
    got = session.run([f"{output}__ism" for output in model.output_names],
                      {model.input_name: model.to_model_layout(seqs), "positions": positions})
    expected = onnxism.ism(model, seqs, method="naive")
    for output, value in zip(model.output_names, got):
        want = expected[output][:, positions]
        np.testing.assert_allclose(value, want, atol=1e-4 * max(1.0, np.abs(want).max()), rtol=0)


def test_compiled_fast_graph_runs_in_plain_onnxruntime(tmp_path, example_seqs):
    compiled = tmp_path / "motif.ism.onnx"
    result = onnxism_cli("compile", MODEL, "--method", "fast", "-o", compiled)
    assert result.returncode == 0, result.stderr
    script = textwrap.dedent(f"""
        import sys
        import numpy as np
        import onnxruntime as ort
        session = ort.InferenceSession({str(compiled)!r}, providers=["CPUExecutionProvider"])
        seqs = np.load({SEQS!r}).transpose(0, 2, 1)  # the model takes (N, 4, L)
        positions = np.arange(95, 115, dtype=np.int64)
        (scores,) = session.run(["logit__ism"], {{"seqs": seqs, "positions": positions}})
        assert "onnxism" not in sys.modules
        np.save({str(tmp_path / "ism.npy")!r}, scores)
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr
    expected = onnxism.ism(MODEL, example_seqs, method="naive", positions=(95, 115))["logit"]
    np.testing.assert_allclose(np.load(tmp_path / "ism.npy"), expected, atol=1e-4 * np.abs(expected).max())


def test_fixed_batch_graph_is_refused(tmp_path):
    path = tmp_path / "fixed.onnx"
    import onnx

    onnx.save(conv_model(batch=3, baked_batch=True), path)
    assert_clean_failure(onnxism_cli("compile", path, "--method", "fast", "-o", tmp_path / "x.onnx"),
                         "fixed batch size")
    assert not (tmp_path / "x.onnx").exists()
