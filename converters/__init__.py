"""Framework -> ONNX converters and the model zoo (extras: ``onnxism[keras]``, ``onnxism[torch]``).

Nothing here imports TensorFlow, PyTorch or even onnx at package import: each converter imports what it needs when
called (a missing framework raises a MissingExtraError with the pip command), and ``onnxism_converters.zoo.spec`` /
``architectures`` need NumPy only.
"""

_LAZY = {
    "keras_to_onnx": "keras_export",
    "keras_file_to_onnx": "keras_export",
    "torch_to_onnx": "torch_export",
    "torch_file_to_onnx": "torch_files",
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'onnxism_converters' has no attribute {name!r}")
