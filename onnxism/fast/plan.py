"""FastPlan: what fast ISM knows of one model, length and output selection once it has built its graphs.

``build_plan`` runs the steps in order, each one declared: the FAST_NORMALISE pipeline (exporter forms and the
probe, ``passes/pipeline.py``), the window analysis (``analysis.py``), the batch-axis check, and the graph builder
(``build/``). A graph fast ISM cannot handle is refused by an UnsupportedGraphError (a fixed batch, a tensor without
the batch first, ...), on which the caller falls back to naive ISM (``methods/fallback.py``); any other exception
is a bug and propagates.

Invariant: a FastPlan is not changed once built; the graphs (and their weights) come beside it, in BuiltGraphs, for
the sessions to take and let go.
"""

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ..errors import UnsupportedGraphError
from ..graph.nodes import default_opset
from ..passes.base import run_pipeline
from ..passes.pipeline import FAST_NORMALISE, ProbeContext
from .analysis import analyse
from .build import BuiltGraphs, build_graphs

#: The default CPU batch aims for about this many values (8 MiB of float32) in its widest windowed tensor, so that
#: a batch's passes over it stay in cache: measured BPNet 1 kb fastest at 24 to 32 rows (64000 values a row),
#: Basset (5700) at 256.
BATCH_VALUES = 2 ** 21


@dataclass(frozen=True)
class FastPlan:
    """The window analysis, the default batch, and what the executor feeds the ISM graph (``build.BuiltGraphs``)."""

    analysis: object  # Analysis
    batch_size: int  # rows per CPU batch by default (``default_batch_size``)
    outputs: tuple
    gathers: tuple  # GatherSpec per gather index input of the ISM graph
    tables: tuple  # the reference graph's tables, in its output order
    table_rows: dict  # table name -> rows per sequence
    ism_outputs: tuple
    input_window: str
    heads: dict  # node key -> the linear global layer it belongs to (``heads.py``)
    dense_heads: tuple  # the dense heads whose weight rows of the batch's window the runner binds in place

    def groups(self, positions):
        """Per sequence position, the group of the batches it may join (0, 1, ...): positions share a group when
        their windows start at the same column at every dense head, as one batch's substitutions must."""
        if not self.dense_heads:
            return np.zeros(len(positions), np.int64)
        starts = np.stack([self.analysis.windows[head.source].start[positions] for head in self.dense_heads], 1)
        return np.unique(starts, axis=0, return_inverse=True)[1].reshape(-1)


class BuiltPlan(NamedTuple):
    plan: FastPlan
    graphs: BuiltGraphs


def build_plan(model, length, outputs, *, dense_heads=True, deltas=False):
    """The FastPlan of ``model`` (a SequenceModel) at ``length`` for ``outputs``, and its graphs; ``deltas``: the
    ISM graph returns the change of each output; ``dense_heads``: dense layers after a Flatten are updated
    incrementally (the executor binds their weight rows). Raises UnsupportedGraphError where fast ISM cannot run."""
    if model.fixed_batch is not None:
        raise UnsupportedGraphError(f"the graph has a fixed batch size ({model.fixed_batch}) that loading could not "
                                    "free; re-export it with a dynamic batch axis")
    layout_axis = 1 if model.layout == "NLC" else 2
    shape = [2, length, 4] if model.layout == "NLC" else [2, 4, length]
    extras = {extra.name: (extra.shape_at(length), extra.dtype) for extra in model.extra_inputs}
    run = run_pipeline(FAST_NORMALISE, model.proto, ProbeContext(model.input_name, shape, model.input_dtype, extras))
    proto, shapes = run.proto, run.ctx.shapes
    analysis = analyse(proto.graph, model.input_name, layout_axis, shapes, default_opset(proto), run.ctx.fixed,
                       extras)
    _check_batch_axis(shapes, analysis)
    graphs = build_graphs(proto, analysis, shapes, model.input_name, outputs, dense_heads, deltas=deltas,
                          dtypes=run.ctx.dtypes)
    analysis.constants = {}  # (its copies of the weights: those the graphs need went beside them)
    plan = FastPlan(analysis, default_batch_size(analysis, shapes), tuple(outputs), tuple(graphs.gathers),
                    tuple(graphs.tables), graphs.table_rows, tuple(graphs.ism_outputs), graphs.input_window,
                    graphs.heads, tuple(graphs.dense_heads))
    return BuiltPlan(plan, graphs)


def default_batch_size(analysis, shapes):
    """Rows per CPU batch by default: BATCH_VALUES over the values per row of the widest windowed tensor
    (``shapes``: the probed shapes), rounded to a power of two in [16, 256]."""
    widest = max(window.width * int(np.prod(shapes[name][1:])) // shapes[name][window.axis]
                 for name, window in analysis.windows.items())
    return int(2 ** np.clip(np.round(np.log2(BATCH_VALUES / max(1, widest))), 4, 8))


def _check_batch_axis(shapes, analysis):
    for name in analysis.windows:
        if shapes[name][0] != 2:
            raise UnsupportedGraphError(f"tensor {name!r} does not have the batch on its first axis")
