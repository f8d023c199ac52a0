"""Serving: the compiled graphs as models an inference server batches (``contract.py``), written as a Triton model
repository (``repository.py``, ``triton.py``, ``python_model.py``) and served by the Triton that nvidia-pytriton
bundles (``launch.py``)."""

from .contract import serving_graph
from .repository import export_triton

__all__ = ["export_triton", "serving_graph"]
