"""Attribution forms (``methods/attributions.py``), the same names and meaning for ISM and TISM: the delta, the delta
centred over the 4 bases, and that centred score at the observed base. The oracle: the loop ISM (each mutant run by
``predict``) with the forms computed from it in float64; for TISM, the gradient graph's own gradient form.

Tolerance (stated): 1e-5 of each output's largest magnitude (fast and naive against the loop, as everywhere).
"""

import numpy as np
import pytest

import onnxism

from conftest import loop_ism, random_onehot
from onnx_builders import conv_model


def _forms(delta, onehot):
    """The forms from a float64 delta (n, W, 4, *shape) and one-hot (n, W, 4), written out independently."""
    delta = delta.astype(np.float64)
    centred = delta - delta.mean(axis=2, keepdims=True)
    mask = onehot.astype(np.float64).reshape(onehot.shape + (1,) * (delta.ndim - 3))
    return {"delta": delta, "centred": centred, "projected": centred * mask}


@pytest.mark.parametrize("method", ["fast", "naive"])
@pytest.mark.parametrize("form", ["delta", "centred", "projected"])
def test_ism_forms_equal_the_loop_oracle_s(method, form):
    model = conv_model(length=20)
    seqs = random_onehot(3, 20, seed=1, n_fraction=0.1)
    expected = _forms(loop_ism(model, seqs, 4, 15)["y"], seqs[:, 4:15])[form]
    got = onnxism.ism(model, seqs, method=method, positions=(4, 15), attribution=form)["y"]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5 * max(1.0, np.abs(expected).max()))
    if form == "centred":
        np.testing.assert_allclose(got.sum(axis=2), 0, atol=1e-5)  # each position's 4 scores sum to 0
    if form == "projected":
        assert np.all(got[seqs[:, 4:15].sum(2) == 0] == 0)  # nothing at an N


def test_tism_forms_have_the_same_meaning_as_ism_s():
    """TISM's delta is its "tism"; its centred and projected forms are those of its delta, as ISM's are of its."""
    model = conv_model(length=20)
    seqs = random_onehot(2, 20, seed=2, n_fraction=0.1)
    forms = {form: onnxism.tism(model, seqs, attribution=form)["y"] for form in
             ("tism", "delta", "centred", "projected", "gradient")}
    np.testing.assert_array_equal(forms["delta"], forms["tism"])
    expected = _forms(forms["delta"], seqs)
    for form in ("centred", "projected"):
        np.testing.assert_allclose(forms[form], expected[form], rtol=0, atol=1e-6)
    gradient_centred = forms["gradient"] - forms["gradient"].mean(axis=2, keepdims=True)
    np.testing.assert_allclose(forms["centred"], gradient_centred, rtol=0, atol=1e-6)


def test_an_unknown_form_is_refused_naming_the_method_s_forms():
    with pytest.raises(onnxism.InputError, match=r"unknown attribution 'gradient' for ISM \(it is a form of "
                                                 r"--method tism\); available: delta, centred, projected"):
        onnxism.ism(conv_model(), random_onehot(1, 20), attribution="gradient")


def test_the_archive_holds_the_sequences_and_the_form(tmp_path):
    seqs = random_onehot(3, 20, seed=3, n_fraction=0.1)
    path = onnxism.ism_to_npz(conv_model(), seqs, tmp_path / "out.npz", positions=(2, 9), attribution="centred")
    with np.load(path) as archive:
        assert archive["onehot"].dtype == np.uint8 and np.array_equal(archive["onehot"], seqs)
        assert str(archive["attribution"]) == "centred" and list(archive["positions"]) == list(range(2, 9))
        np.testing.assert_array_equal(archive["y"], onnxism.ism(conv_model(), seqs, positions=(2, 9),
                                                                attribution="centred")["y"])
