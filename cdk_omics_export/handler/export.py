"""One export: the read sets it selects, the jobs that carry them, and its manifest.

A cohort export is up to 10,000 read sets, carried by jobs of at most 100. The API allows a
few requests per second and a limited number of concurrent jobs, and a Lambda invocation is
short, so the work is done in slices: every invocation (on_event, then each of the waiter's
is_complete polls) loads the manifest, advances as far as its time allows, and saves it. The
manifest is a JSON object in the destination bucket; at the end it holds every job id and
every read set's outcome, for people and scripts to read.

Phases: SELECTING (resolve a filter, or check that every listed read set exists and is
ACTIVE: the pre-flight), then EXPORTING (follow running jobs, start the next batches as the
concurrent-job quota allows), then a final status.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

try:  # imported as cdk_omics_export.handler.export (tests, the construct)
    from . import rules
except ImportError:  # Lambda: the asset's root is on sys.path
    import rules  # type: ignore[import-not-found,no-redef]

if TYPE_CHECKING:
    from mypy_boto3_omics import OmicsClient

LOG = logging.getLogger(__name__)

RUNNING_STATUSES = frozenset({"SUBMITTED", "IN_PROGRESS", "CANCELLING"})
TERMINAL_STATUSES = frozenset({"COMPLETED", "COMPLETED_WITH_FAILURES", "FAILED", "CANCELLED"})
SELECTING, EXPORTING = "SELECTING", "EXPORTING"
MANIFEST_FOLDER = "cdk-omics-export/"
# CloudFormation shows the reason of a failed resource from a response of at most 4,096
# bytes, which also carries ids and Data; the framework appends the log group's name.
MAX_MESSAGE_LENGTH = 1000
MAX_NAMED = 10
MAX_JOBS_NAMED = 20
# Time kept back from the invocation's budget for saving the manifest.
RESERVE_SECONDS = 5.0
# How long a refusal by the concurrent-job quota holds before starting is tried again anyway.
QUOTA_RETRY_SECONDS = 300.0


class ExportError(Exception):
    """A failure CloudFormation shows as the resource's status reason."""


@dataclass(frozen=True)
class Selection:
    """What to export, as the custom resource's properties say it."""

    sequence_store_id: str
    destination: str
    role_arn: str
    read_set_ids: tuple[str, ...] | None = None
    read_set_list: str | None = None  # s3:// URI of a JSON list, for more than 100 ids
    read_set_filter: Mapping[str, str] | None = None
    allow_empty: bool = False

    def key(self) -> str:
        """Equal keys export the same data to the same place (id order does not matter)."""
        return json.dumps(
            {
                "store": self.sequence_store_id,
                "destination": self.destination,
                "ids": sorted(self.read_set_ids) if self.read_set_ids is not None else None,
                "list": self.read_set_list,
                "filter": dict(self.read_set_filter) if self.read_set_filter else None,
            },
            sort_keys=True,
        )


class Budget:
    """How long this invocation may keep calling the service."""

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


def batch_client_token(export_id: str, batch: int) -> str:
    """The same batch of the same export always sends the same token: no duplicate jobs."""
    token = hashlib.sha256(f"{export_id}/{batch}".encode()).hexdigest()
    return token[: rules.CLIENT_TOKEN_MAX_LENGTH]


def failed_read_sets(jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The per-read-set outcomes (id, status, statusMessage) that are FAILED, in job order."""
    return [
        item for job in jobs for item in job.get("readSets", []) if item.get("status") == "FAILED"
    ]


def new_state(export_id: str, selection: Selection, created_at: str) -> dict[str, Any]:
    return {
        "version": 1,
        "exportId": export_id,
        "sequenceStoreId": selection.sequence_store_id,
        "destination": selection.destination,
        "createdAt": created_at,
        "selection": {
            "readSetIds": list(selection.read_set_ids) if selection.read_set_ids else None,
            "readSetList": selection.read_set_list,
            "filter": dict(selection.read_set_filter) if selection.read_set_filter else None,
        },
        "phase": SELECTING,
        "status": "SELECTING",
        "cursor": None,
        "found": {},
        "readSetIds": [],
        "jobs": [],
        "lastRequestAt": None,
    }


class Export:
    """Advances one export's state through the API, within a budget."""

    def __init__(
        self,
        state: dict[str, Any],
        selection: Selection,
        client: OmicsClient,
        load_list: Callable[[str], list[str]],
    ) -> None:
        self.state = state
        self.selection = selection
        self.client = client
        self._load_list = load_list

    # Progress

    def advance(self, budget: Budget, *, wait: bool, allow_partial_failure: bool = False) -> bool:
        """Do what the budget allows; True when the export is complete."""
        if self.state["phase"] == SELECTING:
            self._select(budget)
        if self.state["phase"] == EXPORTING:
            self._follow(budget)
            self._start(budget)
        return self._conclude(wait=wait, allow_partial_failure=allow_partial_failure)

    @property
    def jobs(self) -> list[dict[str, Any]]:
        jobs: list[dict[str, Any]] = self.state["jobs"]
        return jobs

    def started_jobs(self) -> list[dict[str, Any]]:
        return [job for job in self.jobs if job["id"] is not None]

    # Selection and pre-flight

    def _select(self, budget: Budget) -> None:
        wanted = self._wanted()
        if wanted is not None and len(wanted) <= rules.MAX_READ_SETS_PER_JOB:
            self._check_each(wanted, budget)
        else:
            self._scan(wanted, budget)

    def _check_each(self, wanted: set[str], budget: Budget) -> None:
        """Pre-flight for a few read sets: one GetReadSetMetadata each."""
        found: dict[str, str] = self.state["found"]
        for read_set_id in self.state["readSetIds"]:
            if read_set_id in found:
                continue
            if not budget.allows_a_call():
                return
            try:
                metadata = self._call(
                    "GetReadSetMetadata",
                    self.client.get_read_set_metadata,
                    sequenceStoreId=self.selection.sequence_store_id,
                    id=read_set_id,
                    read_set_ids=[read_set_id],
                    missing_ok=True,
                )
            except ReadSetMissing:
                found[read_set_id] = "not found"
                continue
            found[read_set_id] = metadata["status"]
        self._selected(wanted)

    def _scan(self, wanted: set[str] | None, budget: Budget) -> None:
        """Selection by filter, or pre-flight for many read sets: page through ListReadSets."""
        found: dict[str, str] = self.state["found"]
        read_set_filter = self.selection.read_set_filter
        while budget.allows_a_call():
            request: dict[str, Any] = {
                "sequenceStoreId": self.selection.sequence_store_id,
                "maxResults": 100,
            }
            if self.state["cursor"]:
                request["nextToken"] = self.state["cursor"]
            if read_set_filter is not None:
                request["filter"] = {"status": "ACTIVE", **read_set_filter}
            page = self._call("ListReadSets", self.client.list_read_sets, **request)
            for item in page.get("readSets", []):
                if wanted is None or item["id"] in wanted:
                    found[item["id"]] = item["status"]
            self.state["cursor"] = page.get("nextToken")
            if not self.state["cursor"] or (wanted is not None and len(found) == len(wanted)):
                self._selected(wanted)
                return

    def _wanted(self) -> set[str] | None:
        if self.selection.read_set_filter is not None:
            return None
        ids = self.state["readSetIds"]
        if not ids:
            ids = list(self.selection.read_set_ids or ())
            if self.selection.read_set_list:
                ids = self._load_list(self.selection.read_set_list)
                problems = rules.check_read_set_ids(ids)
                if problems:
                    raise ExportError("; ".join(problems))
            self.state["readSetIds"] = ids
        return set(ids)

    def _selected(self, wanted: set[str] | None) -> None:
        found: dict[str, str] = self.state["found"]
        if wanted is None:
            ids = sorted(found)
            self.state["readSetIds"] = ids
            if not ids and not self.selection.allow_empty:
                raise ExportError(
                    f"read_set_filter selected no read set in sequence store "
                    f"{self.selection.sequence_store_id} (filter "
                    f"{json.dumps(self.selection.read_set_filter, sort_keys=True)}); "
                    "nothing was exported. Set allow_empty_selection=True to accept this."
                )
        else:
            ids = self.state["readSetIds"]
            problems = [
                f"{i} ({found.get(i, 'not found')})" for i in ids if found.get(i) != "ACTIVE"
            ]
            if problems:
                archived = any("ARCHIVED" in p for p in problems)
                hint = (
                    " Archived read sets can be restored with StartReadSetActivationJob."
                    if archived
                    else ""
                )
                raise ExportError(
                    _clip(
                        f"Pre-flight: {len(problems)} of {len(ids)} read sets in sequence store "
                        f"{self.selection.sequence_store_id} cannot be exported: "
                        f"{rules.first_of(problems, MAX_NAMED)}. No export job was started.{hint}"
                    )
                )
        size = rules.MAX_READ_SETS_PER_JOB
        self.state["jobs"] = [
            {"batch": n, "readSetIds": ids[i : i + size], "id": None, "status": "PENDING"}
            for n, i in enumerate(range(0, len(ids), size))
        ]
        self.state["found"] = {}
        self.state["phase"] = EXPORTING
        self.state["status"] = "IN_PROGRESS"
        LOG.info("selected %d read set(s) in %d batch(es)", len(ids), len(self.jobs))

    # Jobs

    def _follow(self, budget: Budget) -> None:
        for job in self.jobs:
            if job["id"] is None or job["status"] in TERMINAL_STATUSES:
                continue
            if not budget.allows_a_call():
                return
            detail = self._call(
                "GetReadSetExportJob",
                self.client.get_read_set_export_job,
                sequenceStoreId=self.selection.sequence_store_id,
                id=job["id"],
                job_id=job["id"],
            )
            job["status"] = detail["status"]
            if detail.get("statusMessage"):
                job["statusMessage"] = detail["statusMessage"]
            if detail["status"] in TERMINAL_STATUSES:
                job["readSets"] = [
                    {k: v for k, v in item.items() if k in ("id", "status", "statusMessage")}
                    for item in detail.get("readSets", [])
                ]
                if "completionTime" in detail:
                    job["completionTime"] = _iso(detail["completionTime"])

    def _start(self, budget: Budget) -> None:
        running = sum(
            1 for job in self.jobs if job["id"] is not None and job["status"] in RUNNING_STATUSES
        )
        for job in self.jobs:
            if job["id"] is not None:
                continue
            if self._quota_still_full(running):
                return
            if not budget.allows_a_call():
                return
            try:
                started = self._call(
                    "StartReadSetExportJob",
                    self.client.start_read_set_export_job,
                    sequenceStoreId=self.selection.sequence_store_id,
                    destination=self.selection.destination,
                    roleArn=self.selection.role_arn,
                    sources=[{"readSetId": r} for r in job["readSetIds"]],
                    clientToken=batch_client_token(self.state["exportId"], job["batch"]),
                    read_set_ids=job["readSetIds"],
                )
            except QuotaExceeded:
                # Too many concurrent export jobs: a later poll starts this batch.
                LOG.info("concurrent export job quota reached at %d running jobs", running)
                self.state["refusedAtRunning"] = running
                self.state["refusedAt"] = time.time()
                return
            running += 1
            job.update(
                id=started["id"],
                status=started["status"],
                creationTime=_iso(started["creationTime"]),
            )
            LOG.info("started export job %s for batch %d", started["id"], job["batch"])

    def _quota_still_full(self, running: int) -> bool:
        """The quota refused a start with this many of our jobs running: skip asking again
        until one of them ends, or a while has passed (jobs of others count too)."""
        refused_at = self.state.get("refusedAtRunning")
        if not refused_at or running < refused_at:
            return False
        refused_when: float = self.state.get("refusedAt", 0.0)
        return time.time() - refused_when < QUOTA_RETRY_SECONDS

    def _conclude(self, *, wait: bool, allow_partial_failure: bool) -> bool:
        if self.state["phase"] != EXPORTING:
            return False
        self.state["status"] = "IN_PROGRESS"
        if any(job["id"] is None for job in self.jobs):
            return False
        statuses = {job["status"] for job in self.jobs}
        if not wait:
            self.state["status"] = "SUBMITTED" if self.jobs else "COMPLETED"
            return True
        if statuses & RUNNING_STATUSES:
            return False
        if statuses <= {"COMPLETED"}:
            self.state["status"] = "COMPLETED"
            return True
        if allow_partial_failure and statuses <= {"COMPLETED", "COMPLETED_WITH_FAILURES"}:
            self.state["status"] = "COMPLETED_WITH_FAILURES"
            LOG.warning("%s", self.failure_message())
            return True
        self.state["status"] = (
            "FAILED" if "COMPLETED" not in statuses else "COMPLETED_WITH_FAILURES"
        )
        raise ExportError(self.failure_message())

    # Reporting

    def failure_message(self) -> str:
        failed_jobs = [j for j in self.jobs if j["status"] not in ("COMPLETED", "PENDING")]
        failed_sets = failed_read_sets(self.jobs)
        if len(self.jobs) == 1:
            (job,) = self.jobs
            head = (
                f"HealthOmics export job {job['id']} in sequence store "
                f"{self.selection.sequence_store_id} ended {job['status']}"
            )
            if job.get("statusMessage"):
                head += f": {_one_line(job['statusMessage'])}"
        else:
            named = rules.first_of(
                [
                    f"{j['id']} ({j['status']}"
                    + (f": {_one_line(j['statusMessage'])}" if j.get("statusMessage") else "")
                    + ")"
                    for j in failed_jobs
                ],
                3,
            )
            head = (
                f"{len(failed_jobs)} of {len(self.jobs)} HealthOmics export jobs in sequence "
                f"store {self.selection.sequence_store_id} did not complete: {named}"
            )
        listing = ""
        if failed_sets:
            parts = [
                f"{i['id']} ({_one_line(i['statusMessage'])})"
                if i.get("statusMessage")
                else i["id"]
                for i in failed_sets
            ]
            listing = (
                f". {len(failed_sets)} read set(s) failed: {rules.first_of(parts, MAX_NAMED, '; ')}"
            )
        # The manifest and the jobs come before the read sets, so clipping cuts those first.
        where = ""
        if len(self.jobs) > 1:
            started = [j["id"] for j in self.started_jobs()]
            where = (
                f". Every job and read set: {self.manifest_uri()}. "
                f"Jobs: {rules.first_of(started, MAX_JOBS_NAMED)}"
            )
        return _clip(head + where + listing + ".")

    def timeout_message(self, timeout: str) -> str:
        started = self.started_jobs()
        running = [j for j in started if j["status"] not in TERMINAL_STATUSES]
        pending = len(self.jobs) - len(started)
        if len(self.jobs) == 1 and started:
            (job,) = started
            return _clip(
                f"HealthOmics export job {job['id']} in sequence store "
                f"{self.selection.sequence_store_id} is still {job['status']} after the "
                f"{timeout} s the deploy waits (timeout). The job keeps running and cannot be "
                f"cancelled; its files will still arrive at {self.selection.destination}. "
                "Use a longer timeout, or wait_for_completion=False."
            )
        ids = rules.first_of([j["id"] for j in running], MAX_NAMED)
        phase = (
            "was still selecting read sets"
            if self.state["phase"] == SELECTING
            else f"had {len(running)} export job(s) running ({ids}) and {pending} of "
            f"{len(self.jobs)} batch(es) not yet started"
        )
        return _clip(
            f"The export from sequence store {self.selection.sequence_store_id} {phase} after "
            f"the {timeout} s the deploy waits (timeout). Started jobs keep running and cannot "
            f"be cancelled. Every job so far: {self.manifest_uri()}. Use a longer timeout, "
            "fewer read sets per construct, or wait_for_completion=False."
        )

    def manifest_uri(self) -> str:
        return manifest_uri(self.selection.destination, self.state["exportId"])

    # Calls

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
        except Exception as error:
            code = error_code(error)
            if code == "ServiceQuotaExceededException" and operation == "StartReadSetExportJob":
                raise QuotaExceeded from error
            if code == "ResourceNotFoundException" and missing_ok:
                raise ReadSetMissing from error
            raise self._service_error(operation, error, job_id, read_set_ids) from error

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
        subject = f"sequence store {self.selection.sequence_store_id}"
        if job_id is not None:
            subject = f"export job {job_id} in {subject}"
        if read_set_ids:
            subject += f" (read sets {rules.first_of(read_set_ids, MAX_NAMED)})"
        started = [j["id"] for j in self.started_jobs()]
        so_far = ""
        if started:
            so_far = (
                f" Export jobs already started: {rules.first_of(started, MAX_NAMED)}"
                f" (manifest {self.manifest_uri()})."
            )
        message = f"{operation} failed for {subject}: {said}"
        return ExportError(_clip(f"{message}.{so_far}" if so_far else message))


class ReadSetMissing(Exception):
    """GetReadSetMetadata answered ResourceNotFoundException during the pre-flight."""


class QuotaExceeded(Exception):
    """StartReadSetExportJob answered ServiceQuotaExceededException: wait for capacity."""


def error_code(error: Exception) -> str | None:
    """The service's error code of a botocore ClientError, if it is one."""
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code is not None else None
    return None


def _iso(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _clip(text: str) -> str:
    if len(text) <= MAX_MESSAGE_LENGTH:
        return text
    return text[: MAX_MESSAGE_LENGTH - 3] + "..."
