"""Shapes of every tensor of a graph, found by one onnxruntime run on zero sequences.

Invariant: the model is not changed; a copy exposes every node output as a graph output.
"""

import numpy as np
import onnx

from ..runtime.sessions import make_session


def probe_shapes(proto, input_name, input_shape, dtype=np.float32):
    """Return {tensor name: shape} for every node output and the graph input, at batch size input_shape[0]."""
    copy = onnx.ModelProto()
    copy.CopyFrom(proto)
    existing = {output.name for output in copy.graph.output}
    for node in copy.graph.node:
        for name in node.output:
            if name and name not in existing:
                copy.graph.output.append(onnx.ValueInfoProto(name=name))
                existing.add(name)
    session = make_session(copy.SerializeToString(), "cpu")
    names = [output.name for output in session.get_outputs()]
    values = session.run(names, {input_name: np.zeros(input_shape, dtype=dtype)})
    shapes = {name: tuple(np.shape(value)) for name, value in zip(names, values)}
    shapes[input_name] = tuple(input_shape)
    return shapes
