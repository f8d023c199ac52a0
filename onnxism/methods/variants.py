"""Variant effects: for each alternative allele of a VCF, the model's outputs (or targets) on the reference and the
alternative sequence, scored chunk by chunk.

Windows (L, the model's length; ``start``, REF's first base, 0-based):
  SNV          the window [c - L // 2, c - L // 2 + L) with c = start (``bin_size`` 1), or the middle of start's bin
               of ``bin_size`` bases (c = start // B * B + B // 2): variants in one bin share a window. The
               reference runs once per window, each variant is one substitution row of fast ISM's graph (or of naive
               ISM's: a forward pass per variant, what peers do). A window that holds one variant only goes through
               naive ISM's rows: fast ISM's reference pass, which also keeps its tables, would cost more than the
               one forward pass it saves.
  indel, MNV   the window [start - L // 2, start - L // 2 + L) for REF, REF's first base at L // 2; the alternative
               window keeps the bases before the variant in place, then ALT, then the genome after REF, cut to L
               (left-anchored); both run through the model (two forward passes). So do SNVs to or from N.
With ``rc``, every window is also scored reverse-complemented and each value is the mean of the two strands.

Invariant: for every variant, ``alt - ref`` equals f(alternative window) - f(reference window) of two forward passes
on the windows above (fast ISM: to float32 rounding); chunks are scored in the VCF's order and memory is bounded
by the chunk, whatever the number of variants.
"""

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..methods.compile import compiled_length
from ..model.loading import load
from ..sequences.text import ONEHOT_ROWS, encode
from .ism import plan_ism
from .options import resolve_batch_size

BASES = "ACGT"


@dataclass(frozen=True)
class VariantPlan:
    """A variant run resolved: the scorer (fast or naive ISM's, targets folded), the result names and shapes."""

    model: object
    scorer: object
    single: object  # naive ISM's scorer: windows of one variant (a fast-ISM reference pass costs more), two passes
    shapes: dict  # result name -> shape of one variant's value
    length: int
    bin_size: int
    rc: bool
    windows_per_call: int  # windows through the model at once: naive ISM's default batch at this length


def plan_variants(model, *, method="fast", outputs=None, targets=None, device="cpu", batch_size=None,
                  workers=None, length=None, bin_size=1, rc=False):
    """The VariantPlan (options as for :func:`onnxism.ism`; ``length`` for a model of any length)."""
    model = load(model)
    if model.extra_inputs:
        names = ", ".join(extra.name for extra in model.extra_inputs)
        raise InputError(f"the model takes inputs besides the sequence ({names}); variant scoring gives only "
                         "sequences")
    if model.length is None and length is None:
        raise InputError("the model accepts any sequence length: give --length, the window scored around each "
                         "variant")
    length = compiled_length(model, length)
    if isinstance(bin_size, bool) or not isinstance(bin_size, (int, np.integer)) or not 1 <= bin_size <= length:
        raise InputError(f"--bin must be an integer from 1 to the window length {length}; got {bin_size}")
    placeholder = np.zeros((1, length, 4), np.float32)
    plan = plan_ism(model, placeholder, method=method, outputs=outputs, targets=targets, device=device,
                    batch_size=batch_size, workers=workers)
    shapes = {name: shape[1:] for name, shape in plan.references.items()}
    scorer = plan.make_scorer()
    single = scorer if method == "naive" else plan_ism(model, placeholder, method="naive", outputs=outputs,
                                                       targets=targets, device=device).make_scorer()
    return VariantPlan(plan.model, scorer, single, shapes, length, int(bin_size), bool(rc),
                       resolve_batch_size(None, length, device))


def snv_window(plan, start):
    """(window start, the variant's position in it) of an SNV at 0-based ``start``."""
    centre = start if plan.bin_size == 1 else start // plan.bin_size * plan.bin_size + plan.bin_size // 2
    first = centre - plan.length // 2
    return first, start - first


def allele_windows(plan, genome, variant):
    """(reference codes (L,), alternative codes (L,)) of an indel or MNV, left-anchored as the module says."""
    length, start = plan.length, variant.start
    first = start - length // 2
    reference = genome.codes(variant.contig, first, first + length)
    alt = encode(variant.alt, f"ALT of {variant.chrom}:{variant.pos}")[: length - length // 2]
    after = length - length // 2 - len(alt)
    tail = genome.codes(variant.contig, start + len(variant.ref), start + len(variant.ref) + after)
    return reference, np.concatenate([reference[: length // 2], alt, tail])


def score_variants(plan, genome, variants):
    """{name: (ref, alt, diff)}, each (n, *shape) float32, of the ``variants`` (a list), in their order; diff is
    fast ISM's delta itself for SNVs (not alt - ref, which would round it to ref's precision)."""
    results = {name: tuple(np.empty((len(variants),) + shape, np.float32) for _ in range(3))
               for name, shape in plan.shapes.items()}
    substitutable = [i for i, v in enumerate(variants) if v.is_snv and v.ref in BASES and v.alt in BASES]
    others = sorted(set(range(len(variants))) - set(substitutable))
    if substitutable:
        _score_snvs(plan, genome, [variants[i] for i in substitutable], substitutable, results)
    if others:
        _score_two_pass(plan, genome, [variants[i] for i in others], others, results)
    return results


def _score_snvs(plan, genome, variants, where, results):
    """SNVs as substitution rows of shared windows: one reference pass per window, windows_per_call at a time."""
    windows, seq, pos, base = {}, [], [], []
    for variant in variants:
        first, offset = snv_window(plan, variant.start)
        seq.append(windows.setdefault((variant.contig, first), len(windows)))
        pos.append(offset)
        base.append(BASES.index(variant.alt))
    keys, seq, pos, base = list(windows), np.array(seq), np.array(pos), np.array(base)
    where, counts = np.asarray(where), np.bincount(seq, minlength=len(keys))
    for scorer, chosen in ((plan.single, counts == 1), (plan.scorer, counts > 1)):
        ids = np.flatnonzero(chosen)
        for low in range(0, len(ids), plan.windows_per_call):
            group = ids[low:low + plan.windows_per_call]
            local = np.full(len(keys), -1)
            local[group] = np.arange(len(group))
            rows = np.flatnonzero(local[seq] >= 0)
            onehot = np.stack([ONEHOT_ROWS[genome.codes(keys[i][0], keys[i][1], keys[i][1] + plan.length)]
                               for i in group])
            values = _substituted(plan, scorer, onehot, local[seq[rows]], pos[rows], base[rows])
            for name, arrays in results.items():
                for array, value in zip(arrays, values[name]):
                    array[where[rows]] = value


def _substituted(plan, scorer, onehot, seq, pos, base):
    """{name: (ref, alt, diff)} of substitution rows of the windows ``onehot`` (both strands' mean with ``rc``)."""
    count, rows = len(onehot), len(seq)
    if plan.rc:
        onehot = np.concatenate([onehot, onehot[:, ::-1, ::-1]])
        seq = np.concatenate([seq, seq + count])
        pos = np.concatenate([pos, plan.length - 1 - pos])
        base = np.concatenate([base, 3 - base])
    reference, deltas = scorer.score_rows(onehot, seq, pos, base)
    values = {}
    for name in plan.shapes:
        ref, diff = reference[name][seq], deltas[name]
        if plan.rc:
            ref, diff = (ref[:rows] + ref[rows:]) / 2, (diff[:rows] + diff[rows:]) / 2
        values[name] = ref, ref + diff, diff
    return values


def _score_two_pass(plan, genome, variants, where, results):
    """Indels, MNVs and SNVs to or from N: the reference and the alternative window through the model."""
    where = np.asarray(where)
    step = max(1, plan.windows_per_call // (4 if plan.rc else 2))
    for low in range(0, len(variants), step):
        pairs = [allele_windows(plan, genome, variant) for variant in variants[low:low + step]]
        onehot = ONEHOT_ROWS[np.stack([window for pair in pairs for window in pair])]  # ref0, alt0, ref1, ...
        if plan.rc:
            onehot = np.concatenate([onehot, onehot[:, ::-1, ::-1]])
        values = plan.single.predict(onehot)
        for name, (ref, alt, diff) in results.items():
            value = values[name]
            if plan.rc:
                value = (value[: len(value) // 2] + value[len(value) // 2:]) / 2
            rows = where[low:low + step]
            ref[rows], alt[rows], diff[rows] = value[0::2], value[1::2], value[1::2] - value[0::2]
