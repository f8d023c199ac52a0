"""One-hot sequences (N, L, 4) in A, C, G, T order, checked and served in chunks.

A valid position is a one-hot row (one 1, three 0) or all zeros (an N base). Anything else is refused with the
first bad sequence and position named, so no score is ever computed on input that is silently wrong.
"""

import numpy as np

from ..errors import InputError
from .text import ONEHOT_ROWS

ALPHABET = "ACGT"
_CHECK_CHUNK_VALUES = 1 << 22  # values validated per step: bounds memory for memory-mapped inputs


class Sequences:
    """N sequences of length L, served as float32 one-hot chunks.

    Built from an (N, L, 4) array (possibly memory-mapped) or from (N, L) base codes 0-3 with 4 for N.
    """

    def __init__(self, onehot=None, *, codes=None, ids=None, source="seqs"):
        if (onehot is None) == (codes is None):
            raise ValueError("give exactly one of onehot= or codes=")
        self._onehot = onehot
        self._codes = codes
        self.ids = ids
        self.columns = {}  # per-sequence values the archive carries (name -> (N,) array), as regions' coordinates
        self.source = source
        data = onehot if onehot is not None else codes
        self.count = int(data.shape[0])
        self.length = int(data.shape[1])

    def __len__(self):
        return self.count

    def onehot(self, start=0, stop=None):
        """Sequences ``start:stop`` as a float32 (n, L, 4) array."""
        stop = self.count if stop is None else stop
        if self._codes is not None:
            return ONEHOT_ROWS[self._codes[start:stop]]
        return np.asarray(self._onehot[start:stop], dtype=np.float32)

    def chunks(self, size):
        """Yield (start, stop) ranges of at most ``size`` sequences."""
        for start in range(0, self.count, max(1, int(size))):
            yield start, min(self.count, start + max(1, int(size)))


def as_sequences(seqs, *, length=None, name="seqs"):
    """Check ``seqs`` and wrap it as :class:`Sequences`; a Sequences object is checked against ``length`` only."""
    if isinstance(seqs, Sequences):
        _check_length(seqs.length, length, seqs.source)
        return seqs
    if not isinstance(seqs, np.ndarray):
        try:
            seqs = np.asarray(seqs)
        except (ValueError, TypeError) as err:
            raise InputError(f"{name} is not a numeric array: {err}") from err
    if np.issubdtype(seqs.dtype, np.complexfloating):
        raise InputError(f"{name} must hold real numbers (one-hot 0 and 1); got dtype {seqs.dtype}")
    if seqs.dtype == object or not (np.issubdtype(seqs.dtype, np.number) or seqs.dtype == np.bool_):
        raise InputError(f"{name} must be a numeric array of shape (N, L, 4); got dtype {seqs.dtype}")
    if seqs.ndim != 3:
        hint = " (a single sequence? add a batch axis: seqs[None])" if seqs.ndim == 2 else ""
        raise InputError(f"{name} must have shape (N, L, 4); got shape {seqs.shape}{hint}")
    if seqs.shape[2] != 4:
        hint = " (channels first? pass seqs.transpose(0, 2, 1))" if seqs.shape[1] == 4 else ""
        raise InputError(
            f"{name} must have 4 channels (A, C, G, T) on its last axis; got shape {seqs.shape}{hint}"
        )
    if seqs.shape[0] == 0 or seqs.shape[1] == 0:
        raise InputError(f"{name} is empty (shape {seqs.shape}); give at least one sequence of length >= 1")
    _check_length(seqs.shape[1], length, name)
    check_onehot_values(seqs, name=name)
    return Sequences(seqs, source=name)


def check_onehot_values(seqs, *, name="seqs"):
    """Raise InputError at the first NaN/inf or non-one-hot position, naming sequence and position."""
    per_chunk = max(1, _CHECK_CHUNK_VALUES // (seqs.shape[1] * 4))
    for start in range(0, seqs.shape[0], per_chunk):
        chunk = np.asarray(seqs[start:start + per_chunk])
        if np.issubdtype(chunk.dtype, np.floating):
            finite = np.isfinite(chunk)
            if not finite.all():
                n, i, _ = np.argwhere(~finite)[0]
                raise InputError(
                    f"{name} has a non-finite value (NaN or inf) at sequence {start + n}, position {i}"
                )
        is_zero = chunk == 0
        is_one = chunk == 1
        ok = (is_zero | is_one).all(axis=2) & (is_one.sum(axis=2) <= 1)
        if not ok.all():
            n, i = np.argwhere(~ok)[0]
            row = np.asarray(chunk[n, i], dtype=np.float64).round(4).tolist()
            raise InputError(
                f"{name} is not one-hot at sequence {start + n}, position {i}: {row}; each position must be "
                "one-hot (A, C, G, T) or all zeros (N)"
            )


def reference_bases(onehot):
    """(n, L, 4) one-hot -> (n, L) int8 base index, -1 where the position is all zeros (N)."""
    bases = np.argmax(onehot, axis=2).astype(np.int8)
    bases[onehot.sum(axis=2) == 0] = -1
    return bases


def _check_length(actual, expected, name):
    if expected is not None and actual != expected:
        raise InputError(
            f"{name} has sequences of length {actual}, but the model takes length {expected}"
        )
