"""Framework -> ONNX converters and the model zoo (extras: ``onnxism[keras]``, ``onnxism[torch]``).

Nothing here imports TensorFlow or PyTorch at module level; each function imports its framework when called and
raises a MissingExtraError with the pip command when it is absent.
"""

from .keras_to_onnx import keras_file_to_onnx, keras_to_onnx
from .torch_to_onnx import torch_to_onnx

__all__ = ["keras_file_to_onnx", "keras_to_onnx", "torch_to_onnx"]
