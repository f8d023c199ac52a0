"""Results written to disk as they are computed: ``ism_to_npz`` and ``tism_to_npz`` stream a run's chunks into an
.npz archive (``io/npz_writer.py``: memory-mapped arrays beside the output, published with one rename).

The archive holds, per scored output NAME: ``NAME`` (N, W, 4, *shape) float32, the scores; ``reference/NAME``
(N, *shape), the values on the sequences as given (for ISM with targets: the targets); ``positions`` (W,), the
positions mutated; and, for sequences read from FASTA, ``ids`` (N,). Invariant: the output path holds either its
previous content or a complete archive, never a partial one.
"""

from ..errors import InputError
from ..io import NpzWriter
from .driver import run_plan
from .ism import plan_ism
from .tism import plan_tism

#: Keys the archive holds besides the outputs' own.
RESERVED = ("positions", "ids")


def ism_to_npz(model, seqs, path, *, force=False, **options):
    """ISM of ``seqs`` (arguments and keywords as for :func:`onnxism.ism`) written to the archive ``path`` (an
    existing file only with ``force``); returns ``path``."""
    return write_npz(plan_ism(model, seqs, **options), path, force=force)


def tism_to_npz(model, seqs, path, *, force=False, **options):
    """TISM (or another gradient attribution) of ``seqs`` (keywords as for :func:`onnxism.tism`) written to the
    archive ``path``; returns ``path``."""
    return write_npz(plan_tism(model, seqs, **options), path, force=force)


def write_npz(plan, path, *, force=False):
    """Run ``plan`` into the archive at ``path``, chunk by chunk; returns ``path``."""
    for name in plan.shapes:
        if name in RESERVED or name.startswith("reference/"):
            raise InputError(f"output name {name!r} clashes with an archive key onnxism writes; rename the output")
    with NpzWriter(path, force=force) as archive:
        for name, shape in plan.shapes.items():
            archive.add(name, shape)
            archive.add(f"reference/{name}", plan.references[name])
        archive.put("positions", list(range(*plan.window)))
        if plan.sequences.ids is not None:
            archive.put("ids", plan.sequences.ids)
        for start, stop, reference, scores in run_plan(plan):
            for name in plan.shapes:
                archive[name][start:stop] = scores[name]
                archive[f"reference/{name}"][start:stop] = reference[name]
    return path
