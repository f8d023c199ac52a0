"""Large weights handed to onnxruntime as arrays instead of being serialised with their graph.

A graph built in memory for a session (fast ISM's two graphs) declares each large floating-point initializer as a
placeholder: its name, type and shape, its data marked external. The arrays travel beside the graph and reach the
session through ``SessionOptions.add_external_initializers``, which copies them once into the session. Serialising
them with the graph would copy each several times (into the graph, into the serialised bytes, into the session):
seconds and gigabytes on a model with a large Dense layer.

Invariant: every placeholder of a graph has its array, of the declared type and shape, in the weights that go with
it; ``attach`` turns such a graph back into a self-contained model that computes the same values.
"""

import numpy as np
from onnx import ModelProto, TensorProto, helper, numpy_helper

#: Floating-point initializers of at least this many bytes are kept out of the serialised graph.
EXTERNAL_BYTES = 1 << 20
#: The external-data location a placeholder names: no file, the data comes with the session's options.
LOCATION = "onnxism-in-memory-weights"
_FLOATS = (TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16)  # (numpy's own: OrtValue takes them)


def declare(graph, name, array):
    """Append to ``graph``'s initializers the placeholder for ``array``, named ``name``."""
    tensor = graph.initializer.add()
    tensor.name = name
    tensor.data_type = helper.np_dtype_to_tensor_dtype(array.dtype)
    tensor.dims.extend(array.shape)
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", LOCATION), ("offset", "0"), ("length", str(array.nbytes))):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value


def is_placeholder(tensor):
    """Whether initializer ``tensor`` is a placeholder written by ``declare``."""
    return tensor.data_location == TensorProto.EXTERNAL and any(
        entry.key == "location" and entry.value == LOCATION for entry in tensor.external_data)


def detachable(array):
    """Whether ``array`` is a weight large enough to travel beside its graph."""
    return array.nbytes >= EXTERNAL_BYTES and helper.np_dtype_to_tensor_dtype(array.dtype) in _FLOATS


def _held(tensor, arrays):
    """The array of ``arrays`` ({name: ndarray}) that ``tensor`` holds, if it is ``detachable``; else None."""
    array = arrays.get(tensor.name)
    if (array is None or not detachable(array) or tensor.data_location == TensorProto.EXTERNAL
            or list(tensor.dims) != list(array.shape)
            or tensor.data_type != helper.np_dtype_to_tensor_dtype(array.dtype)):
        return None
    return array


def add_initializer(graph, tensor, arrays, taken):
    """Append initializer ``tensor`` to ``graph``: as a placeholder where ``arrays`` holds it (recorded in
    ``taken``, {name: array}), else as a copy."""
    array = _held(tensor, arrays)
    if array is None:
        graph.initializer.add().CopyFrom(tensor)
    else:
        declare(graph, tensor.name, array)
        taken[tensor.name] = array


def copy_model(proto, arrays, taken):
    """A copy of ``proto`` whose initializers that ``arrays`` holds are placeholders (recorded in ``taken``): their
    data is never copied."""
    copy = ModelProto()
    for source, target in ((proto, copy), (proto.graph, copy.graph)):
        for field, value in source.ListFields():
            if field.name in ("graph", "initializer"):
                continue
            if hasattr(value, "extend"):
                getattr(target, field.name).extend(value)
            elif hasattr(value, "CopyFrom"):
                getattr(target, field.name).CopyFrom(value)
            else:
                setattr(target, field.name, value)
    for tensor in proto.graph.initializer:
        add_initializer(copy.graph, tensor, arrays, taken)
    return copy


def _large(tensor):
    """Whether initializer ``tensor`` holds a ``detachable`` array."""
    if tensor.data_type not in _FLOATS or tensor.data_location == TensorProto.EXTERNAL:
        return False
    itemsize = helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize
    return int(np.prod(tensor.dims, dtype=np.int64)) * itemsize >= EXTERNAL_BYTES


def detached_copy(proto):
    """(a copy of ``proto`` whose large floating-point initializers are placeholders, {name: array} of them): what
    a session of a whole model (its own, or TISM's gradient graph) is made from; ``proto`` is left whole."""
    arrays = {tensor.name: numpy_helper.to_array(tensor) for tensor in proto.graph.initializer if _large(tensor)}
    taken = {}
    return copy_model(proto, arrays, taken), taken


def placeholders(proto):
    """Names of the placeholders among ``proto``'s initializers."""
    return [tensor.name for tensor in proto.graph.initializer if is_placeholder(tensor)]


def attach(proto, weights):
    """Fill ``proto``'s placeholders in place with their arrays from ``weights``: a self-contained model."""
    for tensor in proto.graph.initializer:
        if is_placeholder(tensor):
            tensor.CopyFrom(numpy_helper.from_array(np.asarray(weights[tensor.name]), tensor.name))
    return proto


def session_weights(proto, weights):
    """{name: C-contiguous array} of ``proto``'s placeholders, for ``make_session(..., weights=)``."""
    missing = [name for name in placeholders(proto) if name not in weights]
    if missing:
        raise ValueError(f"no array for the graph's weight {missing[0]!r}")
    return {name: np.ascontiguousarray(weights[name]) for name in placeholders(proto)}

