"""The shared pacer: one budget of requests per service, and no attempt without time for it."""

from __future__ import annotations

import pytest

from cdk_omics_export.handler.pacing import MARGIN, LocalSlots, Pacer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class OutOfTime(Exception):
    pass


def test_pacers_sharing_slots_space_every_request_together() -> None:
    clock, slots = Clock(), LocalSlots()
    first = Pacer(5, slots, clock=clock, sleep=clock.sleep)
    second = Pacer(5, slots, clock=clock, sleep=clock.sleep)
    sent: list[float] = []
    for pacer in (first, second, first, second):
        pacer.wait()
        sent.append(clock.now)
    gaps = [b - a for a, b in zip(sent, sent[1:], strict=False)]
    assert gaps == pytest.approx([MARGIN / 5] * 3)


def test_no_attempt_without_time_for_it() -> None:
    clock = Clock()
    left = [60.0]
    pacer = Pacer(
        5,
        LocalSlots(),
        time_left=lambda: left[0],
        attempt_seconds=50.0,
        out_of_time=OutOfTime,
        clock=clock,
        sleep=clock.sleep,
    )
    pacer.wait()
    left[0] = 49.0
    with pytest.raises(OutOfTime):
        pacer.wait()
    assert pacer.requests == 1


def test_a_wait_that_would_eat_the_time_left_is_not_taken() -> None:
    clock, slots = Clock(), LocalSlots()
    slots.reserve_request_slot(30.0, clock.now)  # someone holds the next 30 s
    pacer = Pacer(
        1 / 30,
        slots,
        time_left=lambda: 60.0,
        attempt_seconds=50.0,
        out_of_time=OutOfTime,
        clock=clock,
        sleep=clock.sleep,
    )
    with pytest.raises(OutOfTime):
        pacer.wait()
    assert clock.slept == []


def test_a_slot_that_passed_while_it_was_reserved_is_given_up() -> None:
    clock = Clock()

    class SlowSlots(LocalSlots):
        """The first reservation takes 0.3 s to come back, as a slow table write may."""

        def __init__(self) -> None:
            super().__init__()
            self.calls = 0

        def reserve_request_slot(self, interval: float, now: float) -> float:
            self.calls += 1
            slot = super().reserve_request_slot(interval, now)
            if self.calls == 1:
                clock.now += 0.3
            return slot

    slots = SlowSlots()
    pacer = Pacer(5, slots, clock=clock, sleep=clock.sleep)
    started = clock.now
    pacer.wait()
    # The first slot (at the start) had passed: the request took the next one instead.
    assert slots.calls == 2
    assert clock.now == pytest.approx(started + 0.3)
    assert pacer.requests == 1


def test_a_slot_overslept_is_given_up() -> None:
    clock = Clock()
    overslept = [True]

    def sleep(seconds: float) -> None:
        clock.sleep(seconds + (0.2 if overslept.pop() else 0.0) if overslept else seconds)

    slots = LocalSlots()
    slots.reserve_request_slot(MARGIN / 5, clock.now)  # the next slot is one interval away
    pacer = Pacer(5, slots, clock=clock, sleep=sleep)
    pacer.wait()
    # The thread woke 0.2 s after its slot: it took the next free one instead of crowding it.
    assert pacer.requests == 1
    assert len(clock.slept) == 2
