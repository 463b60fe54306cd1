"""Archived read sets, brought back before they are exported.

HealthOmics archives read sets that were not accessed for 30 days, and most of a cohort older
than a month is ARCHIVED when a deploy wants to export it. With ``ArchivedReadSets.ACTIVATE``
the pre-flight accepts them, and each runner step:

- plans activation records (``activation#RRRR#NNNN``, at most 20 read sets each) for this
  run's read sets that are archived and not being activated by an earlier run;
- watches read sets that someone else is activating (``WATCHING`` records, polled with
  GetReadSetMetadata), and activates those that end up archived again;
- starts activation jobs as the concurrent-activation quota allows, each with a client token
  and claimed first, like export batches, so a retried step starts no second job;
- follows them with one ListReadSetActivationJobs a step, and gets a job
  (GetReadSetActivationJob) once the listing shows it ended, or if the listing missed it;
  each read set whose source is FINISHED is handed to the export then, so one job's exports
  run while the other activations go on.

How long an activation takes and how many may run at once are not published: nothing here
assumes either. A refusal by the quota holds starts back until one of ours ends or
``QUOTA_RETRY_SECONDS`` pass; the deploy, with ``wait_for_completion=True``, waits as long as
its timeout allows. What each read set needs, what a job's Get or a watched read set's
status means, and whether a start may go now are the core's (``core/progress.py``,
``core/decide.py``); this module makes the calls and saves what they said.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

try:  # imported as cdk_omics_export.handler.activation (tests, the construct)
    from . import observe
    from . import state as st
    from .core import decide, progress
    from .core.model import STARTED_JOB_LOOKBACK_SECONDS, activation_client_token, iso_time
    from .errors import ExportError, NotYetAuthorized, QuotaExceeded, ReadSetMissing
    from .step import Budget, Step
except ImportError:  # Lambda: the asset's root is on sys.path
    import observe  # type: ignore[import-not-found,no-redef]
    import state as st  # type: ignore[import-not-found,no-redef]
    from core import decide, progress  # type: ignore[import-not-found,no-redef]
    from core.model import (  # type: ignore[import-not-found,no-redef]
        STARTED_JOB_LOOKBACK_SECONDS,
        activation_client_token,
        iso_time,
    )
    from errors import (  # type: ignore[import-not-found,no-redef]
        ExportError,
        NotYetAuthorized,
        QuotaExceeded,
        ReadSetMissing,
    )
    from step import Budget, Step  # type: ignore[import-not-found,no-redef]

LOG = logging.getLogger(__name__)


class Activations:
    """The activation jobs of one export, as one step sees them."""

    def __init__(self, step: Step) -> None:
        self.step = step

    def plan(self) -> None:
        """Records for this run's read sets that are archived (activated by us) or activated by
        someone else (watched), saved before anything starts from them."""
        step = self.step
        planned, activated, watched = progress.new_activations(step.snapshot)
        if not planned:
            return
        step.add_activations(planned)
        LOG.info(
            "export %s: %d read set(s) to activate, %d being activated by someone else",
            step.export_id,
            activated,
            watched,
        )

    # Following

    def follow(self, budget: Budget) -> None:
        """Record the progress of every activation of the export that is still going: one
        listing shows our jobs, and only one that ended (or that the listing missed) is asked
        for with its own Get (``observe.py``)."""
        step = self.step
        self._resolve_starting(budget)
        for record in step.snapshot.ordered_activations():
            if record["status"] == st.WATCHING:
                self._watch(record, budget)
        running = [
            a
            for a in step.snapshot.ordered_activations()
            if a["status"] in st.RUNNING_JOB_STATUSES and "jobId" in a
        ]
        listed = observe.listed_statuses(
            step,
            operation="ListReadSetActivationJobs",
            method=step.omics.list_read_set_activation_jobs,
            items="activationJobs",
            running=[observe.running(a, step.record["createdAt"]) for a in running],
            budget=budget,
        )
        for record in running:
            seen = decide.seen_in_listing(record["status"], listed.get(record["jobId"]))
            if seen is None:
                continue
            if seen != decide.GET:
                record["status"] = seen
                step.save_activation(record)
                continue
            self._get(record, budget)

    def _get(self, record: st.ActivationRecord, budget: Budget) -> None:
        """The job's per-read-set outcome: once it ended, each read set is handed on."""
        step = self.step
        step.ensure_time(budget)
        detail = step.call(
            "GetReadSetActivationJob",
            step.omics.get_read_set_activation_job,
            sequenceStoreId=step.request.sequence_store_id,
            id=record["jobId"],
            job_id=record["jobId"],
        )
        new = decide.with_activation_detail(record, detail)
        if new is not None and new["status"] in st.TERMINAL_JOB_STATUSES:
            LOG.info("activation job %s ended %s", record["jobId"], new["status"])
        step.update_activation(record, new)

    def _watch(self, record: st.ActivationRecord, budget: Budget) -> None:
        """Read sets someone else activates: looked at one by one until each is active."""
        step = self.step
        statuses: dict[str, str] = {}
        for source in record.get("sources", []):
            if source["status"] != "IN_PROGRESS":
                continue
            step.ensure_time(budget)
            try:
                metadata = step.call(
                    "GetReadSetMetadata",
                    step.omics.get_read_set_metadata,
                    sequenceStoreId=step.request.sequence_store_id,
                    id=source["readSetId"],
                    read_set_ids=[source["readSetId"]],
                    missing_ok=True,
                )
                statuses[source["readSetId"]] = metadata["status"]
            except ReadSetMissing:
                statuses[source["readSetId"]] = "DELETED"
        step.update_activation(record, decide.with_watched_statuses(record, statuses))

    def _resolve_starting(self, budget: Budget) -> None:
        """Records left STARTING by a step that died between the claim and recording the
        job: the job a lost start made is looked for, and adopted; otherwise the start is sent
        again with its client token."""
        step = self.step
        for record in step.snapshot.ordered_activations():
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
            if step.record["cancelled"] or record["run"] != step.run["number"]:
                # An earlier run's activation is not this run's to start (a rollback starts
                # nothing new); this run activates what it still needs itself.
                LOG.info("%s never started and is not this run's to start", record["key"])
                record["status"] = st.SUPERSEDED
                step.save_activation(record)
                continue
            if not self._send_start(
                record, progress.running_activations(step.snapshot), release=False
            ):
                return

    def _find_started_job(
        self, record: st.ActivationRecord, budget: Budget
    ) -> dict[str, Any] | None:
        step = self.step
        claimed = record.get("claimedAt", step.run["startedAt"])
        request: dict[str, Any] = {
            "sequenceStoreId": step.request.sequence_store_id,
            "maxResults": 100,
            "filter": {
                "createdAfter": datetime.fromtimestamp(claimed - STARTED_JOB_LOOKBACK_SECONDS, UTC)
            },
        }
        known = {a.get("jobId") for a in step.snapshot.activations.values()}
        while True:
            step.ensure_time(budget)
            page = step.call(
                "ListReadSetActivationJobs", step.omics.list_read_set_activation_jobs, **request
            )
            for job in page.get("activationJobs", []):
                if job["id"] in known:
                    continue
                step.ensure_time(budget)
                detail = step.call(
                    "GetReadSetActivationJob",
                    step.omics.get_read_set_activation_job,
                    sequenceStoreId=step.request.sequence_store_id,
                    id=job["id"],
                    job_id=job["id"],
                )
                found = [s["readSetId"] for s in detail.get("sources", [])]
                if decide.is_lost_start(found, record["readSetIds"], job["id"], known):
                    return dict(job)
            if not page.get("nextToken"):
                return None
            request["nextToken"] = page["nextToken"]

    # Starting

    def start(self, budget: Budget) -> None:
        step = self.step
        running = progress.running_activations(step.snapshot)
        for record in progress.activation_records(step.snapshot):
            if record["status"] != st.PENDING:
                continue
            now = step.now()
            if decide.quota_still_full(
                step.run.get("activationQuotaWait"), running, now
            ) or decide.waiting_for_iam(step.run, now):
                return
            step.ensure_time(budget)
            try:
                record["claimedAt"] = step.now()
                step.store.claim_start(step.export_id, step.run["number"], record)
                running += 1
            except st.Cancelled:
                LOG.info(
                    "export %s was cancelled or superseded: activating nothing", step.export_id
                )
                return
            except st.Conflict:
                step.reload_activation(record)
                continue
            if not self._send_start(record, running):
                return

    def _send_start(
        self, record: st.ActivationRecord, running: int, *, release: bool = True
    ) -> bool:
        step = self.step
        try:
            started = step.call(
                "StartReadSetActivationJob",
                step.omics.start_read_set_activation_job,
                sequenceStoreId=step.request.sequence_store_id,
                sources=[{"readSetId": r} for r in record["readSetIds"]],
                clientToken=activation_client_token(
                    step.export_id, record["run"], record["number"]
                ),
                read_set_ids=record["readSetIds"],
            )
        except QuotaExceeded:
            LOG.info("concurrent activation quota reached at %d running jobs", running - 1)
            step.run["activationQuotaWait"] = {"running": running - 1, "at": step.now()}
            if release:
                record["status"] = st.PENDING
                step.save_activation(record)
            return False
        except NotYetAuthorized:
            step.run.setdefault("accessDeniedSince", step.now())
            if release:
                record["status"] = st.PENDING
                step.save_activation(record)
            return False
        except ExportError as error:
            record["status"] = "FAILED"
            record["statusMessage"] = str(error)
            step.save_activation(record)
            raise
        step.run.pop("activationQuotaWait", None)
        step.run.pop("accessDeniedSince", None)
        self._record_started(record, started)
        LOG.info("started activation job %s for %s", started["id"], record["key"])
        return True

    def _record_started(self, record: st.ActivationRecord, started: dict[str, Any]) -> None:
        record["jobId"] = started["id"]
        record["status"] = started["status"]
        if "creationTime" in started:
            record["creationTime"] = iso_time(started["creationTime"])
        self.step.save_activation(record)
