"""Pass ``repair_header``: the model header onnxruntime reads.

Rewrites: an IR version above the newest the pinned onnxruntime reads (onnx >= 1.23 writes 14) down to it.
Refuses (ModelError) a model that imports no default-domain opset, or one newer than onnxruntime runs.
Invariant: the graph is not changed.
"""

from ..errors import ModelError
from ..graph.nodes import default_opset
from ..runtime.sessions import MAX_IR_VERSION, MAX_OPSET
from .base import PassResult, editable, unchanged


def run(proto, ctx):
    opset = default_opset(proto)
    if opset is None:
        raise ModelError(f"{ctx.source} imports no default-domain opset; it is not a usable ONNX model")
    if opset > MAX_OPSET:
        raise ModelError(
            f"{ctx.source} uses opset {opset}; onnxruntime runs opsets up to {MAX_OPSET}: re-export with a lower opset"
        )
    if proto.ir_version <= MAX_IR_VERSION:
        return unchanged(proto)
    repaired = editable(proto, ctx)
    repaired.ir_version = MAX_IR_VERSION
    return PassResult(repaired, True, f"IR version {proto.ir_version} read as {MAX_IR_VERSION}")
