"""The handler of the ``Custom::OmicsReadSetExport`` resource and of the export runner.

Runs in Lambda, three functions per stack (``ReadSetExportService``) shared by every export
in it. Behind CDK's Provider framework, ``on_event`` makes the request the export's current
run and starts the service's runner for it (a Step Functions execution), and ``is_complete``,
polled by the framework's waiter, watches the export's state until the deploy may go on; it
also starts a new runner execution if the one carrying the export has stopped. ``run_step``
is the runner's Task: each call advances the export as far as its time allows (``export.py``)
and tells the state machine whether to wait and call again. The export itself is a record in
the service's state table (``state.py``). The entry points return or raise; the framework
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
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_omics import OmicsClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_stepfunctions import SFNClient

__all__ = ["ExportError", "is_complete", "on_event", "run_step"]

ExportError = exports.ExportError

LOG = logging.getLogger()
LOG.setLevel(logging.INFO)

TABLE_ENV = rules.TABLE_ENV
LOG_GROUP_ENV = rules.LOG_GROUP_ENV
RATE_ENV = rules.RATE_ENV
POLL_ENV = rules.POLL_ENV
RUNNER_ENV = rules.RUNNER_ENV

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
# The waiter leaves a runner execution alone for this long after it was recorded: Step
# Functions' DescribeExecution is eventually consistent.
RUNNER_START_GRACE_SECONDS = 60.0
# How many times a run's failed runner execution is restarted by the watchdog.
RUNNER_RESTARTS = 3
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


class RunnerStep(TypedDict):
    """The runner's Task input: its state, and the execution's context object fields."""

    exportId: str
    steps: int  # steps this execution has taken
    execution: str  # $$.Execution.Name
    stateMachine: str  # $$.StateMachine.Id


class RunnerStepResult(TypedDict):
    """The runner's next state input: its Choice state reads ``action``."""

    exportId: str
    steps: int
    action: Literal["WAIT", "END"]
    waitSeconds: int


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


@functools.cache
def states_client() -> SFNClient:
    return boto3.client("stepfunctions", config=_config())


@functools.cache
def events_client() -> EventBridgeClient:
    return boto3.client("events", config=_config())


def state_store() -> st.StateStore:
    return st.StateStore(dynamodb_client(), os.environ[TABLE_ENV])


# The handler's clock and sleep, looked up at each call: a rehearsal puts them on its
# simulated clock.
def now() -> float:
    return time.time()


def sleep(seconds: float) -> None:
    time.sleep(seconds)


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
        runner = export.record.get("runner")
        if runner is None or runner["name"] != exports.runner_name(
            export.export_id, export.run["number"], runner["segment"]
        ):
            runner = export.claim_runner(0)
        # Told before the runner starts, so that nothing it saves is overwritten here.
        export.write_manifest(s3_client())
        export.publish(events_client())
        if not _start_execution(runner["name"], export.export_id):
            # A redelivered request's runner, or an execution of that name that has closed
            # (the export's state was rebuilt): keep one going.
            _keep_the_runner_going(export, grace=False)
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
        return _watch(event, export)
    except (ExportError, st.StateError) as error:
        raise ExportError(_with_logs(str(error))) from error


def run_step(event: RunnerStep, context: Any = None) -> RunnerStepResult | None:
    """One step of the runner: advance the export, then wait and step again, or end.

    Also the target of the runner's watchdog rule: Step Functions' event for an execution that
    failed (``_restart``).
    """
    if "detail-type" in event:
        _restart(event)  # type: ignore[arg-type]
        return None
    LOG.info("run_step %s", json.dumps(event, sort_keys=True))
    poll = int(os.environ.get(POLL_ENV, rules.DEFAULT_POLL_INTERVAL_SECONDS))
    steps = int(event.get("steps", 0)) + 1
    action, wait = _step(event, context, poll)
    if action == "CONTINUE" and steps < rules.RUNNER_STEPS_PER_EXECUTION:
        action = "WAIT"
    elif action == "CONTINUE":
        # Well before the execution's 25,000 history events: go on in a new execution.
        export = _export_of_state(event["exportId"], poll, event["stateMachine"])
        if export is not None and _carries(export.record, event["execution"], event):
            export.load()
            successor = export.claim_runner(export.record["runner"]["segment"] + 1)
            _start_execution(successor["name"], export.export_id, event["stateMachine"])
            _tell(export)  # the manifest names the execution that carries the export now
            LOG.info("runner %s continues as %s", event["execution"], successor["name"])
        action = "END"
    return {
        "exportId": event["exportId"],
        "steps": steps,
        "action": "END" if action == "END" else "WAIT",
        "waitSeconds": wait,
    }


def _step(
    event: RunnerStep, context: Any, poll: int
) -> tuple[Literal["WAIT", "END", "CONTINUE"], int]:
    """WAIT: another invocation holds the export; CONTINUE: it has work left; END: the
    export's work is over, or another execution carries it. And how long to wait."""
    export_id, name = event["exportId"], event["execution"]
    export = _export_of_state(export_id, poll, event["stateMachine"])
    if export is None or not _carries(export.record, name, event):
        return "END", poll
    export.runner_name = name
    store, owner = export.store, _owner(context)
    if not store.acquire_lease(export_id, owner, _remaining_seconds(context)):
        LOG.info("another invocation is advancing export %s; waiting", export_id)
        return "WAIT", poll
    # Told only by a step that loaded the state and still carries the export: a superseded
    # step must not overwrite the newer run's manifest or publish its old status.
    tell = False
    try:
        export.load()  # what the previous lease holder saved
        if not _carries(export.record, name, event):
            return "END", poll
        tell = True
        try:
            with _paced(context, store):
                export.advance(_budget(context))
        except ExportError as error:
            LOG.warning("export %s failed: %s", export_id, error)  # recorded as its status
        done = export.settle()
    except st.Cancelled as stopped:
        tell = False
        LOG.info("runner %s ends: %s", name, stopped)
        return "END", poll
    finally:
        if tell:
            export.write_manifest(s3_client())
            export.publish(events_client())
        store.release_lease(export_id, owner)
    if not done:
        return "CONTINUE", export.next_wait_seconds(poll)
    if not export.told():
        # The runner's last word is the one rules wait for: fail the step, and Step Functions
        # retries it (for about two hours) until the final status is published.
        raise ExportError(
            f"export {export_id} ended {export.record['status']}, but its status-change event "
            "could not be published; retrying"
        )
    LOG.info("export %s ended %s; runner %s ends", export_id, export.record["status"], name)
    return "END", poll


def _export_of_state(export_id: str, poll: int, state_machine: str) -> exports.Export | None:
    """The export as its state describes it, or None when it has no state any more."""
    store = state_store()
    record = store.load_record(export_id)
    if record is None:
        LOG.warning("export %s has no state any more; its runner ends", export_id)
        return None
    export = _export(exports.ExportRequest.of_record(record, poll), state_machine)
    export.snapshot.record = record
    return export


def _restart(event: dict[str, Any]) -> None:
    """Start the next execution when the one that failed still carried an unfinished export,
    at most ``RUNNER_RESTARTS`` times per run: a step that fails every time is a fault to
    look at, not to loop on (its error is in the execution's history and the logs)."""
    detail = event["detail"]
    name, machine = detail["name"], detail["stateMachineArn"]
    export_id = json.loads(detail.get("input") or "{}").get("exportId")
    LOG.info("runner execution %s ended %s", name, detail.get("status"))
    if not export_id:
        return
    poll = int(os.environ.get(POLL_ENV, rules.DEFAULT_POLL_INTERVAL_SECONDS))
    export = _export_of_state(export_id, poll, machine)
    if export is None:
        return
    export.load()
    runner = export.record.get("runner")
    if runner is None or runner["name"] != name or export.runner_done():
        return  # taken over already, or nothing left to do
    restarts = runner.get("restarts", 0) + 1
    if restarts > RUNNER_RESTARTS:
        LOG.error(
            "runner execution %s of export %s failed %d times; the waiter or the next deploy "
            "resumes it",
            name,
            export_id,
            restarts,
        )
        return
    try:
        successor = export.claim_runner(runner["segment"] + 1, replacing=runner, restarts=restarts)
    except st.Cancelled:
        return
    _start_execution(successor["name"], export_id, machine)
    _tell(export)
    LOG.warning(
        "runner execution %s failed; %s carries export %s on", name, successor["name"], export_id
    )


def _tell(export: exports.Export) -> None:
    """Write the manifest and publish the status, if either changed (best effort)."""
    export.write_manifest(s3_client())
    export.publish(events_client())


def _carries(record: st.ExportRecord, name: str, event: RunnerStep) -> bool:
    """Whether execution ``name`` carries the export now. An execution whose successor is
    recorded but may not have started (its handover failed and the step is retried) starts
    it again: the start is idempotent."""
    runner = record.get("runner")
    if runner is not None and runner["name"] == name:
        return True
    if runner is not None and runner["segment"] > 0:
        run, segment = record["run"]["number"], runner["segment"]
        if name == exports.runner_name(record["exportId"], run, segment - 1):
            _start_execution(runner["name"], record["exportId"], event["stateMachine"])
    LOG.info(
        "export %s is carried by %s, not %s; this runner ends",
        record["exportId"],
        runner["name"] if runner is not None else "no runner",
        name,
    )
    return False


def _watch(event: CloudFormationEvent, export: exports.Export) -> IsCompleteResult:
    """The waiter's poll: read the state, keep a runner going, answer."""
    export.load()
    record = export.record  # raises a clear error when the state is gone
    if not export.is_current_run(event["RequestId"]):
        # A newer request (an update, a rollback) serves this export now; CloudFormation has
        # moved on from this one, so its waiter stops here, starting nothing.
        raise ExportError(
            f"Request {event['RequestId']} of export {export.export_id} was superseded by "
            f"request {record['run']['requestId']}; this waiter stops."
        )
    if record["cancelled"]:
        raise ExportError(f"Export {export.export_id} was cancelled (its resource was deleted).")
    run = export.run
    if run["phase"] == "ENDED":
        if record.get("statusReason"):
            raise ExportError(record["statusReason"])
        return {"IsComplete": True, "Data": _data(event, export)}
    if not run["wait"] and run["phase"] == "EXPORTING":
        # Selected and checked: the runner carries the rest after the deploy.
        return {"IsComplete": True, "Data": _data(event, export)}
    _keep_the_runner_going(export)
    _fail_before_the_waiter_gives_up(event, export)
    # The framework forbids Data on an incomplete answer.
    return {"IsComplete": False}


def _keep_the_runner_going(export: exports.Export, *, grace: bool = True) -> None:
    """Start a new runner execution when the one recorded has stopped (by hand, or after its
    retries ran out) while the export still has work."""
    runner = export.record.get("runner")
    if runner is not None:
        if grace and now() - runner["startedAt"] < RUNNER_START_GRACE_SECONDS:
            return  # DescribeExecution may not know an execution started moments ago
        status: str = "NOT_STARTED"
        with contextlib.suppress(states_client().exceptions.ExecutionDoesNotExist):
            described = states_client().describe_execution(
                executionArn=exports.execution_arn(os.environ[RUNNER_ENV], runner["name"])
            )
            status = described["status"]
        # PENDING_REDRIVE: someone redrives it by hand; it carries on then.
        if status in ("RUNNING", "PENDING_REDRIVE") or export.runner_done():
            return
        LOG.warning(
            "runner execution %s of export %s is %s; a new one takes the export over",
            runner["name"],
            export.export_id,
            status,
        )
    segment = runner["segment"] + 1 if runner is not None else 0
    for _ in range(3):
        try:
            successor = export.claim_runner(segment, replacing=runner)
        except st.Cancelled:
            LOG.info("another invocation took export %s over first", export.export_id)
            return
        if _start_execution(successor["name"], export.export_id):
            _tell(export)
            return
        # That name belongs to an execution that has closed: the next one.
        runner, segment = successor, successor["segment"] + 1


def _start_execution(name: str, export_id: str, state_machine: str | None = None) -> bool:
    """Start a runner execution; False when one of that name exists and has closed."""
    client = states_client()
    try:
        client.start_execution(
            stateMachineArn=state_machine or os.environ[RUNNER_ENV],
            name=name,
            # The same for every start of this name: a second start of a running execution
            # returns it.
            input=json.dumps({"exportId": export_id, "steps": 0}, sort_keys=True),
        )
    except client.exceptions.ExecutionAlreadyExists:
        LOG.info("runner execution %s was started before", name)
        return False
    return True


def _cancel(event: CloudFormationEvent) -> None:
    """Mark the export cancelled. Never fails: a Delete that failed would leave the stack
    stuck, and the API cannot cancel a job anyway (running jobs end on their own); the
    runner starts nothing more and records the running jobs' outcomes."""
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
        return
    if found:
        _tell_cancelled(export_id)


def _tell_cancelled(export_id: str) -> None:
    """Publish CANCELLED now: CloudFormation deletes the export's rule right after the
    resource, before the runner's next step would tell it. Best effort."""
    try:
        poll = int(os.environ.get(POLL_ENV, rules.DEFAULT_POLL_INTERVAL_SECONDS))
        export = _export_of_state(export_id, poll, os.environ.get(RUNNER_ENV, ""))
        if export is None:
            return
        export.load()
        events_client().put_events(Entries=[export.status_event("CANCELLED")])
    except Exception:  # noqa: BLE001
        LOG.exception("could not publish the cancellation of export %s", export_id)


def _export(request: exports.ExportRequest, state_machine: str | None = None) -> exports.Export:
    export = exports.Export(
        state_store(),
        omics_client(),
        request,
        load_list=_load_list,
        # Looked up at each call, so a rehearsal's simulated clock reaches the export too.
        clock=lambda: now(),  # noqa: PLW0108
    )
    export.state_machine_arn = state_machine or os.environ.get(RUNNER_ENV, "")
    return export


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
        clock=lambda: now(),  # noqa: PLW0108 (looked up at each call)
        sleep=lambda seconds: sleep(seconds),  # noqa: PLW0108
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
    # The runner goes on: CloudFormation's rollback cancels the export (a Create) or gives it
    # the earlier properties (an Update), and the run then starts nothing more.
    raise ExportError(export.timeout_message())


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
