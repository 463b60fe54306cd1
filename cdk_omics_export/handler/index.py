"""Deploy-time handler of the ``Custom::OmicsReadSetExport`` resource.

Runs in Lambda behind CDK's Provider framework: ``on_event`` starts a HealthOmics read set
export job, ``is_complete`` is polled by the framework's waiter until the job ends. Both
return or raise; the framework answers CloudFormation. Imports only the standard library
and boto3.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, NotRequired, TypedDict

import boto3
from botocore.config import Config

try:  # imported as cdk_omics_export.handler.index (tests, the construct)
    from . import rules
except ImportError:  # Lambda: the asset's root is on sys.path
    import rules  # type: ignore[import-not-found,no-redef]

if TYPE_CHECKING:
    from mypy_boto3_omics import OmicsClient

LOG = logging.getLogger()
LOG.setLevel(logging.INFO)

RUNNING_STATUSES = frozenset({"SUBMITTED", "IN_PROGRESS", "CANCELLING"})
SUCCEEDED_STATUSES = frozenset({"COMPLETED"})
FAILED_STATUSES = frozenset({"FAILED", "CANCELLED", "COMPLETED_WITH_FAILURES"})

# CloudFormation shows the reason of a failed resource from a response of at most 4,096
# bytes, which also carries ids and Data; the framework appends the log group's name.
MAX_FAILURE_MESSAGE_LENGTH = 1000
MAX_READ_SETS_NAMED = 10

# Throttling, 5xx and request timeouts are retried by botocore's standard retry mode;
# the Lambda's own timeout (2 minutes) leaves room for every attempt.
RETRY_MAX_ATTEMPTS = 6
CONNECT_TIMEOUT_SECONDS = 5
READ_TIMEOUT_SECONDS = 15


class ResourceProperties(TypedDict):
    ServiceToken: str
    SequenceStoreId: str
    ReadSetIds: list[str]
    Destination: str
    RoleArn: str
    WaitForCompletion: NotRequired[str]
    TimeoutSeconds: NotRequired[str]
    PollIntervalSeconds: NotRequired[str]


class CloudFormationEvent(TypedDict):
    RequestType: Literal["Create", "Update", "Delete"]
    RequestId: str
    StackId: str
    LogicalResourceId: str
    ResourceType: str
    ResourceProperties: ResourceProperties
    OldResourceProperties: NotRequired[ResourceProperties]
    PhysicalResourceId: NotRequired[str]
    # Added by the Provider framework to is_complete events: what on_event returned.
    Data: NotRequired[dict[str, str]]


class OnEventResult(TypedDict, total=False):
    PhysicalResourceId: str
    Data: dict[str, str]


class IsCompleteResult(TypedDict):
    IsComplete: bool
    Data: NotRequired[dict[str, str]]


class ExportError(Exception):
    """A failure CloudFormation shows as the resource's status reason."""


@functools.cache
def omics_client() -> OmicsClient:
    """One client per Lambda container, created on first use: Delete never needs one."""
    return boto3.client(
        "omics",
        config=Config(
            retries={"mode": "standard", "total_max_attempts": RETRY_MAX_ATTEMPTS},
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            read_timeout=READ_TIMEOUT_SECONDS,
            user_agent_extra="cdk-omics-export",
        ),
    )


def on_event(event: CloudFormationEvent, context: Any = None) -> OnEventResult:
    _log_event("on_event", event)
    request_type = event["RequestType"]
    if request_type == "Create":
        return _start(event)
    if request_type == "Update":
        return _update(event)
    # The API cannot cancel an export job, and exported objects belong to the user:
    # Delete has nothing to do and must never fail.
    return {}


def is_complete(event: CloudFormationEvent, context: Any = None) -> IsCompleteResult:
    _log_event("is_complete", event)
    if event["RequestType"] == "Delete":
        return {"IsComplete": True}
    props = event["ResourceProperties"]
    if not _wait_for_completion(props):
        return {"IsComplete": True}
    store_id = props["SequenceStoreId"]
    job_id = event["PhysicalResourceId"]
    job = _get_job(store_id, job_id)
    status = job["status"]
    LOG.info("export job %s in sequence store %s is %s", job_id, store_id, status)
    if status in RUNNING_STATUSES:
        _fail_before_the_waiter_gives_up(event, job)
        # The framework forbids Data on an incomplete answer.
        return {"IsComplete": False}
    if status in SUCCEEDED_STATUSES:
        return {"IsComplete": True, "Data": _job_data(job)}
    raise ExportError(failure_message(job))


def _fail_before_the_waiter_gives_up(event: CloudFormationEvent, job: Mapping[str, Any]) -> None:
    """Past the deadline the framework would fail with a bare "Operation timed out"."""
    deadline = event.get("Data", {}).get("WaitDeadline")
    if deadline is None:
        return
    interval = int(event["ResourceProperties"].get("PollIntervalSeconds", "0"))
    if now() + timedelta(seconds=interval) < datetime.fromisoformat(deadline):
        return
    timeout = event["ResourceProperties"].get("TimeoutSeconds", "?")
    raise ExportError(
        _clip(
            f"HealthOmics export job {job['id']} in sequence store {job['sequenceStoreId']} "
            f"is still {job['status']} after the {timeout} s the deploy waits (timeout). "
            "The job keeps running and cannot be cancelled; its files will still arrive at "
            f"{job['destination']}. Use a longer timeout, or wait_for_completion=False."
        )
    )


def now() -> datetime:
    return datetime.now(UTC)


def client_token(event: CloudFormationEvent) -> str:
    """The same CloudFormation request, delivered again, gives the same token."""
    seed = "\n".join((event["StackId"], event["LogicalResourceId"], event["RequestId"]))
    token = hashlib.sha256(seed.encode()).hexdigest()
    return token[: rules.CLIENT_TOKEN_MAX_LENGTH]


def failure_message(job: Mapping[str, Any]) -> str:
    """Name the job, the service's status message and the failed read sets, briefly."""
    head = (
        f"HealthOmics export job {job['id']} in sequence store {job['sequenceStoreId']} "
        f"ended {job['status']}"
    )
    if job.get("statusMessage"):
        head += f": {_one_line(job['statusMessage'])}"
    failed = [r for r in job.get("readSets", []) if r.get("status") == "FAILED"]
    if not failed:
        return _clip(head + ".")
    parts: list[str] = []
    for item in failed[:MAX_READ_SETS_NAMED]:
        reason = item.get("statusMessage")
        parts.append(f"{item['id']} ({_one_line(reason)})" if reason else item["id"])
    more = len(failed) - len(parts)
    tail = f" and {more} more" if more else ""
    listing = f". {len(failed)} read set(s) failed: {'; '.join(parts)}{tail}."
    return _clip(head + listing)


def _start(event: CloudFormationEvent) -> OnEventResult:
    props = event["ResourceProperties"]
    _check_properties(props)
    store_id = props["SequenceStoreId"]
    read_set_ids = props["ReadSetIds"]
    token = client_token(event)
    try:
        job = omics_client().start_read_set_export_job(
            sequenceStoreId=store_id,
            destination=props["Destination"],
            roleArn=props["RoleArn"],
            sources=[{"readSetId": read_set_id} for read_set_id in read_set_ids],
            clientToken=token,
        )
    except Exception as error:
        raise _service_error(
            "StartReadSetExportJob", store_id, error, read_set_ids=read_set_ids
        ) from error
    LOG.info(
        "started export job %s in sequence store %s for %d read set(s) (client token %s)",
        job["id"],
        store_id,
        len(read_set_ids),
        token,
    )
    return {"PhysicalResourceId": job["id"], "Data": _waiting_data(props, job)}


def _update(event: CloudFormationEvent) -> OnEventResult:
    new = event["ResourceProperties"]
    old = event.get("OldResourceProperties")
    if old is None or _export_key(old) != _export_key(new):
        # A new PhysicalResourceId: CloudFormation then deletes the old one (a no-op).
        return _start(event)
    job_id = event["PhysicalResourceId"]
    job = _get_job(new["SequenceStoreId"], job_id)
    LOG.info("nothing to export again; keeping export job %s", job_id)
    # Data replaces the resource's attributes: returning it keeps every GetAtt working.
    return {"PhysicalResourceId": job_id, "Data": _waiting_data(new, job)}


def _export_key(props: ResourceProperties) -> tuple[str, tuple[str, ...], str]:
    """What decides which data is exported where; order of read set ids does not matter."""
    return (props["SequenceStoreId"], tuple(sorted(props["ReadSetIds"])), props["Destination"])


def _check_properties(props: ResourceProperties) -> None:
    """Synth time skips values that were tokens; they are resolved now."""
    problems = [
        *rules.check_sequence_store_id(props["SequenceStoreId"]),
        *rules.check_read_set_ids(props["ReadSetIds"]),
    ]
    if problems:
        raise ExportError("; ".join(problems))


def _get_job(store_id: str, job_id: str) -> Mapping[str, Any]:
    try:
        return omics_client().get_read_set_export_job(sequenceStoreId=store_id, id=job_id)
    except Exception as error:
        raise _service_error("GetReadSetExportJob", store_id, error, job_id=job_id) from error


def _service_error(
    operation: str,
    store_id: str,
    error: Exception,
    *,
    job_id: str | None = None,
    read_set_ids: Sequence[str] = (),
) -> ExportError:
    response = getattr(error, "response", None)
    if isinstance(response, dict) and "Error" in response:
        code = response["Error"].get("Code", "Error")
        said = f"{code}: {_one_line(response['Error'].get('Message', ''))}"
    else:
        said = f"{type(error).__name__}: {_one_line(str(error))}"
    subject = f"sequence store {store_id}"
    if job_id is not None:
        subject = f"export job {job_id} in {subject}"
    if read_set_ids:
        shown = ", ".join(read_set_ids[:MAX_READ_SETS_NAMED])
        more = len(read_set_ids) - MAX_READ_SETS_NAMED
        subject += f" (read sets {shown}{f' and {more} more' if more > 0 else ''})"
    return ExportError(_clip(f"{operation} failed for {subject}: {said}"))


def _job_data(job: Mapping[str, Any]) -> dict[str, str]:
    created = job["creationTime"]
    return {
        "JobId": job["id"],
        "Status": job["status"],
        "Destination": job["destination"],
        "SequenceStoreId": job["sequenceStoreId"],
        "CreationTime": created.isoformat() if isinstance(created, datetime) else str(created),
    }


def _waiting_data(props: ResourceProperties, job: Mapping[str, Any]) -> dict[str, str]:
    """The job's Data, plus when is_complete must stop waiting (the waiter keeps no clock)."""
    data = _job_data(job)
    if "TimeoutSeconds" in props:
        deadline = now() + timedelta(seconds=int(props["TimeoutSeconds"]))
        data["WaitDeadline"] = deadline.isoformat(timespec="seconds")
    return data


def _wait_for_completion(props: ResourceProperties) -> bool:
    # CloudFormation delivers every property as a string.
    return str(props.get("WaitForCompletion", "true")).lower() != "false"


def _log_event(entry: str, event: CloudFormationEvent) -> None:
    # The ResponseURL is a presigned URL that can answer for the stack: never log it.
    safe = {
        key: event[key]
        for key in (
            "RequestType",
            "RequestId",
            "LogicalResourceId",
            "PhysicalResourceId",
            "ResourceProperties",
            "OldResourceProperties",
        )
        if key in event
    }
    LOG.info("%s %s", entry, _one_line(json.dumps(safe, default=str)))


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _clip(text: str) -> str:
    if len(text) <= MAX_FAILURE_MESSAGE_LENGTH:
        return text
    return text[: MAX_FAILURE_MESSAGE_LENGTH - 3] + "..."
