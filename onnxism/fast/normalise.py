"""Exporter forms rewritten into ones the window analysis reads, before it runs (fast ISM only).

Exporters sometimes put the length first and the batch second for one op, which the rows layout cannot hold:
torch's dynamo exporter writes a gather along the length (``F.interpolate`` with 'linear' or 'nearest-exact',
``x[..., index]``) as Transpose -> GatherND (indices (K, 1)) -> Transpose back, and tf2onnx writes Keras's
``ops.flip`` / ``tf.reverse`` along the length as Transpose -> ReverseSequence (every sequence reversed whole) ->
Transpose, Unsqueeze, Transpose; tf2onnx writes a Keras Dense on a (N, L, C) tensor with the batch and the length
merged into one axis. Rewritten:

  GatherND(data, idx (K, 1), batch_dims=0)   ->  Gather(data, idx[:, 0], axis=0)
  ReverseSequence(y, lengths), every length
  the whole time axis (``probed_rewrites``)   ->  Slice(y, -1, INT64_MIN, time_axis, step -1)
  Reshape(MatMul(Reshape(x, (-1, C)), W)
          [+ b], target) (``probed_rewrites``)  ->  Reshape(MatMul(x, W) [+ b], target), Identity if it is (N, ..., C')
  Split(x, axis a > 0) (``probed_rewrites``)  ->  one Slice(x, [start, end), a) per output, at its probed size
  Concat(C1, x, C2, axis a > 0), each Ci a
  constant broadcast along the batch
  (``probed_rewrites``)                       ->  Add(Pad(x, -0.0 around it along a), [C1 row | -0.0 | C2 row])
  Add(x, Expand(C, shape)), any element-wise
  op (``probed_rewrites``)                    ->  Add(x, C's row), where x gives the output its batch
  Gather(Transpose(x, p), i, axis=a)          ->  Transpose(Gather(x, i, axis=p[a]), p)   (i 1-D)
  Slice(Transpose(x, p), axes)                ->  Transpose(Slice(x, p[axes]), p)
  Unsqueeze(Transpose(x, p), axes)            ->  Transpose(Unsqueeze(x, new axes last), p')
  Transpose(Transpose(v, p1), p2)             ->  Transpose(v, p1[p2]), or Identity where that is no permutation
  Einsum(x, W), W a weight whose indices
  are all x's ("ncl,cl->nl")                  ->  [Transpose(] ReduceSum(Mul(x, W'), contracted) [)], W' = W moved to
                                                  x's axes (1 where W has no index): a weight varying along the length
                                                  is then one of an elementwise op, which the analysis windows

The middle three move a Transpose down only where the node's one reader is another layout op (Transpose,
Unsqueeze, Slice), so that Transposes meet and compose. Nodes whose outputs nothing reads are dropped.
Invariant: every graph output and every value a kept node reads is computed exactly as before (each rewrite is an
identity of tensors); the model is not changed (nor copied) when nothing applies.
"""

import functools

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ..graph.constants import graph_constants
from ..graph.liveness import drop_unread
from ..graph.nodes import attributes, default_opset
from ..graph.ops import ELEMENTWISE, einsum_terms

#: Readers that let a Transpose move below the node they read (it moves on, toward another Transpose).
_LAYOUT_OPS = ("Transpose", "Unsqueeze", "Slice")


class _Index:
    """The graph with its integer constants, producers and readers, rebuilt after every rewrite."""

    def __init__(self, graph, opset):
        self.graph = graph
        self.opset = opset
        self.constants = graph_constants(graph, integers_only=True)
        self.tensors = {init.name: init for init in graph.initializer}
        self.dims = {init.name: list(init.dims) for init in graph.initializer}
        self.refresh()

    def refresh(self):
        self.producers = {name: node for node in self.graph.node for name in node.output}
        self.readers = {}
        for node in self.graph.node:
            for name in node.input:
                self.readers.setdefault(name, []).append(node)
        self.outputs = {output.name for output in self.graph.output}

    def producer(self, name, op):
        node = self.producers.get(name)
        return node if node is not None and node.op_type == op else None

    def from_shapes(self, name, seen=None):
        """Whether ``name`` is computed from constants and tensor shapes (Shape, Size) alone, not from values."""
        seen = set() if seen is None else seen
        if name in self.tensors or name in seen:
            return True
        seen.add(name)
        node = self.producers.get(name)
        if node is None:
            return False  # a graph input
        return node.op_type in ("Shape", "Size", "Constant") or all(
            self.from_shapes(source, seen) for source in node.input if source)

    def read_once(self, name):
        """Whether ``name`` is read by one node only and is not a graph output."""
        return len(self.readers.get(name, [])) == 1 and name not in self.outputs

    def moves_on(self, name):
        """Whether ``name`` is read once, by a layout op, and is not a graph output."""
        readers = self.readers.get(name, [])
        return len(readers) == 1 and readers[0].op_type in _LAYOUT_OPS and name not in self.outputs


def normalise(proto):
    """``proto`` itself when no rewrite applies, else a rewritten copy."""
    return _rewritten(proto, REWRITES)


def probed_rewrites(proto, shapes, uniform):
    """``normalise`` with the rewrites that need the probe: ReverseSequence nodes that reverse every sequence whole
    turned into reversed Slices, Dense layers applied per position through a flattening Reshape computed on the
    tensor itself, Splits as Slices, Concats of one tensor with constants broadcast along the batch as a Pad and
    an Add, and element-wise ops reading such a constant given its one row. ``shapes``: probed shapes; ``uniform``:
    tensors whose entries were all one value at every probed batch size (``probe.probe_graph``): a lengths input
    computed from shapes alone is the whole time axis when its value is that axis's size."""
    return _rewritten(proto, (functools.partial(_full_reverse_sequence, shapes=shapes, uniform=uniform),
                              functools.partial(_dense_per_position, shapes=shapes),
                              functools.partial(_split_as_slices, shapes=shapes),
                              functools.partial(_concat_of_constants, shapes=shapes),
                              functools.partial(_broadcast_operand, shapes=shapes)) + REWRITES)


def whole_reverse_sequences(proto, shapes, uniform):
    """Only the ReverseSequence rewrite of ``probed_rewrites`` (the gradient graph's selections need constant
    parameters, and tf2onnx computes the lengths from shapes)."""
    return _rewritten(proto, (functools.partial(_full_reverse_sequence, shapes=shapes, uniform=uniform),))


def _rewritten(proto, rewrites):
    opset = default_opset(proto)
    index = _Index(proto.graph, opset)
    if not any(rewrite(node, index) is not None for rewrite in rewrites for node in proto.graph.node):
        return proto
    copy = onnx.ModelProto()
    copy.CopyFrom(proto)
    index = _Index(copy.graph, opset)
    graph = copy.graph
    changed = True
    while changed:
        changed = False
        for rewrite in rewrites:
            for position, node in enumerate(graph.node):
                made = rewrite(node, index)
                if made is None:
                    continue
                nodes, initializers = made
                graph.node.remove(node)
                for offset, new in enumerate(nodes):
                    graph.node.insert(position + offset, new)
                graph.initializer.extend(initializers)
                for init in initializers:
                    index.constants[init.name] = numpy_helper.to_array(init)
                    index.tensors[init.name] = init
                    index.dims[init.name] = list(init.dims)
                index.refresh()
                changed = True
                break
    drop_unread(graph)
    return copy


def _ints(name, values):
    return numpy_helper.from_array(np.asarray(values, np.int64), name)


def _gather_nd_as_gather(node, index):
    if node.op_type != "GatherND" or attributes(node).get("batch_dims", 0) != 0:
        return None
    indices = index.constants.get(node.input[1])
    if indices is None or indices.ndim != 2 or indices.shape[1] != 1:
        return None
    name = f"{node.output[0]}__gather_indices"
    gather = helper.make_node("Gather", [node.input[0], name], list(node.output), name=f"{node.output[0]}__gather",
                              axis=0)
    return [gather], [_ints(name, indices[:, 0])]


def _full_reverse_sequence(node, index, shapes, uniform):
    if node.op_type != "ReverseSequence" or node.input[1] not in uniform or not index.from_shapes(node.input[1]):
        return None  # lengths from the values could match the probe's zero sequences by chance
    attrs = attributes(node)
    time_axis = attrs.get("time_axis", 0)
    if shapes.get(node.input[0]) is None or uniform[node.input[1]] != shapes[node.input[0]][time_axis]:
        return None
    out = node.output[0]
    names = [f"{out}__{label}" for label in ("starts", "ends", "axes", "steps")]
    reverse = helper.make_node("Slice", [node.input[0]] + names, [out], name=f"{out}__reversed")
    values = ([-1], [np.iinfo(np.int64).min], [time_axis], [-1])
    return [reverse], [_ints(name, value) for name, value in zip(names, values)]


def _dense_per_position(node, index, shapes):
    """tf2onnx's form of a Keras Dense on a (N, ..., C) tensor: Reshape to (N * ..., C), MatMul by a (C, C')
    weight, [Add a bias over C',] Reshape back: the MatMul [and Add] on the tensor itself, which keeps the batch
    first, then the last Reshape (an Identity where it gives back (N, ..., C'))."""
    if node.op_type != "Reshape" or node.input[0] in index.outputs:
        return None
    data, bias = node.input[0], None
    add = index.producer(data, "Add")
    if add is not None:
        bias = next((name for name in add.input if name in index.dims and len(index.dims[name]) <= 1), None)
        data = next((name for name in add.input if name != bias), None) if bias is not None else None
    matmul = index.producer(data, "MatMul") if data is not None else None
    flatten = index.producer(matmul.input[0], "Reshape") if matmul is not None else None
    if flatten is None or not all(index.read_once(name) for name in (flatten.output[0], matmul.output[0])
                                  + ((add.output[0],) if add is not None else ())):
        return None
    source, weight = flatten.input[0], index.dims.get(matmul.input[1])
    shape = shapes.get(source)
    if shape is None or len(shape) < 3 or weight is None or len(weight) != 2 or weight[0] != shape[-1]:
        return None
    if shapes.get(flatten.output[0]) != (int(np.prod(shape[:-1])), shape[-1]):
        return None
    if bias is not None and index.dims[bias] not in ([], [1], [weight[1]]):
        return None
    out = node.output[0]
    nodes = [helper.make_node("MatMul", [source, matmul.input[1]], [f"{out}__per_position"],
                              name=f"{out}__per_position")]
    if bias is not None:
        nodes.append(helper.make_node("Add", [nodes[-1].output[0], bias], [f"{out}__per_position_biased"],
                                      name=f"{out}__per_position_biased"))
    if shapes.get(out) == tuple(shape[:-1]) + (weight[1],):
        nodes.append(helper.make_node("Identity", [nodes[-1].output[0]], [out], name=f"{out}__identity"))
    else:
        reshape = onnx.NodeProto()
        reshape.CopyFrom(node)
        reshape.input[0] = nodes[-1].output[0]
        nodes.append(reshape)
    return nodes, []


def _split_as_slices(node, index, shapes):
    """A Split along any axis but the batch as one Slice per output (each output's size along the axis as
    probed; the sizes are constants or shape arithmetic, never values): along the channels each Slice is point-wise
    (a GLU, a gated activation's halves), along the length a crop."""
    if node.op_type != "Split" or len(node.input) > 1 and node.input[1] and not index.from_shapes(node.input[1]):
        return None
    shape = shapes.get(node.input[0])
    sizes = [shapes.get(name) for name in node.output]
    if shape is None or any(size is None or len(size) != len(shape) for size in sizes):
        return None
    axis = attributes(node).get("axis", 0) % len(shape)
    if axis == 0 or sum(size[axis] for size in sizes) != shape[axis]:
        return None
    nodes, initializers, start = [], [], 0
    for out, size in zip(node.output, sizes):
        end = start + size[axis]
        if out:
            names = [f"{out}__{label}" for label in ("starts", "ends", "axes")]
            nodes.append(helper.make_node("Slice", [node.input[0]] + names, [out], name=f"{out}__split"))
            initializers += [_ints(name, [value]) for name, value in zip(names, (start, end, axis))]
        start = end
    return nodes, initializers


def _concat_of_constants(node, index, shapes):
    """A Concat along any axis but the batch of one tensor X and parts that are constants broadcast along the
    batch (an Expand or Tile of a constant whose rows are all that constant: torch's
    ``cat([left.expand(n, -1, -1), x, right.expand(n, -1, -1)], 2)``, an MPRA model's fixed flanks) as
    Pad(X) + K, K the parts' constant row with -0.0 where X goes and X padded with -0.0 (v + -0.0 is v, bit for bit):
    a Pad along the length is a shift, and an Add of a constant that varies along it is point-wise, where the
    Concat of a tensor computed from the batch's shape was computed in full."""
    if node.op_type != "Concat" or len(node.input) < 2 or node.output[0] in index.outputs:
        return None
    out_shape = shapes.get(node.output[0])
    moving = [k for k, name in enumerate(node.input) if not index.from_shapes(name)]
    if out_shape is None or len(out_shape) < 2 or len(moving) != 1:
        return None
    rank = len(out_shape)
    axis = attributes(node).get("axis", 0) % rank
    source = node.input[moving[0]]
    source_shape = shapes.get(source)
    if axis == 0 or source_shape is None or len(source_shape) != rank:
        return None
    rows = []
    for k, name in enumerate(node.input):
        row = None if k == moving[0] else _broadcast_row(name, index, shapes)
        if k != moving[0] and row is None:
            return None
        rows.append(row)
    dtype = next(row.dtype for row in rows if row is not None)
    if not np.issubdtype(dtype, np.floating):
        return None
    rows[moving[0]] = np.full((1,) + tuple(source_shape[1:]), -0.0, dtype)
    constant = np.concatenate(rows, axis)
    before = sum(row.shape[axis] for row in rows[:moving[0]])
    after = constant.shape[axis] - before - source_shape[axis]
    pads = [0] * (2 * rank)
    pads[axis], pads[axis + rank] = before, after
    out = node.output[0]
    names = [f"{out}__{label}" for label in ("pads", "pad_value", "padded", "constant")]
    nodes = [helper.make_node("Pad", [source, names[0], names[1]], [names[2]], name=names[2], mode="constant"),
             helper.make_node("Add", [names[2], names[3]], [out], name=f"{out}__joined")]
    return nodes, [_ints(names[0], pads), numpy_helper.from_array(np.array(-0.0, dtype), names[1]),
                   numpy_helper.from_array(constant, names[3])]


def _broadcast_operand(node, index, shapes):
    """An element-wise op reading a constant broadcast along the batch (an Expand or Tile of a constant whose rows
    are all that constant, as for a Concat above) reads the constant's one row instead, where another operand gives
    the output its batch: the op broadcasts the row itself, with the same values, and a constant that varies along
    the length is point-wise where a tensor computed from the batch's shape was computed in full."""
    out_shape = shapes.get(node.output[0])
    if node.op_type not in ELEMENTWISE or out_shape is None or not out_shape:
        return None
    for position, name in enumerate(node.input):
        producer = index.producers.get(name)
        if producer is None or producer.op_type not in ("Expand", "Tile", "ConstantOfShape"):
            continue
        row = _broadcast_row(name, index, shapes)
        batch_elsewhere = any(shapes.get(other) is not None and len(shapes[other]) == len(out_shape)
                              and shapes[other][0] == out_shape[0] for k, other in enumerate(node.input)
                              if k != position and other)
        if row is None or not batch_elsewhere:
            continue
        new = onnx.NodeProto()
        new.CopyFrom(node)
        new.input[position] = f"{node.output[0]}__row{position}"
        return [new], [numpy_helper.from_array(row, new.input[position])]
    return None


def _broadcast_row(name, index, shapes):
    """The one row (1, ...) of ``name``, whose rows are all that row: a constant of one row, an Expand of a
    constant (broadcast along any axis: ``torch.zeros(n, 4, k)`` is an Expand of a scalar), a Tile of a constant
    along the batch alone (its other axes as probed are the constant's own), or a ConstantOfShape (the legacy
    exporter's ``torch.zeros``); else None."""
    shape = shapes.get(name)
    node = index.producers.get(name)
    if shape is None or not shape:
        return None
    row = (1,) + tuple(shape[1:])
    if node is not None and node.op_type == "ConstantOfShape":
        tensor = next((attr.t for attr in node.attribute if attr.name == "value"), None)
        value = numpy_helper.to_array(tensor) if tensor is not None else np.zeros(1, np.float32)
        return np.full(row, value.reshape(-1)[0], value.dtype) if np.issubdtype(value.dtype, np.floating) else None
    if node is not None and node.op_type in ("Expand", "Tile"):
        value = _float_constant(node.input[0], index)
        if value is None or value.ndim > len(shape) or (node.op_type == "Tile" and value.ndim != len(shape)):
            return None
        value = value.reshape((1,) * (len(shape) - value.ndim) + value.shape)
        if node.op_type == "Expand" and value.shape[0] == 1:
            try:  # the constant's own sizes where they are not 1, the probed ones elsewhere (Expand's broadcast)
                value = np.broadcast_to(value, row).copy()
            except ValueError:
                return None
    else:
        value = _float_constant(name, index)
    if value is None or value.shape != row:
        return None
    return value


def _float_constant(name, index):
    """The value of an initializer or Constant node ``name`` of a floating-point type, else None."""
    if name in index.tensors:
        value = numpy_helper.to_array(index.tensors[name])
    else:
        node = index.producer(name, "Constant")
        tensor = next((attr.t for attr in node.attribute if attr.name == "value"), None) if node else None
        value = numpy_helper.to_array(tensor) if tensor is not None else None
    return value if value is not None and np.issubdtype(value.dtype, np.floating) else None


def _gather_before_transpose(node, index):
    if (node.op_type != "Gather" or node.input[1] not in index.constants
            or np.ndim(index.constants[node.input[1]]) != 1 or not index.moves_on(node.output[0])):
        return None
    transpose = index.producer(node.input[0], "Transpose")
    perm = attributes(transpose).get("perm") if transpose is not None else None
    if perm is None:
        return None
    axis = attributes(node).get("axis", 0) % len(perm)
    inner = f"{node.output[0]}__before_transpose"
    gather = helper.make_node("Gather", [transpose.input[0], node.input[1]], [inner], name=f"{inner}__node",
                              axis=int(perm[axis]))
    after = helper.make_node("Transpose", [inner], list(node.output), name=f"{node.output[0]}__transposed",
                             perm=list(perm))
    return [gather, after], []


def _slice_before_transpose(node, index):
    if node.op_type != "Slice" or len(node.input) < 3 or not index.moves_on(node.output[0]):
        return None  # (the attribute form of opset < 10 is left as it is)
    transpose = index.producer(node.input[0], "Transpose")
    perm = attributes(transpose).get("perm") if transpose is not None else None
    if perm is None or any(name and name not in index.constants for name in node.input[1:]):
        return None
    if len(node.input) > 3 and node.input[3]:
        axes = np.asarray(index.constants[node.input[3]]).reshape(-1)
    else:
        axes = np.arange(np.size(index.constants[node.input[1]]))
    axes = [int(perm[int(a) % len(perm)]) for a in axes]
    inner = f"{node.output[0]}__before_transpose"
    axes_name = f"{inner}__axes"
    sliced = helper.make_node("Slice", [transpose.input[0], node.input[1], node.input[2], axes_name]
                              + list(node.input[4:]), [inner], name=f"{inner}__node")
    after = helper.make_node("Transpose", [inner], list(node.output), name=f"{node.output[0]}__transposed",
                             perm=list(perm))
    return [sliced, after], [_ints(axes_name, axes)]


def _unsqueeze_before_transpose(node, index):
    if node.op_type != "Unsqueeze" or not index.moves_on(node.output[0]):
        return None
    transpose = index.producer(node.input[0], "Transpose")
    perm = attributes(transpose).get("perm") if transpose is not None else None
    axes = attributes(node).get("axes")
    if axes is None and len(node.input) > 1:
        axes = index.constants.get(node.input[1])
    if perm is None or axes is None:
        return None
    rank, added = len(perm), len(np.asarray(axes).reshape(-1))
    axes = sorted(int(a) % (rank + added) for a in np.asarray(axes).reshape(-1))
    kept = iter(perm)
    order = [rank + axes.index(o) if o in axes else int(next(kept)) for o in range(rank + added)]
    inner = f"{node.output[0]}__before_transpose"
    new_axes = list(range(rank, rank + added))
    initializers = []
    if "axes" in attributes(node):
        unsqueeze = helper.make_node("Unsqueeze", [transpose.input[0]], [inner], name=f"{inner}__node", axes=new_axes)
    else:
        initializers.append(_ints(f"{inner}__axes", new_axes))
        unsqueeze = helper.make_node("Unsqueeze", [transpose.input[0], f"{inner}__axes"], [inner],
                                     name=f"{inner}__node")
    after = helper.make_node("Transpose", [inner], list(node.output), name=f"{node.output[0]}__transposed",
                             perm=order)
    return [unsqueeze, after], initializers


def _transpose_pair(node, index):
    if node.op_type != "Transpose":
        return None
    first = index.producer(node.input[0], "Transpose")
    if first is None:
        return None
    outer, inner = attributes(node).get("perm"), attributes(first).get("perm")
    if outer is None or inner is None:
        return None
    perm = [int(inner[k]) for k in outer]
    if perm == sorted(perm):
        return [helper.make_node("Identity", [first.input[0]], list(node.output), name=f"{node.output[0]}__merged")], []
    return [helper.make_node("Transpose", [first.input[0]], list(node.output), name=f"{node.output[0]}__merged",
                             perm=perm)], []


def _einsum_as_product(node, index):
    """An Einsum of a tensor and a weight (an initializer) whose indices are all the tensor's, each once, with an
    explicit output: the product broadcast in the tensor's axes, summed over the indices the output drops, then
    ordered as the output (the same numbers: where an index has size 1 on one operand, onnxruntime's Einsum
    broadcasts it as Mul does). A weight that is also a graph input (a default the caller may override) stays."""
    if node.op_type != "Einsum" or len(node.input) != 2 or index.opset is None or index.opset < 12:
        return None
    weights = [position for position, name in enumerate(node.input) if name in index.tensors]
    parsed = einsum_terms(node)
    if len(weights) != 1 or parsed is None:
        return None
    terms, output = parsed
    if node.input[weights[0]] in {value.name for value in index.graph.input}:
        return None
    own, tensor = terms[weights[0]], terms[1 - weights[0]]
    if any(len(set(term)) != len(term) for term in (own, tensor, output)) or not set(own + output) <= set(tensor):
        return None
    init = index.tensors[node.input[weights[0]]]
    if init.data_type != onnx.TensorProto.FLOAT or len(init.dims) != len(own):
        return None
    order = "".join(letter for letter in tensor if letter in own)
    weight = np.einsum(f"{own}->{order}", numpy_helper.to_array(init))
    weight = weight.reshape([weight.shape[order.index(letter)] if letter in own else 1 for letter in tensor])
    out = node.output[0]
    product, weight_name = f"{out}__product", f"{out}__weight"
    nodes = [helper.make_node("Mul", [node.input[1 - weights[0]], weight_name], [product], name=product)]
    initializers = [numpy_helper.from_array(weight.astype(np.float32), weight_name)]
    contracted = [axis for axis, letter in enumerate(tensor) if letter not in output]
    kept = "".join(letter for letter in tensor if letter in output)
    result = product
    if contracted:
        result = f"{out}__summed"
        if index.opset >= 13:
            initializers.append(_ints(f"{result}__axes", contracted))
            nodes.append(helper.make_node("ReduceSum", [product, f"{result}__axes"], [result], name=result,
                                          keepdims=0))
        else:
            nodes.append(helper.make_node("ReduceSum", [product], [result], name=result, axes=contracted,
                                          keepdims=0))
    perm = [kept.index(letter) for letter in output]
    if perm == sorted(perm):
        nodes.append(helper.make_node("Identity", [result], [out], name=f"{out}__identity"))
    else:
        nodes.append(helper.make_node("Transpose", [result], [out], name=f"{out}__ordered", perm=perm))
    return nodes, initializers


#: The structural rewrites, in the order they are tried.
REWRITES = (_gather_nd_as_gather, _gather_before_transpose, _slice_before_transpose, _unsqueeze_before_transpose,
            _transpose_pair, _einsum_as_product)
