"""Loading a model: read and repair the ONNX file, find the sequence input, wrap it in a SequenceModel."""

from .sequence_model import SequenceModel, load

__all__ = ["SequenceModel", "load"]
