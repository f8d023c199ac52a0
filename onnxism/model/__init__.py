"""The loaded model: ``load`` (read, repair, the LOAD pipeline) and the SequenceModel it makes; the sequence input,
extra inputs and token ids it finds."""

from .loading import load
from .sequence_model import SequenceModel

__all__ = ["SequenceModel", "load"]
