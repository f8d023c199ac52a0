"""Which single-base substitutions a window of sequences asks for, and building them batch by batch.

Invariant: a position's reference base is never listed (its score is exactly 0 by definition); an all-zero (N)
position is listed with all 4 bases.
"""

import numpy as np

from .onehot import reference_bases


def substitutions(onehot, window):
    """(seq, pos, base) index arrays of every substitution in ``window`` of the (n, L, 4) chunk.

    ``pos`` counts from the window start; the order is sequence-major, then position, then base.
    """
    start, end = window
    bases = reference_bases(onehot[:, start:end])
    wanted = np.ones(bases.shape + (4,), dtype=bool)
    seq, pos = np.nonzero(bases >= 0)
    wanted[seq, pos, bases[seq, pos]] = False
    return np.nonzero(wanted)


def build_mutants(onehot, window_start, seq, pos, base):
    """The mutant sequences for the given substitutions: row k is ``onehot[seq[k]]`` with its position
    ``window_start + pos[k]`` set to the one-hot of ``base[k]``."""
    mutants = onehot[seq]
    rows = np.arange(len(seq))
    columns = window_start + pos
    mutants[rows, columns, :] = 0.0
    mutants[rows, columns, base] = 1.0
    return mutants
