"""FastISM: exact ISM that recomputes only the window each substitution can change (the fastISM idea, on ONNX).

Per chunk of sequences: one reference run caches the tables on the device; then batches of substitutions
(sequences x positions x alternatives together) go through the ISM graph in one onnxruntime call each, which
returns only the change of each output (``runner.py``: IO binding, on the CPU and on CUDA alike).
"""

import warnings

import numpy as np

from ..errors import OnnxismWarning, UnsupportedGraphError
from ..methods.mutations import substitutions
from ..methods.naive import NaiveISM
from ..graph.nodes import default_opset
from ..passes.base import run_pipeline
from ..passes.pipeline import FAST_NORMALISE, ProbeContext
from ..runtime.sessions import make_session, parse_device
from ..runtime.weights import session_weights
from ..runtime.workers import run_in_order
from .analysis import analyse
from .graphs import IsmGraphBuilder
from .indices import gather_indices
from .runner import BoundRunner


#: The default CPU batch aims for about this many values (8 MiB of float32) in its widest windowed tensor, so that
#: a batch's passes over it stay in cache: measured BPNet 1 kb fastest at 24 to 32 rows (64000 values a row),
#: Basset (5700) at 256.
BATCH_VALUES = 2 ** 21


class FastPlan:
    """The compiled graphs and window data for one model, length and output selection."""

    def __init__(self, model, length, outputs, dense_heads=True, *, deltas=False):
        layout_axis = 1 if model.layout == "NLC" else 2
        shape = [2, length, 4] if model.layout == "NLC" else [2, 4, length]
        extras = {extra.name: (extra.shape_at(length), extra.dtype) for extra in model.extra_inputs}
        run = run_pipeline(FAST_NORMALISE, model.proto, ProbeContext(model.input_name, shape, model.input_dtype,
                                                                     extras))
        proto, shapes, fixed, dtypes = run.proto, run.ctx.shapes, run.ctx.fixed, run.ctx.dtypes
        self.analysis = analyse(proto.graph, model.input_name, layout_axis, shapes, default_opset(proto), fixed,
                                extras)
        self.batch_size = self.default_batch_size(shapes)
        _check_batch_axis(shapes, self.analysis)
        builder = IsmGraphBuilder(proto, self.analysis, shapes, model.input_name, outputs, dense_heads,
                                  deltas=deltas, dtypes=dtypes)
        self.ism_model, self.reference_model = builder.build()
        # the large weights go beside the two graphs, as arrays (``runtime/weights.py``): the analysis's copies of
        # the model's weights; ``_session_of`` hands them to a session
        self.weights = builder.weights
        self.analysis.constants = {}  # (the weights not among them are in the graphs)
        self.gathers = builder.gathers
        self.tables = list(builder.tables)
        self.table_rows = {name: builder.table_rows(name) for name in builder.tables}  # rows per sequence
        self.outputs = outputs
        self.ism_outputs = builder.result_names()
        self.input_window = builder.win(model.input_name)
        self.heads = builder.heads  # node key -> the linear global layer it belongs to (``linear.py``)
        # the ISM graph takes each dense head's weight rows of the batch's window (one window start per head per
        # batch), which the runner binds in place: the plan keeps the weight rows
        self.dense_heads = builder.dense_heads
        self.device_weight_rows = {}  # (kind, index) -> their weight rows as OrtValues there (``runner.py``)

    def default_batch_size(self, shapes):
        """Rows per CPU batch by default: BATCH_VALUES over the values per row of the widest windowed tensor
        (``shapes``: the probed shapes), rounded to a power of two in [16, 256]."""
        widest = max(window.width * int(np.prod(shapes[name][1:])) // shapes[name][window.axis]
                     for name, window in self.analysis.windows.items())
        return int(2 ** np.clip(np.round(np.log2(BATCH_VALUES / max(1, widest))), 4, 8))

    def groups(self, positions):
        """Per sequence position, the group of the batches it may join (0, 1, ...): positions share a group when
        their windows start at the same column at every dense head, as one batch's substitutions must."""
        if not self.dense_heads:
            return np.zeros(len(positions), np.int64)
        starts = np.stack([self.analysis.windows[head.source].start[positions] for head in self.dense_heads], 1)
        return np.unique(starts, axis=0, return_inverse=True)[1].reshape(-1)


def _compiled(model, length, outputs, device, threads=None):
    """(plan, reference session, ISM session), kept on the loaded model per length, outputs, device and session
    threads, so that repeated calls pay the analysis and session start-up once. The plan lets each graph go as its
    session is made (the sessions hold the weights; for a model with a large Dense layer each graph is another copy
    of it): another device or thread count builds its plan again."""
    compiled = model.cache.fast_plans
    key = (length, tuple(outputs), parse_device(device), threads)
    if key not in compiled:
        plan = FastPlan(model, length, outputs, deltas=True)
        reference = _session_of(plan, "reference_model", device, threads)
        compiled[key] = (plan, reference, _session_of(plan, "ism_model", device, threads))
    return compiled[key]


def _session_of(plan, graph, device, threads):
    """A session of the plan's ``graph`` ("reference_model" or "ism_model"), which the plan lets go first; once
    both are gone, so are the weights that went beside them."""
    proto = getattr(plan, graph)
    weights = session_weights(proto, plan.weights)
    serialized = proto.SerializeToString()
    setattr(plan, graph, None)
    if plan.ism_model is None and plan.reference_model is None:
        plan.weights = {}
    return make_session(serialized, device, threads=threads, weights=weights)


def _check_batch_axis(shapes, analysis):
    for name, window in analysis.windows.items():
        if shapes[name][0] != 2:
            raise UnsupportedGraphError(f"tensor {name!r} does not have the batch on its first axis")


def _batches(group, size):
    """(first, stop) of consecutive batches of at most ``size`` rows, each inside one run of equal ``group``."""
    cuts = np.flatnonzero(np.diff(group)) + 1
    for begin, end in zip(np.r_[0, cuts], np.r_[cuts, len(group)]):
        for first in range(int(begin), int(end), size):
            yield first, min(first + size, int(end))


def fast_plan(model, length, outputs, build=FastPlan):
    """(plan, None), or (None, why fast ISM cannot analyse ``model`` and falls back to naive ISM): the one place that
    decides the fallback, on a declared UnsupportedGraphError only; any other exception is a bug and propagates."""
    if model.fixed_batch is not None:
        return None, (f"the graph has a fixed batch size ({model.fixed_batch}) that loading could not free; "
                      "re-export it with a dynamic batch axis")
    try:
        return build(model, length, outputs), None
    except UnsupportedGraphError as err:
        return None, str(err)


class FastISM(NaiveISM):
    """Scores a chunk of sequences through the window-by-window ISM graph; same contract as NaiveISM.

    A graph the analysis cannot handle at all (e.g. a fixed batch size) is scored as NaiveISM does, with a
    notice; ops without a local rule are computed on the full length (exact), with a notice unless global by nature.
    """

    name = "fast"
    #: CPU default of concurrent calls: two, of half the cores each (its graphs of many small ops leave cores idle
    #: between ops otherwise; measured in the README)
    default_workers = 2

    def __init__(self, model, outputs, shapes, window, *, length=None, device="cpu", batch_size=128,
                 default_batch=False, workers=None):
        super().__init__(model, outputs, shapes, window, length=length, device=device, batch_size=batch_size,
                         workers=workers)
        self.fallback = False
        compiled, why = fast_plan(model, model.sequence_length(length), outputs,
                                  lambda *args: _compiled(*args, device, self.threads))
        if compiled is None:
            warnings.warn(f"fast ISM cannot analyse {model.source} ({why}); using exact naive ISM",
                          OnnxismWarning, stacklevel=4)
            self.fallback = True
            return
        self.plan, self.reference, self.ism = compiled
        if default_batch and parse_device(device)[0] == "cpu":
            self.batch_size = self.plan.batch_size
        unexpected = self.plan.analysis.split_notices()[1]
        if unexpected:
            warnings.warn(
                f"fast ISM has no local rule for {', '.join(map(str, unexpected[:5]))}"
                f"{' and more' if len(unexpected) > 5 else ''}; computing them on the full length (exact, slower)",
                OnnxismWarning, stacklevel=4)

    def rows_per_sequence(self):
        """Rows per sequence that can share a batch (chunks hold enough sequences to fill batches): those of one
        group of positions (``FastPlan.groups``)."""
        rows = super().rows_per_sequence()
        if self.fallback or not self.plan.dense_heads:
            return rows
        groups = len(np.unique(self.plan.groups(np.arange(*self.window))))
        return max(1, rows // groups)

    def score(self, onehot, advance=None, extras=None):
        if self.fallback:
            return super().score(onehot, advance, extras)
        start, end = self.window
        count, width = len(onehot), end - start
        plan = self.plan
        runner = BoundRunner(plan, self.reference, self.ism, self.model.input_name, self.device)
        reference = runner.start_chunk(self.model.to_model_layout(onehot), extras)
        scores = {name: np.zeros((count, width, 4) + self.shapes[name], dtype=np.float32) for name in self.outputs}
        seq, pos, base = substitutions(onehot, self.window)
        total = len(seq)
        windows = plan.analysis.windows
        tables = plan.analysis.table_window
        group = plan.groups(pos + start)
        order = np.argsort(group, kind="stable")  # batches never mix groups
        seq, pos, base, group = seq[order], pos[order], base[order], group[order]

        def work(batch):
            first, stop = batch
            s, p, b = seq[first:stop], pos[first:stop] + start, base[first:stop]
            column = np.zeros((len(s), 4), np.float32)
            column[np.arange(len(s)), b] = 1.0
            # the batch's sequences are consecutive: the runner binds their reference rows of the chunk's tables,
            # so the graph's [reference | window | padding] tables grow with the batch, not with the chunk
            first_seq, seqs_in_batch = int(s[0]), int(s[-1]) - int(s[0]) + 1
            feeds = {plan.input_window: column[:, None, :]}  # the rows layout: (rows, window 1, 4)
            for spec in plan.gathers:
                feeds[spec.index_name] = gather_indices(spec, tables(spec.source), s - first_seq, p, seqs_in_batch)
            starts = [int(windows[head.source].start[p[0]]) for head in plan.dense_heads]
            return runner.batch(first_seq, first_seq + seqs_in_batch, feeds, starts)

        def consume(batch, deltas):
            first, stop = batch
            s, p, b = seq[first:stop], pos[first:stop], base[first:stop]
            for name, value in zip(self.outputs, deltas):
                scores[name][s, p, b] = value
            if advance is not None:
                advance(len(s) * count / max(total, 1))

        run_in_order(_batches(group, self.batch_size), work, consume, self.workers)
        runner.end_chunk()
        return reference, scores
