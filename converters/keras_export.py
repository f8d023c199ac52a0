"""Keras model -> ONNX through tf2onnx (channels-last input (N, L, 4), batch axis dynamic)."""

import contextlib
import logging
import os

import onnx

from onnxism.errors import InputError, ModelError
from onnxism.model.reading import repair

from ._extras import require


def keras_to_onnx(model, path=None, *, opset=17, input_name="seqs"):
    """Convert an in-memory Keras model to ONNX; the sequences are its first input, named ``input_name``, and its
    other inputs keep their Keras names.

    Functional models go through ``tf2onnx.convert.from_keras`` (outputs keep the Keras output names);
    Sequential models, which that path rejects under Keras 3, go through ``from_function``.

    Returns
    -------
    onnx.ModelProto, with an IR version onnxruntime reads.
    """
    tf = require("tensorflow", "keras")
    tf2onnx = require("tf2onnx", "keras")
    keras = require("keras", "keras")
    # the sequences first, under ``input_name``; a model's other inputs (a control track, ...) keep their names
    spec = tuple(tf.TensorSpec((None,) + tuple(value.shape)[1:], value.dtype or tf.float32,
                               name=input_name if index == 0 else value.name.split(":")[0])
                 for index, value in enumerate(model.inputs))
    with _quiet_tf2onnx():
        if isinstance(model, keras.Sequential):
            function = tf.function(lambda x: model(x, training=False))
            proto, _ = tf2onnx.convert.from_function(function, input_signature=spec, opset=opset)
        else:
            proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=opset)
    proto = repair(proto, source="converted model")
    _refuse_unconverted(proto, "the Keras model")
    if path is not None:
        onnx.save(proto, os.fspath(path))
    return proto


def keras_file_to_onnx(source, path, *, opset=17):
    """Convert a saved Keras model (.keras or .h5 file) or a TensorFlow SavedModel folder to ONNX at ``path``. The
    path is checked before TensorFlow is imported (seconds, and log lines)."""
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
    return keras_to_onnx(model, path, opset=opset)


def _saved_model_to_onnx(tf, folder, path, opset):
    tf2onnx = require("tf2onnx", "keras")
    try:
        loaded = tf.saved_model.load(folder)
        function = loaded.signatures["serving_default"]
    except Exception as err:  # TensorFlow raises many types for unreadable folders
        raise ModelError(f"cannot load SavedModel {folder}: {str(err).splitlines()[0]}") from err
    _, inputs = function.structured_input_signature
    signature = tuple(tf.TensorSpec(spec.shape, spec.dtype, name=name) for name, spec in inputs.items())
    with _quiet_tf2onnx():
        proto, _ = tf2onnx.convert.from_function(function, input_signature=signature, opset=opset)
    proto = repair(proto, source=folder)
    _refuse_unconverted(proto, folder)
    onnx.save(proto, os.fspath(path))
    return proto


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
