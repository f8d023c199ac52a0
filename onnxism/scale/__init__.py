"""Scale-out: a run split into shards, scored by Ray actors, resumable, merged bit for bit (``runner.py``), and
read back from its folder (``reader.py``). Ray is imported only when a run starts (the [ray] extra)."""

from .reader import iter_shards, merge_shards, read_shards
from .runner import ShardError, ism_on_ray, ism_to_npz_on_ray, tism_on_ray

__all__ = ["ShardError", "ism_on_ray", "ism_to_npz_on_ray", "iter_shards", "merge_shards", "read_shards",
           "tism_on_ray"]
