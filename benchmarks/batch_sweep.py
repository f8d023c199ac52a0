"""The batch-size sweep of the peer packages (fastISM, tangermeme): time each size until a larger one is slower.

Standard library only: the workers that import it run in the peers' own virtual environments.
"""

import json


def sweep(batches, time_batch):
    """Time ``batches`` in ascending order; stop at the first size that is no faster than the best so far, or that
    fails (an error, such as running out of memory, ends the sweep). When the first size is the best, halve it while
    that helps (down to 1), so that the best is not just the smallest size asked for.

    Parameters
    ----------
    batches : list of int
    time_batch : callable
        ``time_batch(batch) -> (seconds_per_sequence, record)``: the figure compared, and a dict reported with it.

    Yields
    ------
    dict
        ``{"batch": B, "per_sequence": S, **record, "error": None}`` per size timed, or ``{"batch": B,
        "error": "Type: message"}`` for the size that failed.
    """
    order = sorted(set(batches))
    best = None
    for direction, sizes in (("up", order), ("down", _halves(order[0]))):
        if direction == "down" and (best is None or best[0] != order[0]):
            break
        for batch in sizes:
            result = _timed(time_batch, batch)
            yield result
            if result["error"] is not None or (best is not None and result["per_sequence"] >= best[1]):
                break
            best = (batch, result["per_sequence"])


def _halves(batch):
    while batch > 1:
        batch //= 2
        yield batch


def _timed(time_batch, batch):
    try:
        per_sequence, record = time_batch(batch)
    except Exception as err:  # noqa: BLE001 - a failure at one size (memory above all) is recorded, not raised
        message = (str(err).strip().splitlines() or [repr(err)])[0][:200]
        return {"batch": batch, "error": f"{type(err).__name__}: {message}"}
    return {"batch": batch, "per_sequence": per_sequence, **record, "error": None}


def print_result(result):
    """One JSON line on stdout, flushed: the parent reads the sizes timed before a worker was killed."""
    print(json.dumps(result), flush=True)
