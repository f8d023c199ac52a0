"""Reading files given by the user: every failure is one InputError line naming the file."""

import gzip
import os

import numpy as np

from ..errors import InputError

NPY_MAGIC = b"\x93NUMPY"


def existing_file(path, what, expected):
    """``path`` as a string, once it is known to name a file: refused as "WHAT not found: PATH" when missing, and as
    "WHAT is a folder, expected EXPECTED: PATH" when a folder."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise InputError(f"{what} not found: {path}")
    if os.path.isdir(path):
        raise InputError(f"{what} is a folder, expected {expected}: {path}")
    return path


def read_npy(path, *, mmap=False, expected=None):
    """The array in ``path`` (memory-mapped with ``mmap``). Refused, naming the file: a missing file, a folder, a file
    that cannot be opened, one without the NPY header (numpy would take it for pickled data and suggest
    allow_pickle=True), an array of Python objects (the message ends "save EXPECTED" when ``expected`` is given), a
    truncated or otherwise unreadable array."""
    path = existing_file(path, "file", "a .npy file")
    try:
        with open(path, "rb") as handle:
            magic = handle.read(len(NPY_MAGIC))
    except OSError as err:
        raise InputError(f"cannot read {path}: {err.strerror or err}") from err
    if magic != NPY_MAGIC:
        raise InputError(f"{path} is not a readable .npy array: it has no NPY header (save it with numpy.save)")
    _check_complete(path)
    try:
        array = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        objects = "Python objects" in str(err) or "pickle" in str(err)  # an object array (numpy's two wordings)
        reason = f"it holds Python objects, not numbers{f'; save {expected}' if expected else ''}" if objects else err
        raise InputError(f"{path} is not a readable .npy array: {reason}") from err
    if not isinstance(array, np.ndarray):
        raise InputError(f"{path} is not a single .npy array")
    return array


def _check_complete(path):
    """Refuse a .npy file shorter than its header says (a copy cut short): numpy would say "mmap length is greater
    than file size" or fail deep in a read. A header numpy cannot parse is left to numpy's own message."""
    try:
        with open(path, "rb") as handle:
            shape, _, dtype = read_npy_header(handle)
            start = handle.tell()
    except (ValueError, OSError, EOFError):
        return
    if dtype.hasobject:
        return
    wanted = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    held = os.path.getsize(path) - start
    if held < wanted:
        raise InputError(f"{path} is truncated: its header promises {wanted} bytes of array data, the file holds "
                         f"{held}; copy or save it again")


def read_npy_header(handle):
    """(shape, fortran order, dtype) of the .npy array starting at ``handle``'s position, which is left at the
    array's data; numpy's ValueError where the header is not one."""
    version = np.lib.format.read_magic(handle)
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    return read(handle)


#: The first bytes of a gzip (and so of a bgzip) file.
GZIP_MAGIC = b"\x1f\x8b"


def open_maybe_gzipped(path, mode="rb"):
    """``path`` opened for reading in ``mode`` ("rb" or "rt"), gunzipped (gzip or bgzip) where its first bytes say
    so, whatever its name."""
    with open(path, "rb") as handle:
        zipped = handle.read(2) == GZIP_MAGIC
    return gzip.open(path, mode) if zipped else open(path, mode)
