"""The gradient graph: the model's forward pass plus a reverse pass to the sequence input, in standard ONNX ops.

Inputs: the model's sequence input (as the model takes it, any batch size N), its extra inputs if any (held fixed:
no cotangent reaches them) and, per chosen output NAME,
``seed__NAME`` of shape (S, *NAME's shape without batch): S seed directions (targets) handled in one pass.
Outputs: the model's own outputs, ``gradient`` (S, N, *input shape) with
gradient[s, n] = d/d input[n] of sum over outputs of <seed__NAME[s], NAME[n]>, and ``tism`` (same shape), the
gradient minus its value at each position's reference base (for one-hot input: TISM, zero at the reference).

Invariant: the forward nodes are the model's own (a MaxPool may gain its Indices output); the reverse pass is
appended after them, so the graph stays topologically sorted.
"""

import numpy as np
import onnx
from onnx import helper

from ..errors import UnsupportedGraphError
from ..graph.nodes import default_opset, reads
from ..graph.probe import probe_graph, probe_shapes, shape_arithmetic
from ..passes.base import run_pipeline
from ..passes.pipeline import GRADIENT_PREP, ProbeContext
from .context import GradientContext
from .rules import RULES, carries_derivative

GRADIENT, TISM = "gradient", "tism"


def seed_name(output):
    return f"seed__{output}"


def build_gradient_model(model, outputs, length, *, standalone=True):
    """The gradient graph of ``model`` (a SequenceModel) for ``outputs`` at sequence ``length``.

    ``standalone=False`` (what onnxism's executor runs) keeps only ``outputs`` and ``gradient`` as graph outputs,
    so onnxruntime drops the model's other heads and the ``tism`` output.

    Raises UnsupportedGraphError naming the first node on the sequence path without a gradient rule.
    """
    x = model.input_name
    batch = model.fixed_batch or 1
    input_shape = (batch, length, 4) if model.layout == "NLC" else (batch, 4, length)
    extras = {extra.name: (extra.shape_at(length), extra.dtype) for extra in model.extra_inputs}
    copy = onnx.ModelProto()  # the reverse pass is appended to the model's own copy
    copy.CopyFrom(model.proto)
    run = run_pipeline(GRADIENT_PREP, copy, ProbeContext(x, input_shape, model.input_dtype, extras, owned=True))
    proto = run.proto  # (nothing is added to its graph before the end: the probe at batch 2 may run it before)
    opset = default_opset(proto)
    graph = proto.graph
    shapes, fixed, _, _ = probe_graph(proto, x, input_shape, dtype=model.input_dtype, extras=extras)
    known = shape_arithmetic(graph, x, fixed, extras)[0]  # (tf2onnx's pads and bounds from a tensor's shape)
    dtype = np.dtype(model.input_dtype)
    active = _on_sequence_path(graph, x)
    missing = [name for name in outputs if name not in active]

    seeds = [seed_name(name) for name in outputs]

    def shapes_at_two():  # only selections (selection.py) need to know where the batch is
        return probe_shapes(proto, x, (2,) + tuple(input_shape[1:]), dtype=model.input_dtype, extras=extras)

    ctx = GradientContext(graph, shapes, active, dtype, seeds[0], x, opset=opset,
                          shapes_at_two=None if model.fixed_batch else shapes_at_two, known=known)
    cotangents = {}
    for name, seed in zip(outputs, seeds):
        if name in missing:
            continue
        spread = ctx.op("Unsqueeze", [seed, ctx.ints([1])], stem="seed")
        cotangents[name] = [ctx.expand_like(spread, name)]
    for node in reversed(list(graph.node)):
        gouts = [ctx.sum(cotangents[name]) if cotangents.get(name) else None for name in node.output]
        if all(g is None for g in gouts) or not any(ctx.needs(name) for name in reads(node)):
            continue
        vjp = RULES.get(node.op_type)
        if vjp is None:
            raise UnsupportedGraphError(
                f"no gradient rule for {node.op_type} node {node.name or node.output[0]!r} on the path from the "
                "sequence input to the outputs",
                node_name=node.name, op_type=node.op_type,
            )
        for index, cotangent in vjp(ctx, node, gouts).items():
            cotangents.setdefault(node.input[index], []).append(cotangent)
    gradient = ctx.sum(cotangents[x]) if cotangents.get(x) else ctx.zeros_like(x)
    ctx.nodes.append(helper.make_node("Identity", [gradient], [GRADIENT], name=ctx.fresh("node_gradient")))
    if standalone:
        base_axis = 3 if model.layout == "NLC" else 2
        at_reference = ctx.reduce_sum(ctx.op("Mul", [gradient, x]), [base_axis])
        ctx.nodes.append(helper.make_node("Sub", [gradient, at_reference], [TISM], name=ctx.fresh("node_tism")))
    else:
        kept = [value for value in graph.output if value.name in outputs]
        del graph.output[:]
        graph.output.extend(kept)

    graph.node.extend(ctx.nodes)
    graph.initializer.extend(ctx.initializers)
    for name, seed in zip(outputs, seeds):
        dims = ["targets"] + list(shapes[name][1:])
        graph.input.append(helper.make_tensor_value_info(seed, ctx.onnx_dtype, dims))
    in_dims = ["targets", model.fixed_batch or "batch"] + list(input_shape[1:])
    graph.output.append(helper.make_tensor_value_info(GRADIENT, ctx.onnx_dtype, in_dims))
    if standalone:
        graph.output.append(helper.make_tensor_value_info(TISM, ctx.onnx_dtype, in_dims))
    return proto


def _on_sequence_path(graph, input_name):
    """Names of the tensors that depend on the sequence input through differentiable ops (a node's subgraphs'
    reads from the outer scope count: tf2onnx's Loop of a Keras GRU reads the sequence there)."""
    active = {input_name}
    for node in graph.node:
        if any(name in active for name in reads(node)):
            for index, name in enumerate(node.output):
                if name and carries_derivative(node, index):
                    active.add(name)
    return active
