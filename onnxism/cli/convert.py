"""``onnxism convert``: a saved model to ONNX, by file: Keras (.keras, .h5 or a SavedModel folder) through
tf2onnx, a ``torch.export`` program (.pt2) or a TorchScript file (.pt, .ts) through torch's exporters. Each converter
checks the ONNX model against the framework's own predictions; the file is written (through a scratch file, renamed)
only when they agree.
"""

import os

from ..errors import InputError, MissingExtraError
from ..io.npz_writer import check_output_path
from ..io.scratch import published
from .help import DefaultsFormatter

TORCH_SUFFIXES = (".pt2", ".pt", ".ts", ".pth", ".jit")


def add_parser(verbs):
    parser = verbs.add_parser(
        "convert",
        help="convert a Keras or PyTorch model file to ONNX (needs the [keras] or [torch] extra)",
        formatter_class=DefaultsFormatter,
    )
    parser.add_argument("model", help=".keras or .h5 file, a SavedModel folder, a .pt2 file (torch.export.save) or "
                                      "a TorchScript file (.pt, .ts: torch.jit.save)")
    parser.add_argument("-o", "--output", required=True, help="output .onnx file")
    parser.add_argument("--opset", type=int, default=None, help="ONNX opset to write (default: 17 for Keras, 18 for "
                                                                 "PyTorch)")
    parser.add_argument("--length", default=None,
                        help="sequence length to export for, or 'any' (a dynamic length, where the model allows; "
                             "checked at two lengths); default: the model's own; required for TorchScript")
    parser.add_argument("--batch", default="dynamic", help="'dynamic', or a fixed batch size")
    parser.add_argument("--layout", choices=("NCL", "NLC"), default="NCL",
                        help="input layout of a TorchScript model: (N, 4, L) or (N, L, 4)")
    parser.add_argument("--force", action="store_true", help="overwrite the output file")
    parser.set_defaults(handler=handle)


def _length(text):
    if text == "any":
        return text
    return _positive(text, "--length", "a length, or 'any'")


def _batch(text):
    if text == "dynamic":
        return text
    return _positive(text, "--batch", "'dynamic', or a batch size")


def _positive(text, flag, expected):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise InputError(f"{flag} takes {expected}, not {text!r}")
    return value


def handle(args):
    check_output_path(args.output, force=args.force, suffix=".onnx")
    length = None if args.length is None else _length(args.length)
    batch = _batch(args.batch)
    batch_size = None if batch == "dynamic" else batch
    if args.model.endswith(TORCH_SUFFIXES) and not os.path.isdir(args.model):
        try:
            from onnxism_converters.torch_files import torch_file_to_onnx
        except ImportError as err:
            raise MissingExtraError("onnxism convert needs the PyTorch extra for this file: "
                                    "pip install 'onnxism[torch]'") from err
        options = dict(length=length, batch_size=batch_size, layout=args.layout)
        with published(args.output) as scratch:
            torch_file_to_onnx(args.model, scratch, opset=args.opset or 18, **options)
    else:
        if length == "any":
            raise InputError("--length any is for PyTorch models; a Keras model takes any length where its input's "
                             "length is None")
        # TensorFlow's start-up lines on stderr (its C++ log, the oneDNN notice), unless the user set these:
        # conversion computes nothing that oneDNN's kernels would speed up
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
        try:
            from onnxism_converters.keras_export import keras_file_to_onnx
        except ImportError as err:
            raise MissingExtraError("onnxism convert needs the Keras extra: pip install 'onnxism[keras]'") from err
        with published(args.output) as scratch:
            keras_file_to_onnx(args.model, scratch, opset=args.opset or 17, length=length,
                               batch_size=batch_size)
    print(f"onnxism: wrote {args.output}")
