"""What a runner step does next, decided from the records, what it observed and the time.

Each function here is a decision the shell asks for between its observations and its
actions: what a job's listing or Get means for its record, whether a start may be sent now,
what a refused start means, whether the run ends and how, whether CloudFormation's answer is
due and what it says, how long the runner waits, and how a record saved by someone else in
the meantime is merged. No call, clock or log: the time is an argument.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from . import outcome, progress
from . import records as st
from .model import (
    IAM_PROPAGATION_SECONDS,
    MAX_NAMED,
    QUOTA_RETRY_SECONDS,
    START_OPERATIONS,
    ExportRequest,
    clip,
    iso_time,
    manifest_uri,
    redact,
)

try:  # imported as cdk_omics_export.handler.core.decide (tests, the construct)
    from .. import rules
except ImportError:  # Lambda: the asset's root is on sys.path
    import rules  # type: ignore[import-not-found,no-redef]

# A running job's statuses in the order it moves through them: a listing that shows an earlier
# one than the record holds is stale, and changes nothing.
PROGRESS = {"SUBMITTED": 0, "IN_PROGRESS": 1, "CANCELLING": 2}
# What a step does about a job that ended, or that the listing did not show.
GET = "GET"

Refusal = Literal["QUOTA", "NOT_YET_AUTHORIZED", "MISSING"]
Verdict = Literal["CANCEL", "CONCLUDE", "GO_ON"]
Work = Literal[
    "SELECT",
    "FOLLOW_EXPORTS",
    "FOLLOW_ACTIVATIONS",
    "PLAN_ACTIVATIONS",
    "PLAN_BATCHES",
    "START_ACTIVATIONS",
    "START_EXPORTS",
]


# The step's work


def next_work(snapshot: st.Snapshot, done: frozenset[Work]) -> Work | None:
    """The step's next piece of work, given what it did already: select and check while the
    run is selecting; follow every running job; with activation, follow the activations and
    plan and start what the active read sets allow; start batches. A cancelled export starts
    and plans nothing, but still follows its jobs. None: the step's work is done."""
    record = progress.record_of(snapshot)
    run, cancelled = record["run"], record["cancelled"]
    wanted: list[tuple[Work, bool]] = [
        ("SELECT", run["phase"] == "SELECTING" and not cancelled),
        ("FOLLOW_EXPORTS", True),
    ]
    exporting = run["phase"] == "EXPORTING"
    activating = exporting and progress.activates(run)
    wanted += [
        ("FOLLOW_ACTIVATIONS", activating),
        ("PLAN_ACTIVATIONS", activating and not cancelled),
        ("PLAN_BATCHES", activating and not cancelled),
        ("START_ACTIVATIONS", activating and not cancelled),
        ("START_EXPORTS", exporting and not cancelled),
    ]
    return next((work for work, due in wanted if due and work not in done), None)


# Observing jobs


def seen_in_listing(recorded: str, listed: str | None) -> str | None:
    """What to do about a running job recorded as ``recorded`` that the listing showed as
    ``listed`` (None: not shown): ``GET``, a newer running status to record, or None."""
    if listed is None or listed not in PROGRESS:
        return GET
    if PROGRESS[listed] > PROGRESS.get(recorded, -1):
        return listed
    return None


def with_export_detail(batch: st.BatchRecord, detail: dict[str, Any]) -> st.BatchRecord | None:
    """The batch as GetReadSetExportJob describes its job; None when nothing changed."""
    if detail["status"] == batch["status"]:
        return None
    new: st.BatchRecord = {**batch, "status": detail["status"]}
    if detail.get("statusMessage"):
        new["statusMessage"] = detail["statusMessage"]
    if detail["status"] in st.TERMINAL_JOB_STATUSES:
        new["readSets"] = [
            {k: v for k, v in item.items() if k in ("id", "status", "statusMessage")}  # type: ignore[misc]
            for item in detail.get("readSets", [])
        ]
        if "completionTime" in detail:
            new["completionTime"] = iso_time(detail["completionTime"])
    return new


def with_activation_detail(
    record: st.ActivationRecord, detail: dict[str, Any]
) -> st.ActivationRecord | None:
    """The activation as GetReadSetActivationJob describes its job; None when nothing
    changed."""
    sources: list[st.ActivationSource] = [
        {k: v for k, v in s.items() if k in ("readSetId", "status", "statusMessage")}  # type: ignore[misc]
        for s in detail.get("sources", [])
    ]
    if detail["status"] == record["status"] and sources == record.get("sources"):
        return None
    new: st.ActivationRecord = {**record, "status": detail["status"], "sources": sources}
    if detail.get("statusMessage"):
        new["statusMessage"] = detail["statusMessage"]
    if "completionTime" in detail:
        completed = detail["completionTime"]
        new["completionTime"] = (
            completed.isoformat() if hasattr(completed, "isoformat") else str(completed)
        )
    return new


def with_watched_statuses(
    record: st.ActivationRecord, statuses: dict[str, str]
) -> st.ActivationRecord | None:
    """The watched activation once its read sets' statuses are known (read set id -> its
    status, ``DELETED`` when it is gone); None when nothing changed."""
    sources: list[st.ActivationSource] = []
    for source in record.get("sources", []):
        status = statuses.get(source["readSetId"])
        if source["status"] != "IN_PROGRESS" or status is None or status == "ACTIVATING":
            sources.append(source)
        elif status == "ACTIVE":
            sources.append({**source, "status": "FINISHED"})
        elif status == "ARCHIVED":
            sources.append({**source, "status": "ARCHIVED"})  # activated by us next
        else:
            message = f"read set became {status} while it was activated"
            sources.append({**source, "status": "FAILED", "statusMessage": message})
    if sources == record.get("sources", []):
        return None
    new: st.ActivationRecord = {**record, "sources": sources}
    if all(s["status"] != "IN_PROGRESS" for s in sources):
        failed = any(s["status"] == "FAILED" for s in sources)
        new["status"] = "COMPLETED_WITH_FAILURES" if failed else "COMPLETED"
    return new


def is_lost_start(
    found_ids: list[str], wanted: list[str], job_id: str, known: set[str | None]
) -> bool:
    """Whether a job of the store is the one a lost start made: not one we know, and for
    exactly the read sets of the batch or activation."""
    return job_id not in known and sorted(found_ids) == sorted(wanted)


# Starting


def quota_still_full(wait: st.QuotaWait | None, running: int, now: float) -> bool:
    """The quota refused a start with this many of our jobs running: skip asking again until
    one of them ends, or a while has passed (jobs of others count too)."""
    if wait is None or running < wait["running"]:
        return False
    return now - wait["at"] < QUOTA_RETRY_SECONDS


def waiting_for_iam(run: st.Run, now: float) -> bool:
    since = run.get("accessDeniedSince")
    # Try again on the next poll, not within the same one.
    return since is not None and now - since < 1.0


def refusal(
    operation: str, code: str | None, snapshot: st.Snapshot, now: float, *, missing_ok: bool
) -> Refusal | None:
    """What a refused call means for the step: the quota is full, IAM has not caught up with
    a new role, a read set is missing; None: the export fails."""
    if code == "ServiceQuotaExceededException" and operation in START_OPERATIONS:
        return "QUOTA"
    if code == "ResourceNotFoundException" and missing_ok:
        return "MISSING"
    if code == "AccessDeniedException" and operation in START_OPERATIONS:
        record = progress.record_of(snapshot)
        since = record["run"].get("accessDeniedSince", now)
        if (
            not progress.any_job_started(snapshot)
            and now - record["createdAt"] < IAM_PROPAGATION_SECONDS
            and now - since < IAM_PROPAGATION_SECONDS
        ):
            return "NOT_YET_AUTHORIZED"
    return None


def service_failure(
    operation: str,
    said: str,
    snapshot: st.Snapshot,
    request: ExportRequest,
    *,
    job_id: str | None,
    read_set_ids: list[str],
) -> str:
    """The message of a call that failed: which call, for which job and read sets, what the
    service said (without the filter's values), and the jobs already started."""
    subject = f"sequence store {request.sequence_store_id}"
    if job_id is not None:
        kind = "activation job" if "Activation" in operation else "export job"
        subject = f"{kind} {job_id} in {subject}"
    if read_set_ids:
        subject += f" (read sets {rules.first_of(read_set_ids, MAX_NAMED)})"
    started = [b["jobId"] for b in snapshot.ordered_batches() if "jobId" in b]
    so_far = ""
    if started:
        so_far = (
            f" Export jobs already started: {rules.first_of(started, MAX_NAMED)}"
            f" (manifest {manifest_uri(request.destination, request.export_id)})."
        )
    message = f"{operation} failed for {subject}: {redact(said, snapshot.record)}"
    return clip(f"{message}.{so_far}" if so_far else message)


# Ending


def verdict(snapshot: st.Snapshot) -> Verdict:
    """Whether the run ends now: cancelled (a Delete), or exporting with nothing left to
    start or follow and no selected read set in flight; else it goes on."""
    record = progress.record_of(snapshot)
    run = record["run"]
    if record["cancelled"] and run["phase"] != "ENDED":
        return "CANCEL"
    if (
        run["phase"] == "EXPORTING"
        and not progress.batches_left_to_start(snapshot)
        and not progress.activations_left_to_start(snapshot)
        and not any(progress.in_flight(b) for b in progress.watched(snapshot))
        # No selected read set is still in flight (or being activated), in whichever run.
        and outcome.counts(snapshot).in_flight == 0
    ):
        return "CONCLUDE"
    return "GO_ON"


def conclusion(snapshot: st.Snapshot, request: ExportRequest) -> tuple[str, str | None]:
    """The final status of a run with nothing left to do, and its reason (None: none is
    shown; a partial failure that is allowed is logged instead)."""
    tally = outcome.counts(snapshot)
    if tally.failed == 0:
        return "COMPLETED", None
    status = "FAILED" if tally.exported == 0 else "COMPLETED_WITH_FAILURES"
    if status == "COMPLETED_WITH_FAILURES" and progress.run_of(snapshot)["allowPartialFailure"]:
        return status, None
    return status, outcome.failure_message(snapshot, request)


def cancellation(snapshot: st.Snapshot, request: ExportRequest) -> str:
    """Why a run ends CANCELLED: the resource was deleted, and which jobs ran then."""
    running = [
        b.get("jobId") or b["key"] for b in progress.watched(snapshot) if progress.in_flight(b)
    ]
    reason = f"Export {request.export_id} was cancelled (its resource was deleted)."
    if running:
        reason += (
            f" Jobs running then: {', '.join(running)}. HealthOmics cannot cancel a job: "
            f"their files may still arrive at {request.destination}; the manifest's "
            "jobs show their last known status."
        )
    return reason


def ended(
    record: st.ExportRecord, status: str, reason: str | None
) -> tuple[st.ExportRecord, list[str]]:
    """The record with its run ended at ``status`` (the reason without the filter's values),
    and the statuses it moved through, for the events."""
    new, passed = moved_to({**record, "run": {**record["run"], "phase": "ENDED"}}, status)
    if reason:
        new["statusReason"] = redact(reason, new)
    else:
        new.pop("statusReason", None)
    return new, passed


def moved_to(record: st.ExportRecord, status: str) -> tuple[st.ExportRecord, list[str]]:
    """The record at ``status``, and the status if it is a new one (for the events)."""
    if record["status"] == status:
        return record, []
    return {**record, "status": status}, [status]


def activations_done(snapshot: st.Snapshot) -> bool:
    """An ACTIVATING export that no read set waits on is RUNNING."""
    record = progress.record_of(snapshot)
    return (
        record["run"]["phase"] == "EXPORTING"
        and record["status"] == st.ACTIVATING
        and progress.awaited(snapshot) == 0
    )


# Answering CloudFormation and waiting


def due_answer(
    snapshot: st.Snapshot, request: ExportRequest, now: float
) -> tuple[Literal["SUCCESS", "FAILED"], str] | None:
    """The answer the run's request is owed now, if any: at the end; once selected and checked
    without waiting; or the timeout message at the deadline."""
    record = progress.record_of(snapshot)
    run = record["run"]
    if run.get("answered"):
        return None
    if run["phase"] == "ENDED":
        return _final_answer(record, request)
    if not run["wait"] and run["phase"] == "EXPORTING":
        # Selected and checked: the runner carries the rest after the deploy.
        return "SUCCESS", ""
    deadline = run.get("deadline")
    if deadline is not None and now >= deadline:
        # The runner goes on: the rollback cancels the export (a Create) or gives it the
        # earlier properties (an Update), and the run then starts nothing more.
        return "FAILED", outcome.timeout_message(snapshot, request)
    return None


def _final_answer(
    record: st.ExportRecord, request: ExportRequest
) -> tuple[Literal["SUCCESS", "FAILED"], str]:
    if record["cancelled"] and record["status"] == "CANCELLED":
        return "FAILED", f"Export {request.export_id} was cancelled (its resource was deleted)."
    if record.get("statusReason"):
        return "FAILED", record["statusReason"]
    return "SUCCESS", ""


def next_wait(snapshot: st.Snapshot, poll_interval: int, now: float) -> int:
    """How long the runner waits before its next step: the poll interval, or less while
    batches wait for the concurrent-job quota, and never past the deadline of an answer still
    owed, so the timeout is answered on time."""
    run = progress.run_of(snapshot)
    wait = poll_interval
    # Not for the activation quota: activations take hours, and ours are polled anyway.
    if (
        run["phase"] == "EXPORTING"
        and "quotaWait" in run
        and progress.batches_left_to_start(snapshot)
    ):
        wait = min(poll_interval, rules.CAPACITY_POLL_SECONDS)
    deadline = run.get("deadline")
    if deadline is not None and not run.get("answered"):
        wait = min(wait, max(1, math.ceil(deadline - now)))
    return wait


# Saving


def merged(
    mine: st.ExportRecord, theirs: st.ExportRecord | None, runner_name: str | None
) -> st.ExportRecord:
    """This step's record, to save again over one someone else saved since it was read: their
    version, their runner (only a takeover changes it) and their cancellation mark kept.
    Raises ``Cancelled`` when a newer run, or another runner execution, has the export."""
    if theirs is None or theirs["run"]["number"] != mine["run"]["number"]:
        raise st.Cancelled(f"export {mine['exportId']} was taken over by a newer request")
    new: st.ExportRecord = {**mine, "version": theirs["version"]}
    runner = theirs.get("runner")
    if runner is not None:
        if runner_name not in (None, runner["name"]):
            raise st.Cancelled(
                f"export {mine['exportId']} is carried by runner execution {runner['name']} now"
            )
        new["runner"] = runner
    if theirs["cancelled"]:
        new["cancelled"] = True
        if new["status"] not in st.FINAL_STATUSES:
            new["status"] = "CANCELLED"
    return new
