"""Pass ``scatter_opset``: the gradient graph's opset. Its reverse pass scatters with ScatterElements' reduction
(opset 16); a model of opset 13 to 15 is read at 16, where every op it can use means the same. Refuses
(UnsupportedGraphError) a model before opset 13, whose ops' forms the gradient rules do not read.
Invariant: the graph is not changed."""

from ..errors import UnsupportedGraphError
from ..graph.nodes import default_opset
from .base import PassResult, editable, unchanged

MIN_OPSET, SCATTER_OPSET = 13, 16


def run(proto, ctx):
    opset = default_opset(proto)
    if opset < MIN_OPSET:
        raise UnsupportedGraphError(
            f"gradients need opset >= {MIN_OPSET}; the model uses opset {opset}: re-export it at a newer opset"
        )
    if opset >= SCATTER_OPSET:
        return unchanged(proto)
    bumped = editable(proto, ctx)
    for entry in bumped.opset_import:
        if entry.domain in ("", "ai.onnx"):
            entry.version = SCATTER_OPSET
    return PassResult(bumped, True, f"opset {opset} read as {SCATTER_OPSET}")
