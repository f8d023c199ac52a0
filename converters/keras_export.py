"""Keras model -> ONNX through tf2onnx (channels-last input (N, L, 4), batch axis dynamic), grouped convolutions
rewritten first (``keras_groups.py``), the result checked against the model's own predictions (``checking.py``)."""

import contextlib
import logging
import os

import numpy as np
import onnx

from onnxism.errors import InputError, ModelError
from onnxism.model.reading import repair

from ._extras import require
from .checking import CHECK_BATCH, check_against_framework, random_sequences
from .keras_groups import ungroup

CHECK_LENGTH = 64  # the length a model that takes any length is checked at (and at twice it)


def keras_to_onnx(model, path=None, *, opset=17, input_name="seqs", length=None, batch_size=None, check=True,
                  source="the Keras model"):
    """Convert an in-memory Keras model to ONNX; the sequences are its first input, named ``input_name``, and its
    other inputs keep their Keras names.

    Functional models go through ``tf2onnx.convert.from_keras`` (outputs keep the Keras output names);
    Sequential models, which that path rejects under Keras 3, go through ``from_function``. A ``Conv1D`` with
    ``groups`` > 1, which tf2onnx cannot convert, is rewritten first into ops it converts (``keras_groups.ungroup``).

    Parameters
    ----------
    length : int, optional
        Fix the length of a model that takes any length (its input shape (None, None, 4)); None keeps the model's.
    batch_size : int, optional
        A fixed batch size; None (default) exports the batch axis as dynamic.
    check : bool
        Compare the ONNX model's predictions on random one-hot sequences with the model's own; ModelError if they
        differ by more than ``checking.ATOL`` of the output's scale (a model of any length: at two lengths).

    Returns
    -------
    onnx.ModelProto, with an IR version onnxruntime reads.
    """
    tf = require("tensorflow", "keras")
    tf2onnx = require("tf2onnx", "keras")
    keras = require("keras", "keras")
    shapes = [list(value.shape) for value in model.inputs]
    if length is not None:
        if shapes[0][1] not in (None, length):
            raise InputError(f"{source} takes length {shapes[0][1]}, not {length}: leave the length out")
        shapes[0][1] = length
    for shape in shapes:
        shape[0] = batch_size
    # the sequences first, under ``input_name``; a model's other inputs (a control track, ...) keep their names
    spec = tuple(tf.TensorSpec(shape, value.dtype or tf.float32,
                               name=input_name if index == 0 else value.name.split(":")[0])
                 for index, (shape, value) in enumerate(zip(shapes, model.inputs)))
    converted = ungroup(model)
    with _quiet_tf2onnx():
        if isinstance(converted, keras.Sequential):
            function = tf.function(lambda x: converted(x, training=False))
            proto, _ = tf2onnx.convert.from_function(function, input_signature=spec, opset=opset)
        else:
            proto, _ = tf2onnx.convert.from_keras(converted, input_signature=spec, opset=opset)
    proto = repair(proto, source="converted model")
    _refuse_unconverted(proto, source)
    if check:
        _check(proto, model, spec, source)
    if path is not None:
        onnx.save(proto, os.fspath(path))
    return proto


def _check(proto, model, spec, source):
    """The ONNX model against ``model`` on random one-hot sequences (other inputs: random normal values)."""
    lengths = [spec[0].shape[1]] if spec[0].shape[1] is not None else [CHECK_LENGTH, 2 * CHECK_LENGTH]
    rng = np.random.default_rng(1)
    for length in lengths:
        feeds = {}
        for index, tensor in enumerate(spec):
            shape = [CHECK_BATCH if tensor.shape[0] is None else tensor.shape[0]] + list(tensor.shape[1:])
            if index == 0:
                shape[1] = length
                feeds[tensor.name] = random_sequences(shape, tensor.dtype.as_numpy_dtype)
            else:
                feeds[tensor.name] = rng.standard_normal([size or length for size in shape]).astype(np.float32)
        values = list(feeds.values())
        out = model(values[0] if len(values) == 1 else values, training=False)
        out = out if isinstance(out, (list, tuple)) else [out]
        check_against_framework(proto, feeds, [np.asarray(o) for o in out],
                                source=source if len(lengths) == 1 else f"{source} (length {length})")


def keras_file_to_onnx(source, path, *, opset=17, length=None, batch_size=None):
    """Convert a saved Keras model (.keras or .h5 file) or a TensorFlow SavedModel folder to ONNX at ``path``. The
    path is checked before TensorFlow is imported (seconds, and log lines). ``length`` and ``batch_size`` as in
    ``keras_to_onnx`` (a SavedModel keeps its signature's shapes)."""
    source = os.fspath(source)
    if not os.path.exists(source):
        raise InputError(f"Keras model not found: {source}")
    if not os.path.isdir(source) and not source.endswith((".keras", ".h5", ".hdf5")):
        raise InputError(f"cannot convert {source}: expected a .keras or .h5 file or a SavedModel folder")
    tf = require("tensorflow", "keras")
    keras = require("keras", "keras")
    if os.path.isdir(source):
        return _saved_model_to_onnx(tf, source, path, opset)
    try:
        model = keras.models.load_model(source, compile=False)
    except Exception as err:  # Keras raises many types for unreadable files
        raise ModelError(f"cannot load Keras model {source}: {str(err).splitlines()[0]}") from err
    return keras_to_onnx(model, path, opset=opset, length=length, batch_size=batch_size,
                         source=os.path.basename(source))


def _saved_model_to_onnx(tf, folder, path, opset):
    """A SavedModel's serving signature through tf2onnx: its inputs in the signature's order, its outputs in the
    order of their names; checked against the signature itself."""
    tf2onnx = require("tf2onnx", "keras")
    try:
        loaded = tf.saved_model.load(folder)
        function = loaded.signatures["serving_default"]
    except Exception as err:  # TensorFlow raises many types for unreadable folders
        raise ModelError(f"cannot load SavedModel {folder}: {str(err).splitlines()[0]}") from err
    _, inputs = function.structured_input_signature
    names, outputs = list(inputs), sorted(function.structured_outputs)
    signature = tuple(tf.TensorSpec(spec.shape, spec.dtype, name=name) for name, spec in inputs.items())

    def serve(*args):  # the signature takes keyword arguments and returns a dict: positional in, a list out
        result = function(**dict(zip(names, args)))
        return [tf.identity(result[name], name=name) for name in outputs]

    source = os.path.basename(os.path.normpath(folder))
    with _quiet_tf2onnx():
        proto, _ = tf2onnx.convert.from_function(tf.function(serve), input_signature=signature, opset=opset)
    _rename_outputs(proto, outputs)
    proto = repair(proto, source=folder)
    _refuse_unconverted(proto, folder)
    _check(proto, lambda values, training: serve(*(values if isinstance(values, list) else [values])),
           signature, source)
    onnx.save(proto, os.fspath(path))
    return proto


def _rename_outputs(proto, names):
    """The graph's outputs renamed to ``names`` (tf2onnx names a function's outputs Identity:0, ...)."""
    renames = {output.name: name for output, name in zip(proto.graph.output, names)}
    for node in proto.graph.node:
        node.output[:] = [renames.get(value, value) for value in node.output]
        node.input[:] = [renames.get(value, value) for value in node.input]
    for output in proto.graph.output:
        output.name = renames[output.name]


@contextlib.contextmanager
def _quiet_tf2onnx():
    """tf2onnx's log kept off stderr while it converts: what it could not convert is reported by
    ``_refuse_unconverted`` in one line, and its other messages name ops it did convert (Keras's exact GELU: "Erfc is
    not supported", written with Erf)."""
    logger = logging.getLogger("tf2onnx")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def _refuse_unconverted(proto, source):
    """Raise ModelError where tf2onnx left TensorFlow ops it cannot convert in the graph (it writes them as they are,
    in the ONNX domain, and warns): such a file would fail in onnxruntime with "No Op registered"."""
    left = sorted({node.op_type for node in proto.graph.node
                   if node.domain in ("", "ai.onnx") and not onnx.defs.has(node.op_type)})
    if left:
        raise ModelError(f"tf2onnx could not convert {source}: TensorFlow ops left in the graph: {', '.join(left)} "
                         "(a layer tf2onnx does not support, such as a Conv1D with groups > 1)")
