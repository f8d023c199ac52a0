"""onnxism: in-silico saturation mutagenesis for DNA sequence models in ONNX.

Data flow: ``load`` (read, repair, the LOAD pipeline of rewrites) -> a method (``predict``, ``ism``, ``tism``) that
plans once and runs its graphs on onnxruntime chunk by chunk -> dicts of arrays keyed by output name, or an .npz
archive written as it goes (``ism_to_npz``, ``tism_to_npz``); ``compile_fast`` and ``compile_tism`` give the
methods' graphs as standalone ONNX models.
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
from .genome import regions_onehot
from .io.modisco import write_modisco
from .methods.compile import compile_fast, compile_tism
from .methods.ism import METHODS, ism, ism_chunks
from .methods.predict import predict
from .methods.tism import ATTRIBUTIONS, tism, tism_chunks
from .methods.variant_table import variants_to_table
from .methods.writing import ism_to_npz, tism_to_npz
from .model.loading import load
from .model.sequence_model import SequenceModel
from .runtime.sessions import cuda_available
from .sequences.text import onehot_from_strings

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
    "compile_fast",
    "compile_tism",
    "cuda_available",
    "ism",
    "ism_chunks",
    "ism_to_npz",
    "load",
    "onehot_from_strings",
    "predict",
    "regions_onehot",
    "tism",
    "tism_chunks",
    "tism_to_npz",
    "variants_to_table",
    "write_modisco",
]
