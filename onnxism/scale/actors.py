"""The Ray actor that scores shards: it loads the model once, then writes each shard it is given as a complete
archive, exactly as ``ism_to_npz`` / ``tism_to_npz`` write a whole run.

The class is plain Python (``runner.py`` makes it a Ray actor with ``ray.remote``), so it runs and is tested
without Ray too. Invariant: a shard's archive holds what the single-process run holds for those sequences, bit for
bit (the same model loaded the same way, the same options, the same one-hot values), and is published with one
rename, so a worker killed mid-shard leaves no archive and the retry writes it whole.
"""

import os
import time

import numpy as np

from ..methods.writing import ism_to_npz, tism_to_npz
from ..model.loading import load
from ..sequences import Sequences

WRITERS = {"ism": ism_to_npz, "tism": tism_to_npz}


class ShardScorer:
    """Holds the model loaded from ``model_path`` (with ``load_options``: input, layout, tokens) and the run's
    options (as for ``ism_to_npz`` or ``tism_to_npz``, per ``kind``: "ism" or "tism")."""

    def __init__(self, model_path, load_options, kind, options):
        began = time.perf_counter()
        self.model = load(model_path, **load_options)
        self.write = WRITERS[kind]
        self.options = dict(options)
        self.load_seconds = time.perf_counter() - began

    def pid(self):
        """This worker's process id (the tests kill it mid-shard)."""
        return os.getpid()

    def score(self, path, onehot, ids=None, columns=None, extras=None):
        """Score the sequences ``onehot`` (n, L, 4) uint8 (with their ``ids``, per-sequence ``columns`` and the
        rows of the extra inputs) into the archive ``path``; returns what the manifest records of it."""
        began = time.perf_counter()
        sequences = Sequences(np.asarray(onehot), ids=ids, source=os.path.basename(path))
        sequences.columns = dict(columns or {})
        options = dict(self.options, extra_inputs=extras or None)
        self.write(self.model, sequences, path, force=True, progress=None, **options)
        return {"pid": os.getpid(), "seconds": round(time.perf_counter() - began, 4), "sequences": len(sequences)}
