"""Reading sequences from files: .npy one-hot arrays (memory-mapped) and FASTA (.fa, .fasta, .fna, optionally .gz).

FASTA policy: letters are case-folded (soft-masked lowercase counts as the base), N/n is an all-zero position,
and any other letter (IUPAC ambiguity codes included) is refused, naming the record and position. All records must
have the same length.
"""

import gzip

import numpy as np

from ..errors import InputError
from ..io.user_files import existing_file, read_npy
from .onehot import Sequences, as_sequences

FASTA_SUFFIXES = (".fa", ".fasta", ".fna", ".fa.gz", ".fasta.gz", ".fna.gz")
_CODES = np.full(256, 255, dtype=np.uint8)
for _code, _letters in enumerate(("Aa", "Cc", "Gg", "Tt", "Nn")):
    for _letter in _letters:
        _CODES[ord(_letter)] = _code


def read_sequences(path, *, length=None):
    """Read ``path`` (.npy or FASTA) into checked :class:`Sequences`; ``length`` is the model's, if fixed."""
    path = existing_file(path, "sequences file", "a .npy or FASTA file")
    lower = path.lower()
    if lower.endswith(".npy"):
        return _read_npy(path, length)
    if lower.endswith(FASTA_SUFFIXES):
        return _read_fasta(path, length)
    raise InputError(
        f"cannot tell the format of {path}: use a .npy one-hot array (N, L, 4) or a FASTA file "
        f"({', '.join(FASTA_SUFFIXES)})"
    )


def _read_npy(path, length):
    array = read_npy(path, mmap=True, expected="a numeric one-hot array (N, L, 4)")
    return as_sequences(array, length=length, name=path)


def _read_fasta(path, length):
    opener = gzip.open if path.lower().endswith(".gz") else open
    ids, rows = [], []
    try:
        with opener(path, "rb") as handle:
            current = None
            for raw in handle:
                line = raw.strip()
                if line.startswith(b">"):
                    if current is not None:
                        rows.append(_encode(b"".join(current), path, ids[-1]))
                    ids.append(line[1:].split(maxsplit=1)[0].decode("utf-8", "replace") if line[1:].strip() else "")
                    current = []
                elif line:
                    if current is None:
                        raise InputError(f"{path} is not FASTA: sequence text before the first '>' header")
                    current.append(line)
            if current is not None:
                rows.append(_encode(b"".join(current), path, ids[-1]))
    except (OSError, EOFError, UnicodeDecodeError) as err:
        raise InputError(f"cannot read FASTA file {path}: {err}") from err
    if not rows:
        raise InputError(f"{path} holds no FASTA records")
    lengths = [len(row) for row in rows]
    if min(lengths) == 0:
        raise InputError(f"{path}: record {ids[lengths.index(0)]!r} is empty")
    first = lengths[0]
    for index, size in enumerate(lengths):
        if size != first:
            raise InputError(
                f"{path}: sequences must all have the same length; record {ids[index]!r} (#{index}) has "
                f"{size} bases, the first has {first}"
            )
    codes = np.stack(rows)
    sequences = Sequences(codes=codes, ids=np.array(ids), source=path)
    return as_sequences(sequences, length=length)


def _encode(text, path, record):
    codes = _CODES[np.frombuffer(text, dtype=np.uint8)]
    bad = np.flatnonzero(codes == 255)
    if bad.size:
        letter = chr(text[bad[0]])
        raise InputError(
            f"{path}: record {record!r} has {letter!r} at position {bad[0]}; only A, C, G, T and N "
            "(any case) are accepted"
        )
    return codes
