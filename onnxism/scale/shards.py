"""A run split into shards, and the manifest that says which are complete.

A shard is a range ``start:stop`` of the sequences, scored into its own archive ``shard-NNNNN.npz`` in the run's
folder (the same archive ``onnxism run`` writes, for those sequences). The folder's ``manifest.json`` records the
shard size, the run's options, and fingerprints of the model and of the input (their bytes hashed), so that a
rerun over the same folder with other options or other sequences is refused rather than mixed in; and the shards
completed so far.

Invariants: a shard's archive is published with one rename (``io/npz_writer.py``), so it is there whole or not at
all, and a shard is complete exactly when its archive is there; the manifest is rewritten whole, with one rename
(``io/scratch.py``: ``published``), so it is never half-written.
"""

import hashlib
import json
import os
import time

import numpy as np

from ..errors import InputError
from ..io.scratch import published

MANIFEST = "manifest.json"
VERSION = 1
#: Sequences per shard by default: small enough to retry cheaply, large enough that a shard's fixed cost is small.
DEFAULT_SHARD_SIZE = 1000
#: Seconds between rewrites of the manifest while shards complete.
SAVE_EVERY = 1.0
_HASH_VALUES = 1 << 22  # values hashed per step: bounds memory for inputs larger than memory


def resolve_shard_size(shard_size):
    """``shard_size`` checked, or DEFAULT_SHARD_SIZE for None."""
    size = DEFAULT_SHARD_SIZE if shard_size is None else shard_size
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise InputError(f"shard_size must be a positive integer; got {shard_size!r}")
    return int(size)


def shard_ranges(count, shard_size=None):
    """[(start, stop), ...] covering ``count`` sequences in order, ``shard_size`` each (the last may be shorter)."""
    size = resolve_shard_size(shard_size)
    return [(start, min(count, start + size)) for start in range(0, count, size)]


def shard_name(index):
    return f"shard-{index:05d}.npz"


def file_digest(path):
    """sha256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sequences_digest(sequences, extras=None):
    """sha256 of the sequences as scored (one-hot, uint8), their ids and per-sequence columns, and the extra
    inputs' values; read chunk by chunk."""
    digest = hashlib.sha256(f"{len(sequences)}x{sequences.length}".encode())
    step = max(1, _HASH_VALUES // (4 * sequences.length))
    for start, stop in sequences.chunks(step):
        digest.update(np.ascontiguousarray(sequences.onehot(start, stop), dtype=np.uint8).tobytes())
    named = dict(sequences.columns, **({"ids": sequences.ids} if sequences.ids is not None else {}))
    named.update({f"extra/{name}": value for name, value in (extras or {}).items()})
    for name in sorted(named):
        digest.update(name.encode() + canonical_bytes(np.asarray(named[name])))
    return digest.hexdigest()


def canonical_bytes(array):
    return f"{array.dtype.str}{array.shape}".encode() + np.ascontiguousarray(array).tobytes()


def describe_options(options):
    """The options as JSON values: arrays as their shape, dtype and sha256 (a rerun compares them exactly)."""
    if isinstance(options, dict):
        return {str(key): describe_options(value) for key, value in sorted(options.items(), key=lambda kv: str(kv[0]))}
    if isinstance(options, (list, tuple)):
        return [describe_options(value) for value in options]
    if isinstance(options, np.ndarray):
        return {"array": list(options.shape), "dtype": options.dtype.str,
                "sha256": hashlib.sha256(canonical_bytes(options)).hexdigest()}
    if isinstance(options, np.generic):
        return options.item()
    if options is None or isinstance(options, (bool, int, float, str)):
        return options
    return repr(options)


class Manifest:
    """The manifest of the run in ``folder``: ``run`` (what must match for a shard to be reused: options, model,
    input, and ``shards``: {"count": sequences, "size": per shard}) and ``completed`` ({shard index: what its actor
    reported}). Rewritten at most every SAVE_EVERY seconds while shards complete (a run of many shards does not
    rewrite it per shard) and by ``save``; the archives, not this record, say which shards are complete."""

    def __init__(self, folder, run, completed=None):
        self.folder, self.run, self.completed = folder, run, dict(completed or {})
        self.shards = shard_ranges(run["shards"]["count"], run["shards"]["size"])
        self._saved = time.monotonic()

    def path(self, index):
        return os.path.join(self.folder, shard_name(index))

    def pending(self):
        """The indices of the shards whose archive is not there yet, in order."""
        return [index for index in range(len(self.shards)) if not os.path.exists(self.path(index))]

    def complete(self, index, report):
        """Record shard ``index`` as complete (its archive already published) and rewrite the manifest."""
        self.completed[index] = report
        if time.monotonic() - self._saved >= SAVE_EVERY:
            self.save()

    def save(self):
        text = json.dumps({"version": VERSION, "run": self.run,
                           "completed": {str(key): value for key, value in sorted(self.completed.items())}},
                          separators=(",", ":"))
        with published(os.path.join(self.folder, MANIFEST)) as scratch, open(scratch, "w") as handle:
            handle.write(text + "\n")
        self._saved = time.monotonic()

    @classmethod
    def load(cls, folder):
        """The manifest in ``folder``; an InputError where there is none or it cannot be read."""
        path = os.path.join(folder, MANIFEST)
        try:
            with open(path) as handle:
                data = json.load(handle)
            run, completed = data["run"], {int(key): value for key, value in data["completed"].items()}
        except FileNotFoundError as err:
            raise InputError(f"{folder} holds no {MANIFEST}: it is not the folder of a sharded run") from err
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
            raise InputError(f"cannot read {path}: {err}; remove the folder and run again") from err
        if data.get("version") != VERSION:
            raise InputError(f"{path} is of manifest version {data.get('version')!r}; this onnxism reads {VERSION}")
        return cls(folder, run, completed)


def open_manifest(folder, run, *, force=False):
    """The manifest of ``run`` in ``folder`` (made where missing): the one there when it records the same run (its
    complete shards are kept); another run's is refused, or with ``force`` its shards removed and started again."""
    folder = os.fspath(folder)
    parent = os.path.dirname(os.path.abspath(folder))
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise InputError(f"shard folder {folder} is a file; give a folder (or remove the file)")
    if not os.path.isdir(parent):
        raise InputError(f"cannot write {folder}: folder {parent} does not exist")
    if os.path.exists(os.path.join(folder, MANIFEST)):
        existing = Manifest.load(folder)
        if existing.run == run:
            return existing
        if not force:
            differ = sorted(key for key in set(run) | set(existing.run) if run.get(key) != existing.run.get(key))
            raise InputError(f"{folder} holds the shards of another run (its {', '.join(differ)} differ); pass "
                             "--force to remove them and start again, or write elsewhere (-o)")
        for index in range(len(existing.shards)):
            if os.path.exists(existing.path(index)):
                os.remove(existing.path(index))
    elif os.path.isdir(folder) and os.listdir(folder):
        if not force:
            raise InputError(f"shard folder {folder} exists and is not a sharded run's; pass --force or write "
                             "elsewhere (-o)")
        for name in os.listdir(folder):
            if name.startswith("shard-") and name.endswith(".npz"):
                os.remove(os.path.join(folder, name))
    try:
        os.makedirs(folder, exist_ok=True)
        manifest = Manifest(folder, run)
        manifest.save()
    except OSError as err:
        raise InputError(f"cannot write {folder}: {err.strerror or err}") from err
    return manifest
