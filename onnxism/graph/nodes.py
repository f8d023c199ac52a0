"""What an ONNX node says, and small node surgery: attributes, the default opset, copies of a node rewired to other
tensors, the names a graph reads, fresh names."""

import numpy as np
import onnx
from onnx import helper, numpy_helper


def attributes(node):
    """{name: Python value} of ``node``'s attributes, text decoded."""
    values = {}
    for attribute in node.attribute:
        value = helper.get_attribute_value(attribute)
        values[attribute.name] = value.decode() if isinstance(value, bytes) else value
    return values


def attr(node, name, default=None):
    """One attribute's Python value (text decoded), or ``default``."""
    for attribute in node.attribute:
        if attribute.name == name:
            value = helper.get_attribute_value(attribute)
            return value.decode() if isinstance(value, bytes) else value
    return default


def default_opset(proto):
    """The version of the default ONNX domain ``proto`` imports, or None."""
    for entry in proto.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return entry.version
    return None


def copy_node(node):
    new = onnx.NodeProto()
    new.CopyFrom(node)
    return new


def replace_attributes(node, updates, remove=()):
    """A copy of ``node`` with the attributes ``updates`` set and those named in ``remove`` dropped."""
    new = copy_node(node)
    kept = [a for a in new.attribute if a.name not in updates and a.name not in remove]
    del new.attribute[:]
    new.attribute.extend(kept)
    for name, value in updates.items():
        new.attribute.append(helper.make_attribute(name, value))
    return new


def rewired(node, inputs, output, updates=None):
    """A copy of ``node`` reading ``inputs`` and writing ``output`` (and named after it), attributes updated."""
    new = replace_attributes(node, updates) if updates else copy_node(node)
    del new.input[:]
    new.input.extend(inputs)
    del new.output[:]
    new.output.extend([output])
    new.name = output
    return new


def has_subgraphs(node):
    return any(attribute.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
               for attribute in node.attribute)


def reads(node):
    """The tensors ``node`` reads, those its subgraphs read from the outer scope included."""
    names = list(node.input)
    for attribute in node.attribute:
        for sub in ([attribute.g] if attribute.HasField("g") else []) + list(attribute.graphs):
            for inner in sub.node:
                names.extend(reads(inner))
    return names


def names_used(graph):
    """Every tensor name the graph's nodes read, those of their subgraphs included."""
    return {name for node in graph.node for name in reads(node)}


def unique_name(name, taken):
    """``name``, or ``name`` with a numeric suffix, not in ``taken`` (which then holds it)."""
    candidate, number = name, 1
    while candidate in taken:
        candidate, number = f"{name}_{number}", number + 1
    taken.add(candidate)
    return candidate


def int64_constant(name, values):
    """A Constant node writing the int64 array ``values`` as ``name``."""
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.array(values, np.int64)))
