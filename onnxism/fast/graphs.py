"""Build the two graphs fast ISM runs: the reference graph and the ISM graph.

Reference graph: the model plus, for each windowed tensor that some node gathers from, its "table": the tensor
with the length axis moved next to the batch and flattened to rows (n * L_T, K).

ISM graph: takes the substituted input columns (one per row), the tables and per-gather row indices, and returns
the model outputs for every row. Each windowed node computes only its window: a local op (Conv, pooling, ...) runs
without length padding on a slice gathered from [reference rows | window rows | padding rows]; a point-wise op
runs on the window directly; an op without a local rule runs on the full tensor, gathered the same way.

Invariant: for every row (sequence n, position p, base b), the outputs equal the model's outputs on sequence n
with position p set to base b.
"""

from dataclasses import dataclass

import numpy as np
import onnx
import onnx_graphsurgeon as gs
from onnx import helper, numpy_helper

from .rules import LocalRule


@dataclass
class GatherSpec:
    """One gather of the ISM graph: rows of ``source``'s table for target columns start[p] .. start[p] + width."""

    index_name: str
    source: str
    start: np.ndarray
    width: int
    pad_row: int


@dataclass
class Table:
    """How a tensor is laid out as rows: transpose ``perm`` (batch, length, then the other axes) and reshape to
    (-1, K), so row n * L_T + c holds position c of sequence n; ``rest`` are the other dims."""

    tensor: str
    perm: list
    rest: list
    pad_values: list

    @property
    def row_size(self):
        return int(np.prod(self.rest)) if self.rest else 1


def _table_layout(tensor, shape, axis):
    perm = [0, axis] + [d for d in range(1, len(shape)) if d != axis]
    return Table(tensor, perm, [shape[d] for d in perm[2:]], [])


class IsmGraphBuilder:
    """Turns a graph and its window analysis into the reference graph and the ISM graph."""

    def __init__(self, proto, analysis, shapes, input_name, outputs):
        self.proto = proto
        self.graph = proto.graph
        self.analysis = analysis
        self.shapes = shapes
        self.input_name = input_name
        self.outputs = outputs
        self.nodes = []
        self.tables = {}
        self.gathers = []
        self.materialised = {}

    # -- naming ---------------------------------------------------------------------------------------------
    def win(self, name):
        return f"{name}__win"

    def _node(self, op, inputs, outputs, **attrs):
        self.nodes.append(helper.make_node(op, inputs, outputs, name=f"ism_{len(self.nodes)}_{op}", **attrs))
        return outputs[0]

    def _const(self, name, array):
        self.nodes.append(helper.make_node("Constant", [], [name], name=f"const_{name}",
                                           value=numpy_helper.from_array(np.asarray(array))))
        return name

    # -- gathers --------------------------------------------------------------------------------------------
    def gather(self, source, start, width, pad_value=0.0):
        """A tensor holding ``source`` (substituted) on columns [start[p], start[p] + width) of its length axis."""
        window = self.analysis.windows[source]
        table = self.tables.get(source)
        if table is None:
            table = self.tables[source] = _table_layout(source, self.shapes[source], window.axis)
        if pad_value not in table.pad_values:
            table.pad_values.append(pad_value)
        k = len(self.gathers)
        spec = GatherSpec(f"idx__{k}", source, np.asarray(start, np.int64), int(width), table.pad_values.index(pad_value))
        self.gathers.append(spec)
        rows = self._node("Gather", [f"{source}__table", spec.index_name], [f"{source}__g{k}_rows"], axis=0)
        shape = self._const(f"{source}__g{k}_shape", np.array([-1, width] + table.rest, np.int64))
        shaped = self._node("Reshape", [rows, shape], [f"{source}__g{k}_shaped"])
        inverse = list(np.argsort(table.perm))
        return self._node("Transpose", [shaped], [f"{source}__g{k}"], perm=inverse)

    def materialise(self, name):
        """The full tensor ``name`` for every row (computed once)."""
        if name not in self.analysis.windows:
            return name
        if name not in self.materialised:
            window = self.analysis.windows[name]
            self.materialised[name] = self.gather(name, np.zeros_like(window.start), window.length)
        return self.materialised[name]

    def output_names(self):
        """The ISM graph's name for each model output (a windowed output is materialised under a new name)."""
        return [f"{name}__out" if name in self.analysis.windows else name for name in self.outputs]

    # -- nodes ----------------------------------------------------------------------------------------------
    def build(self):
        windows = self.analysis.windows
        for index, node in enumerate(self.graph.node):
            key = node.name or f"node{index}"
            mode = self.analysis.modes[key]
            if mode == "static":
                self.nodes.append(node)
            elif mode == "shape":
                window = windows[node.input[0]]
                correction = np.zeros(len(self.shapes[node.input[0]]), np.int64)
                correction[window.axis] = window.length - window.width
                shape = self._node("Shape", [self.win(node.input[0])], [f"{node.output[0]}__win_shape"])
                self._node("Add", [shape, self._const(f"{node.output[0]}__correction", correction)],
                           [node.output[0]])
            elif mode == "full":
                copy = onnx.NodeProto()
                copy.CopyFrom(node)
                del copy.input[:]
                copy.input.extend(self.materialise(name) for name in node.input)
                self.nodes.append(copy)
            else:
                self._windowed(node, key)
        for name, final in zip(self.outputs, self.output_names()):
            if final != name:
                self._node("Identity", [self.materialise(name)], [final])
        return self._ism_model(), self._reference_model()

    def _windowed(self, node, key):
        rule = self.analysis.rules[key]
        windows = self.analysis.windows
        out = node.output[0]
        target = windows[out]
        if isinstance(rule, LocalRule):
            source = next(name for name in node.input if name in windows)
            start, width = rule.needed(target.start, target.width)
            gathered = self.gather(source, start, width, rule.pad_value)
            inputs = [gathered if name == source else name for name in node.input]
            for made in rule.windowed_node(inputs, self.win(out)):
                made.name = made.name or f"ism_{len(self.nodes)}_{made.op_type}"
                self.nodes.append(made)
            return
        dependent = [name for name in node.input if name in windows]
        inputs = []
        for name in node.input:
            if name not in windows:
                inputs.append(name)
            elif len(dependent) == 1 or windows[name].same_as(target):
                inputs.append(self.win(name))
            else:
                inputs.append(self.gather(name, target.start, target.width))
        copy = onnx.NodeProto()
        copy.CopyFrom(node)
        del copy.input[:]
        copy.input.extend(inputs)
        del copy.output[:]
        copy.output.extend([self.win(out)])
        copy.name = f"{key}__win"
        self.nodes.append(copy)

    # -- models ---------------------------------------------------------------------------------------------
    def _table_nodes(self):
        for name, table in self.tables.items():
            rows = self._node("Transpose", [self.win(name)], [f"{name}__win_t"], perm=table.perm)
            shape = self._const(f"{name}__rows_shape", np.array([-1, table.row_size], np.int64))
            window_rows = self._node("Reshape", [rows, shape], [f"{name}__win_rows"])
            pads = np.array([[value] * table.row_size for value in table.pad_values], np.float32)
            pad_rows = self._const(f"{name}__pad_rows", pads)
            self._node("Concat", [f"{name}__ref", window_rows, pad_rows], [f"{name}__table"], axis=0)

    def _ism_model(self):
        self._table_nodes()
        graph = self.graph
        input_shape = list(self.shapes[self.input_name])
        axis = self.analysis.windows[self.input_name].axis
        input_shape[0], input_shape[axis] = "rows", 1
        inputs = [helper.make_tensor_value_info(self.win(self.input_name), onnx.TensorProto.FLOAT, input_shape)]
        for name, table in self.tables.items():
            inputs.append(helper.make_tensor_value_info(f"{name}__ref", onnx.TensorProto.FLOAT,
                                                        ["ref_rows_" + str(len(inputs)), table.row_size]))
        for spec in self.gathers:
            inputs.append(helper.make_tensor_value_info(spec.index_name, onnx.TensorProto.INT64, ["rows", spec.width]))
        outputs = []
        for final in self.output_names():
            outputs.append(helper.make_tensor_value_info(final, onnx.TensorProto.FLOAT, None))
        ism = helper.make_graph(self.nodes, "onnxism_fast_ism", inputs, outputs, list(graph.initializer))
        model = helper.make_model(ism, opset_imports=list(self.proto.opset_import))
        model.ir_version = self.proto.ir_version
        cleaned = gs.import_onnx(model)
        cleaned.toposort().cleanup()
        model = gs.export_onnx(cleaned)
        model.ir_version = self.proto.ir_version
        return model

    def _reference_model(self):
        model = onnx.ModelProto()
        model.CopyFrom(self.proto)
        graph = model.graph
        for name, table in self.tables.items():
            shape_name = f"{name}__ref_shape"
            graph.node.extend([
                helper.make_node("Transpose", [name], [f"{name}__ref_t"], perm=table.perm, name=f"{name}__ref_t"),
                helper.make_node("Constant", [], [shape_name], name=shape_name,
                                 value=numpy_helper.from_array(np.array([-1, table.row_size], np.int64))),
                helper.make_node("Reshape", [f"{name}__ref_t", shape_name], [f"{name}__ref"], name=f"{name}__ref"),
            ])
            graph.output.append(onnx.ValueInfoProto(name=f"{name}__ref"))
        return model
