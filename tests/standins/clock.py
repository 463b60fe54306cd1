"""A simulated clock the stand-ins and the code under rehearsal share (test code, never shipped).

Simulated time only moves when something moves it: `sleep` (the code under test waiting) or
`advance_to` (tests/moto_runner.py giving the turn to an execution that is due). It never goes
backwards, so timestamps taken from it are ordered like real ones.
"""

from __future__ import annotations

import threading


class SimulatedClock:
    """Seconds since the epoch, as `time.time()` would give them, but simulated."""

    def __init__(self, start: float) -> None:
        self._now = float(start)
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def time(self) -> float:
        """`time.time()`'s name, for code that takes a clock function."""
        return self.now()

    def sleep(self, seconds: float) -> None:
        """Advance the clock by `seconds` at once (a negative duration is an error, as in time)."""
        if seconds < 0:
            raise ValueError("sleep length must be non-negative")
        with self._lock:
            self._now += seconds

    def advance_to(self, moment: float) -> float:
        """Move the clock forward to `moment` if it is later than now; returns the new now."""
        with self._lock:
            self._now = max(self._now, float(moment))
            return self._now
