"""The export jobs of an export: found again when a start was lost, started as the quota
allows, each with a client token and claimed first, and followed with one listing a step.
What a listing or a Get means for a batch, and whether a start may go now, is the core's
(``core/decide.py``); this module makes the calls and saves what they said."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

try:  # imported as cdk_omics_export.handler.batches (tests, the construct)
    from . import observe
    from . import state as st
    from .core import decide, progress
    from .core.model import STARTED_JOB_LOOKBACK_SECONDS, batch_client_token, iso_time
    from .errors import ExportError, NotYetAuthorized, QuotaExceeded
    from .step import Budget, Step
except ImportError:  # Lambda: the asset's root is on sys.path
    import observe  # type: ignore[import-not-found,no-redef]
    import state as st  # type: ignore[import-not-found,no-redef]
    from core import decide, progress  # type: ignore[import-not-found,no-redef]
    from core.model import (  # type: ignore[import-not-found,no-redef]
        STARTED_JOB_LOOKBACK_SECONDS,
        batch_client_token,
        iso_time,
    )
    from errors import (  # type: ignore[import-not-found,no-redef]
        ExportError,
        NotYetAuthorized,
        QuotaExceeded,
    )
    from step import Budget, Step  # type: ignore[import-not-found,no-redef]

LOG = logging.getLogger("cdk_omics_export.handler.export")


class ExportJobs:
    """The export jobs of one export, as one step sees them."""

    def __init__(self, step: Step) -> None:
        self.step = step

    def follow(self, budget: Budget) -> None:
        """Record the progress of every running job of this export, whichever run started it:
        one listing shows them all, and only a job that ended (or that the listing missed) is
        asked for with its own Get (``observe.py``)."""
        step = self.step
        self.resolve_starting(budget)
        running = [
            b
            for b in step.snapshot.ordered_batches()
            if b["status"] in st.RUNNING_JOB_STATUSES and "jobId" in b
        ]
        listed = observe.listed_statuses(
            step,
            operation="ListReadSetExportJobs",
            method=step.omics.list_read_set_export_jobs,
            items="exportJobs",
            running=[observe.running(b, step.record["createdAt"]) for b in running],
            budget=budget,
        )
        for batch in running:
            seen = decide.seen_in_listing(batch["status"], listed.get(batch["jobId"]))
            if seen is None:
                continue
            if seen != decide.GET:
                batch["status"] = seen
                step.save_batch(batch)
                continue
            step.ensure_time(budget)
            detail = step.call(
                "GetReadSetExportJob",
                step.omics.get_read_set_export_job,
                sequenceStoreId=step.request.sequence_store_id,
                id=batch["jobId"],
                job_id=batch["jobId"],
            )
            step.update_batch(batch, decide.with_export_detail(batch, detail))

    def resolve_starting(self, budget: Budget) -> None:
        """Batches left STARTING by a step that died between claiming a batch and recording
        its job, in this run or an earlier one (the lease is held: no step is sending now).
        HealthOmics may have accepted the start: the job is looked for among the store's
        export jobs, and adopted; otherwise the start is sent again with its client token.
        Never left as it is: a run ends only once none is STARTING."""
        step = self.step
        for batch in step.snapshot.ordered_batches():
            if batch["status"] != st.STARTING:
                continue
            step.ensure_time(budget)
            found = self._find_started_job(batch, budget)
            if found is not None:
                job_id = found["id"]
                LOG.info("%s was started before as job %s: following it", batch["key"], job_id)
                # Its creation time bounds the listings that follow it.
                self._record_started(
                    batch,
                    {"id": job_id, "status": "SUBMITTED", "creationTime": found["creationTime"]},
                )
                continue
            if step.record["cancelled"]:
                LOG.info("%s never started and the export is cancelled", batch["key"])
                batch["status"] = st.SUPERSEDED
                step.save_batch(batch)
                continue
            if not self._send_start(batch, step.running_batches(), release=False):
                return  # the quota or IAM holds it back: it stays STARTING until it starts

    def _find_started_job(self, batch: st.BatchRecord, budget: Budget) -> dict[str, Any] | None:
        """The job a lost start made for this batch: one of the store's export jobs created
        since the batch was claimed, with its destination and exactly its read sets."""
        step = self.step
        claimed = batch.get("claimedAt", step.run["startedAt"])
        request: dict[str, Any] = {
            "sequenceStoreId": step.request.sequence_store_id,
            "maxResults": 100,
            "filter": {
                "createdAfter": datetime.fromtimestamp(claimed - STARTED_JOB_LOOKBACK_SECONDS, UTC)
            },
        }
        while True:
            step.ensure_time(budget)
            page = step.call(
                "ListReadSetExportJobs", step.omics.list_read_set_export_jobs, **request
            )
            known = {b.get("jobId") for b in step.snapshot.batches.values()}
            for job in page.get("exportJobs", []):
                if job.get("destination") != step.request.destination or job["id"] in known:
                    continue
                step.ensure_time(budget)
                detail = step.call(
                    "GetReadSetExportJob",
                    step.omics.get_read_set_export_job,
                    sequenceStoreId=step.request.sequence_store_id,
                    id=job["id"],
                    job_id=job["id"],
                )
                found = [r["id"] for r in detail.get("readSets", [])]
                if decide.is_lost_start(found, batch["readSetIds"], job["id"], known):
                    return dict(job)
            if not page.get("nextToken"):
                return None
            request["nextToken"] = page["nextToken"]

    def start(self, budget: Budget) -> None:
        """Start this run's planned batches while the quota and IAM allow."""
        step = self.step
        running = step.running_batches()
        for batch in progress.run_batches(step.snapshot):
            if batch["status"] != st.PENDING:
                continue
            now = step.now()
            if decide.quota_still_full(
                step.run.get("quotaWait"), running, now
            ) or decide.waiting_for_iam(step.run, now):
                return
            step.ensure_time(budget)
            try:
                batch["claimedAt"] = step.now()
                step.store.claim_start(step.export_id, step.run["number"], batch)
                running += 1
            except st.Cancelled:
                LOG.info("export %s was cancelled or superseded: starting nothing", step.export_id)
                return
            except st.Conflict:
                step.reload_batch(batch)
                continue
            if not self._send_start(batch, running):
                return

    def _send_start(self, batch: st.BatchRecord, running: int, *, release: bool = True) -> bool:
        """Send the batch's start (STARTING) and record its job; False when the quota or IAM
        holds starts back for now (the batch is PENDING again, with ``release``)."""
        step = self.step
        try:
            started = step.call(
                "StartReadSetExportJob",
                step.omics.start_read_set_export_job,
                sequenceStoreId=step.request.sequence_store_id,
                destination=step.request.destination,
                roleArn=step.request.role_arn,
                sources=[{"readSetId": r} for r in batch["readSetIds"]],
                clientToken=batch_client_token(step.export_id, batch["run"], batch["number"]),
                read_set_ids=batch["readSetIds"],
            )
        except QuotaExceeded:
            LOG.info("concurrent export job quota reached at %d running jobs", running - 1)
            step.run["quotaWait"] = {"running": running - 1, "at": step.now()}
            if release:
                batch["status"] = st.PENDING
                step.save_batch(batch)
            return False
        except NotYetAuthorized:
            step.run.setdefault("accessDeniedSince", step.now())
            if release:
                batch["status"] = st.PENDING
                step.save_batch(batch)
            return False
        except ExportError as error:
            batch["status"] = "FAILED"
            batch["statusMessage"] = str(error)
            step.save_batch(batch)
            raise
        step.run.pop("quotaWait", None)
        step.run.pop("accessDeniedSince", None)
        self._record_started(batch, started)
        LOG.info("started export job %s for %s", started["id"], batch["key"])
        return True

    def _record_started(self, batch: st.BatchRecord, started: dict[str, Any]) -> None:
        step = self.step
        batch["jobId"] = started["id"]
        batch["status"] = started["status"]
        if "creationTime" in started:
            batch["creationTime"] = iso_time(started["creationTime"])
        if batch["run"] == step.run["number"] and started["id"] not in step.run["jobIds"]:
            step.run["jobIds"].append(started["id"])
        step.save_batch(batch)
