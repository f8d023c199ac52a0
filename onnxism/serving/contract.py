"""The serving contract: compiled graphs an inference server batches, every input and output batch-first.

Each served graph takes the sequences as ``onehot`` (n, L, 4) float32 in A, C, G, T order (onnxism's convention,
whatever the model's layout) or, with ``codes``, as ``codes`` (n, L) uint8 (0 A, 1 C, 2 G, 3 T; any other value
an N, all-zero row); the model's extra inputs keep their names and take n rows each. So a server's dynamic
batcher concatenates requests along the first axis of every input and splits every output the same way.

- ``fast``: also ``positions`` (n, P) int64, row k the positions of sequence k (-L <= p < L); outputs the model's
  outputs (n, ...) and ``NAME__ism`` (n, P, 4, *target_shape): ``onnxism.ism`` at those positions.
- ``tism``: the targets are fixed when the graph is written (seeds as constants, one block of rows per output);
  outputs the model's outputs and ``NAME__tism`` (n, L, 4, *target_shape): ``onnxism.tism``.
- ``predict``: the model's outputs (n, ...).

Invariant: a served graph computes what the compiled graph it wraps computes on ``onehot`` in the model's layout;
it only adds the input's conversion in front and, for TISM, moves the seed axis behind the batch.
"""

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..errors import InputError, UnsupportedGraphError
from ..gradients import TISM, build_gradient_model, seed_name
from ..graph.nodes import unique_name
from ..methods.compile import compile_fast, compiled_length
from ..methods.targets import outputs_and_targets
from ..model.loading import load

METHODS = ("fast", "tism", "predict")
ONEHOT, CODES = "onehot", "codes"


def tism_output_name(name):
    return f"{name}__tism"


def serving_graph(model, method, *, length=None, outputs=None, targets=None, codes=False):
    """The served graph of ``method`` ("fast", "tism" or "predict") for ``model`` (a path or loaded model), with
    the contract of this module's docstring; ``targets`` as for :func:`onnxism.ism`, fixed in the graph."""
    model = load(model)
    if method not in METHODS:
        raise InputError(f"unknown serving method {method!r}; use one of {', '.join(METHODS)}")
    length = compiled_length(model, length)
    if model.fixed_batch is not None:
        raise UnsupportedGraphError(f"a server batches requests: {model.source} is fixed to batch "
                                    f"{model.fixed_batch}; export it with a dynamic batch axis")
    if method == "fast":
        proto = compile_fast(model, length=length, outputs=outputs, targets=targets, positions_per_sequence=True)
    elif method == "tism":
        proto = _tism_graph(model, length, outputs, targets)
    else:
        proto = _predict_graph(model, outputs)
    return with_sequence_input(proto, model, length, codes=codes)


def with_sequence_input(proto, model, length, *, codes=False):
    """``proto`` with its sequence input (the model's, in the model's layout and dtype) replaced by ``onehot``
    (n, L, 4) float32, or ``codes`` (n, L) uint8, converted in the graph."""
    graph = proto.graph
    new = CODES if codes else ONEHOT
    names = {value.name for value in list(graph.input) + list(graph.output)} - {model.input_name}
    if new in names:
        raise UnsupportedGraphError(f"the model has an input or output named {new!r}, the served graph's input")
    taken = {name for node in graph.node for name in list(node.input) + list(node.output)} | names
    taken |= {init.name for init in graph.initializer}
    kept = [value for value in graph.input if value.name != model.input_name]
    nodes, inits = [], []

    def fresh(stem):
        return unique_name(f"serving__{stem}", taken)

    def constant(array, stem):
        tensor = numpy_helper.from_array(np.asarray(array), fresh(stem))
        taken.add(tensor.name)
        inits.append(tensor)
        return tensor.name

    current = new
    if codes:
        index = fresh("codes_int64")
        nodes.append(helper.make_node("Cast", [current], [index], to=TensorProto.INT64, name=fresh("node_cast")))
        current = fresh("onehot")
        nodes.append(helper.make_node("OneHot", [index, constant(np.int64(4), "depth"),
                                                 constant(np.array([0, 1], np.float32), "values")],
                                      [current], axis=-1, name=fresh("node_onehot")))
    if model.layout == "NCL":
        moved = fresh("ncl")
        nodes.append(helper.make_node("Transpose", [current], [moved], perm=[0, 2, 1], name=fresh("node_layout")))
        current = moved
    dtype = helper.np_dtype_to_tensor_dtype(np.dtype(model.input_dtype))
    nodes.append(helper.make_node("Cast", [current], [model.input_name], to=dtype, name=fresh("node_input")))
    value = helper.make_tensor_value_info(new, TensorProto.UINT8, ["n", length]) if codes else \
        helper.make_tensor_value_info(new, TensorProto.FLOAT, ["n", length, 4])
    del graph.input[:]
    graph.input.extend([value] + kept)
    reordered = nodes + list(graph.node)
    del graph.node[:]
    graph.node.extend(reordered)
    graph.initializer.extend(inits)
    onnx.checker.check_model(proto)
    return proto


def _predict_graph(model, outputs):
    """The model itself, with only the chosen outputs."""
    proto = onnx.ModelProto()
    proto.CopyFrom(model.proto)
    names = model.select_outputs(outputs)
    kept = [value for value in proto.graph.output if value.name in names]
    del proto.graph.output[:]
    proto.graph.output.extend(kept)
    return proto


def _tism_graph(model, length, outputs, targets):
    """The gradient graph with its seeds fixed (one block of rows per output, zero elsewhere, so each output's
    gradient is its own) and ``NAME__tism`` (n, L, 4, *target_shape) per output, batch first."""
    names, shapes, resolved = outputs_and_targets(model, outputs, targets, length, "cpu")
    clash = [tism_output_name(name) for name in names if tism_output_name(name) in model.output_names]
    if clash:
        raise UnsupportedGraphError(f"the model has an output named {clash[0]!r}, a name the served graph writes")
    proto = build_gradient_model(model, names, length)
    graph = proto.graph
    total = sum(len(resolved[name].seeds) for name in names)
    taken = {name for node in graph.node for name in list(node.input) + list(node.output)}
    taken |= {init.name for init in graph.initializer} | {value.name for value in graph.output}
    seeds = {seed_name(name) for name in names}
    inputs = [value for value in graph.input if value.name not in seeds]
    del graph.input[:]
    graph.input.extend(inputs)
    first = 0
    perm = [1, 2, 3, 0] if model.layout == "NLC" else [1, 3, 2, 0]  # (S, n, L, 4) or (S, n, 4, L) -> (n, L, 4, S)
    published = []
    for name in names:
        target = resolved[name]
        block = np.zeros((total,) + tuple(shapes[name]), np.float32)
        block[first:first + len(target.seeds)] = target.seeds
        graph.initializer.append(numpy_helper.from_array(block, seed_name(name)))

        def const(array, stem):
            tensor = numpy_helper.from_array(np.asarray(array, np.int64), unique_name(f"serving__{stem}", taken))
            taken.add(tensor.name)
            graph.initializer.append(tensor)
            return tensor.name

        rows = unique_name(f"serving__{name}_rows", taken)
        moved = unique_name(f"serving__{name}_moved", taken)
        taken.update([rows, moved])
        graph.node.append(helper.make_node(
            "Slice", [TISM, const([first], "start"), const([first + len(target.seeds)], "stop"), const([0], "axis")],
            [rows], name=unique_name("serving__node_slice", taken)))
        graph.node.append(helper.make_node("Transpose", [rows], [moved], perm=perm,
                                           name=unique_name("serving__node_batch_first", taken)))
        result = tism_output_name(name)
        graph.node.append(helper.make_node("Reshape", [moved, const([0, length, 4] + list(target.shape), "shape")],
                                           [result], name=unique_name("serving__node_target_shape", taken)))
        published.append(helper.make_tensor_value_info(result, TensorProto.FLOAT,
                                                       ["n", length, 4] + list(target.shape)))
        first += len(target.seeds)
    kept = [value for value in graph.output if value.name in names]
    del graph.output[:]
    graph.output.extend(kept + published)
    return proto


def batch_first_dims(value):
    """(ONNX elem type, dims after the batch axis with -1 for any size) of a graph input or output."""
    tensor = value.type.tensor_type
    dims = [dim.dim_value if dim.HasField("dim_value") else -1 for dim in tensor.shape.dim]
    return tensor.elem_type, dims[1:]
