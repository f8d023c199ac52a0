"""Exporter forms rewritten into ones the window analysis reads (fast ISM; the gradient graph takes one of them).

Exporters sometimes put the length first and the batch second for one op, which the rows layout cannot hold, or
merge the batch with the length, or build constants from the batch's shape; each module here rewrites one such
form as node rewrites ``rewrite(node, index) -> (nodes, initializers) | None`` (``index``: ``index.GraphIndex``),
and the passes below run a list of them to a fixed point (``fixpoint.py``). The lists are in ``passes/pipeline.py``.

Invariant: every graph output and every value a kept node reads is computed exactly as before; the model is not
changed (nor copied) when nothing applies.
"""

from ..base import PassResult, unchanged
from ..probe import probed
from .fixpoint import rewrite_to_fixpoint


def node_rewrites(rewrites, note):
    """A pass running ``rewrites`` to a fixed point (with the probe's facts, where the context has them)."""
    def run(proto, ctx):
        rewritten = rewrite_to_fixpoint(proto, rewrites, getattr(ctx, "shapes", None), getattr(ctx, "uniform", None))
        return unchanged(proto) if rewritten is proto else PassResult(rewritten, True, note)
    return run


def probed_rewrites(rewrites, note):
    """A pass running ``rewrites`` (which read the probe's facts) to a fixed point, kept only where the rewritten
    model, probed again, gives every tensor of the model its shape; its facts then replace the context's."""
    def run(proto, ctx):
        rewritten = rewrite_to_fixpoint(proto, rewrites, ctx.shapes, ctx.uniform)
        if rewritten is proto:
            return unchanged(proto)
        again = probed(rewritten, ctx)
        kept = again["shapes"]
        if not all(kept.get(name, probed_shape) == probed_shape for name, probed_shape in ctx.shapes.items()):
            return unchanged(proto, "not kept: a tensor's shape would change")
        return PassResult(rewritten, True, note, {key: again[key] for key in ("shapes", "fixed", "dtypes")})
    return run
