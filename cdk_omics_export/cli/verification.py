"""Reading a stack's exports, and checking each manifest before it is reported: its export id
against the stack output that named it, its stack id against the stack, its runner execution
against the export's run, the stack's runner and the execution's input (Step Functions), and
against the export's record in the state table. A manifest may lag behind the record, never lead
it; one that disagrees is a mismatch. Also HealthOmics' word on one job (``--job-id``)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from botocore.exceptions import BotoCoreError, ClientError

from ..handler import state as st
from ..handler.pacing import Pacer
from ..handler.rules import DEFAULT_MAX_REQUESTS_PER_SECOND
from ..handler.state import Manifest
from .aws import ACTIONS, DENIED, Clients, StatusError, call_aws, error_code
from .status import FINAL, ExportStatus, JobStatus, StackFacts

# What S3 answers for a manifest not written yet: NoSuchKey, or AccessDenied to a caller
# without s3:ListBucket.
NOT_WRITTEN_YET = frozenset({"NoSuchKey", "AccessDenied", "404", "403"})
# DescribeExecution's pace: one per export each time the manifests are read, well under Step
# Functions' own quota, which the deploy's waiter draws on too.
STATES_REQUESTS_PER_SECOND = DEFAULT_MAX_REQUESTS_PER_SECOND
MANIFEST_OUTPUT = re.compile(r"^(?P<construct>.*)ManifestUri[0-9A-F]{8}$")
# The service's outputs: where its state is, and which state machine runs its exports.
STATE_TABLE_OUTPUT = re.compile(r"^.*StateTableName[0-9A-F]{8}$")
RUNNER_OUTPUT = re.compile(r"^.*RunnerStateMachineArn[0-9A-F]{8}$")


def exports_of_stack(clients: Clients, stack: str) -> list[ExportStatus]:
    """Every export of the stack (one per ``ManifestUri`` output), not read yet."""
    stacks = call_aws(
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
        body = call_aws("GetObject", uri, get)
    except StatusError as error:
        cause = error.__cause__
        if missing_ok and isinstance(cause, ClientError) and error_code(cause) in NOT_WRITTEN_YET:
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
        code = error_code(error)
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
        code = error_code(error)
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
    detail = call_aws(
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


def collect_jobs(
    clients: Clients, targets: Sequence[tuple[str, str, str]], pacer: Pacer
) -> list[JobStatus]:
    statuses = []
    for construct, store, job_id in targets:
        pacer.wait()
        statuses.append(job_status(clients, store, job_id, construct))
    return statuses
