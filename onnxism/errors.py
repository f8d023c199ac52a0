"""The errors and warnings onnxism raises.

Every error a user can cause derives from :class:`OnnxismError`, whose message is one line saying what was
expected, what was received and how to fix it; the CLI prints that line and exits non-zero.
"""


class OnnxismError(Exception):
    """Base class of every error onnxism raises on purpose."""


class InputError(OnnxismError, ValueError):
    """Sequences, positions, options or files given by the user are not usable."""


class ModelError(OnnxismError, ValueError):
    """The ONNX model cannot be read or has no usable sequence input."""


class UnsupportedGraphError(ModelError):
    """A graph transform met a node it cannot handle; carries the node's name and op type."""

    def __init__(self, message, *, node_name=None, op_type=None):
        super().__init__(message)
        self.node_name = node_name
        self.op_type = op_type


class DeviceError(OnnxismError, RuntimeError):
    """The requested execution device cannot run (e.g. CUDA asked for but not available)."""


class MissingExtraError(OnnxismError, ImportError):
    """An optional dependency (an extra) is needed for this call; the message gives the pip command."""


class OnnxismWarning(UserWarning):
    """Notices from onnxism (e.g. a fallback to exact computation); turn them into errors with warnings filters."""
