"""``ism``: in-silico saturation mutagenesis with a chosen method, streamed chunk by chunk.

Contract (every method): per output name an array (N, W, 4, *output_shape) float32 whose entry [n, i, b] is
f(sequence n with position start + i set to base b) - f(sequence n); exactly 0 at the reference base. With
``targets``, f is each target (a linear combination of the output's elements, ``targets.py``) and the trailing shape
is the target shape: the targets are folded into the graph (``passes/fold_targets.py``), so the methods score them
directly.
"""

import math

import numpy as np

from ..errors import InputError
from ..model import load
from ..model.extra_inputs import check_extra_inputs
from ..runtime.rows import rows_of
from ..passes.fold_targets import fold_targets
from ..progress import Progress, checked_progress
from ..fast.method import FastISM
from .naive import NaiveISM
from .options import resolve_batch_size, resolve_window, sequences_per_chunk
from .targets import outputs_and_targets

METHODS = {"naive": NaiveISM, "fast": FastISM}


def ism_chunks(model, seqs, *, method="fast", positions=None, device="cpu", batch_size=None, outputs=None,
               progress=None, workers=None, extra_inputs=None, targets=None):
    """Yield ``(start, stop, reference, scores)`` per chunk of sequences, in order.

    Arguments as for :func:`ism`; ``reference`` maps output names to (n, *shape) predictions on the chunk (with
    ``targets``: the targets, (n, *target_shape)). Memory is bounded by the chunk, whatever the number of sequences.
    """
    progress = checked_progress(progress)  # before the plan's sessions are built
    plan = _plan(model, seqs, method, positions, device, batch_size, outputs, workers, extra_inputs, targets)
    yield from score_in_chunks(plan, progress)


def score_in_chunks(plan, progress):
    """Run ``plan["scorer"]`` over ``plan["sequences"]`` (with their rows of ``plan["extras"]``) in chunks of
    ``plan["chunk"]``, reporting progress; yields ``(start, stop, reference, scores)`` (shared by every method's
    ``*_chunks``)."""
    scorer, sequences = plan["scorer"], plan["sequences"]
    bar = Progress(progress, len(sequences), unit="seqs")
    try:
        for start, stop in sequences.chunks(plan["chunk"]):
            extras = rows_of(plan.get("extras", {}), slice(start, stop))
            reference, scores = scorer.score(sequences.onehot(start, stop), bar.advance, extras)
            yield start, stop, reference, scores
    finally:
        bar.close()


def ism_shapes(model, seqs, *, positions=None, outputs=None, device="cpu", extra_inputs=None, targets=None):
    """Per output name, the shape of its ISM array (N, W, 4, *output_shape or *target_shape), without computing it
    (the extra inputs and targets, if given, are checked)."""
    model = load(model)
    sequences = model.sequences(seqs)
    check_extra_inputs(model, extra_inputs, len(sequences), sequences.length)
    start, end = resolve_window(positions, sequences.length)
    names, shapes, folded = outputs_and_targets(model, outputs, targets, sequences.length, device,
                                                 skip_whole=True)
    shapes.update({name: target.shape for name, target in folded.items()})
    return {name: (len(sequences), end - start, 4) + shapes[name] for name in names}


def ism(model, seqs, *, method="fast", positions=None, device="cpu", batch_size=None, outputs=None,
        progress=None, workers=None, extra_inputs=None, targets=None):
    """In-silico saturation mutagenesis.

    Parameters
    ----------
    model : path, onnx.ModelProto or SequenceModel
    seqs : ndarray, shape (N, L, 4)
        One-hot in A, C, G, T order whatever the model's layout; an all-zero position (N) is mutated to all 4 bases.
    method : {"fast", "naive"}
        How mutants are evaluated ("fast" by default); both return the same numbers to float32 rounding.
    positions : (start, end), optional
        Mutate only positions start <= i < end; all L by default.
    device : {"cpu", "cuda", "cuda:K"}
    batch_size : int, optional
        Model rows per onnxruntime call; a default scaled to L when None.
    outputs : list of str, optional
        Output names to score; all by default.
    progress : bool or callable, optional
        True draws a bar on stderr; a callable gets (done, total) in sequences.
    workers : int, optional
        onnxruntime calls in flight at once, each on its share of the cores. By default on the CPU: 2 for fast
        (1 on a 1-core machine), 1 for naive; 1 on CUDA. The results do not depend on it.
    extra_inputs : dict of str to ndarray, optional
        The values of the model's inputs besides the sequences (a control track, a bias profile), one row per
        sequence: (N, *input shape). Each sequence's mutants get its row; required where the model has such inputs.
    targets : None, "all", "sum", "mean", index, weights, or dict of output name to one of those
        What f is, per output, as for :func:`onnxism.tism`: every element (default), their sum or mean, one element,
        or weights of the output's shape (one target) or (K, *output_shape) (K targets). A dict picks outputs.
        The targets are computed inside the graph, so a large output is never carried out whole.

    Returns
    -------
    dict of str to ndarray, each float32 of shape (N, W, 4, *output_shape) (or *target_shape)
        Entry [n, i, b] = f(mutant) - f(reference), mutant = sequence n with position start + i set to base b.
    """
    model = load(model)
    sequences = model.sequences(seqs)
    plan_shapes = ism_shapes(model, sequences, positions=positions, outputs=outputs, device=device,
                             extra_inputs=extra_inputs, targets=targets)
    results = {name: np.empty(shape, dtype=np.float32) for name, shape in plan_shapes.items()}
    for start, stop, _, scores in ism_chunks(
        model, sequences, method=method, positions=positions, device=device, batch_size=batch_size,
        outputs=outputs, progress=progress, workers=workers, extra_inputs=extra_inputs, targets=targets,
    ):
        for name, value in scores.items():
            results[name][start:stop] = value
    return results


def _plan(model, seqs, method, positions, device, batch_size, outputs, workers=None, extra_inputs=None,
          targets=None):
    if method not in METHODS:
        raise InputError(f"unknown method {method!r}; available: {', '.join(sorted(METHODS))}")
    model = load(model)
    sequences = model.sequences(seqs)
    extras = check_extra_inputs(model, extra_inputs, len(sequences), sequences.length)
    window = resolve_window(positions, sequences.length)
    names, shapes, folded = outputs_and_targets(model, outputs, targets, sequences.length, device,
                                                 skip_whole=True)
    scored, renamed = model, {}
    if folded:
        scored, renamed = fold_targets(model, folded)
        back = {name: folded_name for folded_name, name in renamed.items()}
        shapes.update({back[name]: (len(target.seeds),) for name, target in folded.items()})
        names = [back.get(name, name) for name in names]
    rows = resolve_batch_size(batch_size, sequences.length, device)
    scorer = METHODS[method](scored, names, shapes, window, length=sequences.length, device=device,
                             batch_size=rows, default_batch=batch_size is None, workers=workers)
    rows = scorer.batch_size  # fast chooses its own default on the CPU (``FastPlan.default_batch_size``)
    width = window[1] - window[0]
    result_values = sum(width * 4 * math.prod(shapes[name]) for name in names)
    chunk = sequences_per_chunk(rows, scorer.rows_per_sequence(), result_values)
    if renamed:
        scorer = TargetScorer(scorer, renamed, {name: target.shape for name, target in folded.items()})
    return {"scorer": scorer, "sequences": sequences, "chunk": chunk, "extras": extras}


class TargetScorer:
    """A method's scorer on a model with folded targets, its results under the original output names and in each
    target's shape."""

    def __init__(self, scorer, renamed, target_shapes):
        self.scorer, self.renamed, self.target_shapes = scorer, renamed, target_shapes

    def score(self, onehot, advance=None, extras=None):
        reference, scores = self.scorer.score(onehot, advance, extras)
        return self._named(reference, 1), self._named(scores, 3)

    def _named(self, values, lead):
        named = {}
        for name, value in values.items():
            original = self.renamed.get(name, name)
            if original in self.target_shapes:
                value = value.reshape(value.shape[:lead] + self.target_shapes[original])
            named[original] = value
        return named
