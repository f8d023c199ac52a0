"""Pass ``fold_tokens``: a model whose sequence input is integer tokens (N, L), read as one-hot by folding the token
lookup.

Some models take each base as an id (an ``nn.Embedding``, ``F.one_hot`` or Keras ``Embedding`` first layer)
instead of a one-hot row. ``fold_tokens`` rewrites such a graph to take one-hot (N, L, 4) input under the same
name: the nodes that turn ids into the first floating-point tensors or masks the model reads ("the lookup":
Gather from a constant table, OneHot, Equal, Cast, Unsqueeze, arithmetic with constants) are replaced, for each
such tensor F, by

    F = onehot @ T[A, C, G, T] + (1 - sum(onehot)) * T[N]        (the N term only where the tokens name an N)

(cast to F's type: a mask, from its 0/1 rows), where T[b] is F at a position holding base b's id. T is read by
running the lookup once on the ids, and the rewrite is kept only if, on random ids, F equals T at every position
(so it is exact: a one-hot row picks its base's row, an all-zero row picks N's). Everything after the lookup is
the model's own graph, so naive ISM, fast ISM (the fold is a MatMul over the channels: point-wise) and TISM (the
gradient of the lookup as that linear map of the one-hot input: the embedding rows) all run on it unchanged.

Invariant: for every one-hot sequence s (N positions only where the tokens name an N), the folded graph's outputs
on s equal the model's outputs on the ids of s.
"""

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ..errors import ModelError
from ..graph.nodes import attr
from ..model.tokens import parse_tokens, token_inputs
from ..runtime.sessions import make_session
from .base import PassResult, unchanged

#: Ops the ids may pass through before they become floating point (all act position by position here; the fold
#: is checked on random ids before it is kept).
LOOKUP_OPS = {
    "Cast", "Identity", "Unsqueeze", "Gather", "OneHot", "Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual",
    "Not", "And", "Or", "Add", "Sub", "Mul", "Div", "Mod", "Clip", "Min", "Max", "Where", "Abs", "Neg",
}
#: Of those, the ones that may read ids which have become floating point (elementwise: tf2onnx compares a float
#: copy of the ids with 0 before its Gather); a float tensor reaching any other op is the model's.
FLOAT_LOOKUP_OPS = LOOKUP_OPS - {"Identity", "Unsqueeze", "Gather", "OneHot"}
_FLOAT = {onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16}
_CHECK_ROUNDS = 3


def run(proto, ctx):
    """With ``ctx.tokens``, the token input read as one-hot (``fold_tokens``); without, nothing."""
    if ctx.tokens is None:
        return unchanged(proto)
    folded = fold_tokens(proto, ctx.tokens, ctx.input)
    return PassResult(folded, True, f"token lookup folded ({ctx.tokens.describe()})")


def fold_tokens(proto, tokens, input=None):
    """A copy of ``proto`` whose token input (named ``input``, else its one rank-2 input) takes one-hot (N, L, 4)
    float32 under the same name; raises ModelError where the lookup cannot be folded."""
    tokens = parse_tokens(tokens)
    graph = proto.graph
    candidates = token_inputs(graph)
    if input is not None:
        candidates = [value for value in candidates if value.name == input]
        if not candidates:
            raise ModelError(f"tokens= needs a token input of shape (N, L); the model has no such input named "
                             f"{input!r}")
    if len(candidates) != 1:
        names = ", ".join(value.name for value in candidates)
        raise ModelError("tokens= needs one token input of shape (N, L); the model has "
                         + (f"several ({names}): name one with input=" if candidates else "none"))
    source = candidates[0]
    name = source.name
    dims = list(source.type.tensor_type.shape.dim)
    lookup, frontier, dtypes = _lookup(graph, name)
    tables = _tables(proto, source, [graph.node[index] for index in lookup], frontier, dtypes, tokens)

    folded = onnx.ModelProto()
    folded.CopyFrom(proto)
    graph = folded.graph
    dropped = set(lookup)
    kept = [node for index, node in enumerate(graph.node) if index not in dropped]
    new_nodes = []
    for tensor, (table, dtype, rest) in zip(frontier, tables):
        new_nodes.extend(_fold_nodes(graph, name, tensor, table, dtype, rest, tokens))
    del graph.node[:]
    graph.node.extend(new_nodes + kept)
    _drop_unused(graph, {tensor for index in lookup for tensor in proto.graph.node[index].input})
    for value in graph.input:
        if value.name == name:
            value.CopyFrom(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, [
                dim.dim_value if dim.HasField("dim_value") else (dim.dim_param or None) for dim in dims] + [4]))
    return folded


def _lookup(graph, name):
    """(the indices of the lookup's nodes, the floating-point tensors or masks where the model's own graph reads
    them, element types) of the ids in ``name``.

    A node is part of the lookup if it is one of LOOKUP_OPS and its other operands are constants; once the ids
    have become floating-point values, only with scalar constants (tf2onnx compares a float copy of the ids with
    0, elementwise), so that an embedding plus a table along the length (a positional encoding), or reshaped,
    stays the model's."""
    sizes = {init.name: int(np.prod(init.dims)) for init in graph.initializer}
    dtypes = {value.name: value.type.tensor_type.elem_type for value in graph.input}
    dtypes.update({init.name: init.data_type for init in graph.initializer})
    for node in graph.node:
        if node.op_type == "Constant":
            dtypes[node.output[0]], sizes[node.output[0]] = _constant_dtype(node), _constant_size(node)
    path, lookup, frontier = {name}, [], []

    def read_by_model(tensor, where):
        if dtypes.get(tensor) not in _FLOAT | {onnx.TensorProto.BOOL} or tensor == name:
            raise ModelError(f"cannot read the token input {name!r} as one-hot: its ids reach {where}; onnxism "
                             "folds ids that go through an embedding (Gather), OneHot, comparisons, Cast, Unsqueeze "
                             "and arithmetic with constants into floating-point values or masks")
        if tensor not in frontier:
            frontier.append(tensor)

    for index, node in enumerate(graph.node):
        read = [tensor for tensor in node.input if tensor in path]
        if not read:
            continue
        where = f"a {node.op_type} node {node.name or node.output[0]!r}"
        others = [tensor for tensor in node.input if tensor and tensor not in path]
        floats = any(dtypes.get(tensor) in _FLOAT for tensor in read)
        if (node.op_type not in (FLOAT_LOOKUP_OPS if floats else LOOKUP_OPS)
                or any(tensor not in sizes for tensor in others)
                or (floats and any(sizes[tensor] > 1 for tensor in others))):
            for tensor in read:
                read_by_model(tensor, where)
            continue
        if node.op_type == "Gather" and (node.input[0] in path or attr(node, "axis", 0) != 0):
            raise ModelError(f"cannot read the token input {name!r} as one-hot: {where} gathers from the ids "
                             "themselves or along another axis than the table's first")
        lookup.append(index)
        dtypes[node.output[0]] = _output_dtype(node, dtypes)
        path.add(node.output[0])
    for value in graph.output:
        if value.name in path:
            read_by_model(value.name, f"the model output {value.name!r}")
    if not frontier:
        raise ModelError(f"cannot read the token input {name!r} as one-hot: no output of the model depends on it")
    return lookup, frontier, dtypes


def _tables(proto, source, lookup, frontier, dtypes, tokens):
    """Per frontier tensor: (table (5 or 4, prod(rest)): its rows for A, C, G, T[, N] in its own type, that type,
    the rest of its shape after (N, L)), read from the lookup run on ids and checked on random ids."""
    needed = {tensor for node in lookup for tensor in node.input}
    constants = [node for node in proto.graph.node if node.op_type == "Constant" and node.output[0] in needed]
    inits = [init for init in proto.graph.initializer if init.name in needed]
    tensor = source.type.tensor_type
    outputs = [helper.make_tensor_value_info(name, dtypes[name], None) for name in frontier]
    graph = helper.make_graph(constants + list(lookup), "token_lookup", [source], outputs, inits)
    model = helper.make_model(graph, opset_imports=list(proto.opset_import), ir_version=proto.ir_version)
    try:
        session = make_session(model.SerializeToString(), "cpu", optimize=False)
    except Exception as err:  # onnxruntime's own exception types
        raise ModelError(f"cannot read the token input {source.name!r} as one-hot: onnxruntime cannot run its "
                         f"lookup: {str(err).splitlines()[0]}") from err
    dims = [dim.dim_value if dim.HasField("dim_value") else None for dim in tensor.shape.dim]
    batch, length = dims[0] or 2, dims[1] or 8
    dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type)
    ids = np.array(tokens.all_ids)
    cycle = np.resize(np.arange(len(ids)), batch * length).reshape(batch, length)
    if length < len(ids):
        raise ModelError(f"the token input {source.name!r} has length {length}, fewer than the {len(ids)} tokens")
    first = session.run(frontier, {source.name: ids[cycle].astype(dtype)})
    tables = []
    for name, value in zip(frontier, first):
        if value.ndim < 2 or value.shape[:2] != (batch, length):
            raise ModelError(f"cannot read the token input {source.name!r} as one-hot: {name!r} (shape "
                             f"{value.shape}) is not one value per position of the ids ({batch}, {length})")
        rest = value.shape[2:]
        table = np.stack([value[0, list(cycle[0]).index(k)].reshape(-1) for k in range(len(ids))])
        tables.append((table, value.dtype, rest))
    rng = np.random.default_rng(0)
    for _ in range(_CHECK_ROUNDS):
        draw = rng.integers(0, len(ids), (batch, length))
        values = session.run(frontier, {source.name: ids[draw].astype(dtype)})
        for name, value, (table, _, _) in zip(frontier, values, tables):
            if not np.array_equal(value, table[draw].reshape(value.shape), equal_nan=True):
                raise ModelError(f"cannot read the token input {source.name!r} as one-hot: {name!r} is not a "
                                 "lookup of each position's id alone")
    return tables


def _fold_nodes(graph, name, tensor, table, dtype, rest, tokens):
    """Nodes computing ``tensor`` from the one-hot input ``name``: onehot @ T[:4] (+ the N term), reshaped to
    (N, L, *rest) in ``dtype`` (computed in float32, in float64 for a float64 tensor: exact either way, as each
    value is one row of T times 1 plus zeros)."""
    stem = f"tokens__{tensor}"
    nodes, width = [], table.shape[1]
    work = np.float64 if np.dtype(dtype) == np.float64 else np.float32
    if work == np.float64:
        nodes.append(helper.make_node("Cast", [name], [f"{stem}__onehot"], to=onnx.TensorProto.DOUBLE,
                                      name=f"{stem}__onehot"))
        name = f"{stem}__onehot"
    graph.initializer.append(numpy_helper.from_array(table[:4].astype(work), f"{stem}__rows"))
    value = f"{stem}__picked"
    nodes.append(helper.make_node("MatMul", [name, f"{stem}__rows"], [value], name=f"{stem}__matmul"))
    if tokens.n is not None:
        graph.initializer.extend([
            numpy_helper.from_array(np.array([-1], np.int64), f"{stem}__last"),
            numpy_helper.from_array(np.ones(1, work), f"{stem}__one"),
            numpy_helper.from_array(table[4].astype(work), f"{stem}__n_row"),
        ])
        nodes += [
            helper.make_node("ReduceSum", [name, f"{stem}__last"], [f"{stem}__bases"], keepdims=1,
                             name=f"{stem}__bases"),
            helper.make_node("Sub", [f"{stem}__one", f"{stem}__bases"], [f"{stem}__is_n"], name=f"{stem}__is_n"),
            helper.make_node("Mul", [f"{stem}__is_n", f"{stem}__n_row"], [f"{stem}__n"], name=f"{stem}__n"),
            helper.make_node("Add", [value, f"{stem}__n"], [f"{stem}__sum"], name=f"{stem}__sum"),
        ]
        value = f"{stem}__sum"
    if tuple(rest) != (width,):
        graph.initializer.append(numpy_helper.from_array(np.array([0, 0] + list(rest), np.int64), f"{stem}__shape"))
        nodes.append(helper.make_node("Reshape", [value, f"{stem}__shape"], [f"{stem}__shaped"],
                                      name=f"{stem}__reshape"))
        value = f"{stem}__shaped"
    to = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    nodes.append(helper.make_node("Cast", [value], [tensor], to=to, name=f"{stem}__cast")
                 if np.dtype(dtype) != np.dtype(work) else helper.make_node("Identity", [value], [tensor],
                                                                             name=f"{stem}__out"))
    return nodes


def _drop_unused(graph, candidates):
    """Remove the Constant nodes and initializers among ``candidates`` (what the lookup read: its embedding table)
    that nothing reads any more, and their graph-input entries (old exports list initializers as inputs)."""
    used = {tensor for node in graph.node for tensor in node.input} | {value.name for value in graph.output}
    unused = set(candidates) - used
    if not unused:
        return
    for field, keep in ((graph.node, lambda node: node.op_type != "Constant" or node.output[0] not in unused),
                        (graph.initializer, lambda init: init.name not in unused),
                        (graph.input, lambda value: value.name not in unused)):
        kept = [entry for entry in field if keep(entry)]
        if len(kept) != len(field):
            del field[:]
            field.extend(kept)


def _constant_dtype(node):
    for attribute in node.attribute:
        if attribute.name == "value":
            return attribute.t.data_type
        if attribute.name in ("value_float", "value_floats"):
            return onnx.TensorProto.FLOAT
        if attribute.name in ("value_int", "value_ints"):
            return onnx.TensorProto.INT64
    return onnx.TensorProto.UNDEFINED


def _constant_size(node):
    for attribute in node.attribute:
        if attribute.name == "value":
            return int(np.prod(attribute.t.dims))
        if attribute.name in ("value_floats", "value_ints"):
            return len(helper.get_attribute_value(attribute))
    return 1


def _output_dtype(node, dtypes):
    """The element type of ``node``'s first output from its inputs' (the lookup ops only)."""
    op = node.op_type
    if op == "Cast":
        return attr(node, "to", onnx.TensorProto.UNDEFINED)
    if op in ("Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual", "Not", "And", "Or"):
        return onnx.TensorProto.BOOL
    if op == "Gather":
        return dtypes.get(node.input[0], onnx.TensorProto.UNDEFINED)
    if op == "OneHot":
        return dtypes.get(node.input[2], onnx.TensorProto.UNDEFINED)
    if op == "Where":
        return dtypes.get(node.input[1], onnx.TensorProto.UNDEFINED)
    return dtypes.get(node.input[0], onnx.TensorProto.UNDEFINED)
