"""``tism``: Taylor ISM and gradient attributions from the gradient graph, streamed chunk by chunk.

Contract: per output name an array (N, W, 4, *target_shape) float32. For attribution "tism", entry [n, i, b, t]
is g[b] - g[ref] with g = d target_t / d input at position start + i of sequence n: the first-order estimate of
ISM's f(mutant) - f(reference), zero at the reference base, so ``tism`` and ``ism`` arrays compare entry for
entry (with the default targets, every output element, the shapes are the same).
"""

import numpy as np

from ..errors import ModelError, OnnxismError
from ..gradients import GRADIENT, build_gradient_model, seed_name
from ..model.extra_inputs import check_extra_inputs
from ..model.loading import load
from ..progress import checked_progress
from ..runtime.rows import padded_rows, rows_of
from ..runtime.sessions import make_session, parse_device
from ..runtime.weights import detached_copy
from .attributions import check_form
from .driver import Plan, collect, run_plan
from .options import resolve_batch_size, resolve_window
from .targets import outputs_and_targets

#: TISM's attribution forms (``attributions.py``: "tism" and "delta" are one form, g[b] - g[ref]).
ATTRIBUTIONS = ("tism", "delta", "centred", "projected", "gradient", "gradient_x_input")


def attribute(gradient, onehot, kind):
    """(…, L, 4) gradients and (…, L, 4) one-hot -> the attribution ``kind`` (see ATTRIBUTIONS)."""
    if kind == "gradient":
        return gradient
    if kind == "gradient_x_input":
        return gradient * onehot
    if kind in ("centred", "projected"):
        centred = gradient - gradient.mean(axis=-1, keepdims=True)
        return centred if kind == "centred" else centred * onehot
    return gradient - (gradient * onehot).sum(axis=-1, keepdims=True)


def gradient_session(model, name, length, device):
    """The onnxruntime session of ``name``'s gradient graph at ``length``, built once per loaded model."""
    cache = model.cache.gradient_sessions
    key = (name, length, parse_device(device))
    if key not in cache:
        graph, weights = detached_copy(build_gradient_model(model, [name], length, standalone=False))
        try:  # (its large weights beside it: ``runtime/weights.py``)
            cache[key] = make_session(graph.SerializeToString(), device, weights=weights)
        except OnnxismError:
            raise
        except Exception as err:  # onnxruntime's own exception types
            raise ModelError(f"onnxruntime cannot load the gradient graph of {model.source}: {err}") from err
    return cache[key]


class TismScorer:
    """Scores a chunk of sequences: one forward and one backward pass per block of targets."""

    def __init__(self, model, targets, window, *, length, device, batch_size, attribution):
        self.model = model
        self.targets = targets
        self.window = window
        self.length = length
        self.device = device
        self.rows = self.batch_size = batch_size
        self.attribution = attribution
        self.sessions = {name: gradient_session(model, name, length, device) for name in targets}

    def rows_per_sequence(self):
        return max(1, sum(len(target.seeds) for target in self.targets.values()))

    def score(self, onehot, advance=None, extras=None):
        """(n, L, 4) chunk and its rows of the extra inputs -> (reference outputs, scores) dicts; scores are
        (n, W, 4, *target shape). The gradient is taken with respect to the sequences only."""
        extras = extras or {}
        start, end = self.window
        count = len(onehot)
        reference, scores = {}, {}
        for name, target in self.targets.items():
            total = len(target.seeds)
            step = self.model.fixed_batch or max(1, min(count, self.rows // total))
            seeds_per_call = max(1, min(total, self.rows // step))
            out = np.empty((count, end - start, 4, total), dtype=np.float32)
            ref = []
            for first in range(0, count, step):
                block = onehot[first:first + step]
                rows = rows_of(extras, slice(first, first + step))
                fixed = self.model.fixed_batch or 0  # a fixed batch's last block is padded to its size
                feeds = self.model.feeds(padded_rows(block, fixed), padded_rows(rows, fixed))
                for seed_first in range(0, total, seeds_per_call):
                    seeds = target.seeds[seed_first:seed_first + seeds_per_call]
                    want = [GRADIENT] + ([name] if seed_first == 0 else [])
                    values = self._run(name, want, dict(feeds, **{seed_name(name): seeds}))
                    gradient = values[0][:, : len(block)]
                    if self.model.layout == "NCL":
                        gradient = gradient.transpose(0, 1, 3, 2)
                    part = attribute(gradient[:, :, start:end], block[None, :, start:end], self.attribution)
                    out[first:first + len(block), :, :, seed_first:seed_first + len(seeds)] = part.transpose(1, 2, 3, 0)
                    if seed_first == 0:
                        ref.append(np.asarray(values[1][: len(block)], dtype=np.float32))
                if advance is not None:
                    advance(len(block) / len(self.targets))
            reference[name] = np.concatenate(ref)
            scores[name] = out.reshape(out.shape[:3] + target.shape)
        return reference, scores

    def _run(self, name, outputs, feeds):
        try:
            return self.sessions[name].run(outputs, feeds)
        except Exception as err:  # onnxruntime's own exception types
            raise ModelError(f"onnxruntime failed to run the gradient graph of {self.model.source}: {err}") from err


def plan_tism(model, seqs, *, targets=None, attribution="tism", positions=None, device="cpu", batch_size=None,
              outputs=None, progress=None, extra_inputs=None):
    """The Plan of a TISM run (arguments as for :func:`tism`), everything checked; no session is built yet."""
    model = load(model)
    sequences = model.sequences(seqs)
    extras = check_extra_inputs(model, extra_inputs, len(sequences), sequences.length)
    window = resolve_window(positions, sequences.length)
    resolved = outputs_and_targets(model, outputs, targets, sequences.length, device)[2]
    progress = checked_progress(progress)
    check_form(attribution, ATTRIBUTIONS, "TISM")
    rows = resolve_batch_size(batch_size, sequences.length, device)
    width = window[1] - window[0]
    shapes = {name: (len(sequences), width, 4) + target.shape for name, target in resolved.items()}
    output_shapes = model.output_shapes(sequences.length, device)
    references = {name: (len(sequences),) + output_shapes[name] for name in resolved}

    def make_scorer():
        return TismScorer(model, resolved, window, length=sequences.length, device=device, batch_size=rows,
                          attribution=attribution)

    return Plan(model, sequences, extras, window, shapes, references, progress, make_scorer,
                "delta" if attribution == "tism" else attribution)


def tism_chunks(model, seqs, **options):
    """Yield ``(start, stop, reference, scores)`` per chunk of sequences, in order; arguments as for :func:`tism`
    (``reference``: each output's predictions on the chunk)."""
    yield from run_plan(plan_tism(model, seqs, **options))


def tism(model, seqs, *, targets=None, attribution="tism", positions=None, device="cpu", batch_size=None,
         outputs=None, progress=None, extra_inputs=None):
    """Taylor ISM (Sasse et al. 2023) and related gradient attributions, from one backward pass per target.

    Parameters
    ----------
    model, seqs, positions, device, outputs, progress, extra_inputs
        As for :func:`onnxism.ism` (the gradient is taken with respect to the sequences; the extra inputs are held
        at each sequence's values).
    targets : None, "all", "sum", "mean", index, weights, or dict of output name to one of those
        The scalars differentiated, per output: every element (default; the result has the output's shape),
        their sum or mean, one element (an int or tuple index), or weights of the output's shape (a scalar) or
        (K, *output_shape) (K targets). A dict picks outputs and gives each its own target.
    attribution : {"tism", "delta", "centred", "projected", "gradient", "gradient_x_input"}
        "tism" (or "delta", its name for ISM): g[b] - g[reference base] (zero at the reference; at an N position,
        g[b]); "centred": g - mean over the 4 bases (Majdandzic et al. 2023); "projected": that at the observed base,
        0 elsewhere; "gradient": the raw gradient; "gradient_x_input": g * one-hot. ``attributions.py`` has the
        formulas, the same as ISM's for the forms both have.
    batch_size : int, optional
        Targets x sequences per onnxruntime call; a default scaled to L when None.

    Returns
    -------
    dict of str to ndarray, each float32 of shape (N, W, 4, *target_shape)
    """
    return collect(plan_tism(model, seqs, targets=targets, attribution=attribution, positions=positions,
                             device=device, batch_size=batch_size, outputs=outputs, progress=progress,
                             extra_inputs=extra_inputs))
