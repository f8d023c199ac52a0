"""Files: the user's files checked and .npy arrays read, with one-line errors; results written as .npz archives
streamed to disk, published atomically."""

from .npz_writer import NpzWriter, check_output_path
from .user_files import existing_file, read_npy

__all__ = ["NpzWriter", "check_output_path", "existing_file", "read_npy"]
