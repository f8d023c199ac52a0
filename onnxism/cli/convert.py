"""``onnxism convert``: a Keras model file (.keras, .h5 or a SavedModel folder) to ONNX through tf2onnx.

PyTorch models are converted from Python (``onnxism_converters.torch_to_onnx``): they need the module and an example
input.
"""

import os

from ..errors import MissingExtraError
from ..io.npz_writer import check_output_path
from .help import DefaultsFormatter


def add_parser(verbs):
    parser = verbs.add_parser(
        "convert",
        help="convert a Keras model file to ONNX (needs the [keras] extra)",
        formatter_class=DefaultsFormatter,
    )
    parser.add_argument("model", help=".keras or .h5 file, or a SavedModel folder")
    parser.add_argument("-o", "--output", required=True, help="output .onnx file")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset to write")
    parser.add_argument("--force", action="store_true", help="overwrite the output file")
    parser.set_defaults(handler=handle)


def handle(args):
    check_output_path(args.output, force=args.force, suffix=".onnx")
    # TensorFlow's start-up lines on stderr (its C++ log, the oneDNN notice), unless the user set these: conversion
    # computes nothing that oneDNN's kernels would speed up
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    try:
        from onnxism_converters.keras_export import keras_file_to_onnx
    except ImportError as err:
        raise MissingExtraError("onnxism convert needs the Keras extra: pip install 'onnxism[keras]'") from err
    keras_file_to_onnx(args.model, args.output, opset=args.opset)
    print(f"onnxism: wrote {args.output}")
