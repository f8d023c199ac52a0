"""Progress reporting: quiet by default, a bar on stderr on request, or a user callback."""

import sys
import time

import numpy as np

from .errors import InputError


def checked_progress(progress):
    """``progress`` as None, a bool or a callable; anything else (a string, a number) is an InputError."""
    if progress is None or callable(progress):
        return progress
    if isinstance(progress, (bool, np.bool_)):
        return bool(progress)
    raise InputError(f"progress must be True, False, None or a callable f(done, total); got {progress!r}")


class Progress:
    """Counts work done out of ``total`` and shows it: ``progress`` is None/False (quiet), True (a bar on
    stderr) or a callable ``f(done, total)``, as ``checked_progress`` returns it."""

    def __init__(self, progress, total, *, unit="seq"):
        self.total = max(float(total), 1e-12)
        self.done = 0.0
        self.unit = unit
        self._callback = progress if callable(progress) else None
        self._bar = progress is True
        self._start = time.perf_counter()
        self._last = 0.0

    def advance(self, amount):
        self.done = min(self.total, self.done + amount)
        if self._callback is not None:
            self._callback(self.done, self.total)
        elif self._bar:
            now = time.perf_counter()
            if now - self._last >= 0.2 or self.done >= self.total:
                self._last = now
                self._draw(now)

    def close(self):
        if self._bar:
            self._draw(time.perf_counter())
            sys.stderr.write("\n")
            sys.stderr.flush()

    def _draw(self, now):
        fraction = self.done / self.total
        filled = int(round(30 * fraction))
        elapsed = now - self._start
        eta = elapsed / fraction - elapsed if fraction > 0 else 0.0
        sys.stderr.write(
            f"\r[{'#' * filled}{'.' * (30 - filled)}] {100 * fraction:5.1f}% "
            f"{self.done:.0f}/{self.total:.0f} {self.unit} {elapsed:6.1f}s elapsed, {eta:6.1f}s left"
        )
        sys.stderr.flush()
