"""An .npz writer for arrays larger than memory, written chunk by chunk.

Invariant: the output path holds either nothing new or a complete archive. Arrays are filled as memory-mapped
.npy files in a scratch folder beside the output (``scratch.py``: named after this process, each file's blocks
reserved when it is made, so that a full disk is an error then and never a SIGBUS mid-run), zipped at the end
(stored, or deflated with ``compress``; ZIP64) and moved into place with one rename; any failure or interruption
removes the scratch files and leaves no partial output. Scratch folders that a killed run left beside the output
are removed, with a notice.
"""

import os
import shutil
import zipfile

import numpy as np

from ..errors import InputError
from .scratch import clear_abandoned, make_scratch, reserve


def check_output_path(path, *, force=False, suffix=".npz"):
    """Refuse an output path that cannot be written, before any work is done."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise InputError(f"output path {path} is a directory; give a file name ending in {suffix}")
    if not path.endswith(suffix):
        raise InputError(f"output file {path} must end in {suffix}")
    if not os.path.isdir(folder):
        raise InputError(f"cannot write {path}: folder {folder} does not exist")
    if os.path.exists(path) and not force:
        raise InputError(f"output file {path} exists; pass --force to overwrite it")
    if not os.access(folder, os.W_OK):
        raise InputError(f"cannot write {path}: folder {folder} is not writable")
    return path


class NpzWriter:
    """Context manager: ``add(name, shape, dtype)`` declares arrays, ``[name][start:stop] = ...`` fills them,
    leaving the block without an error publishes the archive at ``path``."""

    def __init__(self, path, *, force=False, compress=False):
        self.path = check_output_path(path, force=force)
        self.compress = compress
        self._folder = None
        self._arrays = {}
        clear_abandoned(os.path.dirname(os.path.abspath(self.path)))

    def __enter__(self):
        parent = os.path.dirname(os.path.abspath(self.path))
        try:
            self._folder = make_scratch(parent)
        except OSError as err:
            raise InputError(f"cannot write {self.path}: {err.strerror or err}") from err
        return self

    def add(self, name, shape, dtype=np.float32):
        """Declare the array ``name`` (a memory map of ``shape``, its blocks reserved) and return it for filling."""
        if name in self._arrays:
            raise ValueError(f"array {name!r} declared twice")
        file = os.path.join(self._folder, f"{len(self._arrays)}.npy")
        try:
            array = np.lib.format.open_memmap(file, mode="w+", dtype=dtype, shape=tuple(shape))
            with open(file, "r+b") as handle:
                reserve(handle, os.path.getsize(file), self.path)
        except OSError as err:
            raise InputError(f"cannot write {self.path}: {err.strerror or err}") from err
        self._arrays[name] = (file, array)
        return array

    def put(self, name, value):
        """Store a small in-memory array as is."""
        self.add(name, np.shape(value), np.asarray(value).dtype)[...] = value

    def __getitem__(self, name):
        return self._arrays[name][1]

    def __exit__(self, kind, error, trace):
        try:
            if kind is None:
                self._publish()
        finally:
            self._arrays.clear()
            shutil.rmtree(self._folder, ignore_errors=True)
        return False

    def _publish(self):
        staging = os.path.join(self._folder, "archive.npz")
        try:
            compression = zipfile.ZIP_DEFLATED if self.compress else zipfile.ZIP_STORED
            with zipfile.ZipFile(staging, "w", compression=compression, allowZip64=True) as archive:
                for name, (file, array) in self._arrays.items():
                    array.flush()
                    archive.write(file, arcname=f"{name}.npy")
            os.replace(staging, self.path)
        except OSError as err:
            raise InputError(f"cannot write {self.path}: {err.strerror or err}") from err
