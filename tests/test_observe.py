"""How a step sees which running jobs moved (``handler/observe.py``): when a job began, what to
do about each job the listing shows or misses, and how the store's listing is paged."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

import pytest

from cdk_omics_export.handler import observe
from cdk_omics_export.handler.core import decide

if TYPE_CHECKING:
    from cdk_omics_export.handler.step import Budget, Step

STORE = "1234567890"
T0 = datetime(2026, 11, 29, 6, 0, tzinfo=UTC).timestamp()


@pytest.fixture
def tokyo(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A machine whose local time is not UTC."""
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_a_job_began_at_its_creation_time() -> None:
    assert observe.since("2026-11-29T06:00:00+00:00", 5.0, 1.0) == T0
    assert observe.since("2026-11-29T08:00:00+02:00", None, 1.0) == T0


@pytest.mark.usefixtures("tokyo")
def test_a_creation_time_without_a_zone_is_utc_on_any_machine() -> None:
    assert observe.since("2026-11-29T06:00:00", None, 1.0) == T0


def test_without_a_creation_time_a_job_began_when_its_start_was_claimed() -> None:
    assert observe.since(None, 5.0, 1.0) == 5.0
    assert observe.since("", 0.0, 1.0) == 0.0
    assert observe.since("not a time", 5.0, 1.0) == 5.0


def test_without_either_a_job_began_with_the_run() -> None:
    assert observe.since(None, None, 1.0) == 1.0
    assert observe.since("not a time", None, 1.0) == 1.0


@pytest.mark.parametrize(
    ("recorded", "listed", "decided"),
    [
        ("SUBMITTED", "IN_PROGRESS", "IN_PROGRESS"),  # further along: recorded from the listing
        ("SUBMITTED", "CANCELLING", "CANCELLING"),
        ("IN_PROGRESS", "CANCELLING", "CANCELLING"),
        ("IN_PROGRESS", "IN_PROGRESS", None),  # unchanged: nothing to do
        ("IN_PROGRESS", "SUBMITTED", None),  # a stale listing changes nothing
        ("CANCELLING", "IN_PROGRESS", None),
        ("IN_PROGRESS", "COMPLETED", decide.GET),  # ended: its read sets' outcome
        ("IN_PROGRESS", "COMPLETED_WITH_FAILURES", decide.GET),
        ("SUBMITTED", "FAILED", decide.GET),
        ("CANCELLING", "CANCELLED", decide.GET),
        ("SUBMITTED", None, decide.GET),  # not listed: never taken as ended
    ],
)
def test_what_a_step_does_about_a_running_job(
    recorded: str, listed: str | None, decided: str | None
) -> None:
    assert decide.seen_in_listing(recorded, listed) == decided


@pytest.mark.parametrize("listed", ["SUBMITTED", "IN_PROGRESS", "CANCELLING"])
def test_a_record_without_a_running_status_takes_the_listed_one(listed: str) -> None:
    assert decide.seen_in_listing("STARTING", listed) == listed


class Store:
    """A sequence store's listing of jobs, page by page, and the calls made to it."""

    def __init__(self, *pages: dict[str, Any]) -> None:
        self.pages = list(pages)
        self.calls: list[tuple[str, object, dict[str, Any]]] = []
        self.checks: list[object] = []
        self.request = SimpleNamespace(sequence_store_id=STORE)

    def ensure_time(self, budget: Budget) -> None:
        self.checks.append(budget)

    def call(self, operation: str, method: object, **params: Any) -> dict[str, Any]:
        self.calls.append((operation, method, params))
        assert self.pages, "a page was read past the end of the listing"
        return self.pages.pop(0)


def list_jobs(**_: Any) -> None:
    """Stands for the omics client's method (the store calls it through ``Step.call``)."""


BUDGET = cast("Budget", object())


def listed(store: Store, *running: observe.Running) -> dict[str, str]:
    return observe.listed_statuses(
        cast("Step", store),
        operation="ListReadSetExportJobs",
        method=list_jobs,
        items="exportJobs",
        running=running,
        budget=BUDGET,
    )


def job(job_id: str, status: str) -> dict[str, str]:
    return {"id": job_id, "status": status}


def test_no_running_job_lists_nothing() -> None:
    store = Store()
    assert listed(store) == {}
    assert store.calls == []


def test_one_listing_shows_the_running_jobs_since_the_earliest() -> None:
    store = Store(
        {"exportJobs": [job("1111111111", "COMPLETED"), job("2222222222", "IN_PROGRESS")]}
    )
    seen = listed(
        store,
        observe.Running("1111111111", "IN_PROGRESS", T0 + 60),
        observe.Running("2222222222", "SUBMITTED", T0),
    )
    assert seen == {"1111111111": "COMPLETED", "2222222222": "IN_PROGRESS"}
    assert store.calls == [
        (
            "ListReadSetExportJobs",
            list_jobs,
            {
                "sequenceStoreId": STORE,
                "maxResults": 100,
                # Five minutes before the earliest: the service's clock is not ours.
                "filter": {"createdAfter": datetime(2026, 11, 29, 5, 55, tzinfo=UTC)},
            },
        )
    ]
    assert store.checks == [BUDGET]  # the step's time is checked before each page


def test_jobs_of_other_exports_are_left_out() -> None:
    store = Store({"exportJobs": [job("9999999999", "IN_PROGRESS"), job("1111111111", "FAILED")]})
    assert listed(store, observe.Running("1111111111", "IN_PROGRESS", T0)) == {
        "1111111111": "FAILED"
    }


def test_pages_are_read_until_every_running_job_was_seen() -> None:
    store = Store(
        {"exportJobs": [job("1111111111", "IN_PROGRESS")], "nextToken": "page-2"},
        {"exportJobs": [job("2222222222", "COMPLETED")], "nextToken": "page-3"},
        {"exportJobs": [job("3333333333", "SUBMITTED")], "nextToken": "page-4"},
    )
    seen = listed(
        store,
        observe.Running("1111111111", "SUBMITTED", T0),
        observe.Running("2222222222", "IN_PROGRESS", T0),
        observe.Running("3333333333", "SUBMITTED", T0),
    )
    assert seen == {
        "1111111111": "IN_PROGRESS",
        "2222222222": "COMPLETED",
        "3333333333": "SUBMITTED",
    }
    first, second, third = (params for _, _, params in store.calls)
    assert "nextToken" not in first
    assert second == {**first, "nextToken": "page-2"}
    assert third == {**first, "nextToken": "page-3"}
    assert store.checks == [BUDGET, BUDGET, BUDGET]


def test_a_listing_that_saw_every_running_job_reads_no_further_page() -> None:
    store = Store(
        {
            "exportJobs": [job("1111111111", "IN_PROGRESS"), job("2222222222", "IN_PROGRESS")],
            "nextToken": "page-2",
        }
    )
    running = [observe.Running(j, "IN_PROGRESS", T0) for j in ("1111111111", "2222222222")]
    assert listed(store, *running) == {"1111111111": "IN_PROGRESS", "2222222222": "IN_PROGRESS"}
    assert len(store.calls) == 1


def test_the_listing_ends_with_its_last_page() -> None:
    store = Store({"exportJobs": [job("1111111111", "IN_PROGRESS")]})
    running = [observe.Running(j, "IN_PROGRESS", T0) for j in ("1111111111", "2222222222")]
    assert listed(store, *running) == {"1111111111": "IN_PROGRESS"}
    assert len(store.calls) == 1


def test_a_page_without_jobs_ends_an_empty_listing() -> None:
    store = Store({})
    assert listed(store, observe.Running("1111111111", "IN_PROGRESS", T0)) == {}


def test_no_more_pages_are_read_than_there_are_running_jobs() -> None:
    """Past that, a Get for each job still unseen costs less than the next page."""
    store = Store(*({"exportJobs": [], "nextToken": f"page-{n}"} for n in range(2, 12)))
    running = [observe.Running(j, "IN_PROGRESS", T0) for j in ("1111111111", "2222222222")]
    assert listed(store, *running) == {}
    assert len(store.calls) == 2
