"""`cdk-omics-export status`: follow a stack's exports from a terminal, past the deploy.

An export of a ``ReadSetExport`` construct is carried to its end by the stack's runner (a
Step Functions execution), which can keep going for hours after ``cdk deploy`` has returned.
The runner writes the export's **manifest** (the stack output ``<construct>ManifestUri<hash>``)
at every status change of the export or of one of its jobs. This command reads those manifests
and reports each export of a stack: its status, its read set counts, its jobs (running, ended,
not yet started) and whether its runner is still active; ``--jobs`` adds a row per job, and
``--watch`` re-reads the manifests until every export's runner has ended.

A manifest is only as current as its runner: an execution stopped by hand (or whose retries ran
out) writes no more, and its last manifest says the runner is active for ever. So for each
export whose manifest says its runner is active, the command asks Step Functions about that
execution (``DescribeExecution``, once per read of the manifests). One that is no longer
RUNNING (nor PENDING_REDRIVE) makes the export **stalled**: nothing carries it until a deploy
resumes it, ``--watch`` stops waiting for it, and it counts as ended early (exit 12) unless its
status is final. When Step Functions cannot be asked (``states:DescribeExecution`` denied, say),
a note says so and the manifest's view stands.

A manifest is an object in the destination bucket, and anyone who may write there could write
one. So before it reports one, the command checks it: its export id against the stack output
that named it, its stack id against the stack, its runner execution against the export's run and
the stack's runner (``RunnerStateMachineArn`` output), the execution's input (when Step
Functions is asked) and the export's record in the state table (``StateTableName`` output), when
the caller may read it. A manifest may lag behind the record, never lead it. One that disagrees
is reported as ``MISMATCH`` with what disagrees (exit 13), and nothing it says is shown.

It makes no HealthOmics call for a stack (the runner shares the account's request quota): only
``--job-id`` asks HealthOmics about one job directly. Installed with the ``cli`` extra:
``pip install 'cdk-omics-export[cli]'``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

import boto3
import boto3.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from .handler import state as st
from .handler.pacing import LocalSlots, Pacer
from .handler.state import Manifest, ManifestCounts, ManifestJob

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_omics import OmicsClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_stepfunctions import SFNClient
from .handler.rules import DEFAULT_MAX_REQUESTS_PER_SECOND

EXIT_COMPLETED = 0
EXIT_USAGE = 2  # argparse's own
EXIT_ACCESS = 3
EXIT_RUNNING = 10
EXIT_COMPLETED_WITH_FAILURES = 11
EXIT_FAILED = 12
EXIT_MISMATCH = 13

EXIT_CODES = f"""exit codes (with --stack, judged per export; with --job-id, for the job):
  {EXIT_COMPLETED}   every export COMPLETED (--job-id: the job COMPLETED)
  {EXIT_USAGE}   usage error
  {EXIT_ACCESS}   no credentials or region, stack not found, no export outputs, access denied
  {EXIT_RUNNING}  some export still active: its runner has not ended (--job-id: the job is
      SUBMITTED, IN_PROGRESS or CANCELLING)
  {EXIT_COMPLETED_WITH_FAILURES}  every export ended, some COMPLETED_WITH_FAILURES
  {EXIT_FAILED}  some export FAILED or CANCELLED, or its runner ended or stopped (stalled)
      before it did (--job-id: the job FAILED or was CANCELLED)
  {EXIT_MISMATCH}  some export's manifest disagrees with the export, stack, run, runner or
      state it was checked against: it is not reported
"""
# The status command's --help text (printed as it is: argparse does not re-wrap it).
STATUS_DESCRIPTION = """\
Print each export of a stack from its manifest (the <construct>ManifestUri<hash>
output): its status, read set counts (exported of selected, failed, in flight),
its jobs (running, ended, not started yet) and whether its runner, which carries
the export to its end after the deploy, is still active. For a runner the
manifest says is active, Step Functions is asked whether its execution still runs
(states:DescribeExecution); if it stopped, the export is stalled until a deploy
resumes it. --watch re-reads the manifests until every export's runner has ended
or stopped; no HealthOmics call is made. Each manifest is checked before it is
reported: its export, stack, run and runner execution against the stack's
outputs, the execution's input and the export's record in the state table; one
that disagrees is shown as MISMATCH, with what disagrees, and nothing it says is
reported. Needs cloudformation:DescribeStacks, s3:GetObject on the manifests and,
optionally, states:DescribeExecution and dynamodb:GetItem on the state table
(with kms:Decrypt on the service's key). With --job-id, ask HealthOmics about
one export job instead."""
CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 6})
# Job statuses: HealthOmics' own, and the batch statuses of the runner's.
RUNNING = frozenset({"SUBMITTED", "IN_PROGRESS", "CANCELLING"})
NOT_STARTED = frozenset({"PENDING", "STARTING"})
SUPERSEDED = "SUPERSEDED"  # never started; not shown
# An export's final statuses; any other (SUBMITTED, RUNNING, or an older manifest's SELECTING
# and IN_PROGRESS) means it is still under way.
FINAL = frozenset({"COMPLETED", "COMPLETED_WITH_FAILURES", "FAILED", "CANCELLED"})
WAITING = "waiting for its first manifest"
# What S3 answers for a manifest not written yet: NoSuchKey, or AccessDenied to a caller
# without s3:ListBucket.
NOT_WRITTEN_YET = frozenset({"NoSuchKey", "AccessDenied", "404", "403"})
MIN_WATCH_INTERVAL = 1.0  # manifests are S3 reads: no HealthOmics quota to stay under
# The runner execution's statuses in which it still carries its export: someone may redrive a
# stopped one by hand (PENDING_REDRIVE), and the deploy's waiter counts that as running too.
EXECUTION_RUNNING = frozenset({"RUNNING", "PENDING_REDRIVE"})
# DescribeExecution's pace: one per export each time the manifests are read, well under Step
# Functions' own quota, which the deploy's waiter draws on too.
STATES_REQUESTS_PER_SECOND = DEFAULT_MAX_REQUESTS_PER_SECOND
DENIED = frozenset({"AccessDenied", "AccessDeniedException"})
MANIFEST_OUTPUT = re.compile(r"^(?P<construct>.*)ManifestUri[0-9A-F]{8}$")
# The service's outputs: where its state is, and which state machine runs its exports.
STATE_TABLE_OUTPUT = re.compile(r"^.*StateTableName[0-9A-F]{8}$")
RUNNER_OUTPUT = re.compile(r"^.*RunnerStateMachineArn[0-9A-F]{8}$")
MISMATCH = "MISMATCH"
# The IAM action each call needs, for access-denied messages a user can act on.
ACTIONS = {
    "DescribeStacks": "cloudformation:DescribeStacks",
    "GetObject": "s3:GetObject",
    "DescribeExecution": "states:DescribeExecution",
    "GetItem": "dynamodb:GetItem (and kms:Decrypt on the service's key)",
    "GetReadSetExportJob": "omics:GetReadSetExportJob",
}
STATUS_NAMES = {
    EXIT_MISMATCH: "MISMATCH",
    EXIT_COMPLETED: "COMPLETED",
    EXIT_RUNNING: "RUNNING",
    EXIT_FAILED: "FAILED",
    EXIT_COMPLETED_WITH_FAILURES: "COMPLETED_WITH_FAILURES",
}


class StatusError(Exception):
    """A problem the user can act on; printed without a traceback."""


class UsageError(Exception):
    """A command line argparse refused, raised instead of exiting so that ``--json`` can
    report it as JSON."""

    def __init__(self, parser: argparse.ArgumentParser, message: str) -> None:
        super().__init__(message)
        self.parser = parser
        self.message = message


class _Parser(argparse.ArgumentParser):
    # Subparsers are made with the parent's class, so the status command raises too.
    def error(self, message: str) -> NoReturn:
        raise UsageError(self, message)


@dataclass
class JobStatus:
    """One job as HealthOmics reports it (``--job-id``)."""

    id: str
    sequence_store_id: str
    status: str
    destination: str
    read_sets: int
    finished: int = 0
    failed: int = 0
    in_progress: int = 0
    status_message: str = ""
    construct: str = ""

    @property
    def done(self) -> bool:
        return self.status not in RUNNING


@dataclass
class ReadSetCounts:
    exported: int = 0
    failed: int = 0
    in_flight: int = 0
    total: int = 0


def job_read_sets(job: ManifestJob) -> ReadSetCounts:
    """A job's read sets from the manifest: each one's outcome, else the job's status."""
    outcomes = {o["id"]: o["status"] for o in job.get("readSets", [])}
    status = job["status"]
    counts = ReadSetCounts(total=len(job.get("readSetIds", [])))
    for read_set_id in job.get("readSetIds", []):
        outcome = outcomes.get(read_set_id)
        if outcome == "FINISHED" or (outcome is None and status == "COMPLETED"):
            counts.exported += 1
        elif outcome == "FAILED" or (outcome is None and status in FINAL):
            counts.failed += 1
        elif status != "PENDING":  # STARTING, or a running job: in flight
            counts.in_flight += 1
    return counts


@dataclass
class JobTally:
    running: int = 0
    ended: int = 0
    pending: int = 0  # not started yet (PENDING, STARTING)

    @property
    def total(self) -> int:
        return self.running + self.ended + self.pending


@dataclass
class StackFacts:
    """What CloudFormation says of the stack, against which each manifest is checked."""

    stack_id: str = ""
    state_table: str = ""
    runner_arn: str = ""
    state_denied: bool = False  # the state table could not be read: not asked again


@dataclass
class ExportStatus:
    """One export of a stack, as its manifest says; no manifest while it cannot be read yet.
    A manifest that disagrees with what it was checked against (``mismatches``) is not
    reported: anyone who could write to the bucket could have written it."""

    construct: str
    manifest_uri: str
    manifest: Manifest | None = None
    stack: StackFacts = field(default_factory=StackFacts)
    mismatches: list[str] = field(default_factory=list)
    # The runner execution's status as Step Functions gave it for the manifest last read; None
    # when it was not asked (runner not active, no ARN) or could not say.
    execution_status: str | None = None
    check_denied: bool = False  # states:DescribeExecution denied: not asked again
    notes: list[str] = field(default_factory=list)  # each said once

    def note(self, line: str) -> None:
        if line not in self.notes:
            self.notes.append(line)

    @property
    def waiting(self) -> bool:
        return self.manifest is None

    @property
    def export_id(self) -> str:
        """The export the stack's output names: its manifest's file name."""
        return self.manifest_uri.rsplit("/", 1)[-1].removesuffix(".json")

    @property
    def status(self) -> str:
        if self.mismatches:
            return MISMATCH
        return WAITING if self.manifest is None else self.manifest["status"]

    @property
    def status_reason(self) -> str:
        return "" if self.manifest is None else self.manifest.get("statusReason", "")

    def jobs(self) -> list[ManifestJob]:
        if self.manifest is None:
            return []
        return [job for job in self.manifest.get("jobs", []) if job["status"] != SUPERSEDED]

    def tally(self) -> JobTally:
        tally = JobTally()
        for job in self.jobs():
            if job["status"] in FINAL:
                tally.ended += 1
            elif job["status"] in NOT_STARTED:
                tally.pending += 1
            else:  # SUBMITTED, IN_PROGRESS, CANCELLING, or a status this version does not know
                tally.running += 1
        return tally

    def counts(self) -> ManifestCounts:
        if self.manifest is not None and "counts" in self.manifest:
            # A manifest from before activation has no "activating": none were.
            return {"activating": 0, **self.manifest["counts"]}
        # An older manifest without counts: what its jobs hold.
        jobs = [job_read_sets(job) for job in self.jobs()]
        return {
            "selected": sum(j.total for j in jobs),
            "exported": sum(j.exported for j in jobs),
            "failed": sum(j.failed for j in jobs),
            "inFlight": sum(j.in_flight for j in jobs),
            "activating": 0,
        }

    @property
    def execution(self) -> str:
        runner = None if self.manifest is None else self.manifest.get("runner")
        return "" if runner is None else runner.get("execution", "")

    @property
    def execution_arn(self) -> str:
        runner = None if self.manifest is None else self.manifest.get("runner")
        return "" if runner is None else runner.get("executionArn", "")

    @property
    def stalled(self) -> bool:
        """The manifest says its runner is active, but Step Functions says the execution ended
        (stopped by hand, its retries ran out): nothing carries the export any more."""
        return (
            self.manifest_active
            and self.execution_status is not None
            and self.execution_status not in EXECUTION_RUNNING
        )

    @property
    def active(self) -> bool:
        """Whether the export can still change: its runner has not ended, nor stopped."""
        return self.manifest_active and not self.stalled and not self.mismatches

    @property
    def runner_state(self) -> str:
        if self.stalled:
            return f"stopped ({self.execution_status})"
        return "active" if self.active else "ended"

    @property
    def manifest_active(self) -> bool:
        """Whether the manifest says the export's runner has not ended."""
        if self.manifest is None:
            return True  # not written yet: its runner is starting
        runner = self.manifest.get("runner")
        if runner is None:
            # An older manifest, from before the runner: ended once the export's status is
            # final and no job runs.
            statuses = {job["status"] for job in self.jobs()}
            return self.status not in FINAL or bool(statuses & RUNNING)
        return bool(runner.get("active", False))

    @property
    def stopped_early(self) -> bool:
        """The runner ended, and the export's status is not a final one."""
        return not self.active and self.status not in FINAL

    def exit_code(self) -> int:
        if self.mismatches:
            return EXIT_MISMATCH
        # A stalled export, its status not final, ended early: EXIT_FAILED.
        if self.active:
            return EXIT_RUNNING
        if self.status in ("FAILED", "CANCELLED") or self.stopped_early:
            return EXIT_FAILED
        if self.status == "COMPLETED_WITH_FAILURES":
            return EXIT_COMPLETED_WITH_FAILURES
        return EXIT_COMPLETED

    def progress(self) -> tuple[int, int]:
        """Read sets ended (exported or failed), and selected."""
        counts = self.counts()
        return counts["exported"] + counts["failed"], counts["selected"]

    def summary(self) -> str:
        """One line for the watch log: what changed."""
        if self.manifest is None:
            return f"{self.construct}: {WAITING}"
        if self.mismatches:
            return f"{self.construct}: {MISMATCH}: its manifest is not reported"
        counts, tally = self.counts(), self.tally()
        runner = f"runner {self.runner_state}"
        return (
            f"{self.construct}: {self.status}, {counts['exported']}/{counts['selected']} read sets "
            f"exported, {counts['failed']} failed, {tally.running} job(s) running, {runner}"
        )


@dataclass
class Clients:
    """The AWS clients the command uses, made on first use; tests hand in stubbed ones."""

    region: str | None = None
    made: dict[str, Any] = field(default_factory=dict)
    # A session of its own: credentials are looked up afresh, not from boto3's default
    # session that other code in the process may have filled.
    session: boto3.session.Session = field(default_factory=boto3.session.Session)

    def cloudformation(self) -> CloudFormationClient:
        client: CloudFormationClient = self._client("cloudformation")
        return client

    def s3(self) -> S3Client:
        client: S3Client = self._client("s3")
        return client

    def stepfunctions(self) -> SFNClient:
        client: SFNClient = self._client("stepfunctions")
        return client

    def dynamodb(self) -> DynamoDBClient:
        client: DynamoDBClient = self._client("dynamodb")
        return client

    def omics(self) -> OmicsClient:
        client: OmicsClient = self._client("omics")
        return client

    def _client(self, service: str) -> Any:
        if service not in self.made:
            make: Callable[..., Any] = self.session.client
            self.made[service] = make(service, region_name=self.region, config=CONFIG)
        return self.made[service]


# Finding the exports


def exports_of_stack(clients: Clients, stack: str) -> list[ExportStatus]:
    """Every export of the stack (one per ``ManifestUri`` output), not read yet."""
    stacks = _call(
        "DescribeStacks",
        stack,
        lambda: clients.cloudformation().describe_stacks(StackName=stack),
    )["Stacks"]
    outputs = {o["OutputKey"]: o.get("OutputValue", "") for o in stacks[0].get("Outputs", [])}
    manifests = {
        match["construct"]: value
        for key, value in outputs.items()
        if (match := MANIFEST_OUTPUT.match(key))
    }
    if not manifests:
        stack_status = stacks[0].get("StackStatus", "")
        hint = (
            f" It is {stack_status}: outputs appear when the deploy has finished."
            if stack_status.endswith("_IN_PROGRESS")
            else ""
        )
        raise StatusError(
            f"Stack {stack} has no ReadSetExport outputs (no output named <construct>"
            f"ManifestUri<hash>); is it a stack with a ReadSetExport construct?{hint}"
        )
    facts = StackFacts(stack_id=stacks[0].get("StackId", ""))
    for key, value in outputs.items():
        if STATE_TABLE_OUTPUT.match(key):
            facts.state_table = value
        elif RUNNER_OUTPUT.match(key):
            facts.runner_arn = value
    return [
        ExportStatus(construct, uri, stack=facts) for construct, uri in sorted(manifests.items())
    ]


def read_manifest(clients: Clients, uri: str, *, missing_ok: bool = False) -> Manifest | None:
    """The manifest at ``uri``; None for one not written yet when ``missing_ok``."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")

    def get() -> bytes:  # the body's read is inside the call: its errors are reported too
        body: bytes = clients.s3().get_object(Bucket=bucket, Key=key)["Body"].read()
        return body

    try:
        body = _call("GetObject", uri, get)
    except StatusError as error:
        cause = error.__cause__
        if missing_ok and isinstance(cause, ClientError) and _code(cause) in NOT_WRITTEN_YET:
            return None
        raise
    try:
        manifest: Manifest = json.loads(body)
    except ValueError as error:
        raise StatusError(f"{uri} is not a manifest (not JSON: {error}).") from error
    if not isinstance(manifest, dict) or "status" not in manifest:
        raise StatusError(f"{uri} is not a manifest (no export status in it).")
    return manifest


def refresh(
    clients: Clients, exports: Sequence[ExportStatus], *, watching: bool, pacer: Pacer
) -> None:
    """Read each export's manifest again, then check each runner it says is active. While
    watching, a manifest never read so far may not be written yet: the export waits for it
    rather than failing."""
    for export in exports:
        missing_ok = watching and export.manifest is None
        manifest = read_manifest(clients, export.manifest_uri, missing_ok=missing_ok)
        if manifest is not None:
            export.manifest = manifest
    for export in exports:
        if export.manifest is not None:
            export.mismatches = check_manifest(export)
        check_runner(clients, export, pacer)
        check_state(clients, export)


def check_manifest(export: ExportStatus) -> list[str]:
    """Where the manifest's own words disagree with the export and stack it was read for."""
    manifest = export.manifest
    assert manifest is not None
    problems: list[str] = []
    claimed = manifest.get("exportId")
    if claimed != export.export_id:
        problems.append(
            f"its exportId {claimed!r} is not {export.export_id!r}, the export the stack's "
            "output names"
        )
    stack_id = export.stack.stack_id
    if stack_id and manifest.get("stackId") != stack_id:
        problems.append(f"its stackId {manifest.get('stackId')!r} is not {stack_id!r}")
    run = manifest.get("run", {}).get("number")
    execution = export.execution
    if execution and not execution.startswith(f"{export.export_id}-{run}-"):
        problems.append(
            f"its runner execution {execution!r} is not one of run {run} of {export.export_id}"
        )
    runner = export.stack.runner_arn
    arn = export.execution_arn
    if runner and arn:
        machine = runner.rsplit(":", 1)[-1]
        expected = runner.replace(":stateMachine:", ":execution:", 1) + f":{execution}"
        if arn != expected:
            problems.append(
                f"its runner execution ARN {arn!r} is not an execution of the stack's runner "
                f"{machine}"
            )
    return problems


def check_state(clients: Clients, export: ExportStatus) -> None:
    """The manifest against the export's record in the service's state table, when the
    stack names it and the caller may read it. The manifest is written after the record is
    saved: it may lag behind the record (an older run, a status not final yet), never lead."""
    facts, manifest = export.stack, export.manifest
    if manifest is None or export.mismatches or not facts.state_table or facts.state_denied:
        return
    subject = f"{export.construct}: could not check the manifest against the state table"
    try:
        record = st.StateStore(clients.dynamodb(), facts.state_table).load_record(export.export_id)
    except ClientError as error:
        code = _code(error)
        detail = code
        if code in DENIED | {"KMSAccessDeniedException"}:
            facts.state_denied = True
            detail += f"; needs {ACTIONS['GetItem']}"
        export.note(f"{subject} {facts.state_table}: {detail}")
        return
    except (BotoCoreError, ValueError, KeyError) as error:
        export.note(f"{subject} {facts.state_table}: {error}")
        return
    table = f"the state table {facts.state_table}"
    if record is None:
        export.mismatches.append(f"{table} has no record of export {export.export_id}")
        return
    if record["stackId"] != manifest.get("stackId"):
        export.mismatches.append(f"its stackId is not the one {table} holds")
    run = manifest.get("run", {}).get("number", -1)
    recorded = record["run"]["number"]
    if run > recorded:
        export.mismatches.append(f"it claims run {run}; {table} holds run {recorded}")
    elif run == recorded and manifest["status"] in FINAL and manifest["status"] != record["status"]:
        export.mismatches.append(f"it says {manifest['status']}; {table} says {record['status']}")
    elif run < recorded:
        export.note(
            f"{export.construct}: its manifest is of run {run}; the state is at run {recorded} "
            "(a later deploy), whose runner rewrites the manifest"
        )


def check_runner(clients: Clients, export: ExportStatus, pacer: Pacer) -> None:
    """Ask Step Functions about the runner execution the manifest says is active. A failure
    is a note, not an error: the manifest's view stands."""
    export.execution_status = None
    arn = export.execution_arn
    if not arn or not export.manifest_active or export.check_denied or export.mismatches:
        return
    subject = f"{export.construct}: could not check runner execution {export.execution}"
    pacer.wait()
    try:
        described = clients.stepfunctions().describe_execution(executionArn=arn)
    except ClientError as error:
        code = _code(error)
        message = error.response.get("Error", {}).get("Message", "")
        detail = f"{code}: {message}" if message else code
        if code in DENIED:
            export.check_denied = True
            detail += f"; needs {ACTIONS['DescribeExecution']}"
        export.note(f"{subject}: {detail}")
        return
    except BotoCoreError as error:
        export.note(f"{subject}: {error}")
        return
    export.execution_status = described["status"]
    given = described.get("input")
    if given is not None:
        try:
            named = json.loads(given).get("exportId")
        except (ValueError, AttributeError):
            named = None
        if named != export.export_id:
            export.mismatches.append(
                f"its runner execution {export.execution} carries export {named!r}, not "
                f"{export.export_id!r}"
            )


def job_status(clients: Clients, store: str, job_id: str, construct: str = "") -> JobStatus:
    detail = _call(
        "GetReadSetExportJob",
        f"export job {job_id} in sequence store {store}",
        lambda: clients.omics().get_read_set_export_job(sequenceStoreId=store, id=job_id),
    )
    read_sets = detail.get("readSets", [])
    counts = {"FINISHED": 0, "FAILED": 0, "IN_PROGRESS": 0}
    for item in read_sets:
        counts[item["status"]] = counts.get(item["status"], 0) + 1
    return JobStatus(
        id=detail["id"],
        sequence_store_id=detail["sequenceStoreId"],
        status=detail["status"],
        destination=detail["destination"],
        read_sets=len(read_sets),
        finished=counts["FINISHED"],
        failed=counts["FAILED"],
        in_progress=counts["IN_PROGRESS"],
        status_message=detail.get("statusMessage", ""),
        construct=construct,
    )


def _code(error: ClientError) -> str:
    code: str = error.response.get("Error", {}).get("Code", "")
    return code


def _call(operation: str, subject: str, call: Callable[[], Any]) -> Any:
    try:
        return call()
    except NoCredentialsError as error:
        raise StatusError(
            "No AWS credentials found: set AWS_PROFILE, run `aws sso login`, or export "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY."
        ) from error
    except NoRegionError as error:
        raise StatusError("No AWS Region: pass --region or set AWS_REGION.") from error
    except ClientError as error:
        code = _code(error)
        message = error.response.get("Error", {}).get("Message", "")
        if code in ("AccessDenied", "AccessDeniedException"):
            action = ACTIONS.get(operation, operation)
            hint = (
                " (S3 also answers so for a manifest not written yet when s3:ListBucket is "
                "not allowed; --watch waits for it.)"
                if operation == "GetObject"
                else ""
            )
            raise StatusError(
                f"Access denied: {operation} on {subject} needs {action}.{hint}"
            ) from error
        if operation == "GetObject" and code in ("NoSuchKey", "404"):
            raise StatusError(
                f"The manifest {subject} does not exist yet: the export has not written it; "
                "--watch waits for it."
            ) from error
        if operation == "DescribeStacks" and code == "ValidationError":
            raise StatusError(
                f"Stack {subject} not found in this Region ({message}); check --region."
            ) from error
        raise StatusError(f"{operation} failed for {subject}: {code}: {message}") from error
    except BotoCoreError as error:
        raise StatusError(f"{operation} failed for {subject}: {error}") from error


# Reporting


def overall(codes: Sequence[int]) -> int:
    """The command's exit code from those of the exports (or jobs)."""
    for code in (EXIT_MISMATCH, EXIT_RUNNING, EXIT_FAILED, EXIT_COMPLETED_WITH_FAILURES):
        if code in codes:
            return code
    return EXIT_COMPLETED


def job_code(job: JobStatus) -> int:
    if job.status in RUNNING:
        return EXIT_RUNNING
    if job.status in ("FAILED", "CANCELLED"):
        return EXIT_FAILED
    if job.status == "COMPLETED_WITH_FAILURES":
        return EXIT_COMPLETED_WITH_FAILURES
    return EXIT_COMPLETED


def render_jobs_table(jobs: Sequence[JobStatus]) -> Table:
    table = Table(title="HealthOmics read set export jobs")
    for column in ("job", "status", "finished", "failed", "in progress", "destination"):
        table.add_column(column, justify="right" if column in ("finished", "failed") else "left")
    for job in jobs:
        table.add_row(
            job.id,
            job.status,
            f"{job.finished}/{job.read_sets}",
            str(job.failed),
            str(job.in_progress),
            job.destination,
        )
    return table


def render_exports_table(stack: str, exports: Sequence[ExportStatus], *, jobs: bool) -> Table:
    table = Table(
        title=f"Read set exports of stack {stack}",
        caption="jobs: running/ended/not started yet",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    table.add_column("export")
    table.add_column("status", overflow="fold")
    for column in ("exported", "failed", "in flight"):
        table.add_column(column, justify="right")
    table.add_column("jobs", justify="center", no_wrap=True)
    table.add_column("runner")
    table.add_column("updated")
    for number, export in enumerate(exports):
        if jobs and number:
            table.add_section()
        if export.manifest is None:
            table.add_row(export.construct, WAITING)
            continue
        if export.mismatches:
            table.add_row(export.construct, MISMATCH)
            continue
        counts, tally = export.counts(), export.tally()
        table.add_row(
            export.construct,
            export.status,
            f"{counts['exported']}/{counts['selected']}",
            str(counts["failed"]),
            # Read sets still being activated are in flight too; how many of them, said so.
            f"{counts['inFlight']} ({counts['activating']} activating)"
            if counts.get("activating")
            else str(counts["inFlight"]),
            f"{tally.running}/{tally.ended}/{tally.pending}",
            export.runner_state,
            export.manifest.get("updatedAt", "").replace("T", " "),
        )
        if jobs:
            for job in export.jobs():
                read_sets = job_read_sets(job)
                table.add_row(
                    f"  {job['id'] or '(not started)'}",
                    job["status"],
                    f"{read_sets.exported}/{read_sets.total}",
                    str(read_sets.failed),
                    str(read_sets.in_flight),
                )
            for activation in export.manifest.get("activations", []):
                sources = activation.get("sources", [])
                finished = sum(1 for s in sources if s["status"] == "FINISHED")
                failed = sum(1 for s in sources if s["status"] == "FAILED")
                table.add_row(
                    f"  {activation['id'] or '(watched)'} (activation)",
                    activation["status"],
                    f"{finished}/{len(activation['readSetIds'])} active",
                    str(failed),
                    str(len(activation["readSetIds"]) - finished - failed),
                )
    return table


def reasons(exports: Sequence[ExportStatus], *, jobs: bool) -> list[str]:
    """Why exports (and, with ``--jobs``, jobs) ended the way they did, one line each."""
    lines = []
    for export in exports:
        if export.mismatches:
            lines.append(
                f"{export.construct}: the manifest at {export.manifest_uri} does not match: "
                + "; ".join(export.mismatches)
                + ". It is not the service's record of this export, and nothing it says is "
                "reported."
            )
            lines.extend(export.notes)
            continue
        if export.status_reason:
            lines.append(f"{export.construct}: {export.status_reason}")
        if export.stalled:
            lines.append(stalled_note(export))
        elif export.stopped_early and not export.status_reason:
            lines.append(
                f"{export.construct}: its runner ended while the export was {export.status}; "
                "the next deploy resumes it."
            )
        lines.extend(export.notes)
        if jobs:
            for job in export.jobs():
                if job.get("statusMessage"):
                    lines.append(f"{export.construct} job {job['id']}: {job['statusMessage']}")
    return lines


def stalled_note(export: ExportStatus) -> str:
    said = (
        f"{export.construct}: its runner execution {export.execution} is {export.execution_status}"
    )
    if export.status in FINAL:
        return f"{said}; the export is {export.status}, and nothing updates its manifest now."
    return (
        f"{said}; nothing carries the export now. The next deploy that changes its properties, "
        "or a deploy in progress, resumes it and skips what completed."
    )


def export_json(export: ExportStatus, *, jobs: bool) -> dict[str, Any]:
    if export.mismatches:
        return {
            "construct": export.construct,
            "exportId": export.export_id,
            "status": MISMATCH,
            "mismatches": export.mismatches,
            "manifestUri": export.manifest_uri,
            "exitCode": export.exit_code(),
        }
    manifest = export.manifest
    tally = export.tally()
    report: dict[str, Any] = {
        "construct": export.construct,
        "exportId": None if manifest is None else manifest.get("exportId"),
        "status": export.status,
        "statusReason": export.status_reason,
        "cancelled": False if manifest is None else manifest.get("cancelled", False),
        "counts": export.counts(),
        "runner": {
            "execution": export.execution,
            "active": export.active,
            "executionStatus": export.execution_status,
        },
        "stalled": export.stalled,
        "jobs": {
            "running": tally.running,
            "ended": tally.ended,
            "pending": tally.pending,
            "total": tally.total,
        },
        "manifestUri": export.manifest_uri,
        "updatedAt": None if manifest is None else manifest.get("updatedAt"),
        "sequenceStoreId": None if manifest is None else manifest.get("sequenceStoreId"),
        "destination": None if manifest is None else manifest.get("destination"),
        "run": None,
        "exitCode": export.exit_code(),
    }
    if manifest is not None and "run" in manifest:
        run = manifest["run"]
        report["run"] = {
            "number": run.get("number"),
            "requestType": run.get("requestType"),
            "startedAt": run.get("startedAt"),
        }
    if jobs:
        report["jobList"] = [
            {
                "batch": job["batch"],
                "id": job["id"],
                "status": job["status"],
                "statusMessage": job.get("statusMessage", ""),
                "readSets": {
                    "total": (read_sets := job_read_sets(job)).total,
                    "exported": read_sets.exported,
                    "failed": read_sets.failed,
                    "inFlight": read_sets.in_flight,
                },
                "creationTime": job.get("creationTime"),
                "completionTime": job.get("completionTime"),
            }
            for job in export.jobs()
        ]
        report["activationList"] = [
            {
                "key": activation["key"],
                "id": activation["id"],
                "status": activation["status"],
                "statusMessage": activation.get("statusMessage", ""),
                "readSetIds": activation["readSetIds"],
                "sources": activation.get("sources", []),
            }
            for activation in ([] if manifest is None else manifest.get("activations", []))
        ]
    return report


def exports_json(exports: Sequence[ExportStatus], *, jobs: bool) -> str:
    code = overall([export.exit_code() for export in exports])
    return json.dumps(
        {
            "status": STATUS_NAMES[code],
            "exitCode": code,
            "exports": [export_json(export, jobs=jobs) for export in exports],
        },
        indent=2,
    )


def jobs_json(jobs: Sequence[JobStatus]) -> str:
    code = overall([job_code(job) for job in jobs])
    return json.dumps(
        {"status": STATUS_NAMES[code], "exitCode": code, "jobs": [asdict(job) for job in jobs]},
        indent=2,
    )


# Watching


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]read sets"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        console=console,
    )


def watch_exports(
    clients: Clients,
    exports: Sequence[ExportStatus],
    *,
    pacer: Pacer,
    console: Console,
    interval: float,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Re-read the manifests until every export's runner has ended (or stopped: the export
    stalled), with one progress bar over the read sets of all exports, a line whenever an
    export's status, its runner's or one of its jobs' changes, and each note once."""
    seen: dict[str, tuple[Any, ...]] = {}
    noted: set[str] = set()
    with _progress(console) as progress:
        task = progress.add_task("", total=None)
        while True:
            refresh(clients, exports, watching=True, pacer=pacer)
            for export in exports:
                state = (export.status, export.runner_state, *asdict(export.tally()).values())
                if seen.get(export.construct) != state:
                    seen[export.construct] = state
                    line = escape(export.summary())
                    progress.console.print(line, highlight=False, soft_wrap=True)
                for note in export.notes:
                    if note not in noted:
                        noted.add(note)
                        progress.console.print(escape(note), highlight=False, soft_wrap=True)
            done = sum(export.progress()[0] for export in exports)
            selected = sum(export.progress()[1] for export in exports)
            active = [e for e in exports if e.active and not e.waiting]
            waiting = sum(export.waiting for export in exports)
            description = (
                f"{len(active)} export(s) running, "
                f"{sum(e.tally().running for e in exports)} job(s) running"
            )
            if waiting:
                description += f", {waiting} {WAITING}"
            progress.update(task, total=selected or None, completed=done, description=description)
            if not active and not waiting:
                return
            sleep(interval)


def watch_jobs(
    clients: Clients,
    targets: Sequence[tuple[str, str, str]],
    *,
    pacer: Pacer,
    console: Console,
    interval: float,
    sleep: Callable[[float], None] = time.sleep,
) -> list[JobStatus]:
    """Follow jobs until each has ended, with one progress bar over all read sets."""
    jobs = collect_jobs(clients, targets, pacer)
    total = sum(job.read_sets for job in jobs) or len(jobs)
    with _progress(console) as progress:
        task = progress.add_task("", total=total)
        while True:
            done = sum(job.finished + job.failed for job in jobs) or sum(j.done for j in jobs)
            running = sum(not job.done for job in jobs)
            progress.update(task, completed=done, description=f"{running} job(s) running")
            if running == 0:
                return jobs
            sleep(interval)
            jobs = collect_jobs(clients, targets, pacer)


def collect_jobs(
    clients: Clients, targets: Sequence[tuple[str, str, str]], pacer: Pacer
) -> list[JobStatus]:
    statuses = []
    for construct, store, job_id in targets:
        pacer.wait()
        statuses.append(job_status(clients, store, job_id, construct))
    return statuses


# The command


def parsers() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """The command's parser and its ``status`` subcommand's."""
    parser = _Parser(
        prog="cdk-omics-export",
        description="Follow the read set exports of a cdk-omics-export stack, past the deploy.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    status = commands.add_parser(
        "status",
        help="print (or --watch) the status of a stack's exports",
        description=STATUS_DESCRIPTION,
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    status.add_argument("--stack", help="the CloudFormation stack with ReadSetExport constructs")
    status.add_argument(
        "--job-id", help="one export job, without a stack (asks HealthOmics directly)"
    )
    status.add_argument("--sequence-store-id", help="the sequence store of --job-id")
    status.add_argument("--region", help="the AWS Region (default: AWS_REGION or your profile's)")
    status.add_argument(
        "--jobs", action="store_true", help="with --stack: a row per job under each export"
    )
    status.add_argument(
        "--watch",
        action="store_true",
        help="re-read until every export's runner has ended or stopped (--job-id: until the "
        "job ends)",
    )
    status.add_argument(
        "--json",
        action="store_true",
        help='print JSON for scripts and CI, errors included: {"error": "...", "exitCode": N}',
    )
    status.add_argument(
        "--interval", type=float, default=30.0, help="seconds between polls with --watch (30)"
    )
    return parser, status


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    parser, status = parsers()
    # Arguments the status command does not know are its usage error, not the top level's.
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        status.error(f"unrecognized arguments: {' '.join(unknown)}")
    if bool(args.stack) == bool(args.job_id):
        status.error("give --stack, or --job-id with --sequence-store-id")
    if args.job_id and not args.sequence_store_id:
        status.error("--job-id needs --sequence-store-id")
    if args.jobs and not args.stack:
        status.error("--jobs goes with --stack")
    return args


def main(
    argv: Sequence[str] | None = None,
    *,
    clients: Clients | None = None,
    console: Console | None = None,
    errors: Console | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    out = console or Console()
    err = errors or Console(stderr=True)
    # Looked for before parsing, so that a usage error is JSON too when --json was asked for.
    json_output = "--json" in argv

    def fail(message: str, code: int, usage: argparse.ArgumentParser | None = None) -> int:
        """Report an error: one JSON object on stdout with --json, else text on stderr."""
        if json_output:
            report = json.dumps({"error": message, "exitCode": code}, indent=2)
            out.print(report, markup=False, highlight=False, soft_wrap=True)
        elif usage is not None:
            text = f"{usage.format_usage()}{usage.prog}: error: {message}"
            err.print(text, markup=False, highlight=False, soft_wrap=True)
        else:
            err.print(f"[red]error:[/red] {escape(message)}", highlight=False)
        return code

    try:
        args = _parse(argv)
    except UsageError as error:
        return fail(error.message, EXIT_USAGE, usage=error.parser)
    json_output = args.json  # --js, say, is --json too once parsed
    # With --json, stdout carries only the JSON; the progress bar goes to stderr.
    progress_console = err if json_output else out

    clients = clients or Clients(region=args.region)
    stopped = (
        "stopped; the exports keep running"
        if args.stack
        else "stopped; the export job keeps running"
    )
    try:
        if args.stack:
            return _stack(clients, args, out, progress_console, sleep)
        return _job(clients, args, out, progress_console, sleep)
    except StatusError as error:
        return fail(str(error), EXIT_ACCESS)
    except KeyboardInterrupt:
        if json_output:
            return fail(stopped, EXIT_RUNNING)
        err.print(stopped)
        return EXIT_RUNNING


def _stack(
    clients: Clients,
    args: argparse.Namespace,
    out: Console,
    progress_console: Console,
    sleep: Callable[[float], None],
) -> int:
    exports = exports_of_stack(clients, args.stack)
    pacer = Pacer(STATES_REQUESTS_PER_SECOND, LocalSlots())  # for DescribeExecution
    if args.watch:
        interval = max(args.interval, MIN_WATCH_INTERVAL)
        watch_exports(
            clients,
            exports,
            pacer=pacer,
            console=progress_console,
            interval=interval,
            sleep=sleep,
        )
    else:
        refresh(clients, exports, watching=False, pacer=pacer)
    if args.json:
        report = exports_json(exports, jobs=args.jobs)
        out.print(report, markup=False, highlight=False, soft_wrap=True)
        if not args.watch:  # a watch has logged them already
            for export in exports:
                for note in export.notes:  # on stderr: stdout is the JSON alone
                    progress_console.print(escape(note), highlight=False, soft_wrap=True)
    else:
        out.print(render_exports_table(args.stack, exports, jobs=args.jobs))
        for line in reasons(exports, jobs=args.jobs):
            out.print(escape(line), highlight=False)
    return overall([export.exit_code() for export in exports])


def _job(
    clients: Clients,
    args: argparse.Namespace,
    out: Console,
    progress_console: Console,
    sleep: Callable[[float], None],
) -> int:
    pacer = Pacer(DEFAULT_MAX_REQUESTS_PER_SECOND, LocalSlots())
    targets = [("", args.sequence_store_id, args.job_id)]
    if args.watch:
        # Each round reads every job once; rounds never come faster than the quota allows.
        interval = max(args.interval, len(targets) / DEFAULT_MAX_REQUESTS_PER_SECOND)
        jobs = watch_jobs(
            clients, targets, pacer=pacer, console=progress_console, interval=interval, sleep=sleep
        )
    else:
        jobs = collect_jobs(clients, targets, pacer)
    if args.json:
        out.print(jobs_json(jobs), markup=False, highlight=False, soft_wrap=True)
    else:
        out.print(render_jobs_table(jobs))
    return overall([job_code(job) for job in jobs])


def run() -> None:
    """The console script's entry point."""
    sys.exit(main())
