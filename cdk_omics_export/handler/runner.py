"""The runner: the one orchestrator that carries each export to its end.

A Standard Step Functions execution per export run (``<export id>-<run>-<segment>``) calls
``step`` (the ``RunnerHandler`` function), waits, and calls it again. Each step advances the
export as far as its time allows (``export.py``), tells of it (manifest and events), and
answers CloudFormation when the answer is due: when the export ends, or, without
``wait_for_completion``, once the read sets are selected and checked, or with the timeout
message at the deploy's deadline. The watchdog (``restart``) hears Step Functions' own event
for a runner execution that ended otherwise than by succeeding.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import uuid
from collections.abc import Iterator
from typing import Any, Literal, TypedDict

try:  # imported as cdk_omics_export.handler.runner (tests, the construct)
    from . import answer, clients, ledger, pacing, rules
    from . import export as exports
    from . import state as st
    from .core import decide
except ImportError:  # Lambda: the asset's root is on sys.path
    import answer  # type: ignore[import-not-found,no-redef]
    import clients  # type: ignore[import-not-found,no-redef]
    import export as exports  # type: ignore[import-not-found,no-redef]
    import ledger  # type: ignore[import-not-found,no-redef]
    import pacing  # type: ignore[import-not-found,no-redef]
    import rules  # type: ignore[import-not-found,no-redef]
    import state as st  # type: ignore[import-not-found,no-redef]
    from core import decide  # type: ignore[import-not-found,no-redef]

LOG = logging.getLogger(__name__)

ExportError = exports.ExportError

# How long one invocation keeps working; the functions' timeout (5 minutes) leaves room
# for a slow final call, saving the state and answering.
WORK_SECONDS = 180.0
# Kept back from the function's own timeout for saving the state and answering.
FINISH_SECONDS = 30.0
# A runner execution recorded this recently may not be known to DescribeExecution yet (it is
# eventually consistent): it is left alone.
RUNNER_START_GRACE_SECONDS = 60.0
# How many times a run's failed runner execution is restarted by the watchdog.
RUNNER_RESTARTS = 3


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


Action = Literal["WAIT", "END", "CONTINUE"]


def step(event: RunnerStep, context: Any = None) -> RunnerStepResult:
    """One step of the runner: advance the export, then wait and step again, or end."""
    LOG.info(
        "step %d of runner %s for export %s", event["steps"], event["execution"], event["exportId"]
    )
    poll = clients.poll_interval()
    steps = int(event.get("steps", 0)) + 1
    action, wait = _step(event, context, poll)
    if action == "CONTINUE" and steps < rules.RUNNER_STEPS_PER_EXECUTION:
        action = "WAIT"
    elif action == "CONTINUE":
        _continue_in_a_new_execution(event, poll)
        action = "END"
    return {
        "exportId": event["exportId"],
        "steps": steps,
        "action": "END" if action == "END" else "WAIT",
        "waitSeconds": wait,
    }


def _continue_in_a_new_execution(event: RunnerStep, poll: int) -> None:
    """Well before the execution's 25,000 history events, go on in a new execution."""
    export = export_of_state(event["exportId"], poll, event["stateMachine"])
    if export is not None and _carries(export.record, event["execution"], event):
        export.load()
        successor = export.claim_runner(export.record["runner"]["segment"] + 1)
        start_execution(successor["name"], export.export_id, event["stateMachine"])
        tell(export)  # the manifest names the execution that carries the export now
        LOG.info("runner %s continues as %s", event["execution"], successor["name"])


def _step(event: RunnerStep, context: Any, poll: int) -> tuple[Action, int]:
    """WAIT: another invocation holds the export; CONTINUE: it has work left; END: the
    export's work is over, or another execution carries it. And how long to wait."""
    export_id, name = event["exportId"], event["execution"]
    export = export_of_state(export_id, poll, event["stateMachine"])
    if export is None or not _carries(export.record, name, event):
        return "END", poll
    export.runner_name = name
    store, owner = export.store, _owner(context)
    if not store.acquire_lease(export_id, owner, _remaining_seconds(context)):
        LOG.info("another invocation is advancing export %s; waiting", export_id)
        return "WAIT", poll
    # Told only by a step that loaded the state and still carries the export: a superseded
    # step must not overwrite the newer run's manifest or publish its old status.
    tell_it = False
    try:
        export.load()  # what the previous lease holder saved
        if not _carries(export.record, name, event):
            return "END", poll
        tell_it = True
        try:
            with _paced(context, store):
                export.advance(_budget(context))
        except ExportError as error:
            LOG.warning("export %s failed: %s", export_id, error)  # recorded as its status
        done = export.settle()
    except st.Cancelled as stopped:
        tell_it = False
        LOG.info("runner %s ends: %s", name, stopped)
        return "END", poll
    finally:
        if tell_it:
            tell(export)
            answer_if_due(export)
        store.release_lease(export_id, owner)
    if not done:
        return "CONTINUE", _next_wait(export, poll)
    if not export.told():
        # The runner's last word is the one rules wait for: fail the step, and Step Functions
        # retries it (for about two hours) until the final status is published.
        raise ExportError(
            f"export {export_id} ended {export.record['status']}, but its status-change event "
            "could not be published; retrying"
        )
    LOG.info("export %s ended %s; runner %s ends", export_id, export.record["status"], name)
    return "END", poll


def _next_wait(export: exports.Export, poll: int) -> int:
    return decide.next_wait(export.snapshot, poll, clients.now())


# Answering CloudFormation


def answer_if_due(export: exports.Export) -> None:
    """Answer the run's request once its answer is due: the export ended, or (without
    waiting) the read sets are selected and checked, or the deadline came."""
    run = export.run
    due = decide.due_answer(export.snapshot, export.request, clients.now())
    if due is None:
        return
    status, reason = due
    ended = run["phase"] == "ENDED"
    try:
        request = export.store.load_request(run["requestId"])
        if request is not None and "answer" not in request:
            if status == "FAILED" and request["requestType"] == "Create" and not ended:
                # CloudFormation's rollback deletes what this Create made; its Delete names
                # the marker and is skipped, so an export still going is cancelled here,
                # before the answer lets the rollback begin.
                export.record["cancelled"] = True
                export.save_record()
            ledger.respond(
                request,
                status,
                ledger.failed_physical_id(request) if status == "FAILED" else export.export_id,
                reason=ledger.with_logs(reason) if reason else "",
                data=data(request, export) if status == "SUCCESS" else None,
            )
        run["answered"] = True
        export.save_record()
    except st.StateError:
        LOG.exception("export %s: the answer will be tried again", export.export_id)
        return
    if not export.told():
        tell(export)  # the cancellation, in the manifest and an event


def data(request: st.RequestRecord, export: exports.Export) -> dict[str, str]:
    """The resource's attributes, sized so the whole answer stays within 4,096 bytes.

    Every key is always present, so GetAtt never fails. JobIds gets whatever bytes are left
    once the rest of the answer (ids, Destination, ManifestUri) is counted.
    """
    run, counts = export.run, export.counts()
    job_ids = run["jobIds"]
    attributes = {
        "ExportId": export.export_id,
        "JobId": job_ids[0] if job_ids else rules.NONE,
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
    from_answer = answer.body(request, "SUCCESS", export.export_id, data=attributes)
    left = answer.RESPONSE_LIMIT - len(answer.encode(from_answer)) - 16
    attributes["JobIds"] = _bounded_join(job_ids, left) or rules.NONE
    return attributes


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


# Starting and keeping runners


def export_for(request: exports.ExportRequest, state_machine: str | None = None) -> exports.Export:
    export = exports.Export(
        clients.state_store(),
        clients.omics(),
        request,
        load_list=_load_list,
        # Looked up at each call, so a rehearsal's simulated clock reaches the export too.
        clock=lambda: clients.now(),  # noqa: PLW0108
    )
    export.state_machine_arn = state_machine or clients.runner_arn()
    return export


def export_of_state(export_id: str, poll: int, state_machine: str) -> exports.Export | None:
    """The export as its state describes it, or None when it has no state any more."""
    record = clients.state_store().load_record(export_id)
    if record is None:
        LOG.warning("export %s has no state any more; its runner ends", export_id)
        return None
    export = export_for(exports.ExportRequest.of_record(record, poll), state_machine)
    export.snapshot.record = record
    return export


def start_for_run(export: exports.Export) -> None:
    """Start the current run's runner (or keep one going, for a redelivered request)."""
    runner = export.record.get("runner")
    if runner is None or runner["name"] != exports.runner_name(
        export.export_id, export.run["number"], runner["segment"]
    ):
        runner = export.claim_runner(0)
    # Told before the runner starts, so that nothing it saves is overwritten here.
    tell(export)
    if not start_execution(runner["name"], export.export_id):
        # A redelivered request's runner, or an execution of that name that has closed
        # (the export's state was rebuilt): keep one going.
        keep_going(export, grace=False)


def start_execution(name: str, export_id: str, state_machine: str | None = None) -> bool:
    """Start a runner execution; False when one of that name exists and has closed."""
    client = clients.states()
    try:
        client.start_execution(
            stateMachineArn=state_machine or clients.runner_arn(),
            name=name,
            # The same for every start of this name: a second start of a running execution
            # returns it. The request's ResponseURL is never in it.
            input=json.dumps({"exportId": export_id, "steps": 0}, sort_keys=True),
        )
    except client.exceptions.ExecutionAlreadyExists:
        LOG.info("runner execution %s was started before", name)
        return False
    return True


def keep_going(export: exports.Export, *, grace: bool = True) -> None:
    """Start a new runner execution when the one recorded has stopped while the export
    still has work."""
    runner = export.record.get("runner")
    if runner is not None:
        if grace and clients.now() - runner["startedAt"] < RUNNER_START_GRACE_SECONDS:
            return
        status = _execution_status(export.state_machine_arn, runner["name"])
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
        if start_execution(successor["name"], export.export_id, export.state_machine_arn):
            tell(export)
            return
        # That name belongs to an execution that has closed: the next one.
        runner, segment = successor, successor["segment"] + 1


def _execution_status(state_machine: str, name: str) -> str:
    client = clients.states()
    try:
        described = client.describe_execution(
            executionArn=exports.execution_arn(state_machine or clients.runner_arn(), name)
        )
    except client.exceptions.ExecutionDoesNotExist:
        return "NOT_STARTED"
    return described["status"]


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
            start_execution(runner["name"], record["exportId"], event["stateMachine"])
    LOG.info(
        "export %s is carried by %s, not %s; this runner ends",
        record["exportId"],
        runner["name"] if runner is not None else "no runner",
        name,
    )
    return False


def tell(export: exports.Export) -> None:
    """Write the manifest and publish the status, if either changed (best effort)."""
    export.write_manifest(clients.s3())
    export.publish(clients.events())


# The watchdog


def restart(event: dict[str, Any]) -> None:
    """Step Functions' event for a runner execution that failed, timed out or was stopped.

    A failed one that still carried an unfinished export is followed by the next execution,
    at most ``RUNNER_RESTARTS`` times per run: a step that fails every time is a fault to look
    at, not to loop on (its error is in the execution's history and the logs). Once those are
    spent, or when a person stopped the execution (ABORTED), a deploy still waiting is
    answered FAILED, saying which execution ended how: the stack never waits for nobody.
    """
    detail = event["detail"]
    name, machine, status = detail["name"], detail["stateMachineArn"], detail.get("status")
    export_id = json.loads(detail.get("input") or "{}").get("exportId")
    LOG.info("runner execution %s ended %s", name, status)
    if not export_id:
        return
    export = export_of_state(export_id, clients.poll_interval(), machine)
    if export is None:
        return
    export.load()
    runner = export.record.get("runner")
    if runner is None or runner["name"] != name or export.runner_done():
        return  # taken over already, or nothing left to do
    if status == "ABORTED":
        _answer_stopped(export, name, "was stopped (ABORTED: StopExecution, by a person or a tool)")
        return
    restarts = runner.get("restarts", 0) + 1
    if restarts > RUNNER_RESTARTS:
        LOG.error(
            "runner execution %s of export %s failed %d times; the next deploy resumes it",
            name,
            export_id,
            restarts,
        )
        _answer_stopped(
            export, name, f"ended {status} after its retries, {RUNNER_RESTARTS} times this run"
        )
        return
    try:
        successor = export.claim_runner(runner["segment"] + 1, replacing=runner, restarts=restarts)
    except st.Cancelled:
        return
    start_execution(successor["name"], export_id, machine)
    tell(export)
    LOG.warning(
        "runner execution %s failed; %s carries export %s on", name, successor["name"], export_id
    )


def _answer_stopped(export: exports.Export, name: str, how: str) -> None:
    run = export.run
    if run.get("answered"):
        return
    ledger.respond_to(
        run["requestId"],
        "FAILED",
        reason=ledger.with_logs(
            f"Runner execution {name} of export {export.export_id} {how} while the deploy "
            "waited for it; nothing carries the export now. Jobs already started keep running; "
            "the next deploy resumes the export and skips what completed "
            f"({export.manifest_uri()})."
        ),
    )
    run["answered"] = True
    with contextlib.suppress(st.StateError):
        export.save_record()


# Delete


def cancel(export_id: str) -> None:
    """Mark the export cancelled (best effort), end its run CANCELLED with the running jobs
    named, write the manifest and publish CANCELLED now, and answer its run's request if
    that is still owed. All at once: CloudFormation deletes the export's rule right after the
    resource, before the runner's next step would tell it, and ``cdk destroy`` deletes the
    runner too."""
    try:
        store = clients.state_store()
        found = store.cancel(export_id)
        LOG.info("export %s %s", export_id, "cancelled" if found else "had no state")
    except Exception:  # noqa: BLE001
        LOG.exception("could not mark the export cancelled; nothing more will start anyway")
        return
    if not found:
        return
    try:
        export = export_of_state(export_id, clients.poll_interval(), clients.runner_arn())
        if export is None:
            return
        export.load()
        ended = export.run["phase"] == "ENDED"
        export.end_cancelled()
        if ended:
            # Its outcome stands: the manifest records the deletion, and no target hears
            # the final status again (a COMPLETED that starts an analysis, say).
            export.write_manifest(clients.s3())
        else:
            tell(export)
        if not export.run.get("answered"):
            ledger.respond_to(
                export.run["requestId"],
                "FAILED",
                reason=f"Export {export_id} was cancelled (its resource was deleted).",
            )
    except Exception:  # noqa: BLE001
        LOG.exception("could not tell of the cancellation of export %s", export_id)


# The invocation's time


@contextlib.contextmanager
def _paced(context: Any, store: st.StateStore) -> Iterator[None]:
    """The service's shared pacer, for the HealthOmics requests of one invocation."""
    rate = int(os.environ.get(rules.RATE_ENV, rules.DEFAULT_MAX_REQUESTS_PER_SECOND))
    pacer = pacing.Pacer(
        rate,
        store,
        time_left=lambda: _remaining_seconds(context),
        attempt_seconds=clients.ATTEMPT_SECONDS + FINISH_SECONDS,
        out_of_time=exports.OutOfTime,
        clock=lambda: clients.now(),  # noqa: PLW0108 (looked up at each call)
        sleep=lambda seconds: clients.sleep(seconds),  # noqa: PLW0108
    )
    token = clients.PACER.set(pacer)
    try:
        yield
    finally:
        clients.PACER.reset(token)


def _remaining_seconds(context: Any) -> float:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return remaining() / 1000 if remaining is not None else WORK_SECONDS + FINISH_SECONDS * 2


def _budget(context: Any) -> exports.Budget:
    return exports.Budget(min(WORK_SECONDS, _remaining_seconds(context) - FINISH_SECONDS))


def _owner(context: Any) -> str:
    return str(getattr(context, "aws_request_id", None) or uuid.uuid4())


def _load_list(uri: str) -> list[str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    ids: list[str] = json.loads(clients.s3().get_object(Bucket=bucket, Key=key)["Body"].read())
    return ids
