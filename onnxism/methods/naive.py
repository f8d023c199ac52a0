"""Naive ISM: every substitution run through the whole model, batched across sequences and substitutions.

It is the reference every faster method is tested against. Memory: ``workers`` batches of mutants in flight (at
most twice that many built) plus the chunk's score arrays; mutants are built batch by batch, never all at once.
"""

import numpy as np

from ..runtime.rows import rows_of
from ..runtime.workers import resolve_workers, run_in_order, session_threads
from ..sequences.mutations import build_mutants, substitutions


class NaiveISM:
    """Scores a chunk of sequences by running each mutant through ``model``."""

    name = "naive"
    #: CPU default of concurrent calls (``runtime/workers.py``): one, of every core; its default batches are large
    #: enough to use them (in the benchmark, two calls of 256 Basset 1 kb mutants each ran 1.4x slower than one)
    default_workers = 1

    def __init__(self, model, outputs, shapes, window, *, device="cpu", batch_size=128, workers=None):
        self.model = model
        self.outputs = outputs
        self.shapes = shapes
        self.window = window
        self.device = device
        self.batch_size = batch_size
        self.workers = resolve_workers(workers, device, self.default_workers)
        self.threads = session_threads(self.workers, device)

    def rows_per_sequence(self):
        """Model rows evaluated per sequence (used for chunking and progress): 3 per position."""
        return 3 * (self.window[1] - self.window[0])

    def predict(self, onehot, extras=None):
        """The outputs on the (n, L, 4) sequences as given: {name: (n, *shape)}."""
        return dict(zip(self.outputs, self.model.run(onehot, self.outputs, self.device, self.threads, extras or {})))

    def score(self, onehot, advance=None, extras=None):
        """(n, L, 4) chunk (and its rows of the extra inputs) -> (reference outputs, scores) dicts; scores are
        (n, W, 4, *shape)."""
        start, end = self.window
        count, width = len(onehot), end - start
        scores = {
            name: np.zeros((count, width, 4) + self.shapes[name], dtype=np.float32) for name in self.outputs
        }
        seq, pos, base = substitutions(onehot, self.window)

        def put(part, deltas):
            for name, value in zip(self.outputs, deltas):
                scores[name][seq[part], pos[part], base[part]] = value

        reference = self._run_rows(onehot, seq, pos + start, base, put, advance, extras)
        return reference, scores

    def score_rows(self, onehot, seq, pos, base, extras=None):
        """The substitutions (seq[k], pos[k], base[k]) of the (n, L, 4) chunk (``pos`` from the sequence's first
        position) -> (reference outputs, {name: (rows, *shape)} of f(mutant) - f(reference))."""
        deltas = {name: np.zeros((len(seq),) + self.shapes[name], dtype=np.float32) for name in self.outputs}

        def put(part, values):
            for name, value in zip(self.outputs, values):
                deltas[name][part] = value

        reference = self._run_rows(onehot, np.asarray(seq), np.asarray(pos), np.asarray(base), put, None, extras)
        return reference, deltas

    def _run_rows(self, onehot, seq, pos, base, put, advance, extras):
        """Run the mutants of the substitutions (absolute positions) in batches; ``put(part, deltas)`` gets each
        batch's slice of the substitutions and their f(mutant) - f(reference). Returns the reference outputs."""
        extras = extras or {}
        reference = self.predict(onehot, extras)
        count, total = len(onehot), len(seq)

        def work(part):
            mutants = build_mutants(onehot, 0, seq[part], pos[part], base[part])
            return self.model.run(mutants, self.outputs, self.device, self.threads, rows_of(extras, seq[part]))

        def consume(part, values):
            put(part, [value - reference[name][seq[part]] for name, value in zip(self.outputs, values)])
            if advance is not None:
                advance(len(seq[part]) * count / max(total, 1))

        parts = (slice(first, first + self.batch_size) for first in range(0, total, self.batch_size))
        run_in_order(parts, work, consume, self.workers)
        return reference
