"""Execution on onnxruntime: sessions, providers and batched runs."""
