"""The life of an export's HealthOmics jobs, of either kind (export batches, activations): a
start lost by a step that died is found among the store's jobs and adopted, or sent again with
its client token; starts go out while the quota and IAM allow, each claimed first; running
jobs are followed with one listing a step, and a Get only for a job that ended or that the
listing missed (``observe.py``). ``batches.py`` and ``activation.py`` say what differs: the
operations, the start's parameters, what a Get says, and which lost start is theirs. What an
observation or a refusal means is the core's (``core/decide.py``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, Literal, TypeVar

try:  # imported as cdk_omics_export.handler.jobs (tests, the construct)
    from . import observe
    from . import state as st
    from .core import decide, progress
    from .core.model import STARTED_JOB_LOOKBACK_SECONDS, iso_time
    from .errors import ExportError, NotYetAuthorized, QuotaExceeded
    from .step import Budget, Step, replace_in_place
except ImportError:  # Lambda: the asset's root is on sys.path
    import observe  # type: ignore[import-not-found,no-redef]
    import state as st  # type: ignore[import-not-found,no-redef]
    from core import decide, progress  # type: ignore[import-not-found,no-redef]
    from core.model import (  # type: ignore[import-not-found,no-redef]
        STARTED_JOB_LOOKBACK_SECONDS,
        iso_time,
    )
    from errors import (  # type: ignore[import-not-found,no-redef]
        ExportError,
        NotYetAuthorized,
        QuotaExceeded,
    )
    from step import Budget, Step, replace_in_place  # type: ignore[import-not-found,no-redef]

LOG = logging.getLogger("cdk_omics_export.handler.export")

Job = TypeVar("Job", st.BatchRecord, st.ActivationRecord)


@dataclass(frozen=True)
class Kind:
    """What differs between the two kinds of job, as the API names it."""

    noun: str  # "export" or "activation", for the logs
    start: str
    get: str
    list: str
    items: str  # the listing's key
    quota_wait: Literal["quotaWait", "activationQuotaWait"]  # the hold-off after a refusal


class Jobs(Generic[Job]):
    """One kind of job of one export, as one step sees them."""

    kind: Kind

    def __init__(self, step: Step) -> None:
        self.step = step

    # What differs

    def records(self) -> list[Job]:
        """Every record of this kind of the export, in order."""
        raise NotImplementedError

    def run_records(self) -> list[Job]:
        """This run's records, in order."""
        raise NotImplementedError

    def save(self, record: Job) -> None:
        raise NotImplementedError

    def reload(self, record: Job) -> None:
        raise NotImplementedError

    def start_parameters(self, record: Job) -> dict[str, Any]:
        raise NotImplementedError

    def read_sets_of(self, detail: dict[str, Any]) -> list[str]:
        """The read sets a Get says a job holds."""
        raise NotImplementedError

    def may_be_ours(self, job: dict[str, Any]) -> bool:
        """Whether a listed job may be one a lost start of ours made."""
        return True

    def not_to_start_again(self, record: Job) -> bool:
        """Whether a record left STARTING, whose job was not found, gives way instead."""
        return self.step.record["cancelled"]

    def recorded(self, record: Job) -> None:
        """What else knows of a started job (the run's job ids, for an export)."""

    # Shared

    def running(self) -> int:
        return sum(1 for record in self.records() if progress.in_flight(record))

    def method(self, operation: str) -> Callable[..., Any]:
        name = "".join("_" + c.lower() if c.isupper() else c for c in operation).lstrip("_")
        method: Callable[..., Any] = getattr(self.step.omics, name)
        return method

    def follow_listed(
        self, budget: Budget, detail: Callable[[Job, dict[str, Any]], Job | None]
    ) -> None:
        """Record the progress of every running job of this kind, whichever run started it:
        one listing shows them all, and a job that ended (or that the listing missed) is got
        on its own, its Get read by ``detail``."""
        step = self.step
        running = [
            r for r in self.records() if r["status"] in st.RUNNING_JOB_STATUSES and "jobId" in r
        ]
        listed = observe.listed_statuses(
            step,
            operation=self.kind.list,
            method=self.method(self.kind.list),
            items=self.kind.items,
            running=[observe.running(r, step.record["createdAt"]) for r in running],
            budget=budget,
        )
        for record in running:
            seen = decide.seen_in_listing(record["status"], listed.get(record["jobId"]))
            if seen is None:
                continue
            if seen != decide.GET:
                record["status"] = seen
                self.save(record)
                continue
            step.ensure_time(budget)
            got = step.call(
                self.kind.get,
                self.method(self.kind.get),
                sequenceStoreId=step.request.sequence_store_id,
                id=record["jobId"],
                job_id=record["jobId"],
            )
            new = detail(record, got)
            if new is not None:
                if new["status"] != record["status"] and new["status"] in st.TERMINAL_JOB_STATUSES:
                    LOG.info("%s job %s ended %s", self.kind.noun, record["jobId"], new["status"])
                replace_in_place(record, new)
                self.save(record)

    def resolve_starting(self, budget: Budget) -> None:
        """Records left STARTING by a step that died between claiming the start and recording
        its job, in this run or an earlier one (the lease is held: no step is sending now).
        HealthOmics may have accepted the start: the job is looked for among the store's jobs,
        and adopted; otherwise the start is sent again with its client token. Never left as it
        is: a run ends only once none is STARTING."""
        step = self.step
        for record in self.records():
            if record["status"] != st.STARTING:
                continue
            step.ensure_time(budget)
            found = self._find_started_job(record, budget)
            if found is not None:
                job_id = found["id"]
                LOG.info("%s was started before as job %s: following it", record["key"], job_id)
                # Its creation time bounds the listings that follow it.
                self._record_started(
                    record,
                    {"id": job_id, "status": "SUBMITTED", "creationTime": found["creationTime"]},
                )
                continue
            if self.not_to_start_again(record):
                LOG.info("%s never started and is not to start now", record["key"])
                record["status"] = st.SUPERSEDED
                self.save(record)
                continue
            if not self._send_start(record, self.running(), release=False):
                return  # the quota or IAM holds it back: it stays STARTING until it starts

    def _find_started_job(self, record: Job, budget: Budget) -> dict[str, Any] | None:
        """The job a lost start made: one of the store's jobs created since the start was
        claimed, not one we know, with exactly the record's read sets."""
        step = self.step
        claimed = record.get("claimedAt", step.run["startedAt"])
        request: dict[str, Any] = {
            "sequenceStoreId": step.request.sequence_store_id,
            "maxResults": 100,
            "filter": {
                "createdAfter": datetime.fromtimestamp(claimed - STARTED_JOB_LOOKBACK_SECONDS, UTC)
            },
        }
        known = {r.get("jobId") for r in self.records()}
        while True:
            step.ensure_time(budget)
            page = step.call(self.kind.list, self.method(self.kind.list), **request)
            for job in page.get(self.kind.items, []):
                if job["id"] in known or not self.may_be_ours(job):
                    continue
                step.ensure_time(budget)
                detail = step.call(
                    self.kind.get,
                    self.method(self.kind.get),
                    sequenceStoreId=step.request.sequence_store_id,
                    id=job["id"],
                    job_id=job["id"],
                )
                if decide.is_lost_start(
                    self.read_sets_of(detail), record["readSetIds"], job["id"], known
                ):
                    return dict(job)
            if not page.get("nextToken"):
                return None
            request["nextToken"] = page["nextToken"]

    def start(self, budget: Budget) -> None:
        """Start this run's planned jobs while the quota and IAM allow, each claimed first."""
        step = self.step
        running = self.running()
        for record in self.run_records():
            if record["status"] != st.PENDING:
                continue
            now = step.now()
            hold_off = step.run.get(self.kind.quota_wait)
            if decide.quota_still_full(hold_off, running, now) or decide.waiting_for_iam(
                step.run, now
            ):
                return
            step.ensure_time(budget)
            try:
                record["claimedAt"] = step.now()
                step.store.claim_start(step.export_id, step.run["number"], record)
                running += 1
            except st.Cancelled:
                LOG.info(
                    "export %s was cancelled or superseded: starting no %s job",
                    step.export_id,
                    self.kind.noun,
                )
                return
            except st.Conflict:
                self.reload(record)
                continue
            if not self._send_start(record, running):
                return

    def _send_start(self, record: Job, running: int, *, release: bool = True) -> bool:
        """Send the record's start (STARTING) and record its job; False when the quota or IAM
        holds starts back for now (the record is PENDING again, with ``release``)."""
        step = self.step
        try:
            started = step.call(
                self.kind.start,
                self.method(self.kind.start),
                sequenceStoreId=step.request.sequence_store_id,
                sources=[{"readSetId": r} for r in record["readSetIds"]],
                read_set_ids=record["readSetIds"],
                **self.start_parameters(record),
            )
        except QuotaExceeded:
            LOG.info(
                "concurrent %s job quota reached at %d running jobs", self.kind.noun, running - 1
            )
            step.run[self.kind.quota_wait] = {"running": running - 1, "at": step.now()}
            if release:
                record["status"] = st.PENDING
                self.save(record)
            return False
        except NotYetAuthorized:
            step.run.setdefault("accessDeniedSince", step.now())
            if release:
                record["status"] = st.PENDING
                self.save(record)
            return False
        except ExportError as error:
            record["status"] = "FAILED"
            record["statusMessage"] = str(error)
            self.save(record)
            raise
        step.run.pop(self.kind.quota_wait, None)
        step.run.pop("accessDeniedSince", None)
        self._record_started(record, started)
        LOG.info("started %s job %s for %s", self.kind.noun, started["id"], record["key"])
        return True

    def _record_started(self, record: Job, started: dict[str, Any]) -> None:
        record["jobId"] = started["id"]
        record["status"] = started["status"]
        if "creationTime" in started:
            record["creationTime"] = iso_time(started["creationTime"])
        self.recorded(record)
        self.save(record)
