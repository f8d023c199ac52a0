"""Read an ONNX file into a ModelProto that stock onnxruntime accepts.

Invariant: the graph is not changed; only header fields onnxruntime would refuse are repaired
(an IR version newer than it reads, as onnx >= 1.23 writes).
"""

import os

import onnx
from google.protobuf.message import DecodeError

from ..errors import InputError, ModelError
from ..graph.nodes import attributes, default_opset
from ..io.user_files import existing_file
from ..runtime.sessions import MAX_IR_VERSION, MAX_OPSET


def read_model(path):
    """Load ``path`` (external data included) and repair its header; errors name the file and the problem."""
    path = existing_file(path, "model file", "an .onnx file")
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as err:
        raise InputError(f"cannot read model file {path}: {err.strerror or err}") from err
    try:
        proto = onnx.load_from_string(data)
    except (DecodeError, ValueError, RuntimeError) as err:
        raise ModelError(f"{path} is not an ONNX model (it does not parse as one)") from err
    if not proto.graph.node or not proto.graph.output or not proto.opset_import:
        raise ModelError(f"{path} is not an ONNX model (no graph nodes, outputs or opset found)")
    if _uses_external_data(proto):
        try:
            onnx.load_external_data_for_model(proto, os.path.dirname(os.path.abspath(path)))
        except (OSError, ValueError) as err:
            raise ModelError(f"cannot load the external weights of {path}: {err}") from err
    return repair(proto, source=path)


def repair(proto, *, source="model"):
    """Return ``proto`` with the header fixed for onnxruntime; raises ModelError for what cannot be fixed."""
    opset = default_opset(proto)
    if opset is None:
        raise ModelError(f"{source} imports no default-domain opset; it is not a usable ONNX model")
    if opset > MAX_OPSET:
        raise ModelError(
            f"{source} uses opset {opset}; onnxruntime runs opsets up to {MAX_OPSET}: re-export with a lower opset"
        )
    if proto.ir_version > MAX_IR_VERSION:
        proto.ir_version = MAX_IR_VERSION
    for node in proto.graph.node:
        if node.op_type == "Conv":
            _explicit_same_pads(node, proto.graph)
    if any(node.op_type == "Erfc" and node.domain in ("", "ai.onnx") for node in proto.graph.node):
        _erfc_as_erf(proto.graph)
    return proto


def _erfc_as_erf(graph):
    """Rewrite tf2onnx's Erfc (Keras 3's exact GELU), which no ONNX opset defines, as 1 - Erf(x); the 1 takes x's
    declared type, float32 where none is declared (a wrong guess fails loudly when the model is loaded)."""
    declared = {value.name: value.type.tensor_type.elem_type
                for value in list(graph.input) + list(graph.value_info) if value.type.tensor_type.elem_type}
    nodes = []
    for node in graph.node:
        if node.op_type != "Erfc" or node.domain not in ("", "ai.onnx"):
            nodes.append(node)
            continue
        stem = node.name or node.output[0]
        erf, one = f"{stem}__erf", f"{stem}__one"
        kind = declared.get(node.input[0], onnx.TensorProto.FLOAT)
        value = onnx.helper.make_tensor(one, kind, [], [1.0])
        nodes.append(onnx.helper.make_node("Erf", [node.input[0]], [erf], name=erf))
        nodes.append(onnx.helper.make_node("Constant", [], [one], name=one, value=value))
        nodes.append(onnx.helper.make_node("Sub", [one, erf], [node.output[0]], name=f"{stem}__erfc"))
    del graph.node[:]
    graph.node.extend(nodes)


def _explicit_same_pads(node, graph):
    """Rewrite auto_pad=SAME_* on a dilated, unstrided Conv as explicit pads (onnxruntime refuses the former).

    With stride 1 the SAME padding is (k - 1) * d in total whatever the input length, the extra column at the end
    for SAME_UPPER and at the start for SAME_LOWER, so the rewrite is exact.
    """
    attrs = attributes(node)
    auto_pad = attrs.get("auto_pad", "NOTSET")
    dilations = attrs.get("dilations")
    if auto_pad not in ("SAME_UPPER", "SAME_LOWER") or not dilations or all(d == 1 for d in dilations):
        return
    if any(s != 1 for s in attrs.get("strides", [1] * len(dilations))):
        return
    kernel = attrs.get("kernel_shape") or _weight_kernel(graph, node.input[1])
    if kernel is None:
        return
    totals = [(k - 1) * d for k, d in zip(kernel, dilations)]
    small = [t // 2 for t in totals]
    large = [t - s for t, s in zip(totals, small)]
    pads = small + large if auto_pad == "SAME_UPPER" else large + small
    kept = [attr for attr in node.attribute if attr.name not in ("auto_pad", "pads")]
    del node.attribute[:]
    node.attribute.extend(kept)
    node.attribute.append(onnx.helper.make_attribute("pads", pads))


def _weight_kernel(graph, name):
    for init in graph.initializer:
        if init.name == name:
            return list(init.dims[2:])
    return None


def _uses_external_data(proto):
    return any(
        init.data_location == onnx.TensorProto.EXTERNAL for init in proto.graph.initializer
    )
