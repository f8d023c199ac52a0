"""onnxism.tism, `run --method tism` and `compile --method tism` against independent references.

References: torch autograd on the same weights (the Taylor term computed by hand from its Jacobian), exact ISM on
the trained example (correlation, as the TISM paper reports it), and linearity of the gradient in the targets.
"""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import onnxism
from onnxism.errors import InputError

from cli_helpers import MODEL, SEQS, assert_clean_failure, onnxism_cli
from conftest import random_onehot, require_cuda
from onnx_builders import conv_model


def _torch_jacobian(module, seqs):
    """d output / d input per sequence from torch: (N, *output_shape, L, 4)."""
    import torch

    rows = []
    for seq in seqs:
        x = torch.tensor(seq.T[None].copy())
        jac = torch.autograd.functional.jacobian(lambda z: module(z)[0], x)  # (*out, 1, 4, L)
        rows.append(np.moveaxis(jac.numpy()[..., 0, :, :], -2, -1))
    return np.stack(rows)


def test_tism_equals_the_taylor_term_from_torch(zoo_export):
    path, module = zoo_export("basset_small", "torch")
    seqs = random_onehot(2, onnxism.load(path).length, seed=4, n_fraction=0.05)
    got = onnxism.tism(path, seqs)
    (name,) = got
    jac = _torch_jacobian(module, seqs)  # (N, *out, L, 4)
    jac = np.moveaxis(jac, (-2, -1), (1, 2))  # (N, L, 4, *out)
    onehot = seqs.reshape(seqs.shape + (1,) * (jac.ndim - 3))
    expected = jac - (jac * onehot).sum(axis=2, keepdims=True)
    assert got[name].shape == onnxism.ism(path, seqs, method="naive")[name].shape == expected.shape
    np.testing.assert_allclose(got[name], expected, atol=1e-5 * max(1.0, np.abs(expected).max()), rtol=0)
    reference_base = seqs.astype(bool)
    assert np.all(got[name][reference_base] == 0)
    at_n = ~seqs.any(axis=-1)  # an N position gets the plain gradient: the Taylor term of adding base b
    np.testing.assert_allclose(got[name][at_n], jac[at_n], atol=1e-5 * max(1.0, np.abs(jac).max()))


def test_attributions_from_one_gradient(example_model, example_seqs):
    kinds = {kind: onnxism.tism(example_model, example_seqs, attribution=kind)["logit"][..., 0]
             for kind in onnxism.ATTRIBUTIONS}
    g, x = kinds["gradient"], example_seqs
    np.testing.assert_allclose(kinds["gradient_x_input"], g * x, atol=1e-7)
    np.testing.assert_allclose(kinds["centred"], g - g.mean(axis=-1, keepdims=True), atol=1e-6)
    np.testing.assert_allclose(kinds["tism"], g - (g * x).sum(axis=-1, keepdims=True), atol=1e-6)
    np.testing.assert_allclose(kinds["centred"].sum(axis=-1), 0, atol=1e-5)


def test_targets_are_linear_combinations_of_elements(zoo_export):
    path, _ = zoo_export("bpnet_small", "torch")
    model = onnxism.load(path)
    seqs = random_onehot(3, model.length, seed=9)
    shapes = model.output_shapes(model.length)
    profile = "profile" if "profile" in shapes else model.output_names[0]
    full = onnxism.tism(model, seqs, targets={profile: "all"}, positions=(10, 30))[profile]
    assert full.shape == (3, 20, 4) + shapes[profile]
    axes = tuple(range(3, full.ndim))
    total = onnxism.tism(model, seqs, targets={profile: "sum"}, positions=(10, 30))[profile]
    np.testing.assert_allclose(total, full.sum(axis=axes), atol=1e-4 * np.abs(total).max())
    mean = onnxism.tism(model, seqs, targets={profile: "mean"}, positions=(10, 30))[profile]
    np.testing.assert_allclose(mean, full.mean(axis=axes), atol=1e-4 * np.abs(mean).max())
    index = tuple(s // 2 for s in shapes[profile])
    one = onnxism.tism(model, seqs, targets={profile: index}, positions=(10, 30))[profile]
    np.testing.assert_allclose(one, full[(Ellipsis,) + index], atol=1e-6)
    weights = np.random.default_rng(0).standard_normal((2,) + shapes[profile]).astype(np.float32)
    weighted = onnxism.tism(model, seqs, targets={profile: weights}, positions=(10, 30))[profile]
    assert weighted.shape == (3, 20, 4, 2)
    expected = np.tensordot(full, weights, axes=(axes, tuple(range(1, weights.ndim))))
    np.testing.assert_allclose(weighted, expected, atol=1e-4 * np.abs(expected).max())


def test_tism_correlates_with_ism_on_the_trained_example(example_model, example_seqs):
    exact = onnxism.ism(example_model, example_seqs)["logit"]
    taylor = onnxism.tism(example_model, example_seqs)["logit"]
    r = [np.corrcoef(exact[n].ravel(), taylor[n].ravel())[0, 1] for n in range(len(example_seqs))]
    assert min(r) > 0.9, r


def test_window_batch_size_and_fixed_batch_change_nothing():
    dynamic = conv_model(length=20)
    fixed = conv_model(length=20, batch=3, baked_batch=True)
    seqs = random_onehot(5, 20, seed=2, n_fraction=0.1)
    full = onnxism.tism(dynamic, seqs)["y"]
    np.testing.assert_allclose(onnxism.tism(dynamic, seqs, batch_size=1)["y"], full, atol=1e-6)
    np.testing.assert_allclose(onnxism.tism(fixed, seqs)["y"], full, atol=1e-6)
    np.testing.assert_allclose(onnxism.tism(dynamic, seqs, positions=(4, 9))["y"], full[:, 4:9], atol=1e-6)
    ncl = conv_model(length=20, layout="NCL")
    np.testing.assert_allclose(onnxism.tism(ncl, seqs)["y"], full, atol=1e-6)


@pytest.mark.parametrize("kwargs, message", [
    ({"attribution": "saliency"}, "unknown attribution"),
    ({"targets": (5,)}, "does not fit output"),
    ({"targets": "max"}, "unknown target"),
    ({"targets": np.ones((2, 2))}, "target weights"),
    ({"targets": {"nope": "sum"}}, "unknown output name"),
    ({"positions": (5, 2)}, "invalid positions"),
])
def test_bad_arguments_are_named(example_model, example_seqs, kwargs, message):
    with pytest.raises(InputError, match=message):
        onnxism.tism(example_model, example_seqs, **kwargs)


def test_cli_run_tism_writes_the_api_result(tmp_path, example_seqs):
    out = tmp_path / "tism.npz"
    result = onnxism_cli("run", MODEL, SEQS, "--method", "tism", "--attribution", "centred", "-o", out)
    assert result.returncode == 0, result.stderr
    assert "centred from gradients" in result.stdout
    with np.load(out) as archive:
        assert sorted(archive.files) == ["attribution", "logit", "onehot", "positions", "reference/logit"]
        expected = onnxism.tism(MODEL, example_seqs, attribution="centred")["logit"]
        np.testing.assert_allclose(archive["logit"], expected, atol=1e-6)
        np.testing.assert_allclose(archive["reference/logit"], onnxism.predict(MODEL, example_seqs)["logit"],
                                   atol=1e-6)
    summed = tmp_path / "sum.npz"
    assert onnxism_cli("run", MODEL, SEQS, "--method", "tism", "--targets", "sum", "-o", summed).returncode == 0
    with np.load(summed) as archive:
        assert archive["logit"].shape == (8, 200, 4)


@pytest.mark.parametrize("args, message", [
    (["--attribution", "gradient"], "unknown attribution 'gradient' for ISM (it is a form of --method tism)"),
    (["--method", "tism", "--targets", "a,b"], "--targets must be"),
    (["--method", "tism", "--targets", "3"], "does not fit output"),
])
def test_cli_tism_bad_options(tmp_path, args, message):
    out = tmp_path / "x.npz"
    assert_clean_failure(onnxism_cli("run", MODEL, SEQS, "-o", out, *args), message)
    assert not out.exists()


def test_compiled_graph_runs_in_plain_onnxruntime(tmp_path, example_seqs):
    compiled = tmp_path / "motif.tism.onnx"
    result = onnxism_cli("compile", MODEL, "--method", "tism", "-o", compiled)
    assert result.returncode == 0, result.stderr
    script = textwrap.dedent(f"""
        import sys
        import numpy as np
        import onnxruntime as ort
        session = ort.InferenceSession({str(compiled)!r}, providers=["CPUExecutionProvider"])
        seqs = np.load({SEQS!r}).transpose(0, 2, 1)  # the model takes (N, 4, L)
        grad, tism = session.run(["gradient", "tism"], {{"seqs": seqs, "seed__logit": np.ones((1, 1), np.float32)}})
        assert "onnxism" not in sys.modules
        np.save({str(tmp_path / "tism.npy")!r}, tism)
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr
    standalone = np.load(tmp_path / "tism.npy").transpose(0, 1, 3, 2)  # (S=1, N, 4, L) -> (S, N, L, 4)
    expected = onnxism.tism(MODEL, example_seqs)["logit"][..., 0]
    np.testing.assert_allclose(standalone[0], expected, atol=1e-6)


def test_compile_refusals(tmp_path):
    taken = tmp_path / "taken.onnx"
    taken.write_bytes(b"x")
    assert_clean_failure(onnxism_cli("compile", MODEL, "-o", taken), "exists")
    assert taken.read_bytes() == b"x"
    assert_clean_failure(onnxism_cli("compile", MODEL, "-o", tmp_path / "l.onnx", "--length", "300"),
                         "differs from the model's fixed length")



@pytest.mark.cuda
def test_tism_on_cuda_matches_cpu():
    require_cuda()
    seqs = random_onehot(3, 20, seed=8)
    np.testing.assert_allclose(onnxism.tism(conv_model(), seqs, device="cuda")["y"],
                               onnxism.tism(conv_model(), seqs)["y"], rtol=1e-4, atol=1e-5)


def test_cli_tism_on_an_op_without_a_rule_fails_cleanly(tmp_path):
    import onnx

    from gradient_cases import Case

    c = Case(opset=17)
    model = c.model(c.op("MeanVarianceNormalization", [c.ncl()], axes=[1]))
    path, out = tmp_path / "mvn.onnx", tmp_path / "x.npz"
    onnx.save(model, path)
    np.save(tmp_path / "seqs.npy", random_onehot(2, 12))
    result = onnxism_cli("run", path, tmp_path / "seqs.npy", "--method", "tism", "-o", out)
    assert_clean_failure(result, "no gradient rule for MeanVarianceNormalization")
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mvn.onnx", "seqs.npy"]
