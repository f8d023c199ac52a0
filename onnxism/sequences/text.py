"""Bases as text -> base codes (0-3 for A, C, G, T; 4 for N) -> one-hot rows.

Invariant: a letter is read case-folded (soft-masked lowercase is the base); N is an all-zero position; the IUPAC
ambiguity codes (R, Y, S, W, K, M, B, D, H, V) are refused where the text is the user's own sequence, and read as
N where it is a genome's (a reference genome holds a few); any other byte is refused, its position named.
"""

import numpy as np

from ..errors import InputError

N_CODE = 4
AMBIGUOUS = "RYSWKMBDHV"
_CODES = np.full(256, 255, dtype=np.uint8)
for _code, _letters in enumerate(("Aa", "Cc", "Gg", "Tt", "Nn")):
    for _letter in _letters:
        _CODES[ord(_letter)] = _code
_GENOME_CODES = _CODES.copy()
for _letter in AMBIGUOUS + AMBIGUOUS.lower():
    _GENOME_CODES[ord(_letter)] = N_CODE
#: code -> one-hot row (N: all zeros)
ONEHOT_ROWS = np.vstack([np.eye(4, dtype=np.float32), np.zeros((1, 4), dtype=np.float32)])
#: code -> its complement's code (N stays N)
COMPLEMENT = np.array([3, 2, 1, 0, N_CODE], dtype=np.uint8)


def encode(text, where, *, genome=False):
    """The codes (uint8) of ``text`` (str or bytes); an unreadable letter is an InputError naming ``where`` and
    the position. With ``genome``, the ambiguity codes are N."""
    raw = text.encode("ascii", "replace") if isinstance(text, str) else bytes(text)
    codes = (_GENOME_CODES if genome else _CODES)[np.frombuffer(raw, dtype=np.uint8)]
    bad = np.flatnonzero(codes == 255)
    if bad.size:
        letter = raw[bad[0]:bad[0] + 1].decode("ascii", "replace")
        accepted = "A, C, G, T, N and the IUPAC codes" if genome else "A, C, G, T and N"
        raise InputError(f"{where} has {letter!r} at position {bad[0]}; only {accepted} (any case) are accepted")
    return codes


def reverse_complement(codes):
    """The codes of the reverse complement, along the last axis."""
    return COMPLEMENT[codes[..., ::-1]]


def onehot_from_strings(strings):
    """(N, L, 4) float32 one-hot sequences, A, C, G, T order, from N strings of equal length (N as all zeros)."""
    if isinstance(strings, (str, bytes)):
        strings = [strings]
    strings = list(strings)
    if not strings:
        raise InputError("no sequences given: pass a list of strings of A, C, G, T and N")
    lengths = {len(text) for text in strings}
    if len(lengths) > 1:
        first = len(strings[0])
        index = next(i for i, text in enumerate(strings) if len(text) != first)
        raise InputError(f"sequences must all have the same length; sequence {index} has {len(strings[index])} "
                         f"bases, the first has {first}")
    if 0 in lengths:
        raise InputError("the sequences are empty: give at least one base each")
    codes = np.stack([encode(text, f"sequence {index}") for index, text in enumerate(strings)])
    return ONEHOT_ROWS[codes]
