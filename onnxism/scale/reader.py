"""The result of a sharded run, read from its folder: shard by shard (``iter_shards``), merged in memory
(``read_shards``), or merged into one archive on disk (``merge_shards``), streamed.

Every array of a shard's archive has the sequences first, except ``positions`` and ``attribution`` (the same in
every shard); merging concatenates the former in shard order and keeps the latter once.

Invariant: only a folder whose shards are all complete is read (otherwise an error says which are missing); the
merged arrays equal the single-process run's, dtypes included (a string array takes the widest shard's width, as
one array of all the sequences would), and ``merge_shards`` holds one shard's arrays in memory at a time.
"""

import zipfile

import numpy as np

from ..errors import InputError
from ..io.npz_writer import NpzWriter
from .shards import Manifest

#: Archive keys that are the same in every shard (not one row per sequence).
PER_RUN = ("positions", "attribution")


def complete_manifest(folder):
    """The manifest of ``folder``, every shard of which is complete; an InputError naming the missing ones."""
    manifest = Manifest.load(folder)
    missing = manifest.pending()
    if missing:
        shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
        raise InputError(f"{folder} is not complete: {len(missing)} of {len(manifest.shards)} shards are missing "
                         f"({shown}); run the same command again to score them")
    return manifest


def iter_shards(folder):
    """Yield ``(start, stop, arrays)`` per shard of the run in ``folder``, in order; ``arrays`` maps each archive
    key to the shard's array (the sequences ``start:stop``)."""
    manifest = complete_manifest(folder)
    for index, (start, stop) in enumerate(manifest.shards):
        with np.load(manifest.path(index), allow_pickle=False) as archive:
            yield start, stop, {key: archive[key] for key in archive.files}


def read_shards(folder):
    """The whole result of the run in ``folder`` in memory: {archive key: array}, as ``np.load`` of the
    single-process run's archive gives it."""
    parts = {}
    for _, _, arrays in iter_shards(folder):
        for key, value in arrays.items():
            parts.setdefault(key, []).append(value)
    return {key: values[0] if key in PER_RUN else np.concatenate(values) for key, values in parts.items()}


def array_headers(path):
    """{key: (shape, dtype)} of the arrays in the archive ``path``, read from their headers only."""
    headers = {}
    with zipfile.ZipFile(path) as archive:
        for member in archive.namelist():
            with archive.open(member) as handle:
                version = np.lib.format.read_magic(handle)
                read = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                    np.lib.format.read_array_header_2_0
                shape, _, dtype = read(handle)
            headers[member[:-len(".npy")]] = (shape, dtype)
    return headers


def merge_shards(folder, path, *, force=False, compress=False):
    """Merge the shards of the run in ``folder`` into the archive ``path`` (an existing file only with ``force``;
    deflated with ``compress``), one shard in memory at a time; returns ``path``."""
    manifest = complete_manifest(folder)
    shapes, dtypes = {}, {}
    for index in range(len(manifest.shards)):
        for key, (shape, dtype) in array_headers(manifest.path(index)).items():
            if key not in PER_RUN:
                count = shapes[key][0] if key in shapes else 0
                shapes[key] = (count + shape[0],) + tuple(shape[1:])
            dtypes[key] = np.result_type(dtypes.get(key, dtype), dtype)
    try:
        with NpzWriter(path, force=force, compress=compress) as merged:
            with np.load(manifest.path(0), allow_pickle=False) as first:
                for key in first.files:
                    if key in PER_RUN:
                        merged.put(key, first[key])
                    else:
                        merged.add(key, shapes[key], dtypes[key])
            for index, (start, stop) in enumerate(manifest.shards):
                with np.load(manifest.path(index), allow_pickle=False) as shard:
                    for key in shard.files:
                        if key not in PER_RUN:
                            merged[key][start:stop] = shard[key]
    except OSError as err:
        raise InputError(f"cannot write {path}: {err.strerror or err}") from err
    return path
