"""onnxism: in-silico saturation mutagenesis for DNA sequence models in ONNX.

Data flow: ``load`` (read, repair, find the sequence input) -> a method (``predict``, ``ism``, ``tism``) that runs the
graph on onnxruntime chunk by chunk -> dicts of arrays keyed by output name (``io`` writes them to files).
"""

from .errors import (
    DeviceError,
    InputError,
    MissingExtraError,
    ModelError,
    OnnxismError,
    OnnxismWarning,
    UnsupportedGraphError,
)
from .methods.ism import METHODS, ism, ism_chunks
from .methods.predict import predict
from .methods.tism import ATTRIBUTIONS, tism, tism_chunks
from .model import SequenceModel, load
from .runtime.sessions import cuda_available

__version__ = "0.1.0"

__all__ = [
    "ATTRIBUTIONS",
    "DeviceError",
    "InputError",
    "METHODS",
    "MissingExtraError",
    "ModelError",
    "OnnxismError",
    "OnnxismWarning",
    "SequenceModel",
    "UnsupportedGraphError",
    "cuda_available",
    "ism",
    "ism_chunks",
    "load",
    "predict",
    "tism",
    "tism_chunks",
]
