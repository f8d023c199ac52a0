"""Reverse-mode gradients of an ONNX model with respect to its sequence input, as a plain ONNX graph."""

from .reverse import GRADIENT, TISM, build_gradient_model, seed_name

__all__ = ["GRADIENT", "TISM", "build_gradient_model", "seed_name"]
