"""Scratch space beside an output file: folders and files named after the process that owns them, their space
reserved up front, and those of processes that are gone removed.

A run writes its arrays as memory-mapped files in a scratch folder beside the output and publishes the archive with
one rename. Writing into a memory map on a full disk kills the process with SIGBUS, so every scratch file's blocks
are reserved when it is made (``reserve``: a full disk is then an error at that moment, before any work), and the
space the whole run needs is checked first (``check_free_space``). A folder's name carries its owner's process id
(``.onnxism-PID-XXXXXX``): one whose process is gone (killed with SIGKILL, by the OOM killer, a machine reset) is
abandoned, and the next run beside it removes it (``remove_abandoned``). An output written whole by a library
(a picture, a bigWig, an ONNX model) goes to a scratch file named the same way (``.onnxism-PID-NAME``) and is
renamed over its path (``published``).

Invariant: a scratch folder or file of a living process is never removed by another.
"""

import contextlib
import os
import re
import shutil
import tempfile
import warnings

from ..errors import InputError, OnnxismWarning

PREFIX = ".onnxism-"
_OWNED = re.compile(r"^\.onnxism-(\d+)-[^/]+$")


def make_scratch(parent):
    """A new scratch folder in ``parent``, named after this process."""
    return tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=parent)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def scratch_file(path):
    """The scratch file of ``path`` for this process: ``.onnxism-PID-NAME`` beside it (NAME keeps the suffix)."""
    folder, name = os.path.split(os.path.abspath(path))
    return os.path.join(folder, f"{PREFIX}{os.getpid()}-{name}")


@contextlib.contextmanager
def published(path):
    """Yield the scratch file of ``path`` to write; rename it over ``path`` when the block ends without an error,
    remove it otherwise. Abandoned scratch beside it is removed first, with a notice."""
    clear_abandoned(os.path.dirname(os.path.abspath(path)))
    scratch = scratch_file(path)
    try:
        yield scratch
        os.replace(scratch, path)
    finally:
        if os.path.exists(scratch):
            os.remove(scratch)


def remove_abandoned(parent):
    """Remove the scratch folders and files in ``parent`` whose process is gone; returns [(path, pid, bytes)]
    removed."""
    removed = []
    try:
        entries = os.listdir(parent)
    except OSError:
        return removed
    for name in entries:
        match = _OWNED.match(name)
        path = os.path.join(parent, name)
        if not match or _alive(int(match.group(1))):
            continue
        if os.path.isdir(path):
            size = sum(os.path.getsize(os.path.join(root, file)) for root, _, files in os.walk(path) for file in files)
            shutil.rmtree(path, ignore_errors=True)
        elif os.path.isfile(path):
            size = os.path.getsize(path)
            with contextlib.suppress(OSError):
                os.remove(path)
        else:
            continue
        if not os.path.exists(path):
            removed.append((path, int(match.group(1)), size))
    return removed


def clear_abandoned(parent):
    """``remove_abandoned``, each removal told in a notice."""
    for path, pid, size in remove_abandoned(parent):
        warnings.warn(f"removed {path} ({describe_bytes(size)}), the scratch of an onnxism run (process {pid}) that "
                      "was killed before it could remove it", OnnxismWarning, stacklevel=3)


def describe_bytes(count):
    """A size for a person to read: 512 B, 3.2 MB, 1.50 GB."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= scale:
            return f"{count / scale:.3g} {unit}"
    return f"{count} B"


def check_free_space(path, needed, what):
    """Refuse a run that needs ``needed`` bytes on the file system of ``path`` (a folder) where fewer are free."""
    free = shutil.disk_usage(path).free
    if needed > free:
        raise InputError(f"not enough space for {what}: it needs {describe_bytes(needed)} on the file system of "
                         f"{path}, which has {describe_bytes(free)} free; free some space, or write elsewhere "
                         "(-o), or score fewer outputs (--outputs, --targets)")


def reserve(handle, size, path):
    """Reserve ``size`` bytes of blocks for the open file ``handle`` (so that writing it through a memory map cannot
    fail for want of space); a full disk is an InputError naming the file."""
    if size <= 0 or not hasattr(os, "posix_fallocate"):
        return
    try:
        os.posix_fallocate(handle.fileno(), 0, size)
    except OSError as err:
        if err.errno in (95, 22):  # EOPNOTSUPP, EINVAL: a file system that cannot reserve (checked free space only)
            return
        raise InputError(f"cannot reserve {describe_bytes(size)} for {path}: {err.strerror or err}") from err
