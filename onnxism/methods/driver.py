"""The driver every method shares: a Plan, resolved and checked once (the model loaded, the sequences, extra
inputs, window and targets checked, the result shapes known), then run chunk by chunk.

Invariant: a Plan is checked before any session is built or any file written (``make_scorer`` builds the
sessions); running it yields each chunk of sequences once, in order, with memory bounded by the chunk.
"""

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..progress import Progress
from ..runtime.rows import rows_of
from .options import sequences_per_chunk


@dataclass(frozen=True)
class Plan:
    """A method's run, resolved: ``shapes`` (result name -> (N, W, 4, *shape)) and ``references`` (result name ->
    (N, *shape) of the reference values the chunks carry) are known before ``make_scorer`` builds anything."""

    model: object  # SequenceModel
    sequences: object  # Sequences
    extras: dict  # extra input name -> (N, ...) checked values
    window: tuple  # (start, end) of the positions mutated
    shapes: dict
    references: dict
    progress: object  # checked: None, a bool or a callable
    make_scorer: Callable  # () -> a scorer: score(onehot, advance, extras), rows_per_sequence(), batch_size
    attribution: str = "delta"  # the form the scores are in (``attributions.py``)


def run_plan(plan):
    """Yield ``(start, stop, reference, scores)`` per chunk of the plan's sequences, in order."""
    for start, stop, _, reference, scores in plan_chunks(plan):
        yield start, stop, reference, scores


def plan_chunks(plan):
    """Yield ``(start, stop, onehot, reference, scores)`` per chunk, ``onehot`` the chunk's sequences as scored (read
    once: a genome's windows are not read again to be written)."""
    scorer = plan.make_scorer()
    result_values = sum(math.prod(shape[1:]) for shape in plan.shapes.values())
    chunk = sequences_per_chunk(scorer.batch_size, scorer.rows_per_sequence(), result_values)
    sequences = plan.sequences
    bar = Progress(plan.progress, len(sequences), unit="seqs")
    try:
        for start, stop in sequences.chunks(chunk):
            extras = rows_of(plan.extras, slice(start, stop))
            onehot = sequences.onehot(start, stop)
            reference, scores = scorer.score(onehot, bar.advance, extras)
            yield start, stop, onehot, reference, scores
    finally:
        bar.close()


def collect(plan):
    """The plan's whole result in memory: {name: float32 array of ``plan.shapes[name]``}."""
    results = {name: np.empty(shape, dtype=np.float32) for name, shape in plan.shapes.items()}
    for start, stop, _, scores in run_plan(plan):
        for name, value in scores.items():
            results[name][start:stop] = value
    return results
