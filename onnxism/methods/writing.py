"""Results written to disk as they are computed: ``ism_to_npz`` and ``tism_to_npz`` stream a run's chunks into an
.npz archive (``io/npz_writer.py``: memory-mapped arrays beside the output, published with one rename).

The archive holds, per scored output NAME: ``NAME`` (N, W, 4, *shape) float32, the scores; ``reference/NAME``
(N, *shape), the values on the sequences as given (for ISM with targets: the targets); and ``positions`` (W,), the
positions mutated; ``onehot`` (N, L, 4) uint8, the sequences scored; ``attribution`` (a string), the form the scores
are in (``attributions.py``); for sequences read from FASTA, ``ids`` (N,); and for regions of a genome, their
names as ``ids`` and the windows scored as ``region/chrom``, ``region/start``, ``region/end`` and ``region/strand``
(N,) each (``genome/regions.py``).

Invariant: the output path holds either its previous content or a complete archive, never a partial one.
"""

import math
import os
import warnings

import numpy as np

from ..errors import InputError, OnnxismWarning
from ..io import NpzWriter
from ..io.scratch import check_free_space, describe_bytes
from .driver import plan_chunks
from .ism import plan_ism
from .tism import plan_tism

#: Keys the archive holds besides the outputs' own.
RESERVED = ("positions", "ids", "onehot", "attribution")


#: An archive larger than this gets a notice of its size, output by output, before the run.
LARGE_ARCHIVE = 2 * 10**9


def ism_to_npz(model, seqs, path, *, force=False, compress=False, **options):
    """ISM of ``seqs`` (arguments and keywords as for :func:`onnxism.ism`) written to the archive ``path`` (an
    existing file only with ``force``; deflated with ``compress``); returns ``path``."""
    return write_npz(plan_ism(model, seqs, **options), path, force=force, compress=compress)


def tism_to_npz(model, seqs, path, *, force=False, compress=False, **options):
    """TISM (or another gradient attribution) of ``seqs`` (keywords as for :func:`onnxism.tism`) written to the
    archive ``path``; returns ``path``."""
    return write_npz(plan_tism(model, seqs, **options), path, force=force, compress=compress)


def output_bytes(plan):
    """The bytes of each scored output's arrays in the archive (scores and references, float32)."""
    return {name: 4 * (math.prod(shape) + math.prod(plan.references[name])) for name, shape in plan.shapes.items()}


def archive_bytes(plan):
    """The bytes of the arrays ``plan`` writes (the outputs', and the one-hot sequences as uint8)."""
    return sum(output_bytes(plan).values()) + len(plan.sequences) * plan.sequences.length * 4


def announce_size(plan, path, compress):
    """A notice of the archive's size, output by output, where it exceeds LARGE_ARCHIVE."""
    total = archive_bytes(plan)
    if total <= LARGE_ARCHIVE:
        return
    sizes = sorted(output_bytes(plan).items(), key=lambda item: -item[1])
    each = ", ".join(f"{name} {describe_bytes(size)}" for name, size in sizes)
    deflated = " before compression" if compress else ""
    warnings.warn(f"{path} will hold {describe_bytes(total)}{deflated} ({each}); --targets (sum, an index) or "
                  "--outputs make it smaller", OnnxismWarning, stacklevel=4)


def write_npz(plan, path, *, force=False, compress=False):
    """Run ``plan`` into the archive at ``path``, chunk by chunk; returns ``path``. The space it needs (the arrays
    in scratch files, then the archive beside them: twice the arrays) is checked against the output's file system
    before anything is computed; an I/O error while it runs is an InputError, the scratch removed."""
    for name in plan.shapes:
        if name in RESERVED or name.startswith(("reference/", "region/")):
            raise InputError(f"output name {name!r} clashes with an archive key onnxism writes; rename the output")
    writer = NpzWriter(path, force=force, compress=compress)
    announce_size(plan, path, compress)
    check_free_space(os.path.dirname(os.path.abspath(path)), 2 * archive_bytes(plan), f"the archive {path}")
    try:
        return _write(plan, writer, path)
    except OSError as err:
        raise InputError(f"cannot write {path}: {err.strerror or err}") from err


def _write(plan, writer, path):
    with writer as archive:
        for name, shape in plan.shapes.items():
            archive.add(name, shape)
            archive.add(f"reference/{name}", plan.references[name])
        archive.put("positions", list(range(*plan.window)))
        archive.put("attribution", plan.attribution)
        onehot = archive.add("onehot", (len(plan.sequences), plan.sequences.length, 4), np.uint8)
        if plan.sequences.ids is not None:
            archive.put("ids", plan.sequences.ids)
        for key, values in plan.sequences.columns.items():
            archive.put(key, values)
        for start, stop, chunk, reference, scores in plan_chunks(plan):
            onehot[start:stop] = chunk
            for name in plan.shapes:
                archive[name][start:stop] = scores[name]
                archive[f"reference/{name}"][start:stop] = reference[name]
    return path
