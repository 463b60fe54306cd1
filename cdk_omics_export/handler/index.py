"""Deploy-time handler of the ``Custom::OmicsReadSetExport`` resource.

Runs in Lambda behind CDK's Provider framework, one pair of functions per stack
(``ReadSetExportService``) shared by every export in it. ``on_event`` makes the request the
export's current run and starts it; ``is_complete`` is polled by the framework's waiter and
carries it on until it ends. The export itself is a record in the service's state table
(``state.py``), advanced by ``export.py``. Both entry points return or raise; the framework
answers CloudFormation. Imports only the standard library and boto3.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import json
import logging
import os
import time
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal, NotRequired, TypedDict

import boto3
from botocore.config import Config

try:  # imported as cdk_omics_export.handler.index (tests, the construct)
    from . import export as exports
    from . import pacing, rules
    from . import state as st
except ImportError:  # Lambda: the asset's root is on sys.path
    import export as exports  # type: ignore[import-not-found,no-redef]
    import pacing  # type: ignore[import-not-found,no-redef]
    import rules  # type: ignore[import-not-found,no-redef]
    import state as st  # type: ignore[import-not-found,no-redef]

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_omics import OmicsClient
    from mypy_boto3_s3 import S3Client

__all__ = ["ExportError", "is_complete", "on_event"]

ExportError = exports.ExportError

LOG = logging.getLogger()
LOG.setLevel(logging.INFO)

TABLE_ENV = rules.TABLE_ENV
LOG_GROUP_ENV = rules.LOG_GROUP_ENV
RATE_ENV = rules.RATE_ENV
POLL_ENV = rules.POLL_ENV

# Throttling, 5xx and request timeouts are retried by botocore's standard retry mode, each
# attempt only while the invocation has time for it (the pacer checks).
RETRY_MAX_ATTEMPTS = 6
CONNECT_TIMEOUT_SECONDS = 5
READ_TIMEOUT_SECONDS = 15
ATTEMPT_SECONDS = CONNECT_TIMEOUT_SECONDS + READ_TIMEOUT_SECONDS
# How long one invocation keeps working; the functions' timeout (5 minutes) leaves room
# for a slow final call and saving the state.
WORK_SECONDS = 180.0
# Kept back from the function's own timeout for saving the state and answering.
FINISH_SECONDS = 30.0
# The whole answer to CloudFormation must fit 4,096 bytes.
RESPONSE_LIMIT = 4096
RESPONSE_MARGIN = 200


class ResourceProperties(TypedDict):
    ServiceToken: str
    ConstructPath: str
    ExportGeneration: NotRequired[str]
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
    # Changed by the user to have the selection evaluated again; the handler needs no value.
    SelectionRefresh: NotRequired[str]
    Encryption: NotRequired[str]
    KmsKeyArn: NotRequired[str]


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
    """One client per Lambda container, created on first use: Delete never needs one.

    Every HTTP attempt it makes, botocore's retries included, first waits for the current
    invocation's pacer (see ``_paced``).
    """
    client = boto3.client("omics", config=_config())
    client.meta.events.register("before-send.omics", _wait_for_the_pacer)
    return client


# The pacer of the invocation running in this context (thread); None outside one.
_PACER: contextvars.ContextVar[pacing.Pacer | None] = contextvars.ContextVar(
    "cdk_omics_export_pacer", default=None
)


def _wait_for_the_pacer(**kwargs: Any) -> None:
    pacer = _PACER.get()
    if pacer is not None:
        pacer.wait(**kwargs)


@functools.cache
def s3_client() -> S3Client:
    return boto3.client("s3", config=_config())


@functools.cache
def dynamodb_client() -> DynamoDBClient:
    return boto3.client("dynamodb", config=_config())


def state_store() -> st.StateStore:
    return st.StateStore(dynamodb_client(), os.environ[TABLE_ENV])


def now() -> float:
    return time.time()


# Entry points


def on_event(event: CloudFormationEvent, context: Any = None) -> OnEventResult:
    entered = now()
    _log_event("on_event", event)
    if event["RequestType"] == "Delete":
        _cancel(event)
        # The framework keeps the physical id: Delete may not change it.
        return {}
    request = _request(event)
    export = _export(request)
    try:
        export.begin(event["RequestId"], event["RequestType"], entered)
        owner = _owner(context)
        store = export.store
        store.acquire_lease(export.export_id, owner, _remaining_seconds(context), force=True)
        try:
            with _paced(context, store):
                export.advance(_budget(context))
            export.conclude()
        finally:
            export.write_manifest(s3_client())
            store.release_lease(export.export_id, owner)
    except (ExportError, st.StateError) as error:
        raise ExportError(_with_logs(str(error))) from error
    return {"PhysicalResourceId": export.export_id, "Data": _data(event, export)}


def is_complete(event: CloudFormationEvent, context: Any = None) -> IsCompleteResult:
    _log_event("is_complete", event)
    if event["RequestType"] == "Delete":
        return {"IsComplete": True}
    request = _request(event)
    export = _export(request)
    try:
        return _poll(event, export, context)
    except (ExportError, st.StateError) as error:
        raise ExportError(_with_logs(str(error))) from error


def _poll(event: CloudFormationEvent, export: exports.Export, context: Any) -> IsCompleteResult:
    export.load()
    record = export.record  # raises a clear error when the state is gone
    if not export.is_current_run(event["RequestId"]):
        # A newer request (an update, a rollback) serves this export now; CloudFormation has
        # moved on from this one, so its waiter stops here, starting nothing.
        raise ExportError(
            f"Request {event['RequestId']} of export {export.export_id} was superseded by "
            f"request {record['run']['requestId']}; this waiter stops."
        )
    owner = _owner(context)
    store = export.store
    if not store.acquire_lease(export.export_id, owner, _remaining_seconds(context)):
        LOG.info("another invocation is advancing export %s; waiting", export.export_id)
        return {"IsComplete": False}
    try:
        export.load()  # what the previous lease holder saved
        with _paced(context, store):
            export.advance(_budget(context))
        if export.record["cancelled"]:
            return _cancelled(export)
        if export.conclude():
            return {"IsComplete": True, "Data": _data(event, export)}
        _fail_before_the_waiter_gives_up(event, export)
        # The framework forbids Data on an incomplete answer.
        return {"IsComplete": False}
    finally:
        export.write_manifest(s3_client())
        store.release_lease(export.export_id, owner)


def _cancelled(export: exports.Export) -> IsCompleteResult:
    """A cancelled export starts nothing; its waiter records running jobs until they end."""
    export.conclude()
    if any(b["status"] in st.RUNNING_JOB_STATUSES for b in export.snapshot.batches.values()):
        return {"IsComplete": False}
    raise ExportError(f"Export {export.export_id} was cancelled (its resource was deleted).")


def _cancel(event: CloudFormationEvent) -> None:
    """Mark the export cancelled. Never fails: a Delete that failed would leave the stack
    stuck, and the API cannot cancel a job anyway (running jobs end on their own)."""
    try:
        props = event["ResourceProperties"]
        export_id = exports.export_id_of(
            event["StackId"],
            props["ConstructPath"],
            props["Destination"],
            int(props.get("ExportGeneration", "0")),
        )
        found = state_store().cancel(export_id)
        LOG.info("export %s %s", export_id, "cancelled" if found else "had no state")
    except Exception:  # noqa: BLE001
        LOG.exception("could not mark the export cancelled; nothing more will start anyway")


def _export(request: exports.ExportRequest) -> exports.Export:
    return exports.Export(
        state_store(),
        omics_client(),
        request,
        load_list=_load_list,
        # Looked up at each call, so a rehearsal's simulated clock reaches the export too.
        clock=lambda: now(),  # noqa: PLW0108
    )


# The invocation's time


@contextlib.contextmanager
def _paced(context: Any, store: st.StateStore) -> Iterator[None]:
    """The service's shared pacer, for the HealthOmics requests of one invocation."""
    rate = int(os.environ.get(RATE_ENV, rules.DEFAULT_MAX_REQUESTS_PER_SECOND))
    pacer = pacing.Pacer(
        rate,
        store,
        time_left=lambda: _remaining_seconds(context),
        attempt_seconds=ATTEMPT_SECONDS + FINISH_SECONDS,
        out_of_time=exports.OutOfTime,
    )
    token = _PACER.set(pacer)
    try:
        yield
    finally:
        _PACER.reset(token)


def _remaining_seconds(context: Any) -> float:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return remaining() / 1000 if remaining is not None else WORK_SECONDS + FINISH_SECONDS * 2


def _budget(context: Any) -> exports.Budget:
    return exports.Budget(min(WORK_SECONDS, _remaining_seconds(context) - FINISH_SECONDS))


def _owner(context: Any) -> str:
    return str(getattr(context, "aws_request_id", None) or uuid.uuid4())


def _fail_before_the_waiter_gives_up(event: CloudFormationEvent, export: exports.Export) -> None:
    """Past the deadline the framework would fail with a bare "Operation timed out"."""
    deadline = export.run.get("deadline")
    if deadline is None:
        return
    if now() + export.request.poll_interval_seconds < deadline:
        return
    message = export.timeout_message()
    export.fail(message)
    raise ExportError(message)


# Properties, Data and messages


def _request(event: CloudFormationEvent) -> exports.ExportRequest:
    props = event["ResourceProperties"]
    ids = props.get("ReadSetIds")
    spec: st.SelectionSpec = {"allowEmpty": _flag(props, "AllowEmptySelection", default=False)}
    if ids is not None:
        spec["readSetIds"] = list(ids)
    if props.get("ReadSetList"):
        spec["readSetList"] = props["ReadSetList"]
    if props.get("ReadSetFilter"):
        spec["filter"] = dict(props["ReadSetFilter"])
    encryption: st.Encryption = {"mode": props.get("Encryption", "")}
    if props.get("KmsKeyArn"):
        encryption["keyArn"] = props["KmsKeyArn"]
    request = exports.ExportRequest(
        stack_id=event["StackId"],
        construct_path=props["ConstructPath"],
        destination=props["Destination"],
        generation=int(props.get("ExportGeneration", "0")),
        sequence_store_id=props["SequenceStoreId"],
        role_arn=props["RoleArn"],
        selection=spec,
        encryption=encryption,
        wait=_flag(props, "WaitForCompletion"),
        allow_partial_failure=_flag(props, "AllowPartialFailure", default=False),
        timeout_seconds=int(props.get("TimeoutSeconds", rules.DEFAULT_TIMEOUT_SECONDS)),
        poll_interval_seconds=int(os.environ.get(POLL_ENV, rules.DEFAULT_POLL_INTERVAL_SECONDS)),
    )
    # Synth time skips values that were tokens; they are resolved now.
    problems = rules.check_sequence_store_id(request.sequence_store_id)
    if ids is not None:
        problems += rules.check_read_set_ids(list(ids))
    if problems:
        raise ExportError("; ".join(problems))
    return request


def _data(event: CloudFormationEvent, export: exports.Export) -> dict[str, str]:
    """The resource's attributes, sized so the whole answer stays within 4,096 bytes.

    Every key is always present, so GetAtt never fails. JobIds gets whatever bytes are left
    once the rest of the answer (ids, Destination, ManifestUri) is counted.
    """
    run, counts = export.run, export.counts()
    job_ids = run["jobIds"]
    data = {
        "ExportId": export.export_id,
        "JobId": job_ids[0] if job_ids else "",
        "JobIds": "",
        "Status": export.record["status"],
        "Destination": export.request.destination,
        "SequenceStoreId": export.request.sequence_store_id,
        "CreationTime": exports.iso_time(run["startedAt"]),
        "JobCount": str(len(job_ids)),
        "ReadSetCount": str(counts.selected),
        "ExportedReadSetCount": str(counts.exported),
        "FailedReadSetCount": str(counts.failed),
        "ManifestUri": export.manifest_uri(),
    }
    envelope = {
        "Status": "SUCCESS",
        "Reason": "SUCCESS",
        "StackId": event["StackId"],
        "RequestId": event["RequestId"],
        "LogicalResourceId": event["LogicalResourceId"],
        "PhysicalResourceId": export.export_id,
        "NoEcho": False,
        "Data": data,
    }
    left = RESPONSE_LIMIT - RESPONSE_MARGIN - len(json.dumps(envelope).encode())
    data["JobIds"] = _bounded_join(job_ids, left)
    return data


def _bounded_join(ids: list[str], limit: int) -> str:
    joined = ""
    for item in ids:
        candidate = f"{joined},{item}" if joined else item
        if len(candidate) > limit:
            LOG.warning(
                "JobIds lists %d of %d jobs; the manifest has every one",
                joined.count(",") + 1 if joined else 0,
                len(ids),
            )
            break
        joined = candidate
    return joined


def _with_logs(message: str) -> str:
    """Point at the service's log group: the framework's own pointer names a group that
    does not exist, since the service's functions log to a group of their own."""
    group = os.environ.get(LOG_GROUP_ENV)
    return f"{message} Handler logs: {group}." if group else message


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
