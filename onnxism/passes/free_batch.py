"""Free a fixed batch axis: a model exported with a fixed batch size (torch.onnx.export without dynamic axes, the
default of both of its exporters) as one that takes any batch, where that is exact.

The rewrite: the first axis of every graph input and of every graph output that has the fixed size becomes dynamic,
the graph's intermediate shape annotations are dropped, and a constant Reshape target whose first entry is the fixed
batch, on a tensor computed from the inputs, copies the batch instead (entry 0, allowzero off where the target has
no zero entry: torch's dynamo exporter writes ``x.flatten(1)`` as Reshape to [1, features], allowzero on). It is
kept only if, on random inputs, every output of the rewritten model for a batch of another size equals, row for row,
the model's own at its fixed batch.

Invariant: ``free_batch`` returns None, or a model that takes any batch and agreed with ``proto`` row for row on
that check.
"""

import numpy as np
import onnx
from onnx import numpy_helper

from ..graph.constants import initializer_or_constant
from ..graph.verify import same_model_outputs
from ..graph.weightless import weight_dependent
from ..model.sequence_input import graph_inputs, random_feeds
from .base import PassResult, unchanged


def run(proto, ctx):
    """Where the sequence input has a fixed batch, the model freed of it (``free_batch``)."""
    batch = ctx.found.batch
    if batch is None:
        return unchanged(proto)
    freed = free_batch(proto, batch, lambda count, rng: random_feeds(ctx.found, count, rng))
    if freed is None:
        return unchanged(proto, f"the fixed batch ({batch}) stays: the freed model does not compute the same rows")
    return PassResult(freed, True, f"batch exported fixed at {batch} freed",
                      {"fixed_batch": None, "exported_batch": batch})


def free_batch(proto, batch, feeds_at):
    """The model ``proto`` (fixed batch ``batch``) with a dynamic batch axis, or None where the rewrite does not
    compute the same rows. ``feeds_at(n, rng)``: random feeds for a batch of n, one set per length to check at
    (skipped where the model itself does not run; see ``enough_lengths``)."""
    freed = _rewritten(proto, batch)
    if freed is None:
        return None
    rows = batch + 2  # another size, and more rows than the fixed batch
    cases = feeds_at(rows, np.random.default_rng(0))
    return freed if same_model_outputs(proto, freed, cases, fixed_batch=batch) else None


def _rewritten(proto, batch):
    """The rewritten copy of ``proto``, or None where an input or output does not have the batch first."""
    freed = onnx.ModelProto()
    freed.CopyFrom(proto)
    graph = freed.graph
    inputs = graph_inputs(graph)
    for is_input, values in ((True, inputs), (False, graph.output)):
        for value in values:
            dims = value.type.tensor_type.shape.dim
            if not dims or not dims[0].HasField("dim_value") or dims[0].dim_value != batch:
                if is_input:
                    return None
                continue  # an output without the batch first: the check decides
            dims[0].Clear()
            dims[0].dim_param = "batch"
    del graph.value_info[:]
    from_inputs = weight_dependent(graph, {value.name for value in inputs})  # the tensors that carry rows
    targets = {init.name: init for init in graph.initializer}
    targets.update((node.output[0], node) for node in graph.node if node.op_type == "Constant")
    for node in graph.node:
        if node.op_type != "Reshape" or node.input[0] not in from_inputs or node.input[1] not in targets:
            continue
        shape = initializer_or_constant(targets[node.input[1]])
        if shape is None or shape.ndim != 1 or not len(shape) or shape[0] != batch or (shape == 0).any():
            continue
        # no zero entries, so allowzero (torch's exports set it) means nothing here: dropped, 0 copies the batch
        kept = [attribute for attribute in node.attribute if attribute.name != "allowzero"]
        del node.attribute[:]
        node.attribute.extend(kept)
        copied = shape.copy()
        copied[0] = 0
        name = f"{node.input[1]}__any_batch"
        if name not in targets:
            graph.initializer.append(numpy_helper.from_array(copied, name))
            targets[name] = graph.initializer[-1]
        node.input[1] = name
    return freed
