"""Assembly: the ISM graph and the reference graph from the lowered nodes, and ``build_graphs``, the builder's
entry point.

Reference graph: the model plus, for each windowed tensor that some node gathers from, its "table": the tensor
with the length axis moved next to the batch and flattened to rows (n * L_T, K).

ISM graph: takes the substituted input columns (one per row), the tables and per-gather row indices (and each dense
head's weight rows of the batch's window), and returns the model outputs for every row (with ``deltas``: their
change from the reference).

Invariant: for every row (sequence n, position p, base b), the outputs equal the model's outputs on sequence n
with position p set to base b.
"""

from dataclasses import dataclass

import numpy as np
import onnx
import onnx_graphsurgeon as gs
from onnx import helper, numpy_helper

from ...graph.nodes import names_used
from ...runtime.weights import add_initializer, copy_model
from ..layout import rows_shape
from .epilogues import fold_epilogues
from .lower import lower_graph
from .state import BuildState


@dataclass(frozen=True)
class BuiltGraphs:
    """The two graphs and what their executor needs to feed them."""

    ism_model: object
    reference_model: object
    weights: dict  # {name: array} of the graphs' weight placeholders (``runtime/weights.py``)
    gathers: list  # GatherSpec per gather index input
    tables: list  # table names, in the reference graph's output order
    table_rows: dict  # table name -> rows per sequence
    ism_outputs: list  # the ISM graph's output names
    input_window: str  # the ISM graph's input of the substituted columns
    heads: dict  # node key -> the linear head it belongs to
    dense_heads: list  # the dense heads whose weight rows the executor binds


def build_graphs(proto, analysis, shapes, input_name, outputs, dense_heads=True, *, deltas=False, dtypes=None):
    """The reference graph and the ISM graph of ``proto`` for ``outputs``, from its window ``analysis`` and probed
    ``shapes`` (``dtypes``: probed element types); ``deltas``: the ISM graph returns f(mutant) - f(reference);
    ``dense_heads``: dense layers after a Flatten updated incrementally (the executor binds their weight rows)."""
    s = BuildState(proto, analysis, shapes, input_name, outputs, dense_heads, deltas=deltas, dtypes=dtypes)
    lower_graph(s)
    ism, reference = ism_model(s), reference_model(s)
    return BuiltGraphs(ism, reference, s.weights, s.gathers, list(s.tables),
                       {name: s.table_rows(name) for name in s.tables}, s.result_names(), s.win(input_name), s.heads,
                       s.dense_heads)


def table_nodes(s):
    """Each gathered table: the reference rows, the rows of every row's window, then one padding row per pad value."""
    for name, table in s.tables.items():
        if not table.gathered:
            continue
        shape = s.constant(f"{name}__rows_shape", np.array([-1, table.row_size], np.int64))
        window_rows = s.node("Reshape", [s.win(name), shape], [f"{name}__win_rows"])
        if table.dtype != np.float32:
            window_rows = s.node("Cast", [window_rows], [s.fresh("float_rows")], to=onnx.TensorProto.FLOAT)
        pads = np.array([[value] * table.row_size for value in table.pad_values], np.float32)
        pad_rows = s.constant(f"{name}__pad_rows", pads)
        s.node("Concat", [f"{name}__ref", window_rows, pad_rows], [f"{name}__table"], axis=0)


def ism_model(s):
    """The ISM graph: the lowered nodes with their tables, epilogues folded, sorted, unread nodes dropped."""
    table_nodes(s)
    s.nodes = fold_epilogues(s.nodes, s.native_convs, set(s.result_names()))
    graph = s.graph
    window = s.analysis.windows[s.input_name]
    input_shape = ["rows"] + rows_shape(s.shapes[s.input_name], window.axis, 1)[1:]
    inputs = [helper.make_tensor_value_info(s.win(s.input_name), onnx.TensorProto.FLOAT, input_shape)]
    for name, table in s.tables.items():
        inputs.append(helper.make_tensor_value_info(f"{name}__ref", onnx.TensorProto.FLOAT,
                                                    ["ref_rows_" + str(len(inputs)), table.row_size]))
    for spec in s.gathers:
        inputs.append(helper.make_tensor_value_info(spec.index_name, onnx.TensorProto.INT64, ["rows", spec.width]))
    for head in s.dense_heads:
        width = s.analysis.windows[head.source].width
        inputs.append(helper.make_tensor_value_info(
            head.window_input, helper.np_dtype_to_tensor_dtype(head.weight_rows.dtype),
            [width] + list(head.weight_rows.shape[1:])))
    outputs = []
    for final in s.result_names():
        outputs.append(helper.make_tensor_value_info(final, onnx.TensorProto.FLOAT, None))
    # onnx-graphsurgeon sorts the nodes and drops those no output needs, on a skeleton whose weights are only
    # declared (as inputs): the weights, attached after, are copied once, and only those the graph still uses
    weights = {init.name: init for init in graph.initializer}
    declared = [helper.make_tensor_value_info(init.name, init.data_type, list(init.dims))
                for init in weights.values()]
    skeleton = helper.make_graph(s.nodes, "onnxism_fast_ism", inputs + declared, outputs)
    skeleton = helper.make_model(skeleton, opset_imports=list(s.proto.opset_import))
    cleaned = gs.import_onnx(skeleton)
    cleaned.toposort().cleanup()
    model = gs.export_onnx(cleaned)
    model.ir_version = s.proto.ir_version
    used = names_used(model.graph)
    kept = [value for value in model.graph.input if value.name not in weights]
    del model.graph.input[:]
    model.graph.input.extend(kept)
    for name, init in weights.items():
        if name in used:
            add_initializer(model.graph, init, s.constants, s.weights)
    return model


def reference_model(s):
    """The model plus, per table, its tensor as rows (``NAME__ref``) among the outputs."""
    model = copy_model(s.proto, s.constants, s.weights)
    graph = model.graph
    for name, table in s.tables.items():
        shape_name = f"{name}__ref_shape"
        tensor = table.tensor
        if table.dtype != np.float32:  # tables hold float32
            tensor = f"{name}__ref_float"
            graph.node.append(helper.make_node("Cast", [table.tensor], [tensor], to=onnx.TensorProto.FLOAT,
                                               name=tensor))
        graph.node.extend([
            helper.make_node("Transpose", [tensor], [f"{name}__ref_t"], perm=table.perm,
                             name=f"{name}__ref_t"),
            helper.make_node("Constant", [], [shape_name], name=shape_name,
                             value=numpy_helper.from_array(np.array([-1, table.row_size], np.int64))),
            helper.make_node("Reshape", [f"{name}__ref_t", shape_name], [f"{name}__ref"], name=f"{name}__ref"),
        ])
        graph.output.append(onnx.ValueInfoProto(name=f"{name}__ref"))
    return model
