"""ISM (or TISM) of many sequences on a Ray cluster: the sequences split into shards, each scored by an actor that
loads the model once (one per GPU where the run is on CUDA, one per CPU otherwise) and written as its own archive,
with a manifest of the shards complete (``shards.py``).

Invariants: everything is checked on the driver before any actor starts (the same checks as a single-process
run); a rerun over the same folder scores only the shards whose archive is missing, and refuses a folder of
another run; an actor that dies mid-shard is restarted by Ray and the shard retried (``MAX_RETRIES`` times), its
archive written once, whole; the shards' arrays are those of the single-process run, bit for bit. The driver reads
the input one shard at a time, at most two shards per actor in flight, so memory is bounded by the shards.
"""

import json
import logging
import os
import shutil
import socket
from collections import deque

import numpy as np

from ..errors import InputError, MissingExtraError, OnnxismError
from ..io.npz_writer import check_output_path
from ..methods.ism import plan_ism
from ..methods.tism import plan_tism
from ..model.loading import load
from ..progress import Progress, checked_progress
from ..runtime.sessions import parse_device
from ..runtime.workers import usable_cores
from .actors import ShardScorer
from .reader import merge_shards
from .shards import describe_options, file_digest, open_manifest, resolve_shard_size, sequences_digest

#: Times Ray restarts a dead actor, and retries the shard it was scoring, before the run gives up.
MAX_RETRIES = 3
#: Shards sent to each actor ahead: the next one's sequences are there when one finishes.
AHEAD = 2
PLANS = {"ism": plan_ism, "tism": plan_tism}


class ShardError(OnnxismError, RuntimeError):
    """A shard could not be scored on the cluster (its worker kept dying); the complete shards are kept."""


def import_ray():
    try:
        import ray
    except ImportError as err:
        raise MissingExtraError("running on a Ray cluster needs the Ray extra: pip install 'onnxism[ray]'") from err
    return ray


def ism_on_ray(model, seqs, folder, **options):
    """ISM of ``seqs`` on a Ray cluster, one archive per shard in ``folder``; returns ``folder``.

    Parameters
    ----------
    model : str or os.PathLike
        The ONNX model file (each actor loads it, so it must be readable where the actors run).
    seqs : ndarray (N, L, 4), or Sequences (a FASTA file's, a genome's regions)
        Read one shard at a time and sent to the actors.
    folder : str or os.PathLike
        Where the shards' archives and ``manifest.json`` go (on a file system every actor writes to).
    address : str, optional
        The cluster's address (``ray start --head`` prints it); None: the one Ray is connected to, or
        ``RAY_ADDRESS``, or a local Ray on this machine's cores.
    actors : int, optional
        Actors at once; by default one per GPU of the cluster on CUDA, one per CPU otherwise.
    shard_size : int, optional
        Sequences per shard (``shards.DEFAULT_SHARD_SIZE``).
    force : bool
        Remove the shards of another run in ``folder`` rather than refuse it.
    input, layout, tokens
        How the model is loaded, as for :func:`onnxism.load`.
    progress : bool or callable, optional
        Shards done, as sequences, as for :func:`onnxism.ism`.
    **options
        As for :func:`onnxism.ism_to_npz` (method, positions, device, batch_size, outputs, workers, extra_inputs,
        targets, attribution).
    """
    return _on_ray("ism", model, seqs, folder, **options)


def tism_on_ray(model, seqs, folder, **options):
    """TISM (or another gradient attribution) on a Ray cluster; arguments as for :func:`ism_on_ray`, options as
    for :func:`onnxism.tism_to_npz`."""
    return _on_ray("tism", model, seqs, folder, **options)


def ism_to_npz_on_ray(model, seqs, path, *, force=False, compress=False, keep_shards=False, kind="ism", **options):
    """What ``onnxism run --ray`` does: the shards in ``path`` + ``.shards`` (``ism_on_ray``), merged into the
    archive ``path`` (the single-process run's, bit for bit), the shards then removed unless ``keep_shards``.
    Killed or stopped, the same call resumes from the shards complete."""
    path = check_output_path(path, force=force)
    folder = path + ".shards"
    _on_ray(kind, model, seqs, folder, force=force, **options)
    merge_shards(folder, path, force=force, compress=compress)
    if not keep_shards:
        shutil.rmtree(folder, ignore_errors=True)
    return path


def _on_ray(kind, model, seqs, folder, *, address=None, actors=None, shard_size=None, force=False, input=None,
            layout=None, tokens=None, progress=None, **options):
    if not isinstance(model, (str, os.PathLike)):
        raise InputError(f"a run on Ray loads the model in each actor: give its file's path; got {type(model)}")
    load_options = dict(input=input, layout=layout, tokens=tokens)
    loaded = load(model, **load_options)
    sequences = loaded.sequences(seqs)
    extras = options.get("extra_inputs")
    PLANS[kind](loaded, sequences, **options)  # every option checked here, before any actor starts
    progress = checked_progress(progress)
    if actors is not None and (isinstance(actors, bool) or not isinstance(actors, int) or actors < 1):
        raise InputError(f"actors must be a positive integer; got {actors!r}")
    run = json.loads(json.dumps({
        "kind": kind, "options": describe_options(dict(options, **load_options)), "model": file_digest(model),
        "input": sequences_digest(sequences, extras), "count": len(sequences), "length": sequences.length,
        "shards": {"count": len(sequences), "size": resolve_shard_size(shard_size)},
    }))
    ray = import_ray()
    started = not ray.is_initialized()
    if started:
        connect(ray, address)  # before any file is written: an unreachable cluster leaves nothing behind
    try:
        actors = actor_count(ray, options, actors)
        manifest = open_manifest(folder, run, force=force)
        _score(ray, os.fspath(model), load_options, kind, options, actors, sequences, manifest, progress)
    finally:
        if started:
            ray.shutdown()
    return folder


def _score(ray, model, load_options, kind, options, actors, sequences, manifest, progress):
    pending = manifest.pending()
    for index in set(range(len(manifest.shards))) - set(pending) - set(manifest.completed):
        manifest.completed[index] = {}  # published, but the driver stopped before it recorded it
    bar = Progress(progress, len(sequences), unit="seqs")
    bar.advance(sum(stop - start for index, (start, stop) in enumerate(manifest.shards) if index not in pending))
    handles = []
    try:
        if pending:
            handles = start_actors(ray, model, load_options, kind, options, actors, len(pending))
            score_shards(ray, handles, manifest, pending, sequences, options.get("extra_inputs"), bar)
    finally:
        bar.close()
        for handle in handles:
            ray.kill(handle)
        manifest.save()


def connect(ray, address):
    """Connect to the cluster at ``address`` (or ``RAY_ADDRESS``), else start a local Ray on this machine's
    cores; quiet (errors only, the workers' logs not echoed)."""
    quiet = dict(logging_level=logging.ERROR, log_to_driver=False)
    given = address or os.environ.get("RAY_ADDRESS")
    if given and given != "auto":
        check_reachable(given)
    try:
        if not given:
            ray.init(num_cpus=usable_cores(), include_dashboard=False, **quiet)
        else:
            ray.init(address=address, **quiet)
    except (ConnectionError, RuntimeError, ValueError) as err:
        where = address or os.environ.get("RAY_ADDRESS") or "a local Ray"
        raise InputError(f"cannot connect to the Ray cluster at {where}: {str(err).splitlines()[0]}; start one "
                         "with `ray start --head` and give the address it prints") from err


def check_reachable(address, timeout=5.0):
    """Refuse an address ``HOST:PORT`` where nothing listens (Ray itself would retry for minutes)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise InputError(f"a Ray address is HOST:PORT (what `ray start --head` prints); got {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as err:
        raise InputError(f"cannot reach the Ray cluster at {address}: {err.strerror or err}; start one with "
                         "`ray start --head` and give the address it prints") from err


def actor_count(ray, options, actors):
    """``actors``, or one per GPU (CUDA) or CPU of the cluster; a cluster without any is refused."""
    cuda = parse_device(options.get("device", "cpu"))[0] == "cuda"
    resources = ray.cluster_resources()
    available = int(resources.get("GPU" if cuda else "CPU", 0))
    if available < 1:
        raise InputError(f"the Ray cluster has no {'GPU' if cuda else 'CPU'} for the actors (its resources: "
                         f"{resources}); add workers that have one, or use --device cpu")
    return actors or available


def start_actors(ray, model, load_options, kind, options, actors, pending):
    """``actors`` actors, at most one per pending shard; each reserves a GPU (CUDA) or a CPU, and is restarted
    with its shard retried where its process dies."""
    cuda = parse_device(options.get("device", "cpu"))[0] == "cuda"
    count = min(pending, actors)
    reserve = dict(num_gpus=1, num_cpus=0) if cuda else dict(num_cpus=1)
    remote = ray.remote(ShardScorer).options(max_restarts=MAX_RETRIES, max_task_retries=MAX_RETRIES, **reserve)
    # each actor sees its one GPU as device 0 (Ray sets CUDA_VISIBLE_DEVICES)
    actor_options = {name: value for name, value in options.items() if name != "extra_inputs"}  # sent per shard
    if cuda:
        actor_options["device"] = "cuda"
    return [remote.remote(model, load_options, kind, actor_options) for _ in range(count)]


def score_shards(ray, handles, manifest, pending, sequences, extras, bar):
    """Send the pending shards to the actors, ``AHEAD`` each, and record each as it completes."""
    queue, in_flight = deque(pending), {}

    def submit(handle):
        index = queue.popleft()
        start, stop = manifest.shards[index]
        onehot = np.ascontiguousarray(sequences.onehot(start, stop), dtype=np.uint8)
        ids = None if sequences.ids is None else sequences.ids[start:stop]
        columns = {name: values[start:stop] for name, values in sequences.columns.items()}
        rows = {name: value[start:stop] for name, value in extras.items()} if extras else None
        in_flight[handle.score.remote(manifest.path(index), onehot, ids, columns, rows)] = (index, handle)

    for _ in range(AHEAD):
        for handle in handles:
            if queue:
                submit(handle)
    while in_flight:
        [ref], _ = ray.wait(list(in_flight), num_returns=1)
        index, handle = in_flight.pop(ref)
        manifest.complete(index, shard_result(ray, ref, index, manifest))
        start, stop = manifest.shards[index]
        bar.advance(stop - start)
        if queue:
            submit(handle)


def shard_result(ray, ref, index, manifest):
    """What the actor reported of shard ``index``; an onnxism error raised there is raised here as is."""
    start, stop = manifest.shards[index]
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as err:
        cause = getattr(err, "cause", None)
        if isinstance(cause, OnnxismError):
            raise cause from None
        raise ShardError(f"shard {index} (sequences {start}:{stop}) failed: {str(cause or err).splitlines()[0]}")
    except ray.exceptions.RayActorError as err:
        raise ShardError(f"shard {index} (sequences {start}:{stop}) was lost: its worker died {MAX_RETRIES + 1} "
                         f"times ({type(err).__name__}); the {len(manifest.completed)} complete shards are kept: "
                         "run the same command again to resume") from None
