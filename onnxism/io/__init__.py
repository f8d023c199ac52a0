"""Writing results: .npz archives streamed to disk, published atomically."""

from .npz_writer import NpzWriter, check_output_path

__all__ = ["NpzWriter", "check_output_path"]
