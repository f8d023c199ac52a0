"""ONNX helpers shared by every layer: reading nodes and attributes, op tables, constants, one node emitter, shape
probes, liveness, and the check that a rewrite kept a model's outputs.

Invariant: nothing here imports ``passes``, ``model``, ``fast``, ``gradients`` or ``methods``; they import this.
"""
