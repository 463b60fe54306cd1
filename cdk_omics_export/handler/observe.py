"""Which of an export's running jobs moved, seen through one listing of the store's jobs.

HealthOmics allows 5 requests per second per account, shared with everything else a team runs
on it. A Get per running job per step spends most of that on jobs that have not changed.
ListReadSetExportJobs and ListReadSetActivationJobs show up to 100 jobs a page, filtered on
their creation time, so a step lists the jobs created since its earliest running one and gets
only:

- a job the listing shows ended: its per-read-set outcome is only in the Get;
- a job the listing does not show: listings are eventually consistent and may be cut short,
  so a job missing from one is never taken as ended (nor dropped from the record).

A running job the listing shows unchanged costs nothing more; one it shows further along
(SUBMITTED to IN_PROGRESS) is recorded from the listing alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from . import state as st
    from .step import Budget, Step

# Creation times are the service's, claim times ours, and whether the filter's bound is
# inclusive is not published: the listing starts this long before the earliest running job.
LOOKBACK_SECONDS = 300.0
PAGE_SIZE = 100


@dataclass(frozen=True)
class Running:
    """A running job as the record holds it."""

    job_id: str
    status: str
    since: float  # epoch seconds: its creation time, or when its start was claimed


def since(creation_time: str | None, claimed_at: float | None, fallback: float) -> float:
    """When a job began, as far as the record knows: HealthOmics' creation time, else the claim
    of its start, else ``fallback`` (the run's start)."""
    if creation_time:
        try:
            parsed = datetime.fromisoformat(creation_time)
        except ValueError:
            pass
        else:
            return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
    return claimed_at if claimed_at is not None else fallback


def running(job: st.BatchRecord | st.ActivationRecord, created_at: float) -> Running:
    """A running batch's or activation's job, for the listing."""
    return Running(
        job_id=job["jobId"],
        status=job["status"],
        since=since(job.get("creationTime"), job.get("claimedAt"), created_at),
    )


def listed_statuses(
    step: Step,
    *,
    operation: str,
    method: Callable[..., Any],
    items: str,
    running: Sequence[Running],
    budget: Budget,
) -> dict[str, str]:
    """Job id -> status, for the ``running`` jobs the store's listing shows.

    Pages are read until every running job was seen or the listing ends, and never more pages
    than there are running jobs: past that, a Get for each job still unseen costs less.
    """
    wanted = {job.job_id for job in running}
    if not wanted:
        return {}
    earliest = min(job.since for job in running) - LOOKBACK_SECONDS
    request: dict[str, Any] = {
        "sequenceStoreId": step.request.sequence_store_id,
        "maxResults": PAGE_SIZE,
        "filter": {"createdAfter": datetime.fromtimestamp(earliest, UTC)},
    }
    seen: dict[str, str] = {}
    pages = 0
    while True:
        step.ensure_time(budget)
        page = step.call(operation, method, **request)
        pages += 1
        for item in page.get(items, []):
            if item["id"] in wanted:
                seen[item["id"]] = item["status"]
        token = page.get("nextToken")
        if not token or len(seen) == len(wanted) or pages >= len(wanted):
            return seen
        request["nextToken"] = token
