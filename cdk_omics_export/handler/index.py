"""Deploy-time handler of the ``Custom::OmicsReadSetExport`` resource.

Runs in Lambda behind CDK's Provider framework: ``on_event`` begins an export (selection,
pre-flight, the first jobs), ``is_complete`` is polled by the framework's waiter and carries
the export on until every job has ended. Both return or raise; the framework answers
CloudFormation. Imports only the standard library and boto3.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, NotRequired, TypedDict

import boto3
from botocore.config import Config

try:  # imported as cdk_omics_export.handler.index (tests, the construct)
    from . import export as exports
    from . import pacing, rules
except ImportError:  # Lambda: the asset's root is on sys.path
    import export as exports  # type: ignore[import-not-found,no-redef]
    import pacing  # type: ignore[import-not-found,no-redef]
    import rules  # type: ignore[import-not-found,no-redef]

Budget = exports.Budget
Export = exports.Export
ExportError = exports.ExportError
Selection = exports.Selection

if TYPE_CHECKING:
    from mypy_boto3_omics import OmicsClient
    from mypy_boto3_s3 import S3Client

__all__ = ["ExportError", "is_complete", "on_event"]

LOG = logging.getLogger()
LOG.setLevel(logging.INFO)

# Throttling, 5xx and request timeouts are retried by botocore's standard retry mode.
RETRY_MAX_ATTEMPTS = 6
CONNECT_TIMEOUT_SECONDS = 5
READ_TIMEOUT_SECONDS = 15
# How long one invocation keeps working; the functions' timeout (5 minutes) leaves room
# for a slow final call and saving the manifest.
WORK_SECONDS = 180.0
PACER_ID = "cdk-omics-export-pacer"
# 100 jobs with ids of 10 digits take 1,099 characters; the whole response must stay within
# CloudFormation's 4,096 bytes.
MAX_JOB_IDS_LENGTH = 2400


class ResourceProperties(TypedDict):
    ServiceToken: str
    SequenceStoreId: str
    Destination: str
    RoleArn: str
    ReadSetIds: NotRequired[list[str]]
    ReadSetList: NotRequired[str]
    ReadSetFilter: NotRequired[dict[str, str]]
    AllowEmptySelection: NotRequired[str]
    AllowPartialFailure: NotRequired[str]
    WaitForCompletion: NotRequired[str]
    TimeoutSeconds: NotRequired[str]
    PollIntervalSeconds: NotRequired[str]
    MaxRequestsPerSecond: NotRequired[str]


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


def _config() -> Config:
    return Config(
        retries={"mode": "standard", "total_max_attempts": RETRY_MAX_ATTEMPTS},
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=READ_TIMEOUT_SECONDS,
        user_agent_extra="cdk-omics-export",
    )


@functools.cache
def omics_client() -> OmicsClient:
    """One client per Lambda container, created on first use: Delete never needs one."""
    return boto3.client("omics", config=_config())


@functools.cache
def s3_client() -> S3Client:
    return boto3.client("s3", config=_config())


def now() -> datetime:
    return datetime.now(UTC)


# Entry points


def on_event(event: CloudFormationEvent, context: Any = None) -> OnEventResult:
    _log_event("on_event", event)
    request_type = event["RequestType"]
    if request_type == "Delete":
        # The API cannot cancel an export job, and exported objects belong to the user:
        # Delete has nothing to do and must never fail.
        return {}
    props = event["ResourceProperties"]
    selection = _selection(props)
    if request_type == "Update":
        old = event.get("OldResourceProperties")
        if old is not None and _selection(old).key() == selection.key():
            # Same data to the same place: keep the export. Data replaces the resource's
            # attributes, so it is returned again to keep every GetAtt working.
            physical_id = event["PhysicalResourceId"]
            state = _load_state(selection.destination, physical_id)
            LOG.info("nothing to export again; keeping export %s", physical_id)
            data = _data(selection, state, wait_seconds=props.get("TimeoutSeconds"))
            return {"PhysicalResourceId": physical_id, "Data": data}
    export_id = export_id_for(event)
    state = _load_state(selection.destination, export_id)
    if state is None:
        # A retried delivery of the same request finds the state its first delivery saved.
        state = exports.new_state(export_id, selection, now().isoformat(timespec="seconds"))
    export, _ = _run(state, selection, props, context)
    data = _data(selection, export.state, wait_seconds=props.get("TimeoutSeconds"))
    return {"PhysicalResourceId": export_id, "Data": data}


def is_complete(event: CloudFormationEvent, context: Any = None) -> IsCompleteResult:
    _log_event("is_complete", event)
    if event["RequestType"] == "Delete":
        return {"IsComplete": True}
    props = event["ResourceProperties"]
    selection = _selection(props)
    state = _load_state(selection.destination, event["PhysicalResourceId"])
    if state is None:
        # An export this handler has no record of (its manifest was removed): nothing to
        # follow, and failing would leave the stack unable to update or roll back.
        LOG.warning("no manifest for export %s; reporting it as is", event["PhysicalResourceId"])
        return {"IsComplete": True}
    export, done = _run(state, selection, props, context)
    if done:
        return {"IsComplete": True, "Data": _data(selection, export.state)}
    _fail_before_the_waiter_gives_up(event, export)
    # The framework forbids Data on an incomplete answer.
    return {"IsComplete": False}


# The export


def export_id_for(event: CloudFormationEvent) -> str:
    """The same CloudFormation request, delivered again, names the same export."""
    seed = "\n".join((event["StackId"], event["LogicalResourceId"], event["RequestId"]))
    return hashlib.sha256(seed.encode()).hexdigest()[:32]


def client_token(event: CloudFormationEvent, batch: int = 0) -> str:
    """StartReadSetExportJob's clientToken for one batch of this request's export."""
    return exports.batch_client_token(export_id_for(event), batch)


def _run(
    state: dict[str, Any], selection: Selection, props: ResourceProperties, context: Any
) -> tuple[Export, bool]:
    """Advance the export as far as this invocation allows; save the manifest whatever happens."""
    pacer = pacing.Pacer(
        int(props.get("MaxRequestsPerSecond", rules.DEFAULT_MAX_REQUESTS_PER_SECOND))
    )
    pacer.resume_after(state.get("lastRequestAt"))
    client = omics_client()
    events = client.meta.events
    events.register("before-send.omics", pacer.wait, unique_id=PACER_ID)
    export = Export(state, selection, client, _load_list)
    try:
        done = export.advance(
            _budget(context),
            wait=_flag(props, "WaitForCompletion"),
            allow_partial_failure=_flag(props, "AllowPartialFailure", default=False),
        )
    finally:
        events.unregister("before-send.omics", unique_id=PACER_ID)
        state["lastRequestAt"] = pacer.last_request_at
        state["updatedAt"] = now().isoformat(timespec="seconds")
        _save_state(selection.destination, state)
    return export, done


def _budget(context: Any) -> Budget:
    seconds = WORK_SECONDS
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if remaining is not None:
        seconds = min(seconds, remaining() / 1000 - 30)
    return Budget(seconds)


def _fail_before_the_waiter_gives_up(event: CloudFormationEvent, export: Export) -> None:
    """Past the deadline the framework would fail with a bare "Operation timed out"."""
    deadline = event.get("Data", {}).get("WaitDeadline")
    if deadline is None:
        return
    interval = int(event["ResourceProperties"].get("PollIntervalSeconds", "0"))
    if now() + timedelta(seconds=interval) < datetime.fromisoformat(deadline):
        return
    timeout = event["ResourceProperties"].get("TimeoutSeconds", "?")
    raise ExportError(export.timeout_message(str(timeout)))


# Properties, Data and the manifest


def _selection(props: ResourceProperties) -> Selection:
    ids = props.get("ReadSetIds")
    read_set_filter = props.get("ReadSetFilter")
    selection = Selection(
        sequence_store_id=props["SequenceStoreId"],
        destination=props["Destination"],
        role_arn=props["RoleArn"],
        read_set_ids=tuple(ids) if ids is not None else None,
        read_set_list=props.get("ReadSetList"),
        read_set_filter=dict(read_set_filter) if read_set_filter else None,
        allow_empty=_flag(props, "AllowEmptySelection", default=False),
    )
    # Synth time skips values that were tokens; they are resolved now.
    problems = rules.check_sequence_store_id(selection.sequence_store_id)
    if selection.read_set_ids is not None:
        problems += rules.check_read_set_ids(list(selection.read_set_ids))
    if problems:
        raise ExportError("; ".join(problems))
    return selection


def _data(
    selection: Selection, state: dict[str, Any] | None, *, wait_seconds: str | None = None
) -> dict[str, str]:
    """The resource's attributes: small and bounded at any size (the manifest has the rest).

    Every key is always present, so GetAtt never fails, even for an export without manifest.
    ``wait_seconds`` (on_event only) adds WaitDeadline, when is_complete must stop waiting.
    """
    state = state or {"jobs": [], "readSetIds": [], "status": "UNKNOWN", "createdAt": ""}
    jobs = [job for job in state["jobs"] if job["id"] is not None]
    data = {
        "JobId": jobs[0]["id"] if jobs else "",
        # For EventBridge rules on these jobs; bounded so the response stays under 4 KB.
        "JobIds": _bounded_join([job["id"] for job in jobs], MAX_JOB_IDS_LENGTH),
        "Status": state["status"],
        "Destination": selection.destination,
        "SequenceStoreId": selection.sequence_store_id,
        "CreationTime": jobs[0].get("creationTime", state["createdAt"])
        if jobs
        else state["createdAt"],
        "JobCount": str(len(state["jobs"])),
        "ReadSetCount": str(len(state["readSetIds"])),
        "FailedReadSetCount": str(len(exports.failed_read_sets(state["jobs"]))),
        "ManifestUri": exports.manifest_uri(selection.destination, state["exportId"])
        if "exportId" in state
        else "",
    }
    if wait_seconds is not None:
        deadline = now() + timedelta(seconds=int(wait_seconds))
        data["WaitDeadline"] = deadline.isoformat(timespec="seconds")
    return data


def _bounded_join(ids: list[str], limit: int) -> str:
    joined = ""
    for item in ids:
        candidate = f"{joined},{item}" if joined else item
        if len(candidate) > limit:
            LOG.warning(
                "JobIds lists %d of %d jobs; the manifest has every one",
                joined.count(",") + 1,
                len(ids),
            )
            break
        joined = candidate
    return joined


def _load_state(destination: str, export_id: str) -> dict[str, Any] | None:
    bucket, key = exports.manifest_location(destination, export_id)
    try:
        body = s3_client().get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception as error:
        if exports.error_code(error) in ("NoSuchKey", "404"):
            return None
        raise ExportError(
            f"Reading the export's manifest s3://{bucket}/{key} failed: {error}"
        ) from error
    state: dict[str, Any] = json.loads(body)
    return state


def _save_state(destination: str, state: dict[str, Any]) -> None:
    bucket, key = exports.manifest_location(destination, state["exportId"])
    s3_client().put_object(
        Bucket=bucket,
        Key=key,
        Body=json.dumps(state, separators=(",", ":")).encode(),
        ContentType="application/json",
    )


def _load_list(uri: str) -> list[str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    ids: list[str] = json.loads(s3_client().get_object(Bucket=bucket, Key=key)["Body"].read())
    return ids


def _flag(props: ResourceProperties, name: str, *, default: bool = True) -> bool:
    # CloudFormation delivers every property as a string.
    value = props.get(name)
    return default if value is None else str(value).lower() == "true"


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
    LOG.info("%s %s", entry, " ".join(json.dumps(safe, default=str).split()))
