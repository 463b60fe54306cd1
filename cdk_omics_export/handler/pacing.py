"""Client-side pacing of HealthOmics requests, retries included, shared by a whole service.

HealthOmics allows 5 requests per second per account and Region for the export operations by
default. The pacer is attached to botocore's ``before-send`` event, so every HTTP attempt,
including botocore's own retries, waits for its slot. Slots are handed out through the
service's state table, so every export of the service, in whichever invocation or container,
draws on one budget of ``max_requests_per_second``. Before each attempt it also checks that
the invocation has time for the attempt: retries are sized to the time left.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

# Requests travel and are counted with some jitter, and requests of several invocations
# (threads, containers) take turns: a request that leaves late lets the next ones bunch up
# behind it. Spacing them 20% wider than the quota means any six consecutive requests span
# at least 1.2 s, so a one-second window sees more than the quota only if one is delayed by
# over 0.2 s. (10% was measured too little for three exports sending at once.)
MARGIN = 1.2
# How late after its slot a request may still leave; later, it takes a new slot.
LATE_TOLERANCE = 0.05


class SlotSource(Protocol):
    def reserve_request_slot(self, interval: float, now: float) -> float: ...


class LocalSlots:
    """Slots within one process, for a caller with no shared budget (the status command)."""

    def __init__(self) -> None:
        self._next: float | None = None

    def reserve_request_slot(self, interval: float, now: float) -> float:
        slot = now if self._next is None or self._next < now else self._next
        self._next = slot + interval
        return slot


class Pacer:
    """Spaces requests at least ``MARGIN / per_second`` seconds apart across a service."""

    def __init__(
        self,
        per_second: float,
        slots: SlotSource,
        *,
        time_left: Callable[[], float] | None = None,
        attempt_seconds: float = 0.0,
        out_of_time: Callable[[], Exception] = lambda: TimeoutError("out of time"),
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = MARGIN / per_second
        self._slots = slots
        self._time_left = time_left
        self._attempt_seconds = attempt_seconds
        self._out_of_time = out_of_time
        self._clock = clock
        self._sleep = sleep
        self.requests = 0

    def wait(self, **_: Any) -> None:
        """botocore's ``before-send`` handler: returns None so the request goes ahead.

        A request leaves within ``LATE_TOLERANCE`` of its slot or not at all: a slot that
        passed while it was being reserved, or while the thread slept past it (a busy host
        wakes threads late), is given up for the next one, so no request crowds the next.
        """
        while True:
            if self._time_left is not None and self._time_left() < self._attempt_seconds:
                raise self._out_of_time()
            slot = self._slots.reserve_request_slot(self.interval, self._clock())
            delay = slot - self._clock()
            if delay > 0:
                if (
                    self._time_left is not None
                    and self._time_left() - delay < self._attempt_seconds
                ):
                    raise self._out_of_time()
                self._sleep(delay)
            if self._clock() - slot > LATE_TOLERANCE:
                continue
            self.requests += 1
            return
