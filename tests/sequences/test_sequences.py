"""Sequence checks and file reading: every refusal names the problem; FASTA policy (case, N) as documented."""

import numpy as np
import pytest

import onnxism
from onnxism.io import user_files
from onnxism.sequences import as_sequences, read_sequences, reference_bases

from conftest import random_onehot


def test_valid_onehot_with_n_positions_passes():
    seqs = random_onehot(3, 10, n_fraction=0.2)
    assert as_sequences(seqs).onehot().shape == (3, 10, 4)
    bases = reference_bases(seqs)
    assert ((bases == -1) == (seqs.sum(axis=2) == 0)).all()
    assert (bases[bases >= 0] == seqs.argmax(axis=2)[bases >= 0]).all()


@pytest.mark.parametrize(
    "array, message",
    [
        (np.zeros((10, 4), np.float32), r"shape \(N, L, 4\); got shape \(10, 4\) \(a single sequence"),
        (np.zeros((2, 10, 5), np.float32), "4 channels"),
        (np.zeros((2, 4, 10), np.float32), "channels first"),
        (np.zeros((0, 10, 4), np.float32), "empty"),
        (np.array([["a"]]), "numeric"),
        (np.zeros((2, 10, 4), np.complex64), "real numbers .* complex64"),
    ],
)
def test_bad_shapes_and_types(array, message):
    with pytest.raises(onnxism.InputError, match=message):
        as_sequences(array)


def test_non_onehot_names_first_bad_sequence_and_position():
    seqs = random_onehot(4, 12)
    seqs[2, 7] = [0.25, 0.25, 0.25, 0.25]
    seqs[3, 1] = [1, 1, 0, 0]
    with pytest.raises(onnxism.InputError, match="not one-hot at sequence 2, position 7"):
        as_sequences(seqs)
    seqs[2, 7] = [0, 0, 1, 0]
    with pytest.raises(onnxism.InputError, match="not one-hot at sequence 3, position 1"):
        as_sequences(seqs)


def test_nan_is_named():
    seqs = random_onehot(2, 12)
    seqs[1, 5, 2] = np.nan
    with pytest.raises(onnxism.InputError, match="non-finite value .* sequence 1, position 5"):
        as_sequences(seqs)


def test_length_must_match_the_model():
    with pytest.raises(onnxism.InputError, match="length 12, but the model takes length 20"):
        as_sequences(random_onehot(1, 12), length=20)


def test_npy_file_is_memory_mapped_and_checked(tmp_path):
    seqs = random_onehot(3, 9)
    np.save(tmp_path / "s.npy", seqs)
    loaded = read_sequences(tmp_path / "s.npy")
    np.testing.assert_array_equal(loaded.onehot(1, 3), seqs[1:3])
    (tmp_path / "bad.npy").write_bytes(b"nonsense")
    with pytest.raises(onnxism.InputError, match=r"not a readable .npy array: it has no NPY header \(save it"):
        read_sequences(tmp_path / "bad.npy")
    np.save(tmp_path / "objects.npy", np.array([seqs[0], "ACGT"], dtype=object), allow_pickle=True)
    with pytest.raises(onnxism.InputError, match=r"not a readable .npy array: it holds Python objects, not numbers; "
                                                 r"save a numeric one-hot array \(N, L, 4\)"):
        read_sequences(tmp_path / "objects.npy")
    (tmp_path / "cut.npy").write_bytes((tmp_path / "s.npy").read_bytes()[:100])
    with pytest.raises(onnxism.InputError, match="not a readable .npy array"):
        read_sequences(tmp_path / "cut.npy")
    with pytest.raises(onnxism.InputError, match="cannot tell the format"):
        read_sequences(tmp_path / "s.txt") if (tmp_path / "s.txt").write_text("x") else None
    with pytest.raises(onnxism.InputError, match="not found"):
        read_sequences(tmp_path / "none.npy")


def test_fasta_case_folding_and_n(tmp_path):
    path = tmp_path / "s.fa"
    path.write_text(">one description here\nACgt\nNa\n>two\nTTTTTT\n")
    seqs = read_sequences(path)
    assert list(seqs.ids) == ["one", "two"]
    expected = np.zeros((6, 4), np.float32)
    for i, code in enumerate([0, 1, 2, 3, None, 0]):
        if code is not None:
            expected[i, code] = 1
    np.testing.assert_array_equal(seqs.onehot(0, 1)[0], expected)


@pytest.mark.parametrize(
    "text, message",
    [
        (">a\nACGT\n>b\nACG\n", "same length; record 'b' .* 3 bases"),
        (">a\nACRT\n", "record 'a' has 'R' at position 2"),
        ("ACGT\n", "before the first '>'"),
        ("", "no FASTA records"),
        (">a\n>b\nAC\n", "record 'a' is empty"),
    ],
)
def test_bad_fasta(tmp_path, text, message):
    path = tmp_path / "bad.fasta"
    path.write_text(text)
    with pytest.raises(onnxism.InputError, match=message):
        read_sequences(path)


def test_an_unreadable_npy_file_is_one_message(tmp_path, monkeypatch):
    np.save(tmp_path / "s.npy", random_onehot(2, 9))

    def refused(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(user_files, "open", refused, raising=False)
    with pytest.raises(onnxism.InputError, match="cannot read .*s.npy: Permission denied"):
        read_sequences(tmp_path / "s.npy")


def test_a_missing_file_or_a_folder_is_named(tmp_path):
    with pytest.raises(onnxism.InputError, match="sequences file not found: .*none.npy"):
        read_sequences(tmp_path / "none.npy")
    (tmp_path / "folder.fa").mkdir()
    with pytest.raises(onnxism.InputError, match="sequences file is a folder, expected a .npy or FASTA file: "):
        read_sequences(tmp_path / "folder.fa")
