"""Client-side pacing of HealthOmics requests, retries included.

HealthOmics allows 5 requests per second per account and Region for the export operations by
default. The pacer is attached to botocore's ``before-send`` event, so every HTTP attempt,
including botocore's own retries, waits for its slot. The time of the last request is kept in
the export's manifest, so the next invocation (another function, another container) resumes
the spacing instead of starting a burst.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

# Requests travel and are counted with some jitter: spacing them 10% wider than the quota
# keeps every one-second window at or under it as the service counts it.
MARGIN = 1.1


class Pacer:
    """Spaces requests at least ``MARGIN / per_second`` seconds apart."""

    def __init__(
        self,
        per_second: float,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = MARGIN / per_second
        self._clock = clock
        self._sleep = sleep
        self.last_request_at: float | None = None

    def resume_after(self, last_request_at: float | None) -> None:
        if last_request_at is not None and (
            self.last_request_at is None or last_request_at > self.last_request_at
        ):
            self.last_request_at = last_request_at

    def wait(self, **_: Any) -> None:
        """botocore's ``before-send`` handler: returns None so the request goes ahead."""
        now = self._clock()
        if self.last_request_at is not None:
            delay = self.last_request_at + self.interval - now
            if delay > 0:
                self._sleep(delay)
                now = self._clock()
        # Never earlier than one interval after the last request, even if the clock is coarse.
        earliest = (self.last_request_at or now) + self.interval
        self.last_request_at = max(now, earliest) if self.last_request_at is not None else now
