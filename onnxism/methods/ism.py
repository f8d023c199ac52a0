"""``ism``: in-silico saturation mutagenesis with a chosen method, streamed chunk by chunk.

Contract (every method): per output name an array (N, W, 4, *output_shape) float32 whose entry [n, i, b] is
f(sequence n with position start + i set to base b) - f(sequence n); exactly 0 at the reference base. With
``targets``, f is each target (a linear combination of the output's elements, ``targets.py``) and the trailing shape
is the target shape: the targets are folded into the graph (``passes/fold_targets.py``), so the methods score them
directly.
"""

import math

from ..errors import InputError
from ..model.extra_inputs import check_extra_inputs
from ..model.loading import load
from ..passes.fold_targets import fold_targets
from ..progress import checked_progress
from ..runtime.workers import resolve_workers, warn_beyond_cores
from .attributions import FORMS, AttributedScorer, check_form
from .driver import Plan, collect, run_plan
from .fallback import fast_scorer
from .memory import check_batch_memory
from .naive import NaiveISM
from .options import resolve_batch_size, resolve_window, sequences_per_chunk
from .targets import outputs_and_targets

METHODS = ("fast", "naive")


def plan_ism(model, seqs, *, method="fast", positions=None, device="cpu", batch_size=None, outputs=None,
             progress=None, workers=None, extra_inputs=None, targets=None, attribution="delta"):
    """The Plan of an ISM run (arguments as for :func:`ism`), everything checked; no session is built yet."""
    model = load(model)
    sequences = model.sequences(seqs)
    extras = check_extra_inputs(model, extra_inputs, len(sequences), sequences.length)
    window = resolve_window(positions, sequences.length)
    names, shapes, folded = outputs_and_targets(model, outputs, targets, sequences.length, device,
                                                 skip_whole=True)
    progress = checked_progress(progress)
    if method not in METHODS:
        raise InputError(f"unknown method {method!r}; available: {', '.join(sorted(METHODS))}")
    check_form(attribution, FORMS, "ISM")
    resolve_workers(workers, device)
    warn_beyond_cores(workers, device)
    rows = resolve_batch_size(batch_size, sequences.length, device)
    result_shapes = dict(shapes, **{name: target.shape for name, target in folded.items()})
    width = window[1] - window[0]
    if batch_size is not None:  # the rows a batch can hold: at most every substitution of a chunk of sequences
        values = sum(width * 4 * math.prod(result_shapes[name]) for name in names)
        chunk = min(len(sequences), sequences_per_chunk(rows, 3 * width, values))
        check_batch_memory(model, sequences.length, min(rows, chunk * 3 * width), device, asked=rows)
    results = {name: (len(sequences), width, 4) + result_shapes[name] for name in names}

    def make_scorer():
        scored, renamed, scored_names, scored_shapes = model, {}, names, dict(shapes)
        if folded:
            scored, renamed = fold_targets(model, folded)
            back = {name: folded_name for folded_name, name in renamed.items()}
            scored_shapes.update({back[name]: (len(target.seeds),) for name, target in folded.items()})
            scored_names = [back.get(name, name) for name in names]
        options = dict(device=device, batch_size=rows, workers=workers)
        if method == "fast":
            scorer = fast_scorer(scored, scored_names, scored_shapes, window, length=sequences.length,
                                 default_batch=batch_size is None, **options)
        else:
            scorer = NaiveISM(scored, scored_names, scored_shapes, window, **options)
        if renamed:
            scorer = TargetScorer(scorer, renamed, {name: target.shape for name, target in folded.items()})
        return scorer if attribution == "delta" else AttributedScorer(scorer, attribution, window)

    references = {name: (len(sequences),) + result_shapes[name] for name in names}
    return Plan(model, sequences, extras, window, results, references, progress, make_scorer, attribution)


def ism_chunks(model, seqs, **options):
    """Yield ``(start, stop, reference, scores)`` per chunk of sequences, in order.

    Arguments as for :func:`ism`; ``reference`` maps output names to (n, *shape) predictions on the chunk (with
    ``targets``: the targets, (n, *target_shape)). Memory is bounded by the chunk, whatever the number of sequences.
    """
    yield from run_plan(plan_ism(model, seqs, **options))


def ism(model, seqs, *, method="fast", positions=None, device="cpu", batch_size=None, outputs=None,
        progress=None, workers=None, extra_inputs=None, targets=None, attribution="delta"):
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
    attribution : {"delta", "centred", "projected"}
        What each entry holds (``attributions.py``): the delta (default); the delta minus its mean over the 4 bases
        (hypothetical scores, TF-MoDISco's input); or that centred score at the observed base, 0 elsewhere.

    Returns
    -------
    dict of str to ndarray, each float32 of shape (N, W, 4, *output_shape) (or *target_shape)
        Entry [n, i, b] = f(mutant) - f(reference), mutant = sequence n with position start + i set to base b (the
        delta; ``attribution`` gives another form of it).
    """
    return collect(plan_ism(model, seqs, method=method, positions=positions, device=device, batch_size=batch_size,
                            outputs=outputs, progress=progress, workers=workers, extra_inputs=extra_inputs,
                            targets=targets, attribution=attribution))


class TargetScorer:
    """A method's scorer on a model with folded targets, its results under the original output names and in each
    target's shape."""

    def __init__(self, scorer, renamed, target_shapes):
        self.scorer, self.renamed, self.target_shapes = scorer, renamed, target_shapes
        self.batch_size = scorer.batch_size

    def rows_per_sequence(self):
        return self.scorer.rows_per_sequence()

    def score(self, onehot, advance=None, extras=None):
        reference, scores = self.scorer.score(onehot, advance, extras)
        return self._named(reference, 1), self._named(scores, 3)

    def score_rows(self, onehot, seq, pos, base, extras=None):
        reference, deltas = self.scorer.score_rows(onehot, seq, pos, base, extras)
        return self._named(reference, 1), self._named(deltas, 1)

    def predict(self, onehot, extras=None):
        return self._named(self.scorer.predict(onehot, extras), 1)

    def _named(self, values, lead):
        named = {}
        for name, value in values.items():
            original = self.renamed.get(name, name)
            if original in self.target_shapes:
                value = value.reshape(value.shape[:lead] + self.target_shapes[original])
            named[original] = value
        return named
