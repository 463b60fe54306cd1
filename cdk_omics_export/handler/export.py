"""One export, carried forward one runner step at a time.

An export is a record in the service's state table (see ``state.py``), not work done inside
one request. Each Create or Update of the custom resource starts a *run* of the export: it
selects read sets, plans batches of at most 100 for those that are neither exported nor in
flight, checks them (the pre-flight), then starts them as the concurrent-job quota allows
and follows them to their end. The service's runner (a Step Functions execution) does that
work, one step at a time: each step loads the state, advances as far as its time allows,
and saves what changed, conditional on what it read. So a rollback to an earlier selection
starts nothing, adding one id exports one read set, reordering ids changes nothing, and a
failed or cancelled export is resumed by the next deploy, which skips what completed.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

try:  # imported as cdk_omics_export.handler.export (tests, the construct)
    from . import activation, observe, outcome, reporting, rules, selection
    from . import state as st
    from .errors import ExportError, NotYetAuthorized, OutOfTime, QuotaExceeded, ReadSetMissing
except ImportError:  # Lambda: the asset's root is on sys.path
    import activation  # type: ignore[import-not-found,no-redef]
    import observe  # type: ignore[import-not-found,no-redef]
    import outcome  # type: ignore[import-not-found,no-redef]
    import reporting  # type: ignore[import-not-found,no-redef]
    import rules  # type: ignore[import-not-found,no-redef]
    import selection  # type: ignore[import-not-found,no-redef]
    import state as st  # type: ignore[import-not-found,no-redef]
    from errors import (  # type: ignore[import-not-found,no-redef]
        ExportError,
        NotYetAuthorized,
        OutOfTime,
        QuotaExceeded,
        ReadSetMissing,
    )

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef
    from mypy_boto3_omics import OmicsClient
    from mypy_boto3_s3 import S3Client

# Callers and tests name the errors exports.ExportError, exports.OutOfTime, ...
__all__ = [
    "Budget",
    "Counts",
    "Export",
    "ExportError",
    "ExportRequest",
    "NotYetAuthorized",
    "OutOfTime",
    "QuotaExceeded",
    "ReadSetMissing",
]

LOG = logging.getLogger(__name__)

MANIFEST_FOLDER = "cdk-omics-export/"
# CloudFormation shows the reason of a failed resource from a response of at most 4,096
# bytes, which also carries ids and Data.
MAX_MESSAGE_LENGTH = 1000
START_OPERATIONS = frozenset({"StartReadSetExportJob", "StartReadSetActivationJob"})
# What a filter selects: with activation, archived read sets too; never deleted or failed ones.
SELECTABLE = frozenset({"ACTIVE", "ARCHIVED", "ACTIVATING"})
MAX_NAMED = 10
MAX_JOBS_NAMED = 20
MAX_EVENT_JOBS = 200
# Time kept back from the invocation's budget for saving the state and the manifest.
RESERVE_SECONDS = 5.0
# How long a refusal by the concurrent-job quota holds before starting is tried again anyway.
QUOTA_RETRY_SECONDS = 300.0
# IAM is eventually consistent: a role created moments ago may not be usable yet.
IAM_PROPAGATION_SECONDS = 300.0
# A job a lost start made was created after its batch was claimed; clocks differ a little.
STARTED_JOB_LOOKBACK_SECONDS = 300.0


@dataclass(frozen=True)
class ExportRequest:
    """What the custom resource's properties ask for, parsed and checked."""

    stack_id: str
    construct_path: str
    destination: str
    generation: int
    sequence_store_id: str
    role_arn: str
    selection: st.SelectionSpec
    encryption: st.Encryption
    wait: bool = True
    allow_partial_failure: bool = False
    timeout_seconds: int = rules.DEFAULT_TIMEOUT_SECONDS
    poll_interval_seconds: int = rules.DEFAULT_POLL_INTERVAL_SECONDS
    archived_read_sets: str = rules.ArchivedReadSets.ACTIVATE.value

    @property
    def export_id(self) -> str:
        return export_id_of(self.stack_id, self.construct_path, self.destination, self.generation)

    @classmethod
    def of_record(cls, record: st.ExportRecord, poll_interval_seconds: int) -> ExportRequest:
        """What the export's current run asks for, as its record keeps it (the runner works
        from the state, not from CloudFormation's request)."""
        run = record["run"]
        timeout = run.get("deadline", run["startedAt"]) - run["startedAt"]
        return cls(
            stack_id=record["stackId"],
            construct_path=record["constructPath"],
            destination=record["destination"],
            generation=record["generation"],
            sequence_store_id=record["sequenceStoreId"],
            role_arn=record["roleArn"],
            selection=run["selection"],
            encryption=record["encryption"],
            wait=run["wait"],
            allow_partial_failure=run["allowPartialFailure"],
            timeout_seconds=int(timeout) or rules.DEFAULT_TIMEOUT_SECONDS,
            poll_interval_seconds=poll_interval_seconds,
            # A run recorded before activation existed failed on archived read sets.
            archived_read_sets=run.get("archivedReadSets", rules.ArchivedReadSets.FAIL.value),
        )


def export_id_of(stack_id: str, construct_path: str, destination: str, generation: int) -> str:
    """The export's id, and the resource's physical id: from these four and nothing else, so
    every request for the same export (a retry, an update, a rollback, a Delete whose physical
    id CloudFormation made up) finds the same state."""
    seed = "\n".join((stack_id, construct_path, destination, str(generation)))
    return "rse-" + hashlib.sha256(seed.encode()).hexdigest()[:28]


class Budget:
    """How long this invocation may keep calling services."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._end = clock() + seconds

    def left(self) -> float:
        return self._end - self._clock()

    def allows_a_call(self) -> bool:
        return self.left() > RESERVE_SECONDS


def manifest_location(destination: str, export_id: str) -> tuple[str, str]:
    bucket, _, prefix = destination.removeprefix("s3://").partition("/")
    return bucket, f"{prefix}{MANIFEST_FOLDER}{export_id}.json"


def manifest_uri(destination: str, export_id: str) -> str:
    bucket, key = manifest_location(destination, export_id)
    return f"s3://{bucket}/{key}"


def runner_name(export_id: str, run: int, segment: int) -> str:
    """The runner execution's name: the export and the work it carries. Starting the same
    one twice (a redelivered request) is harmless; a closed one's name is never reused."""
    return f"{export_id}-{run}-{segment}"


def execution_arn(state_machine_arn: str, name: str) -> str:
    """The ARN of the runner execution ``name`` of that state machine."""
    head, _, machine = state_machine_arn.rpartition(":stateMachine:")
    return f"{head}:execution:{machine}:{name}"


def batch_client_token(export_id: str, run: int, number: int) -> str:
    """The same batch always sends the same token: a retried start makes no second job."""
    token = hashlib.sha256(f"{export_id}/{run}/{number}".encode()).hexdigest()
    return token[: rules.CLIENT_TOKEN_MAX_LENGTH]


@dataclass
class Counts:
    selected: int = 0
    exported: int = 0
    failed: int = 0
    in_flight: int = 0
    activating: int = 0  # of in_flight: not active yet
    failures: list[str] = field(default_factory=list)  # "<id> (<message>)", first few


class Export:
    """Advances one export's state through HealthOmics, within a budget."""

    def __init__(
        self,
        store: st.StateStore,
        omics: OmicsClient,
        request: ExportRequest,
        *,
        load_list: Callable[[str], list[str]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.omics = omics
        self.request = request
        self.export_id = request.export_id
        self._load_list = load_list
        self._clock = clock
        self.snapshot = st.Snapshot(None, {}, {})
        # The runner execution this step belongs to (None outside the runner): a save that
        # finds another execution has taken the export over stops this one.
        self.runner_name: str | None = None
        # Export statuses this invocation moved through, for the status-change events.
        self.passed_statuses: list[str] = []
        # The runner's state machine, so the manifest and events can name its execution.
        self.state_machine_arn = ""
        self.activations = activation.Activations(self)
        self._selection = selection.Selection(self)
        self._outcome = outcome.Outcome(self)
        self._report = reporting.Report(self)

    # The record

    @property
    def record(self) -> st.ExportRecord:
        record = self.snapshot.record
        if record is None:
            raise ExportError(
                f"The state of export {self.export_id} is missing from the service's state "
                "table (was the table or the item removed?). Nothing is reported as exported; "
                "deploy again to rebuild the export (completed read sets are exported again)."
            )
        return record

    @property
    def run(self) -> st.Run:
        return self.record["run"]

    def load(self) -> st.Snapshot:
        self.snapshot = self.store.load(self.export_id)
        return self.snapshot

    def begin(self, request_id: str, request_type: str, started_at: float) -> str | None:
        """Make this request the export's current run; a redelivered request keeps its run.
        Returns the request id of the run this one replaced, if its answer may be owed."""
        while True:
            snapshot = self.load()
            record = snapshot.record
            if record is not None and record["run"]["requestId"] == request_id:
                LOG.info("request %s already runs export %s", request_id, self.export_id)
                return None
            try:
                # Batches an earlier run planned but never started give way to this run's.
                for batch in snapshot.ordered_batches():
                    if batch["status"] == st.PENDING:
                        batch["status"] = st.SUPERSEDED
                        self.store.save_batch(self.export_id, batch)
                for pending in snapshot.ordered_activations():
                    if pending["status"] in (st.PENDING, st.WATCHING):
                        pending["status"] = st.SUPERSEDED
                        self.store.save_activation(self.export_id, pending)
                self.snapshot.record = self._new_run(record, request_id, request_type, started_at)
                self.store.save_record(self.record)
                if record is None or record["run"].get("answered"):
                    return None
                return record["run"]["requestId"]
            except st.Conflict:
                LOG.info("export %s changed while a run began; reading it again", self.export_id)

    def _new_run(
        self,
        record: st.ExportRecord | None,
        request_id: str,
        request_type: str,
        started_at: float,
    ) -> st.ExportRecord:
        request = self.request
        run: st.Run = {
            "number": record["runs"] if record is not None else 0,
            "requestId": request_id,
            "requestType": request_type,
            "startedAt": started_at,
            "wait": request.wait,
            "allowPartialFailure": request.allow_partial_failure,
            "archivedReadSets": request.archived_read_sets,
            "selection": request.selection,
            "phase": "SELECTING",
            "preflight": {"checked": 0, "problems": [], "problemCount": 0, "archived": False},
            "planned": False,
            "batches": 0,
            "followed": [],
            "jobIds": [],
        }
        # The deploy waits at most this long: for the jobs' end or, without waiting, for the
        # runner to have selected and checked the read sets.
        run["deadline"] = started_at + request.timeout_seconds
        fresh: st.ExportRecord = {
            "schema": st.SCHEMA_VERSION,
            "exportId": self.export_id,
            "stackId": request.stack_id,
            "constructPath": request.construct_path,
            "destination": request.destination,
            "generation": request.generation,
            "sequenceStoreId": request.sequence_store_id,
            "roleArn": request.role_arn,
            "encryption": request.encryption,
            "status": st.SUBMITTED,
            "cancelled": False,
            "createdAt": record["createdAt"] if record is not None else started_at,
            "updatedAt": started_at,
            "runs": run["number"] + 1,
            "run": run,
            "version": record["version"] if record is not None else 0,
        }
        for kept in ("manifestDigest", "eventDigest"):
            if record is not None and kept in record:
                fresh[kept] = record[kept]
        self.passed_statuses.append(st.SUBMITTED)
        return fresh

    def is_current_run(self, request_id: str) -> bool:
        return self.run["requestId"] == request_id

    # Progress

    def advance(self, budget: Budget) -> None:
        """Do what the budget allows: select and check, follow running jobs, start batches."""
        try:
            if self.run["phase"] == "SELECTING" and not self.record["cancelled"]:
                self._select(budget)
            self._follow(budget)
            if self.run["phase"] == "EXPORTING" and self.activates():
                self.activations.follow(budget)
                if not self.record["cancelled"]:
                    self.activations.plan()
                    self._plan_batches(self.activations.ready())
                    self.activations.start(budget)
            if self.run["phase"] == "EXPORTING" and not self.record["cancelled"]:
                self._start(budget)
        except OutOfTime:
            LOG.info("out of time for this invocation; the next poll carries on")
        except ExportError as error:
            self._end("FAILED", str(error))
            raise

    # Selection, planning and the pre-flight (selection.py)
    def activates(self) -> bool:
        return self._selection.activates()

    def selection(self) -> st.SelectionRecord | None:
        return self._selection.selection()

    def run_batches(self) -> list[st.BatchRecord]:
        return self._selection.run_batches()

    def todo(self) -> list[str]:
        return self._selection.todo()

    def activation_notice(self) -> str:
        return self._selection.activation_notice()

    def _select(self, budget: Budget) -> None:
        return self._selection._select(budget)

    def _plan_batches(self, ready: list[str]) -> None:
        return self._selection._plan_batches(ready)

    # Jobs

    def _follow(self, budget: Budget) -> None:
        """Record the progress of every running job of this export, whichever run started it:
        one listing shows them all, and only a job that ended (or that the listing missed) is
        asked for with its own Get (``observe.py``)."""
        self._resolve_starting(budget)
        running = [
            b
            for b in self.snapshot.ordered_batches()
            if b["status"] in st.RUNNING_JOB_STATUSES and "jobId" in b
        ]
        listed = observe.listed_statuses(
            self,
            operation="ListReadSetExportJobs",
            method=self.omics.list_read_set_export_jobs,
            items="exportJobs",
            running=[self._running_job(b) for b in running],
            budget=budget,
        )
        for batch in running:
            seen = observe.decide(batch["status"], listed.get(batch["jobId"]))
            if seen is None:
                continue
            if seen != observe.GET:
                batch["status"] = seen
                self._save_batch_or_reload(batch)
                continue
            self._ensure_time(budget)
            detail = self._call(
                "GetReadSetExportJob",
                self.omics.get_read_set_export_job,
                sequenceStoreId=self.request.sequence_store_id,
                id=batch["jobId"],
                job_id=batch["jobId"],
            )
            if detail["status"] == batch["status"]:
                continue
            batch["status"] = detail["status"]
            if detail.get("statusMessage"):
                batch["statusMessage"] = detail["statusMessage"]
            if detail["status"] in st.TERMINAL_JOB_STATUSES:
                batch["readSets"] = [
                    {k: v for k, v in item.items() if k in ("id", "status", "statusMessage")}  # type: ignore[misc]
                    for item in detail.get("readSets", [])
                ]
                if "completionTime" in detail:
                    batch["completionTime"] = iso_time(detail["completionTime"])
            self._save_batch_or_reload(batch)

    def _running_job(self, batch: st.BatchRecord) -> observe.Running:
        return observe.Running(
            job_id=batch["jobId"],
            status=batch["status"],
            since=observe.since(
                batch.get("creationTime"), batch.get("claimedAt"), self.record["createdAt"]
            ),
        )

    def _resolve_starting(self, budget: Budget) -> None:
        """Batches left STARTING by a step that died between claiming a batch and recording
        its job, in this run or an earlier one (the lease is held: no step is sending now).
        HealthOmics may have accepted the start: the job is looked for among the store's
        export jobs, and adopted; otherwise the start is sent again with its client token.
        Never left as it is: a run ends only once none is STARTING."""
        for batch in self.snapshot.ordered_batches():
            if batch["status"] != st.STARTING:
                continue
            self._ensure_time(budget)
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
            if self.record["cancelled"]:
                LOG.info("%s never started and the export is cancelled", batch["key"])
                batch["status"] = st.SUPERSEDED
                self._save_batch_or_reload(batch)
                continue
            if not self._send_start(batch, self._running(), release=False):
                return  # the quota or IAM holds it back: it stays STARTING until it starts

    def _find_started_job(self, batch: st.BatchRecord, budget: Budget) -> dict[str, Any] | None:
        """The job a lost start made for this batch: one of the store's export jobs created
        since the batch was claimed, with its destination and exactly its read sets."""
        claimed = batch.get("claimedAt", self.run["startedAt"])
        wanted = sorted(batch["readSetIds"])
        request: dict[str, Any] = {
            "sequenceStoreId": self.request.sequence_store_id,
            "maxResults": 100,
            "filter": {"createdAfter": _as_datetime(claimed - STARTED_JOB_LOOKBACK_SECONDS)},
        }
        while True:
            self._ensure_time(budget)
            page = self._call(
                "ListReadSetExportJobs", self.omics.list_read_set_export_jobs, **request
            )
            for job in page.get("exportJobs", []):
                if job.get("destination") != self.request.destination:
                    continue
                if any(b.get("jobId") == job["id"] for b in self.snapshot.batches.values()):
                    continue
                self._ensure_time(budget)
                detail = self._call(
                    "GetReadSetExportJob",
                    self.omics.get_read_set_export_job,
                    sequenceStoreId=self.request.sequence_store_id,
                    id=job["id"],
                    job_id=job["id"],
                )
                if sorted(r["id"] for r in detail.get("readSets", [])) == wanted:
                    return dict(job)
            if not page.get("nextToken"):
                return None
            request["nextToken"] = page["nextToken"]

    def _start(self, budget: Budget) -> None:
        running = self._running()
        for batch in self.run_batches():
            if batch["status"] != st.PENDING:
                continue
            if self._quota_still_full(running) or self._waiting_for_iam():
                return
            self._ensure_time(budget)
            try:
                batch["claimedAt"] = self._clock()
                self.store.claim_start(self.export_id, self.run["number"], batch)
                running += 1
            except st.Cancelled:
                LOG.info("export %s was cancelled or superseded: starting nothing", self.export_id)
                return
            except st.Conflict:
                self._reload_batch(batch)
                continue
            if not self._send_start(batch, running):
                return

    def _running(self) -> int:
        return sum(1 for batch in self.snapshot.batches.values() if _in_flight(batch))

    def _send_start(self, batch: st.BatchRecord, running: int, *, release: bool = True) -> bool:
        """Send the batch's start (STARTING) and record its job; False when the quota or IAM
        holds starts back for now (the batch is PENDING again, with ``release``)."""
        try:
            started = self._call(
                "StartReadSetExportJob",
                self.omics.start_read_set_export_job,
                sequenceStoreId=self.request.sequence_store_id,
                destination=self.request.destination,
                roleArn=self.request.role_arn,
                sources=[{"readSetId": r} for r in batch["readSetIds"]],
                clientToken=batch_client_token(self.export_id, batch["run"], batch["number"]),
                read_set_ids=batch["readSetIds"],
            )
        except QuotaExceeded:
            LOG.info("concurrent export job quota reached at %d running jobs", running - 1)
            self.run["quotaWait"] = {"running": running - 1, "at": self._clock()}
            if release:
                self._unclaim(batch)
            return False
        except NotYetAuthorized:
            self.run.setdefault("accessDeniedSince", self._clock())
            if release:
                self._unclaim(batch)
            return False
        except ExportError as error:
            batch["status"] = "FAILED"
            batch["statusMessage"] = str(error)
            self._save_batch_or_reload(batch)
            raise
        self.run.pop("quotaWait", None)
        self.run.pop("accessDeniedSince", None)
        self._record_started(batch, started)
        LOG.info("started export job %s for %s", started["id"], batch["key"])
        return True

    def _record_started(self, batch: st.BatchRecord, started: dict[str, Any]) -> None:
        batch["jobId"] = started["id"]
        batch["status"] = started["status"]
        if "creationTime" in started:
            batch["creationTime"] = iso_time(started["creationTime"])
        if batch["run"] == self.run["number"] and started["id"] not in self.run["jobIds"]:
            self.run["jobIds"].append(started["id"])
        self._save_batch_or_reload(batch)

    def _unclaim(self, batch: st.BatchRecord) -> None:
        batch["status"] = st.PENDING
        self._save_batch_or_reload(batch)

    def _quota_still_full(self, running: int) -> bool:
        """The quota refused a start with this many of our jobs running: skip asking again
        until one of them ends, or a while has passed (jobs of others count too)."""
        wait = self.run.get("quotaWait")
        if wait is None or running < wait["running"]:
            return False
        return self._clock() - wait["at"] < QUOTA_RETRY_SECONDS

    def _waiting_for_iam(self) -> bool:
        since = self.run.get("accessDeniedSince")
        # Try again on the next poll, not within the same one.
        return since is not None and self._clock() - since < 1.0

    # Ending

    def settle(self) -> bool:
        """End the run once nothing is left to start or follow, and save. True when the
        runner's work is over: the run ended and no job of the export is running (a cancelled
        or failed run still records its running jobs' outcomes)."""
        run = self.run
        if self.record["cancelled"] and run["phase"] != "ENDED":
            self._end("CANCELLED")
        elif (
            run["phase"] == "EXPORTING"
            and self._nothing_left_to_start()
            and self.activations.nothing_left_to_start()
            and not any(_in_flight(b) for b in self._watched())
            # No selected read set is still in flight (or being activated), in whichever run.
            and self.counts().in_flight == 0
        ):
            self._conclude_exporting()
        else:
            if run["phase"] == "EXPORTING" and self.record["status"] == st.ACTIVATING:
                if self.activations.awaited() == 0:
                    self._set_status(st.RUNNING)
            self.save_record()
        return self.runner_done()

    def next_wait_seconds(self, poll_interval: int) -> int:
        """How long the runner waits before its next step: the poll interval, or less while
        batches wait for the concurrent-job quota."""
        # Not for the activation quota: activations take hours, and ours are polled anyway.
        if (
            self.run["phase"] == "EXPORTING"
            and "quotaWait" in self.run
            and not self._nothing_left_to_start()
        ):
            return min(poll_interval, rules.CAPACITY_POLL_SECONDS)
        return poll_interval

    def runner_done(self) -> bool:
        return self.run["phase"] == "ENDED" and not any(
            _in_flight(b) for b in self.snapshot.batches.values()
        )

    def _nothing_left_to_start(self) -> bool:
        return not any(b["status"] in (st.PENDING, st.STARTING) for b in self.run_batches())

    def _watched(self) -> list[st.BatchRecord]:
        """This run's batches and the earlier runs' in-flight batches it counts on."""
        return self.run_batches() + [
            self.snapshot.batches[key]
            for key in self.run["followed"]
            if key in self.snapshot.batches
        ]

    def _conclude_exporting(self) -> None:
        status = self._outcome_status()
        if status is None:
            self._end("COMPLETED")
            return
        message = self.failure_message()
        if status == "COMPLETED_WITH_FAILURES" and self.run["allowPartialFailure"]:
            LOG.warning("%s", message)
            self._end(status)
            return
        self._end(status, message)

    def _outcome_status(self) -> str | None:
        """None when every selected read set is exported; otherwise how it went."""
        counts = self.counts()
        if counts.failed == 0:
            return None
        return "FAILED" if counts.exported == 0 else "COMPLETED_WITH_FAILURES"

    def _set_status(self, status: str) -> None:
        if self.record["status"] != status:
            self.record["status"] = status
            self.passed_statuses.append(status)

    def end_cancelled(self) -> None:
        """End the run CANCELLED at once (the resource was deleted), naming the jobs still
        running: the state and the manifest are final even when the service goes next
        (``cdk destroy`` deletes the runner with the stack). A runner that lives on records
        those jobs' outcomes later; the status stays CANCELLED."""
        if self.run["phase"] == "ENDED":
            return
        running = [b.get("jobId") or b["key"] for b in self._watched() if _in_flight(b)]
        reason = f"Export {self.export_id} was cancelled (its resource was deleted)."
        if running:
            reason += (
                f" Jobs running then: {', '.join(running)}. HealthOmics cannot cancel a job: "
                f"their files may still arrive at {self.request.destination}; the manifest's "
                "jobs show their last known status."
            )
        self._end("CANCELLED", reason)

    def _end(self, status: str, reason: str | None = None) -> None:
        self.run["phase"] = "ENDED"
        self._set_status(status)
        if reason:
            self.record["statusReason"] = self.redact(reason)
        else:
            self.record.pop("statusReason", None)
        # Batches of this run that never started give way: a later deploy plans them again.
        for batch in self.run_batches():
            if batch["status"] == st.PENDING:
                batch["status"] = st.SUPERSEDED
                self._save_batch_or_reload(batch)
        self.save_record()

    # Reporting (outcome.py words the outcome, reporting.py tells it)
    def selected_ids(self) -> list[str]:
        selection = self.snapshot.selections.get(self.run["number"])
        return st.unpack_ids(selection["ids"]) if selection is not None else []

    def counts(self) -> Counts:
        return self._outcome.counts()

    def read_set_outcomes(self) -> list[st.ManifestReadSet]:
        return self._outcome.read_set_outcomes()

    def failure_message(self) -> str:
        return self._outcome.failure_message()

    def timeout_message(self) -> str:
        return self._outcome.timeout_message()

    def manifest_uri(self) -> str:
        return self._report.manifest_uri()

    def manifest(self) -> st.Manifest:
        return self._report.manifest()

    def write_manifest(self, s3: S3Client) -> None:
        return self._report.write_manifest(s3)

    def publish(self, events: EventBridgeClient) -> None:
        return self._report.publish(events)

    def status_event(self, status: str) -> PutEventsRequestEntryTypeDef:
        return self._report.status_event(status)

    def event_detail(self, status: str) -> dict[str, Any]:
        return self._report.event_detail(status)

    def told(self) -> bool:
        return self._report.told()

    def claim_runner(
        self, segment: int, *, replacing: st.Runner | None = None, restarts: int = 0
    ) -> st.Runner:
        """Record that execution ``segment`` of this run's runner carries the export now.

        With ``replacing``, only if that one is still the recorded runner (or none is): two
        takeovers at once record one successor, and the other stops (``st.Cancelled``).
        """
        for _ in range(5):
            recorded = self.record.get("runner")
            if replacing is not None and recorded not in (None, replacing):
                raise st.Cancelled(
                    f"export {self.export_id}: runner {recorded['name'] if recorded else ''} "
                    "took over first"
                )
            runner: st.Runner = {
                "name": runner_name(self.export_id, self.run["number"], segment),
                "segment": segment,
                "startedAt": self._clock(),
            }
            if restarts:
                runner["restarts"] = restarts
            self.record["runner"] = runner
            self.record["updatedAt"] = self._clock()
            try:
                self.store.save_record(self.record)
                return runner
            except st.Conflict:
                fresh = self.store.load_record(self.export_id)
                if fresh is None or fresh["run"]["number"] != self.run["number"]:
                    raise st.Cancelled(
                        f"export {self.export_id} was taken over by a newer request"
                    ) from None
                self.snapshot.record = fresh
        raise st.StateError(f"export {self.export_id}: the record kept changing; try again")

    # State

    def save_record(self) -> None:
        """Save the record; if someone else wrote it since, keep their cancellation mark and
        write this run's progress again, unless a newer run took the export over."""
        mine = self.record
        mine["updatedAt"] = self._clock()
        for _ in range(5):
            try:
                self.store.save_record(mine)
                return
            except st.Conflict:
                theirs = self.store.load_record(self.export_id)
                if theirs is None or theirs["run"]["number"] != mine["run"]["number"]:
                    raise st.Cancelled(
                        f"export {self.export_id} was taken over by a newer request"
                    ) from None
                mine["version"] = theirs["version"]
                # Only claim_runner changes the runner: a takeover by the waiter stands, and
                # a step of the execution it replaced stops here.
                runner = theirs.get("runner")
                if runner is not None:
                    if self.runner_name not in (None, runner["name"]):
                        raise st.Cancelled(
                            f"export {self.export_id} is carried by runner execution "
                            f"{runner['name']} now"
                        ) from None
                    mine["runner"] = runner
                if theirs["cancelled"]:
                    mine["cancelled"] = True
                    if mine["status"] not in st.FINAL_STATUSES:
                        mine["status"] = "CANCELLED"
        raise st.StateError(f"export {self.export_id}: the record kept changing; try again")

    def _save_batch_or_reload(self, batch: st.BatchRecord) -> None:
        try:
            self.store.save_batch(self.export_id, batch)
        except st.Conflict:
            self._reload_batch(batch)

    def _reload_batch(self, batch: st.BatchRecord) -> None:
        fresh = self.store.load(self.export_id).batches.get(batch["key"])
        if fresh is not None:
            for key in list(batch):
                del batch[key]  # type: ignore[misc]
            batch.update(fresh)

    # Calls

    def _ensure_time(self, budget: Budget) -> None:
        if not budget.allows_a_call():
            raise OutOfTime

    def ensure_time(self, budget: Budget) -> None:
        self._ensure_time(budget)

    def call(self, operation: str, method: Callable[..., Any], **params: Any) -> Any:
        """A HealthOmics call whose failure says which job, read sets and what was said."""
        return self._call(operation, method, **params)

    def now(self) -> float:
        return self._clock()

    def redact(self, text: str) -> str:
        """``text`` without the values of this run's filter that identify a sample or a
        subject (a service's message may repeat them)."""
        record = self.snapshot.record if self.snapshot is not None else None
        if record is None or "run" not in record:
            return text
        return rules.redact(text, record["run"]["selection"].get("filter"))

    def waiting_for_iam(self) -> bool:
        return self._waiting_for_iam()

    def _call(
        self,
        operation: str,
        method: Callable[..., Any],
        *,
        job_id: str | None = None,
        read_set_ids: Sequence[str] = (),
        missing_ok: bool = False,
        **params: Any,
    ) -> Any:
        try:
            return method(**params)
        except OutOfTime:
            raise
        except Exception as error:
            code = error_code(error)
            if code == "ServiceQuotaExceededException" and operation in START_OPERATIONS:
                raise QuotaExceeded from error
            if code == "ResourceNotFoundException" and missing_ok:
                raise ReadSetMissing from error
            if code == "AccessDeniedException" and operation in START_OPERATIONS:
                since = self.run.get("accessDeniedSince", self._clock())
                if (
                    not self._any_job_started()
                    and self._clock() - self.record["createdAt"] < IAM_PROPAGATION_SECONDS
                    and self._clock() - since < IAM_PROPAGATION_SECONDS
                ):
                    LOG.info("AccessDenied on the first start; IAM may still be propagating")
                    raise NotYetAuthorized from error
            raise self._service_error(operation, error, job_id, read_set_ids) from error

    def _any_job_started(self) -> bool:
        return any("jobId" in b for b in self.snapshot.batches.values()) or any(
            "jobId" in a for a in self.snapshot.activations.values()
        )

    def _service_error(
        self,
        operation: str,
        error: Exception,
        job_id: str | None,
        read_set_ids: Sequence[str],
    ) -> ExportError:
        response = getattr(error, "response", None)
        if isinstance(response, dict) and "Error" in response:
            code = response["Error"].get("Code", "Error")
            said = f"{code}: {_one_line(response['Error'].get('Message', ''))}"
        else:
            said = f"{type(error).__name__}: {_one_line(str(error))}"
        subject = f"sequence store {self.request.sequence_store_id}"
        if job_id is not None:
            kind = "activation job" if "Activation" in operation else "export job"
            subject = f"{kind} {job_id} in {subject}"
        if read_set_ids:
            subject += f" (read sets {rules.first_of(read_set_ids, MAX_NAMED)})"
        started = [b["jobId"] for b in self.snapshot.ordered_batches() if "jobId" in b]
        so_far = ""
        if started:
            so_far = (
                f" Export jobs already started: {rules.first_of(started, MAX_NAMED)}"
                f" (manifest {self.manifest_uri()})."
            )
        message = f"{operation} failed for {subject}: {self.redact(said)}"
        return ExportError(_clip(f"{message}.{so_far}" if so_far else message))


def _in_flight(batch: st.BatchRecord) -> bool:
    return batch["status"] == st.STARTING or batch["status"] in st.RUNNING_JOB_STATUSES


def _as_datetime(epoch: float) -> Any:
    return datetime.fromtimestamp(epoch, UTC)


def error_code(error: Exception) -> str | None:
    """The service's error code of a botocore ClientError, if it is one."""
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code is not None else None
    return None


def iso_time(value: Any) -> str:
    """A time as ISO 8601: epoch seconds, a datetime from botocore, or text as it is."""
    if isinstance(value, int | float):
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(value))
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _clip(text: str) -> str:
    if len(text) <= MAX_MESSAGE_LENGTH:
        return text
    return text[: MAX_MESSAGE_LENGTH - 3] + "..."
