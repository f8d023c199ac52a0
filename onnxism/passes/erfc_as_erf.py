"""Pass ``erfc_as_erf``: tf2onnx's Erfc (Keras 3's exact GELU), which no ONNX opset defines, as 1 - Erf(x).

The 1 takes x's declared type, float32 where none is declared (a wrong guess fails loudly when the model is loaded).
Invariant: every tensor keeps its name and value.
"""

from onnx import TensorProto, helper

from .base import PassResult, editable, unchanged


def _is_erfc(node):
    return node.op_type == "Erfc" and node.domain in ("", "ai.onnx")


def run(proto, ctx):
    if not any(_is_erfc(node) for node in proto.graph.node):
        return unchanged(proto)
    repaired = editable(proto, ctx)
    graph = repaired.graph
    declared = {value.name: value.type.tensor_type.elem_type
                for value in list(graph.input) + list(graph.value_info) if value.type.tensor_type.elem_type}
    nodes, count = [], 0
    for node in graph.node:
        if not _is_erfc(node):
            nodes.append(node)
            continue
        count += 1
        stem = node.name or node.output[0]
        erf, one = f"{stem}__erf", f"{stem}__one"
        value = helper.make_tensor(one, declared.get(node.input[0], TensorProto.FLOAT), [], [1.0])
        nodes.append(helper.make_node("Erf", [node.input[0]], [erf], name=erf))
        nodes.append(helper.make_node("Constant", [], [one], name=one, value=value))
        nodes.append(helper.make_node("Sub", [one, erf], [node.output[0]], name=f"{stem}__erfc"))
    del graph.node[:]
    graph.node.extend(nodes)
    return PassResult(repaired, True, f"{count} Erfc node(s) as 1 - Erf")
