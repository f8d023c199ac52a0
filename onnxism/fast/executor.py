"""FastISM: exact ISM that recomputes only the window each substitution can change (the fastISM idea, on ONNX).

Per chunk of sequences: one reference run caches the tables on the device; then batches of substitutions
(sequences x positions x alternatives together) go through the ISM graph in one onnxruntime call each, which
returns only the change of each output (``runner.py``: IO binding, on the CPU and on CUDA alike).

Invariant: ``FastISM.score`` returns what naive ISM returns (``methods/naive.py``): per output (n, W, 4, *shape),
f(mutant) - f(reference), exactly 0 at the reference base.
"""

import warnings
from dataclasses import dataclass

import numpy as np

from ..errors import OnnxismWarning
from ..runtime.sessions import import_onnxruntime, make_session, parse_device
from ..runtime.weights import session_weights
from ..runtime.workers import resolve_workers, run_in_order, session_threads
from ..sequences.mutations import substitutions
from .indices import gather_indices
from .plan import build_plan
from .runner import BoundRunner

#: CPU default of concurrent calls: two, of half the cores each (its graphs of many small ops leave cores idle
#: between ops otherwise; measured in benchmarks/README.md)
DEFAULT_WORKERS = 2


@dataclass(frozen=True)
class Compiled:
    """A FastPlan with its two sessions on one device, and each dense head's weight rows there (an OrtValue that
    the runner binds the batch's rows of in place: on the CPU it shares the plan's array, on CUDA it is a copy)."""

    plan: object
    reference: object
    ism: object
    weight_rows: tuple


def compiled_plan(model, length, outputs, device="cpu", threads=None):
    """The Compiled plan, kept in the loaded model's cache per length, outputs, device and session threads, so that
    repeated calls pay the analysis and session start-up once. Raises UnsupportedGraphError where fast ISM cannot
    run (``plan.build_plan``)."""
    cache = model.cache.fast_plans
    key = (length, tuple(outputs), parse_device(device), threads)
    if key not in cache:
        plan, graphs = build_plan(model, length, outputs, deltas=True)
        reference = _session(graphs.reference_model, graphs.weights, device, threads)
        ism = _session(graphs.ism_model, graphs.weights, device, threads)
        ort, placed = import_onnxruntime(), parse_device(device)
        rows = tuple(ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(head.weight_rows), *placed)
                     for head in plan.dense_heads)
        cache[key] = Compiled(plan, reference, ism, rows)
    return cache[key]


def _session(proto, weights, device, threads):
    """A session of one of the plan's graphs, its large weights beside it (``runtime/weights.py``)."""
    return make_session(proto.SerializeToString(), device, threads=threads, weights=session_weights(proto, weights))


def fast_workers(workers, device):
    """(calls in flight, threads per session) for fast ISM: ``workers`` or DEFAULT_WORKERS on the CPU."""
    workers = resolve_workers(workers, device, DEFAULT_WORKERS)
    return workers, session_threads(workers, device)


def _batches(group, size):
    """(first, stop) of consecutive batches of at most ``size`` rows, each inside one run of equal ``group``."""
    cuts = np.flatnonzero(np.diff(group)) + 1
    for begin, end in zip(np.r_[0, cuts], np.r_[cuts, len(group)]):
        for first in range(int(begin), int(end), size):
            yield first, min(first + size, int(end))


class FastISM:
    """Scores a chunk of sequences through the window-by-window ISM graph of a Compiled plan; ops without a local
    rule are computed on the full length (exact), with a notice unless global by nature."""

    name = "fast"

    def __init__(self, model, compiled, outputs, shapes, window, *, device="cpu", batch_size=None, workers=None):
        self.model, self.compiled, self.plan = model, compiled, compiled.plan
        self.outputs, self.shapes, self.window, self.device = outputs, shapes, window, device
        self.workers = fast_workers(workers, device)[0]
        self.batch_size = self.plan.batch_size if batch_size is None else batch_size
        unexpected = self.plan.analysis.split_notices()[1]
        if unexpected:
            warnings.warn(
                f"fast ISM has no local rule for {', '.join(map(str, unexpected[:5]))}"
                f"{' and more' if len(unexpected) > 5 else ''}; computing them on the full length (exact, slower)",
                OnnxismWarning, stacklevel=5)

    def rows_per_sequence(self):
        """Rows per sequence that can share a batch (chunks hold enough sequences to fill batches): those of one
        group of positions (``FastPlan.groups``)."""
        rows = 3 * (self.window[1] - self.window[0])
        if not self.plan.dense_heads:
            return rows
        groups = len(np.unique(self.plan.groups(np.arange(*self.window))))
        return max(1, rows // groups)

    def score(self, onehot, advance=None, extras=None):
        """(n, L, 4) chunk (and its rows of the extra inputs) -> (reference outputs, scores) dicts; scores are
        (n, W, 4, *shape)."""
        start, end = self.window
        count, width = len(onehot), end - start
        scores = {name: np.zeros((count, width, 4) + self.shapes[name], dtype=np.float32) for name in self.outputs}
        seq, pos, base = substitutions(onehot, self.window)

        def put(rows, deltas):
            for name, value in zip(self.outputs, deltas):
                scores[name][seq[rows], pos[rows], base[rows]] = value

        reference = self._run_rows(onehot, seq, pos + start, base, put, advance, extras)
        return reference, scores

    def score_rows(self, onehot, seq, pos, base, extras=None):
        """The substitutions (seq[k], pos[k], base[k]) of the (n, L, 4) chunk (``pos`` from the sequence's first
        position) -> (reference outputs, {name: (rows, *shape)} of f(mutant) - f(reference))."""
        deltas = {name: np.zeros((len(seq),) + self.shapes[name], dtype=np.float32) for name in self.outputs}

        def put(rows, values):
            for name, value in zip(self.outputs, values):
                deltas[name][rows] = value

        reference = self._run_rows(onehot, np.asarray(seq), np.asarray(pos), np.asarray(base), put, None, extras)
        return reference, deltas

    def _run_rows(self, onehot, seq, pos, base, put, advance, extras):
        """Run the substitutions (absolute positions) in batches that never mix groups; ``put(rows, deltas)`` gets
        the indices of each batch's substitutions and their deltas. Returns the chunk's reference outputs."""
        plan, compiled, count = self.plan, self.compiled, len(onehot)
        runner = BoundRunner(plan, compiled.reference, compiled.ism, compiled.weight_rows, self.model.input_name,
                             self.device)
        reference = runner.start_chunk(self.model.to_model_layout(onehot), extras)
        total = len(seq)
        windows = plan.analysis.windows
        tables = plan.analysis.table_window
        group = plan.groups(pos)
        order = np.lexsort((seq, group))  # batches never mix groups; in a batch, sequences are consecutive
        group = group[order]

        def work(batch):
            first, stop = batch
            rows = order[first:stop]
            s, p, b = seq[rows], pos[rows], base[rows]
            column = np.zeros((len(s), 4), np.float32)
            column[np.arange(len(s)), b] = 1.0
            # the batch's sequences are consecutive: the runner binds their reference rows of the chunk's tables,
            # so the graph's [reference | window | padding] tables grow with the batch, not with the chunk
            first_seq, seqs_in_batch = int(s.min()), int(s.max()) - int(s.min()) + 1
            feeds = {plan.input_window: column[:, None, :]}  # the rows layout: (rows, window 1, 4)
            for spec in plan.gathers:
                feeds[spec.index_name] = gather_indices(spec, tables(spec.source), s - first_seq, p, seqs_in_batch)
            starts = [int(windows[head.source].start[p[0]]) for head in plan.dense_heads]
            return runner.batch(first_seq, first_seq + seqs_in_batch, feeds, starts)

        def consume(batch, deltas):
            first, stop = batch
            put(order[first:stop], deltas)
            if advance is not None:
                advance((stop - first) * count / max(total, 1))

        run_in_order(_batches(group, self.batch_size), work, consume, self.workers)
        runner.end_chunk()
        return reference
