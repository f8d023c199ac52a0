"""Read an ONNX file into a ModelProto that stock onnxruntime accepts (the REPAIR pipeline: the header, and the
forms onnxruntime refuses, ``passes/pipeline.py``), with one-line errors for what is not an ONNX model."""

import os

import onnx
from google.protobuf.message import DecodeError

from ..errors import InputError, ModelError
from ..io.user_files import existing_file
from ..passes.base import run_pipeline
from ..passes.pipeline import REPAIR, LoadContext


def read_model(path):
    """Load ``path`` (external data included) and repair its header; errors name the file and the problem."""
    path = existing_file(path, "model file", "an .onnx file")
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as err:
        raise InputError(f"cannot read model file {path}: {err.strerror or err}") from err
    try:
        proto = onnx.load_from_string(data)
    except (DecodeError, ValueError, RuntimeError) as err:
        raise ModelError(f"{path} is not an ONNX model (it does not parse as one)") from err
    if not proto.graph.node or not proto.graph.output or not proto.opset_import:
        raise ModelError(f"{path} is not an ONNX model (no graph nodes, outputs or opset found)")
    if _uses_external_data(proto):
        try:
            onnx.load_external_data_for_model(proto, os.path.dirname(os.path.abspath(path)))
        except (OSError, ValueError) as err:
            raise ModelError(f"cannot load the external weights of {path}: {err}") from err
    return repair(proto, source=path)


def repair(proto, *, source="model"):
    """``proto`` (which the caller owns) repaired for onnxruntime by the REPAIR pipeline; ModelError for what cannot
    be repaired."""
    return run_pipeline(REPAIR, proto, LoadContext(source=source, owned=True)).proto


def _uses_external_data(proto):
    return any(
        init.data_location == onnx.TensorProto.EXTERNAL for init in proto.graph.initializer
    )
