"""Pass ``explicit_same_pads``: auto_pad=SAME_* on a dilated, unstrided Conv (torch's legacy exporter writes it;
onnxruntime refuses it) as explicit pads.

With stride 1 the SAME padding is (k - 1) * d in total whatever the input length, the extra column at the end for
SAME_UPPER and at the start for SAME_LOWER, so the rewrite is exact. Invariant: every tensor keeps its value.
"""

from onnx import helper

from ..graph.nodes import attributes
from .base import PassResult, editable, unchanged


def run(proto, ctx):
    found = [(index, pads) for index, pads in ((index, _explicit_pads(node, proto.graph))
                                               for index, node in enumerate(proto.graph.node)) if pads is not None]
    if not found:
        return unchanged(proto)
    repaired = editable(proto, ctx)
    for index, pads in found:
        node = repaired.graph.node[index]
        kept = [attr for attr in node.attribute if attr.name not in ("auto_pad", "pads")]
        del node.attribute[:]
        node.attribute.extend(kept)
        node.attribute.append(helper.make_attribute("pads", pads))
    return PassResult(repaired, True, f"{len(found)} Conv(s) given explicit pads")


def _explicit_pads(node, graph):
    """The explicit pads of a dilated, unstrided SAME Conv, else None."""
    if node.op_type != "Conv":
        return None
    attrs = attributes(node)
    auto_pad = attrs.get("auto_pad", "NOTSET")
    dilations = attrs.get("dilations")
    if auto_pad not in ("SAME_UPPER", "SAME_LOWER") or not dilations or all(d == 1 for d in dilations):
        return None
    if any(s != 1 for s in attrs.get("strides", [1] * len(dilations))):
        return None
    kernel = attrs.get("kernel_shape") or next((list(init.dims[2:]) for init in graph.initializer
                                                if init.name == node.input[1]), None)
    if kernel is None:
        return None
    totals = [(k - 1) * d for k, d in zip(kernel, dilations)]
    small = [t // 2 for t in totals]
    large = [t - s for t, s in zip(totals, small)]
    return small + large if auto_pad == "SAME_UPPER" else large + small
