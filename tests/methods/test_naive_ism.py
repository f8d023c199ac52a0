"""Naive ISM against the loop oracle, and the properties every ISM method must keep."""

import functools

import numpy as np
import pytest

import onnxism

from conftest import loop_ism, random_onehot, require_cuda
from onnx_builders import conv_model

naive_ism = functools.partial(onnxism.ism, method="naive")


@pytest.mark.parametrize("layout", ["NLC", "NCL"])
def test_naive_equals_loop_oracle(layout):
    model = conv_model(layout=layout)
    seqs = random_onehot(3, 20, seed=1, n_fraction=0.1)
    got = naive_ism(model, seqs, batch_size=7)
    expected = loop_ism(model, seqs)
    assert got["y"].shape == (3, 20, 4, 3) and got["y"].dtype == np.float32
    np.testing.assert_allclose(got["y"], expected["y"], rtol=1e-5, atol=1e-6)


def test_reference_base_is_exactly_zero_and_n_positions_get_all_four_bases():
    seqs = random_onehot(2, 20, seed=2)
    seqs[0, 4] = 0.0  # an N
    scores = naive_ism(conv_model(), seqs)["y"]
    bases = seqs.argmax(axis=2)
    for n in range(2):
        for i in range(20):
            if n == 0 and i == 4:
                assert np.all(np.abs(scores[n, i]).sum(axis=1) > 0)  # all 4 substitutions scored
            else:
                assert np.all(scores[n, i, bases[n, i]] == 0.0)


def test_window_equals_the_same_slice_of_the_full_run():
    seqs = random_onehot(2, 20, seed=3)
    full = naive_ism(conv_model(), seqs)["y"]
    part = naive_ism(conv_model(), seqs, positions=(5, 13))["y"]
    assert part.shape[1] == 8
    np.testing.assert_array_equal(part, full[:, 5:13])


@pytest.mark.parametrize("batch_size", [1, 5, 64, 1000])
def test_batch_size_invariance(batch_size):
    seqs = random_onehot(3, 20, seed=4)
    base = naive_ism(conv_model(), seqs, batch_size=16)["y"]
    np.testing.assert_allclose(naive_ism(conv_model(), seqs, batch_size=batch_size)["y"], base,
                               rtol=1e-6, atol=1e-6)


def test_sequence_order_invariance():
    seqs = random_onehot(4, 20, seed=5)
    order = np.array([2, 0, 3, 1])
    base = naive_ism(conv_model(), seqs)["y"]
    np.testing.assert_allclose(naive_ism(conv_model(), seqs[order])["y"], base[order], rtol=1e-6, atol=1e-6)


def test_rows_evaluated_are_three_per_position_plus_one_per_n():
    model = onnxism.load(conv_model())
    seqs = random_onehot(3, 20, seed=6)
    seqs[1, 2] = 0.0
    rows = []
    original = model.run

    def counting(batch, outputs, device="cpu", threads=None, extras=None):
        rows.append(len(batch))
        return original(batch, outputs, device, threads, extras)

    model.run = counting
    naive_ism(model, seqs, positions=(0, 10), batch_size=8)
    # one reference row per sequence, then 3 per position (4 at the N)
    assert sum(rows) == 3 + 3 * 3 * 10 + 1


def test_chunks_stream_in_order_with_references():
    seqs = random_onehot(5, 20, seed=7)
    ranges = []
    for start, stop, reference, scores in onnxism.ism_chunks(conv_model(), seqs, method="naive", batch_size=8):
        ranges.append((start, stop))
        np.testing.assert_allclose(reference["y"], onnxism.predict(conv_model(), seqs[start:stop])["y"], rtol=1e-6)
    assert ranges[0][0] == 0 and ranges[-1][1] == 5
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))


def test_progress_callback_reaches_the_total():
    seen = []
    naive_ism(conv_model(), random_onehot(3, 20), progress=lambda done, total: seen.append((done, total)))
    assert seen and seen[-1][0] == pytest.approx(seen[-1][1]) == pytest.approx(3)


@pytest.mark.parametrize("method", ["naive", "fast", "tism"])
def test_progress_must_be_a_flag_or_a_callable(method, capsys):
    """A string or a number for ``progress`` is refused by name (it used to be read as a quiet run); numpy's True
    draws the bar as True does."""
    run = onnxism.tism if method == "tism" else functools.partial(onnxism.ism, method=method)
    seqs = random_onehot(2, 20)
    for wrong in ("yes", 1):
        with pytest.raises(onnxism.InputError, match=f"progress must be True, False, None or a callable "
                                                     rf"f\(done, total\); got {wrong!r}"):
            run(conv_model(), seqs, progress=wrong)
    capsys.readouterr()
    run(conv_model(), seqs, progress=np.bool_(True))
    assert "2/2 seqs" in capsys.readouterr().err


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"positions": (5, 5)}, onnxism.InputError, r"invalid positions window \[5, 5\)"),
        ({"positions": (-1, 5)}, onnxism.InputError, "need 0 <= start < end <= 20"),
        ({"positions": (0, 21)}, onnxism.InputError, "need 0 <= start < end <= 20"),
        ({"positions": (0.5, 3)}, onnxism.InputError, "two integers"),
        ({"positions": 7}, onnxism.InputError, r"\(start, end\)"),
        ({"method": "magic"}, onnxism.InputError, "unknown method 'magic'; available: fast, naive"),
        ({"batch_size": 0}, onnxism.InputError, "positive integer"),
        ({"workers": 0}, onnxism.InputError, "workers must be a positive integer; got 0"),
        ({"workers": 1.5}, onnxism.InputError, "workers must be a positive integer; got 1.5"),
        ({"device": "tpu"}, onnxism.DeviceError, "unknown device 'tpu'"),
        ({"outputs": ["nope"]}, onnxism.InputError, "unknown output name 'nope'"),
    ],
)
def test_bad_options_are_refused(kwargs, error, message):
    with pytest.raises(error, match=message):
        naive_ism(conv_model(), random_onehot(1, 20), **kwargs)


def test_cuda_request_without_cuda_fails_clearly():
    if onnxism.cuda_available():
        pytest.skip("this onnxruntime has CUDA; covered by the cuda-marked tests")
    with pytest.raises(onnxism.DeviceError, match="no CUDA provider"):
        naive_ism(conv_model(), random_onehot(1, 20), device="cuda")


@pytest.mark.cuda
def test_cuda_matches_cpu():
    require_cuda()
    seqs = random_onehot(3, 20, seed=8)
    np.testing.assert_allclose(naive_ism(conv_model(), seqs, device="cuda")["y"],
                               naive_ism(conv_model(), seqs)["y"], rtol=1e-4, atol=1e-5)
