"""Batches run by several threads at once, each onnxruntime call on its own share of the cores.

onnxruntime releases the GIL while it runs, so W Python threads calling one session keep W calls in flight. On
the CPU, graphs of many small ops (fast ISM's windows, naive ISM at small batches) leave cores idle between ops
when one call spreads over every core; W calls of ``cores // W`` threads each keep them busy (measured in the
README). Invariant: results are consumed in submission order, on the calling thread, with at most 2 * W batches
in flight, so memory stays bounded and scatters into shared arrays never race.
"""

import os
import warnings
from collections import deque
from concurrent.futures import ThreadPoolExecutor

from ..errors import InputError, OnnxismWarning
from .sessions import parse_device


def usable_cores():
    """CPU cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not every platform has affinity
        return max(1, os.cpu_count() or 1)


def resolve_workers(workers, device="cpu", cpu_default=1):
    """Concurrent calls: ``workers`` if given (checked), else ``cpu_default`` on the CPU (at most one per core) and
    1 on CUDA."""
    if workers is None:
        return min(cpu_default, usable_cores()) if parse_device(device)[0] == "cpu" else 1
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InputError(f"workers must be a positive integer; got {workers!r}")
    return workers


def warn_beyond_cores(workers, device="cpu"):
    """A notice where more calls than cores are asked for on the CPU (they run, each waiting for a core while it
    holds its memory)."""
    cores = usable_cores()
    if workers is not None and workers > cores and parse_device(device)[0] == "cpu":
        warnings.warn(f"workers={workers} on {cores} core(s): calls beyond one per core wait for a core and hold "
                      "their memory meanwhile; at most one per core is faster", OnnxismWarning, stacklevel=4)


def session_threads(workers, device="cpu"):
    """onnxruntime intra-op threads per session for ``workers`` concurrent calls: the cores shared out on the CPU,
    onnxruntime's own default (None) for a single worker or on CUDA."""
    if workers <= 1 or parse_device(device)[0] != "cpu":
        return None
    return max(1, usable_cores() // workers)


def run_in_order(jobs, work, consume, workers):
    """For each job: ``work(job)`` on one of ``workers`` threads, then ``consume(job, result)`` on this thread, in
    the order of ``jobs``. An exception in ``work`` is raised here once the calls in flight have finished."""
    if workers <= 1:
        for job in jobs:
            consume(job, work(job))
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="onnxism") as pool:
        pending = deque()
        try:
            for job in jobs:
                pending.append((job, pool.submit(work, job)))
                if len(pending) >= 2 * workers:
                    done, future = pending.popleft()
                    consume(done, future.result())
            while pending:
                done, future = pending.popleft()
                consume(done, future.result())
        finally:
            for _, future in pending:
                future.cancel()
