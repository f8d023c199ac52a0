"""Targets folded into the graph (a rewrite of a loaded model, per set of targets): a model whose outputs are linear
combinations of another model's outputs.

Invariant: output ``NAME__target`` of the folded model is (N, T) = Flatten(NAME) @ seeds.T, target t being
sum(seeds[t] * NAME) per sequence, computed in float32. Since f -> sum(seeds[t] * f) is linear, the ISM of the folded
output is exactly the seeds applied to the ISM of NAME; fast ISM sees a linear layer after the output (updated
incrementally where the output is windowed), and no method carries the whole output out of onnxruntime.
"""

import hashlib

import onnx
from onnx import TensorProto, helper, numpy_helper

from ..graph.nodes import unique_name


def fold_targets(model, targets):
    """(the folded SequenceModel, {folded output name: original name}) for ``targets`` ({name: Target}, none of them
    every element); kept on ``model`` per set of targets, so repeated calls reuse the folded model's sessions."""
    key = tuple(sorted((name, target.shape, hashlib.sha1(target.seeds.tobytes()).hexdigest(),
                        target.seeds.shape) for name, target in targets.items()))
    cache = model.cache.folded_targets
    if key not in cache:
        cache[key] = _fold(model, targets)
    return cache[key]


def _fold(model, targets):
    proto = onnx.ModelProto()
    proto.CopyFrom(model.proto)
    graph = proto.graph
    taken = {value.name for value in graph.input} | {value.name for value in graph.output}
    taken |= {init.name for init in graph.initializer}
    taken |= {name for node in graph.node for name in node.output}
    renamed = {}
    for name, target in targets.items():
        folded = unique_name(f"{name}__target", taken)
        renamed[folded] = name
        declared = next(value for value in graph.output if value.name == name)
        source = name
        if declared.type.tensor_type.elem_type != TensorProto.FLOAT:
            source = unique_name(f"{name}__float", taken)
            graph.node.append(helper.make_node("Cast", [name], [source], to=TensorProto.FLOAT,
                                               name=unique_name(f"{name}__cast", taken)))
        flat = unique_name(f"{name}__flat", taken)
        seeds = unique_name(f"{name}__seeds", taken)
        count = len(target.seeds)
        graph.initializer.append(numpy_helper.from_array(target.seeds.reshape(count, -1).T.copy(), seeds))
        graph.node.append(helper.make_node("Flatten", [source], [flat], axis=1,
                                           name=unique_name(f"{flat}_node", taken)))
        graph.node.append(helper.make_node("MatMul", [flat, seeds], [folded],
                                           name=unique_name(f"{folded}_node", taken)))
        graph.output.append(helper.make_tensor_value_info(folded, TensorProto.FLOAT, [None, count]))
    return model.with_proto(proto), renamed  # (its graph is already freed, folded, dilated and unrolled)
