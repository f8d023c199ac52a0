"""The fast-ISM graph as one standalone ONNX model: sequences and positions in, ISM deltas out.

Inputs: the model's sequence input (n, as the model takes it), its extra inputs if any (n rows each, as the model
takes them) and ``positions`` (P,) int64, each -L <= p < L: a negative p counts from the end, as in numpy (-1 is
L - 1); one outside that range is an error of onnxruntime's Gather.
Outputs: the model's own outputs on the sequences (n, *shape) and, per output NAME, ``NAME__ism`` (n, P, 4, *shape)
with entry [k, j, b] = f(sequence k with position positions[j] set to base b) - f(sequence k), exactly 0 at the
reference base: the contract of ``onnxism.ism`` on those positions. With a target for NAME (``targets``, folded into
the graph by ``passes/fold_targets.py``), f is the target: NAME is then the target on the sequences (n,
*target_shape), as ``reference/NAME`` in ``onnxism run``'s archive, and NAME__ism is (n, P, 4, *target_shape).

Built from the executor's two graphs: the reference graph (tables of cached tensors), the ISM graph with its names
prefixed, and driver nodes that compute in-graph what the executor computes on the host: the substitution rows
(sequence, position, base for all 4 bases), the substituted input column and every gather's row indices (the
window start tables become initializers). Invariant: the indices equal ``indices.gather_indices`` row for row.
"""

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ..errors import UnsupportedGraphError
from ..graph.emitter import Emitter
from ..graph.nodes import unique_name
from ..passes.fold_targets import fold_targets
from ..runtime.weights import attach
from .plan import build_plan

POSITIONS = "positions"
_PREFIX = "ism__"


def ism_output_name(name):
    return f"{name}__ism"


def build_standalone_fast_model(model, outputs, length, folded=None, per_sequence=False):
    """One ONNX model computing fast ISM at the given positions of ``outputs`` of ``model`` (a SequenceModel) at
    ``length``; ``folded``: {output name: Target} of the outputs scored as targets (``methods/targets.py``
    resolves them), none of them every element. With ``per_sequence``, ``positions`` is (n, P): sequence k's own P
    positions in row k (batch-first, so that a server can concatenate requests)."""
    if model.fixed_batch is not None:
        raise UnsupportedGraphError(f"fast ISM cannot compile a graph with a fixed batch size ({model.fixed_batch})")
    clash = [name for name in model.output_names if ism_output_name(name) in model.output_names]
    if clash or POSITIONS in model.output_names or model.input_name == POSITIONS:
        raise UnsupportedGraphError("the model's input or output names clash with the compiled graph's")
    folded = folded or {}
    scored, renamed = fold_targets(model, folded) if folded else (model, {})  # folded output name -> original
    back = {name: folded_name for folded_name, name in renamed.items()}
    outputs = [back.get(name, name) for name in outputs]
    public = {name: renamed.get(name, name) for name in outputs}  # scored output -> the compiled graph's name for it
    result_shapes = {folded_name: folded[name].shape for folded_name, name in renamed.items()}
    proto = _build(scored, outputs, length, public, result_shapes, per_sequence)
    if folded:
        _publish_targets(proto, public, result_shapes, model.output_names)
    return proto


def _build(model, outputs, length, public, result_shapes, per_sequence=False):
    """The standalone graph of ``outputs`` of ``model``; output NAME's ISM is named ``public[NAME]__ism`` and
    shaped (n, P, 4, *result_shapes.get(NAME, NAME's shape))."""
    try:
        plan, graphs = build_plan(model, length, outputs, dense_heads=False)
    except UnsupportedGraphError as err:
        raise UnsupportedGraphError(f"fast ISM cannot analyse {model.source}: {err}", node_name=err.node_name,
                                    op_type=err.op_type) from err
    reference, ism = attach(graphs.reference_model, graphs.weights), attach(graphs.ism_model, graphs.weights)
    weights = {init.name for init in reference.graph.initializer}
    e = Emitter("standalone__", taken={name for node in reference.graph.node for name in node.output} | weights)
    x = model.input_name

    n = e.op("Slice", [e.op("Shape", [x]), e.ints([0]), e.ints([1])])
    shape = e.op("Shape", [POSITIONS])
    p = e.op("Slice", [shape, e.ints([1]), e.ints([2])]) if per_sequence else shape
    # negative positions count from the end (numpy's convention), once here for every use below: a Gather from
    # 0 .. L - 1, which also refuses a position outside [-L, L)
    positions = e.op("Gather", [e.const(np.arange(length, dtype=np.int64)), POSITIONS], axis=0)
    grid = e.op("Concat", [n, p, e.ints([4])], axis=0)
    # (n, P, 1) or (1, P, 1): each row's position, broadcast over the 4 bases (and, shared, over the sequences)
    per_row = e.op("Unsqueeze", [positions, e.ints([2])]) if per_sequence else \
        e.op("Reshape", [positions, e.ints([1, -1, 1])])
    rows_count = e.op("Mul", [e.op("Mul", [n, p]), e.ints([4])])
    arange_n = e.op("Range", [e.const(np.int64(0)), e.op("Squeeze", [n]), e.const(np.int64(1))])
    seq = e.op("Reshape", [e.op("Expand", [e.op("Reshape", [arange_n, e.ints([-1, 1, 1])]), grid]), e.ints([-1])])
    pos = e.op("Reshape", [e.op("Expand", [per_row, grid]), e.ints([-1])])
    base = e.op("Reshape", [e.op("Expand", [e.ints([0, 1, 2, 3]), grid]), e.ints([-1])])
    row = e.op("Range", [e.const(np.int64(0)), e.op("Squeeze", [rows_count]), e.const(np.int64(1))])

    feeds = {}
    column = e.op("Gather", [e.const(np.eye(4, dtype=np.float32)), base], axis=0)
    feeds[plan.input_window] = e.op("Unsqueeze", [column, e.ints([1])])  # (rows, 1, 4): the rows layout
    for table in plan.tables:
        feeds[f"{table}__ref"] = f"{table}__ref"
    for spec in plan.gathers:
        feeds[spec.index_name] = _gather_indices(e, spec, plan.analysis.table_window(spec.source), seq, pos, row, n,
                                                 rows_count)

    nodes = list(reference.graph.node) + e.nodes
    for name, source in feeds.items():
        nodes.append(helper.make_node("Identity", [source], [_PREFIX + name], name=f"standalone__feed_{name}"))
    nodes += [_prefixed(node, weights, index) for index, node in enumerate(ism.graph.node)]

    # deltas against the reference prediction, shaped (n, P, 4, *shape), exactly 0 at the reference base
    start = len(e.nodes)
    onehot = x if model.layout == "NLC" else e.op("Transpose", [x], perm=[0, 2, 1])
    if per_sequence:  # (n, P, 4): row k's bases at its own positions
        at_positions = e.op("GatherElements", [onehot, e.op("Expand", [per_row, grid])], axis=1)
    else:
        at_positions = e.op("Gather", [onehot, positions], axis=1)
    keep = e.op("Sub", [e.const(np.float32(1.0)), at_positions])
    shapes = model.output_shapes(length)
    results = []
    for name, final in zip(outputs, plan.ism_outputs):
        shape = result_shapes.get(name, shapes[name])
        mutant = _PREFIX + final
        delta = e.op("Sub", [mutant, e.op("Gather", [name, seq], axis=0)])
        shaped = e.op("Reshape", [delta, e.op("Concat", [grid, e.ints(shape)], axis=0)])
        mask = e.op("Reshape", [keep, e.op("Concat", [grid, e.ints([1] * len(shape))], axis=0)])
        result = ism_output_name(public[name])
        e.op("Mul", [shaped, mask], out=result)
        results.append(helper.make_tensor_value_info(result, onnx.TensorProto.FLOAT,
                                                     ["n", "positions", 4] + list(shape)))
    nodes += e.nodes[start:]

    initializers = list(reference.graph.initializer) + e.initializers
    initializers += [init for init in ism.graph.initializer if init.name not in weights]
    extras = {extra.name for extra in model.extra_inputs}
    inputs = [value for value in reference.graph.input if value.name == x]
    inputs += [value for value in reference.graph.input if value.name in extras]
    inputs.append(helper.make_tensor_value_info(POSITIONS, onnx.TensorProto.INT64,
                                                ["n", "positions"] if per_sequence else ["positions"]))
    model_outputs = [value for value in model.proto.graph.output if value.name in outputs]
    graph = helper.make_graph(nodes, "onnxism_fast_ism_standalone", inputs, model_outputs + results, initializers)
    proto = helper.make_model(graph, opset_imports=list(model.proto.opset_import))
    proto.ir_version = model.proto.ir_version
    return proto


def _publish_targets(proto, public, result_shapes, taken):
    """Give each folded target's value on the sequences the original output's name, in the target's shape: the
    original (whole) output is renamed wherever the graph reads or writes it, and the folded (n, T) tensor is
    reshaped into that name."""
    graph = proto.graph
    taken = set(taken) | {name for node in graph.node for name in node.output}
    taken |= {init.name for init in graph.initializer}
    for folded_name, name in public.items():
        if folded_name == name:
            continue
        whole = unique_name(f"{name}__whole", taken)
        for node in graph.node:
            for field in (node.input, node.output):
                for index, tensor in enumerate(field):
                    if tensor == name:
                        field[index] = whole
        shape = numpy_helper.from_array(np.asarray((-1,) + tuple(result_shapes[folded_name]), np.int64),
                                        unique_name(f"{name}__target_shape", taken))
        graph.initializer.append(shape)
        graph.node.append(helper.make_node("Reshape", [folded_name, shape.name], [name],
                                           name=unique_name(f"standalone__{name}_target", taken)))
        declared = next(value for value in graph.output if value.name == folded_name)
        declared.CopyFrom(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT,
                                                        ["n"] + list(result_shapes[folded_name])))


def _prefixed(node, weights, number):
    """A copy of ISM-graph node number ``number`` whose tensor names carry the prefix (weights shared with the
    reference keep theirs); an unnamed node is named by its index."""
    if any(attribute.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for attribute in node.attribute):
        raise UnsupportedGraphError(f"fast ISM cannot compile {node.op_type} node {node.name!r} with subgraphs")
    copy = onnx.NodeProto()
    copy.CopyFrom(node)
    for field in (copy.input, copy.output):
        for index, name in enumerate(field):
            if name and name not in weights:
                field[index] = _PREFIX + name
    copy.name = _PREFIX + (node.name or f"node{number}")
    return copy


def _gather_indices(e, spec, window, seq, pos, row, n, rows_count):
    """In-graph ``indices.gather_indices``: (R, spec.width) int64 indices for ``spec``."""
    if spec.kind == "sequence":
        return e.op("Unsqueeze", [seq, e.ints([1])])
    length, width = window.length, window.width
    columns = e.op("Add", [e.op("Unsqueeze", [e.op("Gather", [e.const(spec.start), pos], axis=0), e.ints([1])]),
                           e.const(spec.offsets.astype(np.int64)[None, :])])
    if spec.column_map is not None:
        columns = e.op("Gather", [e.const(spec.column_map.astype(np.int64)), columns], axis=0)
    if spec.kind == "position":
        return columns
    if spec.kind == "col2im":
        if spec.column is None:
            column, tap = columns, e.const(spec.tap.astype(np.int64)[None, :])
            valid = e.op("And", [e.op("GreaterOrEqual", [columns, e.const(np.int64(0))]),
                                 e.op("Less", [columns, e.const(np.int64(spec.block))])])
        else:
            dilation = e.const(np.int64(spec.dilation))
            column, tap = e.const(spec.column.astype(np.int64)[None, :]), e.op("Div", [columns, dilation])
            in_range = e.op("And", [e.op("GreaterOrEqual", [columns, e.const(np.int64(0))]),
                                    e.op("Less", [columns, e.const(np.int64(spec.taps * spec.dilation))])])
            valid = e.op("And", [in_range, e.op("Equal", [e.op("Mod", [columns, dilation]), e.const(np.int64(0))])])
        block_rows = e.op("Mul", [e.op("Unsqueeze", [row, e.ints([1])]), e.const(np.int64(spec.block))])
        index = e.op("Add", [e.op("Mul", [e.op("Add", [block_rows, column]), e.const(np.int64(spec.taps))]), tap])
        zero_row = e.op("Mul", [rows_count, e.const(np.int64(spec.block * spec.taps))])
        return e.op("Where", [valid, index, zero_row])
    by_reference = e.op("Add", [e.op("Mul", [e.op("Unsqueeze", [seq, e.ints([1])]), e.const(np.int64(length))]),
                                columns])
    if spec.kind == "reference":
        return by_reference
    window_start = e.op("Unsqueeze", [e.op("Gather", [e.const(window.start.astype(np.int64)), pos], axis=0),
                                      e.ints([1])])
    inside = e.op("And", [e.op("GreaterOrEqual", [columns, window_start]),
                          e.op("Less", [columns, e.op("Add", [window_start, e.const(np.int64(width))])])])
    reference_rows = e.op("Mul", [n, e.const(np.int64(length))])
    by_window = e.op("Add", [e.op("Add", [reference_rows, e.op("Mul", [e.op("Unsqueeze", [row, e.ints([1])]),
                                                                        e.const(np.int64(width))])]),
                             e.op("Sub", [columns, window_start])])
    index = e.op("Where", [inside, by_window, by_reference])
    valid = e.op("And", [e.op("GreaterOrEqual", [columns, e.const(np.int64(0))]),
                         e.op("Less", [columns, e.const(np.int64(length))])])
    padding = e.op("Add", [e.op("Add", [reference_rows, e.op("Mul", [rows_count, e.const(np.int64(width))])]),
                           e.const(np.int64(spec.pad_row))])
    return e.op("Where", [valid, index, padding])
