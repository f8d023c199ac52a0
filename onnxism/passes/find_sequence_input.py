"""Step ``find_sequence_input``: which input takes the one-hot sequences, in which layout, of which length and batch,
and the model's other inputs (``model.sequence_input``). Rewrites nothing; the passes after it read ``ctx.found``."""

from ..model.sequence_input import find_sequence_input
from .base import PassResult


def run(proto, ctx):
    found = find_sequence_input(proto.graph, input=ctx.input, layout=ctx.layout)
    return PassResult(proto, False, f"sequence input {found.name!r}, layout {found.layout}",
                      {"found": found, "fixed_batch": found.batch})
