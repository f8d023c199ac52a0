"""Step ``probe``: the shapes of every tensor, and what shape arithmetic computes, from onnxruntime runs on zero
sequences (``graph.probe.probe_graph``). Rewrites nothing; its facts are the context's ``shapes``, ``fixed``,
``uniform`` and ``dtypes``, which the probed rewrites and fast ISM's analysis read."""

from ..graph.probe import probe_graph
from .base import PassResult


def probed(proto, ctx):
    """The probe's facts of ``proto`` for the context ``ctx`` (a ProbeContext), as context updates."""
    shapes, fixed, uniform, dtypes = probe_graph(proto, ctx.input_name, ctx.input_shape, ctx.dtype, extras=ctx.extras)
    return {"shapes": shapes, "fixed": fixed, "uniform": uniform, "dtypes": dtypes}


def run(proto, ctx):
    return PassResult(proto, False, "", probed(proto, ctx))
