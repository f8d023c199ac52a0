"""The model zoo: one framework-neutral spec per architecture, built in PyTorch or Keras, exported to ONNX.

``export_zoo_model(name, framework)`` is what tests and benchmarks use: it returns the ONNX model and the
framework model it came from (same weights), so ONNX results can be checked against the framework's own.
"""

from .architectures import ZOO, build_spec
from .export import export_zoo_model
from .spec import Spec

__all__ = ["ZOO", "Spec", "build_spec", "export_zoo_model"]
