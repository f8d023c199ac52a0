"""ISM of targets (``ism(targets=...)``, ``run --targets`` with fast and naive) against the loop oracle.

Reference: the loop oracle's ISM of every output element (mutants built by hand, one ``predict`` each), with the
target weights applied to it in float64. ISM is linear in f, so the target's ISM must equal that combination.
"""

import subprocess
import sys
import warnings

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import onnxism
from onnxism.errors import InputError
from onnxism.fast.plan import build_plan
from onnxism.methods.targets import resolve_targets
from onnxism.passes.fold_targets import fold_targets
from onnxism.runtime.sessions import make_session

from cli_helpers import assert_clean_failure, onnxism_cli
from conftest import loop_ism, random_onehot
from onnx_builders import conv_model

LENGTH = 24


def profile_model(*, output_type=TensorProto.FLOAT, seed=0):
    """x (N, L, 4) -> Conv(4 -> 6, k=5, same) -> Relu -> Conv(6 -> 2, k=3, same) -> profile (N, 2, L), a windowed
    output (``output_type``: a Cast to it at the end), and counts (N, 1) = ReduceSum of Softplus of the profile."""
    rng = np.random.default_rng(seed)
    weights = {
        "w1": rng.standard_normal((6, 4, 5)), "b1": rng.standard_normal(6),
        "w2": 0.5 * rng.standard_normal((2, 6, 3)), "b2": rng.standard_normal(2),
        "axes": np.array([1, 2], np.int64),
    }
    initializers = [numpy_helper.from_array(value if value.dtype == np.int64 else value.astype(np.float32), name)
                    for name, value in weights.items()]
    nodes = [
        helper.make_node("Transpose", ["x"], ["xt"], perm=[0, 2, 1]),
        helper.make_node("Conv", ["xt", "w1", "b1"], ["c1"], pads=[2, 2]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["p" if output_type != TensorProto.FLOAT else "profile"],
                         pads=[1, 1]),
        helper.make_node("Softplus", ["p" if output_type != TensorProto.FLOAT else "profile"], ["s"]),
        helper.make_node("ReduceSum", ["s", "axes"], ["counts"], keepdims=0),
    ]
    if output_type != TensorProto.FLOAT:
        nodes.append(helper.make_node("Cast", ["p"], ["profile"], to=output_type))
    graph = helper.make_graph(
        nodes, "profile", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", LENGTH, 4])],
        [helper.make_tensor_value_info("profile", output_type, ["N", 2, LENGTH]),
         helper.make_tensor_value_info("counts", TensorProto.FLOAT, ["N"])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 10
    return model


def _expected(oracle, seeds):
    """The oracle's ISM (N, W, 4, *shape) with seeds (T, *shape) applied, in float64: (N, W, 4, T)."""
    flat = oracle.reshape(oracle.shape[:3] + (-1,)).astype(np.float64)
    return flat @ seeds.reshape(len(seeds), -1).T.astype(np.float64)


def _tolerance(model, seqs, seeds, name):
    """float32 rounding of the targets themselves: 1e-4 of their largest value on the sequences (at least 1e-4)."""
    values = onnxism.predict(model, seqs)[name]
    targets = values.reshape(len(values), -1).astype(np.float64) @ seeds.reshape(len(seeds), -1).T
    return 1e-4 * max(1.0, np.abs(targets).max())


@pytest.fixture(scope="module")
def profile_case():
    model = profile_model()
    seqs = random_onehot(3, LENGTH, seed=11)
    return model, seqs, loop_ism(model, seqs)


TARGET_SPECS = {
    "sum": lambda shape: np.ones((1,) + shape),
    "mean": lambda shape: np.full((1,) + shape, 1.0 / np.prod(shape)),
    (1, 7): lambda shape: np.eye(np.prod(shape))[[1 * shape[1] + 7]].reshape((1,) + shape),
}


@pytest.mark.parametrize("method", ["naive", "fast"])
@pytest.mark.parametrize("spec", list(TARGET_SPECS), ids=str)
def test_named_targets_equal_the_oracle_combined(profile_case, method, spec):
    model, seqs, oracle = profile_case
    seeds = TARGET_SPECS[spec]((2, LENGTH))
    got = onnxism.ism(model, seqs, method=method, targets={"profile": spec})
    assert list(got) == ["profile"] and got["profile"].shape == (3, LENGTH, 4)
    expected = _expected(oracle["profile"], seeds)[..., 0]
    np.testing.assert_allclose(got["profile"], expected, rtol=0, atol=_tolerance(model, seqs, seeds, "profile"))
    bases = seqs.argmax(-1)
    assert np.all(np.take_along_axis(got["profile"], bases[..., None], -1) == 0.0)


@pytest.mark.parametrize("method", ["naive", "fast"])
def test_weight_targets_and_per_output_specs(profile_case, method):
    """K weight targets on one output, every element of the other, in one call; the window of positions."""
    model, seqs, oracle = profile_case
    weights = np.random.default_rng(3).standard_normal((2, 3, 2, LENGTH)).astype(np.float32)  # (2, 3) targets
    got = onnxism.ism(model, seqs, method=method, positions=(4, 19), targets={"profile": weights, "counts": "all"})
    assert got["profile"].shape == (3, 15, 4, 2, 3) and got["counts"].shape == (3, 15, 4)
    expected = _expected(oracle["profile"][:, 4:19], weights.reshape(6, 2, LENGTH)).reshape(3, 15, 4, 2, 3)
    atol = _tolerance(model, seqs, weights.reshape(6, 2, LENGTH), "profile")
    np.testing.assert_allclose(got["profile"], expected, rtol=0, atol=atol)
    np.testing.assert_allclose(got["counts"], oracle["counts"][:, 4:19], rtol=1e-4, atol=1e-4)


def test_fast_updates_a_windowed_output_s_target_incrementally(profile_case):
    """The folded target of a windowed output is a linear layer fast ISM updates from the window: no node is computed
    on the full length for want of a rule, and no fallback."""
    model, seqs, _ = profile_case
    loaded = onnxism.load(model)
    targets = resolve_targets({"profile": "sum"}, ["profile"], loaded.output_shapes(LENGTH), skip_whole=True)
    folded, renamed = fold_targets(loaded, targets)
    assert renamed == {"profile__target": "profile"}
    plan = build_plan(folded, LENGTH, ["profile__target"]).plan  # (an UnsupportedGraphError would fail here)
    assert plan.analysis.split_notices()[1] == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no notice at all
        onnxism.ism(loaded, seqs, targets={"profile": "sum"})
    assert fold_targets(loaded, targets)[0] is folded  # kept on the loaded model: its sessions are reused


def test_reference_of_the_chunks_is_the_target(profile_case):
    model, seqs, _ = profile_case
    predictions = onnxism.predict(model, seqs)
    (_, _, reference, scores), = list(onnxism.ism_chunks(model, seqs, targets="sum"))
    np.testing.assert_allclose(reference["profile"], predictions["profile"].sum((1, 2)), rtol=1e-5)
    np.testing.assert_allclose(reference["counts"], predictions["counts"], rtol=1e-6)
    assert scores["profile"].shape == (3, LENGTH, 4) and scores["counts"].shape == (3, LENGTH, 4)


def test_an_output_that_is_not_float32_is_cast(profile_case):
    _, seqs, oracle = profile_case
    model = profile_model(output_type=TensorProto.DOUBLE)
    got = onnxism.ism(model, seqs, method="fast", targets={"profile": "sum"})
    seeds = np.ones((1, 2, LENGTH))
    np.testing.assert_allclose(got["profile"], _expected(oracle["profile"], seeds)[..., 0], rtol=0,
                               atol=_tolerance(model, seqs, seeds, "profile"))


def test_a_name_clash_gets_a_fresh_name():
    model = conv_model()
    model.graph.node.append(helper.make_node("Identity", ["y"], ["y__target"]))
    model.graph.output.append(helper.make_tensor_value_info("y__target", TensorProto.FLOAT, ["N", 3]))
    seqs = random_onehot(2, 20, seed=5)
    got = onnxism.ism(model, seqs, method="naive", targets={"y": "sum", "y__target": (2,)})
    oracle = loop_ism(model, seqs)
    np.testing.assert_allclose(got["y"], oracle["y"].sum(-1), atol=1e-5)
    np.testing.assert_allclose(got["y__target"], oracle["y__target"][..., 2], atol=1e-6)


@pytest.mark.parametrize("targets, message", [
    ({"profile": (2, 0)}, "does not fit output"),
    ({"profile": "max"}, "unknown target"),
    ({"nope": "sum"}, "unknown output name"),
    ({"profile": np.ones((0, 2, LENGTH))}, "no targets"),
    ({"profile": np.full((2, LENGTH), np.nan)}, "NaN"),
])
def test_bad_targets_are_named(targets, message):
    with pytest.raises(InputError, match=message):
        onnxism.ism(profile_model(), random_onehot(1, LENGTH), targets=targets)


def test_cli_run_fast_with_a_target(tmp_path):
    model_path, seqs_path = tmp_path / "profile.onnx", tmp_path / "seqs.npy"
    onnx.save(profile_model(), model_path)
    seqs = random_onehot(4, LENGTH, seed=2)
    np.save(seqs_path, seqs)
    out = tmp_path / "out.npz"
    run = subprocess.run([sys.executable, "-m", "onnxism", "run", str(model_path), str(seqs_path), "--targets",
                          "sum", "--outputs", "profile", "-o", str(out)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    with np.load(out) as archive:
        assert sorted(archive.files) == ["attribution", "onehot", "positions", "profile", "reference/profile"]
        np.testing.assert_allclose(archive["profile"], onnxism.ism(model_path, seqs, method="naive")["profile"]
                                   .sum((3, 4)), atol=1e-4)
        np.testing.assert_allclose(archive["reference/profile"],
                                   onnxism.predict(model_path, seqs)["profile"].sum((1, 2)), rtol=1e-5)


def _compiled_cases():
    """case -> (targets, {output: seeds (T, *shape)}, {output: target shape})."""
    weights = np.random.default_rng(4).standard_normal((2, 3, 2, LENGTH)).astype(np.float32)
    one = np.ones((1,))
    return {
        "sum of each": ("sum", {"profile": np.ones((1, 2, LENGTH)), "counts": one}, {"profile": (), "counts": ()}),
        "an element and every element": ({"profile": (1, 7), "counts": "all"},
                                         {"profile": TARGET_SPECS[(1, 7)]((2, LENGTH)), "counts": one},
                                         {"profile": (), "counts": ()}),
        "(2, 3) weights and a mean": ({"profile": weights, "counts": "mean"},
                                      {"profile": weights.reshape(6, 2, LENGTH), "counts": one},
                                      {"profile": (2, 3), "counts": ()}),
    }


@pytest.mark.parametrize("case", list(_compiled_cases()))
def test_the_compiled_fast_graph_scores_targets(profile_case, case):
    """``compile --method fast`` with targets: NAME__ism is the target's ISM at the positions asked for (the oracle
    combined in float64) and NAME the target on the sequences, in the target's shape."""
    model, seqs, oracle = profile_case
    targets, seeds, shapes = _compiled_cases()[case]
    proto = onnxism.compile_fast(model, length=LENGTH, targets=targets)
    session = make_session(proto.SerializeToString())
    positions = np.array([0, 1, 11, 22, 23], np.int64)
    got = dict(zip([value.name for value in session.get_outputs()],
                   session.run(None, {"x": seqs, "positions": positions})))
    assert sorted(got) == ["counts", "counts__ism", "profile", "profile__ism"]
    predictions = onnxism.predict(model, seqs)
    for name in ("profile", "counts"):
        expected = _expected(oracle[name][:, positions], seeds[name]).reshape((3, 5, 4) + shapes[name])
        assert got[f"{name}__ism"].shape == expected.shape
        np.testing.assert_allclose(got[f"{name}__ism"], expected, rtol=0,
                                   atol=_tolerance(model, seqs, seeds[name], name))
        values = predictions[name].reshape(3, -1).astype(np.float64) @ seeds[name].reshape(len(seeds[name]), -1).T
        np.testing.assert_allclose(got[name], values.reshape((3,) + shapes[name]), rtol=1e-5, atol=1e-5)


def test_cli_targets_from_a_weights_file(tmp_path):
    """``--targets FILE.npy`` in ``run`` and ``compile --method fast``; the compiled graph run by plain onnxruntime,
    without onnxism imported."""
    model_path, seqs_path, weights_path = tmp_path / "profile.onnx", tmp_path / "seqs.npy", tmp_path / "w.npy"
    onnx.save(profile_model(), model_path)
    seqs = random_onehot(3, LENGTH, seed=6)
    np.save(seqs_path, seqs)
    weights = np.random.default_rng(5).standard_normal((4, 2, LENGTH))
    np.save(weights_path, weights)
    oracle = loop_ism(profile_model(), seqs)["profile"]
    expected = _expected(oracle, weights)
    atol = _tolerance(profile_model(), seqs, weights, "profile")

    out = tmp_path / "out.npz"
    run = onnxism_cli("run", model_path, seqs_path, "--targets", weights_path, "--outputs", "profile", "-o", out)
    assert run.returncode == 0, run.stderr
    with np.load(out) as archive:
        np.testing.assert_allclose(archive["profile"], expected, rtol=0, atol=atol)

    compiled = tmp_path / "profile.ism.onnx"
    run = onnxism_cli("compile", model_path, "--method", "fast", "--targets", weights_path, "--outputs", "profile",
                      "-o", compiled)
    assert run.returncode == 0, run.stderr
    assert "target" in run.stdout
    script = (
        "import sys, numpy as np, onnxruntime as ort\n"
        f"session = ort.InferenceSession({str(compiled)!r}, providers=['CPUExecutionProvider'])\n"
        f"seqs = np.load({str(seqs_path)!r})\n"
        "scores, = session.run(['profile__ism'], {'x': seqs, 'positions': np.arange(24, dtype=np.int64)})\n"
        "assert 'onnxism' not in sys.modules\n"
        f"np.save({str(tmp_path / 'compiled.npy')!r}, scores)\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr
    np.testing.assert_allclose(np.load(tmp_path / "compiled.npy"), expected, rtol=0, atol=atol)


@pytest.mark.parametrize("args, message", [
    (["--method", "tism", "--targets", "sum"], "--targets applies to --method fast"),
    (["--method", "fast", "--targets", "missing.npy"], "cannot read the weights: file not found: missing.npy"),
    (["--method", "fast", "--targets", "empty.npy"], "empty.npy is not a readable .npy array: it has no NPY header"),
    (["--method", "fast", "--targets", "folder.npy"], "file is a folder, expected a .npy file: folder.npy"),
    (["--method", "fast", "--targets", "wrong.npy"], "need (2, 24)"),
    (["--method", "fast", "--targets", "text.npy"], "must be real numbers"),
    (["--method", "fast", "--targets", "max"], "--targets must be"),
])
def test_cli_compile_bad_targets_are_named(tmp_path, args, message):
    model_path = tmp_path / "profile.onnx"
    onnx.save(profile_model(), model_path)
    np.save(tmp_path / "wrong.npy", np.ones((3, 24)))
    np.save(tmp_path / "text.npy", np.array(["a", "b"]))
    (tmp_path / "empty.npy").write_bytes(b"")
    (tmp_path / "folder.npy").mkdir()
    out = tmp_path / "x.onnx"
    assert_clean_failure(onnxism_cli("compile", model_path, "-o", out, "--outputs", "profile", *args, cwd=tmp_path),
                         message)
    assert not out.exists()
