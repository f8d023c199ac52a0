"""Reading sequences from files: .npy one-hot arrays (memory-mapped) and FASTA (.fa, .fasta, .fna, optionally
gzipped: told by its first bytes, whatever its name), or either on standard input ("-").

FASTA policy: letters are case-folded (soft-masked lowercase counts as the base), N/n is an all-zero position,
and any other letter (IUPAC ambiguity codes included) is refused, naming the record and position. All records must
have the same length.
"""

import gzip
import io
import sys

import numpy as np

from ..errors import InputError
from ..io.user_files import GZIP_MAGIC, NPY_MAGIC, existing_file, open_maybe_gzipped, read_npy
from .onehot import Sequences, as_sequences
from .text import encode

STDIN = "-"

FASTA_SUFFIXES = (".fa", ".fasta", ".fna", ".fa.gz", ".fasta.gz", ".fna.gz")


def read_sequences(path, *, length=None):
    """Read ``path`` (.npy or FASTA, or "-": either on standard input) into checked :class:`Sequences`; ``length``
    is the model's, if fixed."""
    if path == STDIN:
        return _read_stdin(length)
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


def _read_stdin(length):
    """Standard input's bytes: an .npy array (by its header) or FASTA text (gzipped or not)."""
    data = sys.stdin.buffer.read()
    if not data:
        raise InputError("no sequences on standard input (-): pipe an .npy array or FASTA text into onnxism")
    if data.startswith(NPY_MAGIC):
        try:
            array = np.load(io.BytesIO(data), allow_pickle=False)
        except (ValueError, OSError, EOFError) as err:
            raise InputError(f"standard input is not a readable .npy array: {err}") from err
        return as_sequences(array, length=length, name="standard input")
    return _read_fasta(STDIN, length, data)


def _read_fasta(path, length, data=None):
    """FASTA from ``path`` (or the bytes ``data`` read from it), gzipped where its first bytes say so."""
    name = "standard input" if path == STDIN else path
    ids, rows = [], []
    try:
        if data is None:
            stream = open_maybe_gzipped(path)
        else:
            stream = gzip.GzipFile(fileobj=io.BytesIO(data)) if data.startswith(GZIP_MAGIC) else io.BytesIO(data)
        with stream as handle:
            current = None
            for raw in handle:
                line = raw.strip()
                if line.startswith(b">"):
                    if current is not None:
                        rows.append(encode(b"".join(current), f"{name}: record {ids[-1]!r}"))
                    ids.append(line[1:].split(maxsplit=1)[0].decode("utf-8", "replace") if line[1:].strip() else "")
                    current = []
                elif line:
                    if current is None:
                        raise InputError(f"{name} is not FASTA: sequence text before the first '>' header")
                    current.append(line)
            if current is not None:
                rows.append(encode(b"".join(current), f"{name}: record {ids[-1]!r}"))
    except (OSError, EOFError, UnicodeDecodeError, gzip.BadGzipFile) as err:
        raise InputError(f"cannot read FASTA file {name}: {err}") from err
    if not rows:
        raise InputError(f"{name} holds no FASTA records")
    lengths = [len(row) for row in rows]
    if min(lengths) == 0:
        raise InputError(f"{name}: record {ids[lengths.index(0)]!r} is empty")
    first = lengths[0]
    for index, size in enumerate(lengths):
        if size != first:
            raise InputError(
                f"{name}: sequences must all have the same length; record {ids[index]!r} (#{index}) has "
                f"{size} bases, the first has {first}"
            )
    codes = np.stack(rows)
    sequences = Sequences(codes=codes, ids=np.array(ids), source=name)
    return as_sequences(sequences, length=length)

