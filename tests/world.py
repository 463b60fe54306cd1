"""A small world that drives the handler through its entry points, for the stateful
properties of tests/test_properties.py (test code, never shipped).

The handler is driven only as AWS drives it: CloudFormation's requests go to
``index.on_event``, the runner's steps and the watchdog's events to ``index.run_step``. Around
it, in process and on one simulated clock:

- CloudFormation (``CloudFormation``): one stack with one export resource. A deploy sends
  Create or Update; an answer moves the stack on as CloudFormation does: a failed or timed-out
  Create is rolled back with a Delete of the physical id it answered (or one CloudFormation
  made up), a failed or timed-out Update with an Update back to the old properties, a new
  physical id (a replacement) is followed by the cleanup Delete of the old one, and a stack
  that fails elsewhere rolls a successful Update back too. Every request and answer is kept.
- Lambda: each delivery, step or watchdog event is an invocation with a context (its request
  id and the time left of a 5-minute timeout). An invocation can crash before its Nth AWS
  call (every later call of that invocation fails too: the process is gone, its lease stays
  until the timeout), or run another invocation inside its Nth call (a second step at once, a
  CloudFormation request arriving mid-step). A crashed delivery is retried, as Lambda retries
  an asynchronous invocation.
- Step Functions (``fakes.FakeStepFunctions``): executions the handler starts, stepped when a
  rule says so (the clock jumps to the step's due time); a failed step is retried at the
  runner's retry intervals; a person can stop an execution (ABORTED) or its retries can run
  out (FAILED), and the watchdog hears of it.
- HealthOmics (``omics_world.FakeOmics``), DynamoDB, S3 and EventBridge (``fakes``), answering
  the handler's clients from ``clients.py``.

The handler's own code is not touched: ``clients.py``'s client functions and clock are
replaced (as they are designed to be), ``time.time``/``time.sleep`` run on the simulated clock
(the state table's lease reads ``time.time``, and botocore sleeps between retries), the
answers' PUT (``urllib.request.urlopen``) is caught.

What the properties promise is checked by ``check`` after every rule and by ``check_final``
after ``drain`` (which ends every job and steps every runner until none runs); a broken promise
is recorded where it is seen (inside the handler's calls, which may catch whatever is raised)
and reported by the checks.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import itertools
import json
import logging
import os
import traceback
import urllib.request
from collections import defaultdict, deque
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, TypeVar
from unittest import mock

from cdk_omics_export.handler import clients, index, rules
from cdk_omics_export.handler import state as st

from .fakes import (
    ACCOUNT,
    REGION,
    DirectClient,
    Execution,
    FakeDynamoDB,
    FakeEvents,
    FakeS3,
    FakeStepFunctions,
)
from .omics_world import FakeOmics, Job
from .standins.clock import SimulatedClock

T = TypeVar("T")

T0 = 1_800_000_000.0
STORE = "1234567890"
BUCKET = "export-bucket"
DESTINATION = f"s3://{BUCKET}/exports/"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/ExportRole"
KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/0f4b6d43-2a11-4c4e-9f6b-6f1f1d0c1a2b"
TABLE = "export-state"
BUS = "export-events"
LOG_GROUP = "Example-ReadSetExportServiceHandlerLogs-abc"
STATE_MACHINE_ARN = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:Runner"
SERVICE_TOKEN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:OnEventHandler"
CONSTRUCT_PATH = "Example/Export"
LOGICAL_ID = "Export16632B07"
SIGNATURE = "s3cr3t-signature"
POLL_SECONDS = 30
# The service's functions time out after 5 minutes; a step's lease lasts as long.
LAMBDA_TIMEOUT_SECONDS = 300.0
# The runner's retrier for a failed step (cdk_omics_export/runner.py): the poll interval,
# doubled each attempt, at most 15 minutes.
RETRY_MAX_DELAY_SECONDS = 900.0
# Lambda retries a failed asynchronous invocation twice.
LAMBDA_ASYNC_RETRIES = 2
DRAIN_STEPS = 400
CREATE_FAILED = "CREATE_FAILED:"


# Handler faults the properties found (tests/test_properties.py has their regression tests):
# schedules that reach them are steered around them, so the properties hold everything else.
# A crash between claiming CloudFormation's answer in the state table and sending it loses the
# answer for good.
LOST_ANSWER = "lost answer"
# The watchdog does not answer a request still owed when the stopped execution's run has
# ended (its last step died after ending the run, before answering).
STOPPED_AFTER_THE_END = "stopped after the end"
# The export of a replacement Update that failed (timed out, or was abandoned when another
# resource failed) is never cancelled: CloudFormation rolls back to the old physical id and
# never deletes the new one, whose runner goes on exporting. Steered around as a user would
# work around it: a person stops that export's runner once CloudFormation rolls back.
ORPHANED_REPLACEMENT = "orphaned replacement"
# A batch whose start was lost (its step died after claiming it) looks for the job that start
# made among the store's jobs to its destination with its read sets, created up to 5 minutes
# before the claim, and adopts another export's job if one matches (another generation's, or
# a deleted stack's). Steered around by giving each stack and generation a destination of its
# own.
ADOPTED_JOB = "adopted job"
KNOWN_FAULTS = frozenset({LOST_ANSWER, STOPPED_AFTER_THE_END, ORPHANED_REPLACEMENT, ADOPTED_JOB})


class Crash(BaseException):
    """The invocation's process died (a timeout, a crash): no code of it runs any more. A
    BaseException, so the handler's ``except Exception`` cannot catch it."""


class Context:
    """What the handler reads of a Lambda context."""

    def __init__(self, number: int, deadline: float, clock: SimulatedClock) -> None:
        self.aws_request_id = f"invocation-{number:06d}"
        self._deadline = deadline
        self._clock = clock

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - self._clock.now()) * 1000))


@dataclass
class Invocation:
    number: int
    kind: str  # request, step, watchdog
    export_id: str
    started: float
    start_seq: int
    context: Context
    crash_at: int | None = None
    intrude_at: int | None = None
    intruder: Callable[[], None] | None = None
    calls: int = 0
    dead: bool = False
    end_seq: int = 0
    operations: list[str] = field(default_factory=list)
    advanced: bool = False  # it called HealthOmics


@dataclass
class Outcome:
    """What CloudFormation made of a request: its answer, or that it timed out."""

    status: str  # SUCCESS, FAILED, TIMEOUT, or ABANDONED (another resource failed meanwhile)
    physical_id: str


@dataclass
class CfnRequest:
    number: int
    event: dict[str, Any]
    role: str  # deploy, rollback, cleanup, rollback-cleanup, stack-delete
    sent_at: float
    deliveries: int = 0
    crashed_deliveries: int = 0
    settled: bool = False  # CloudFormation stopped waiting for it (an answer, or its timeout)
    handled: bool = False  # a delivery of it ran to its end
    # The read sets, as (sample, status), and the world's change counter when it first came.
    seen: dict[str, tuple[str, str]] = field(default_factory=dict)
    changes_at_delivery: int = -1

    @property
    def id(self) -> str:
        return str(self.event["RequestId"])

    @property
    def type(self) -> str:
        return str(self.event["RequestType"])

    @property
    def props(self) -> dict[str, Any]:
        return dict(self.event["ResourceProperties"])

    @property
    def service_timeout(self) -> float:
        return float(self.props.get("TimeoutSeconds", rules.DEFAULT_TIMEOUT_SECONDS)) + float(
            rules.SERVICE_TIMEOUT_HEADROOM_SECONDS
        )


Operation = Generator[CfnRequest, Outcome, None]
ExportKey = tuple[str, str, str, int]


def export_key(stack_id: str, props: dict[str, Any]) -> ExportKey:
    """What identifies an export (docs/behaviour.md): stack, construct, destination and
    generation; the handler derives its export id from these alone."""
    return (
        stack_id,
        str(props["ConstructPath"]),
        str(props["Destination"]),
        int(props.get("ExportGeneration", "0")),
    )


class CloudFormation:
    """One stack with one ``Custom::OmicsReadSetExport`` resource, as CloudFormation runs it."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.stacks = 0
        self.stack_id: str | None = None
        self.resource: tuple[str, dict[str, Any]] | None = None  # physical id, properties
        self.requests: dict[str, CfnRequest] = {}
        self.answers: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.outbox: deque[CfnRequest] = deque()  # sent, waiting for Lambda to deliver
        self._operation: Operation | None = None
        self.awaiting: CfnRequest | None = None

    def idle(self) -> bool:
        return self._operation is None

    def deploy(self, props: dict[str, Any], *, fails_elsewhere: bool) -> bool:
        """Deploy the stack with these properties; False when nothing changes for the
        resource (CloudFormation sends no request then)."""
        assert self.idle()
        if self.resource is None:
            self._begin(self._create(props, fails_elsewhere))
            return True
        if self.resource[1] == props:
            return False
        self._begin(self._update(props, fails_elsewhere))
        return True

    def delete_stack(self) -> None:
        assert self.idle() and self.resource is not None
        self._begin(self._delete_stack())

    def answered(self, url: str, body: dict[str, Any]) -> None:
        request = self.requests.get(str(body.get("RequestId")))
        if request is None:
            self.world.violation(f"an answer to a request CloudFormation never sent: {body}")
            return
        self.answers[request.id].append(body)
        if url != request.event["ResponseURL"]:
            self.world.violation(f"request {request.number} answered at another URL")
        if request is self.awaiting and not request.settled:
            request.settled = True
            self._resume(Outcome(str(body["Status"]), str(body["PhysicalResourceId"])))

    def fail_elsewhere_now(self) -> bool:
        """Another resource of the stack fails while a deploy's request is unanswered:
        CloudFormation stops waiting for it (its answer, if it comes, is ignored) and rolls
        the stack back."""
        request = self.awaiting
        if request is None or request.settled or request.role != "deploy":
            return False
        request.settled = True
        self._resume(Outcome("ABANDONED", ""))
        self.world.stop_orphans()
        return True

    def tick(self) -> None:
        """CloudFormation gives up on a request its ServiceTimeout after it sent it. Lambda
        delivers promptly: a request is only given up once it was delivered."""
        request = self.awaiting
        if (
            request is not None
            and not request.settled
            and request.deliveries > 0
            and self.world.clock.now() > request.sent_at + request.service_timeout
        ):
            request.settled = True
            self._resume(Outcome("TIMEOUT", ""))
            self.world.stop_orphans()

    # Operations: generators that send a request and get what came of it

    def _begin(self, operation: Operation) -> None:
        self._operation = operation
        self.awaiting = next(operation)

    def _resume(self, outcome: Outcome) -> None:
        assert self._operation is not None
        try:
            self.awaiting = self._operation.send(outcome)
        except StopIteration:
            self._operation = None
            self.awaiting = None

    def _send(
        self,
        request_type: str,
        props: dict[str, Any],
        *,
        role: str,
        physical_id: str | None = None,
        old_props: dict[str, Any] | None = None,
    ) -> CfnRequest:
        number = len(self.requests) + 1
        request_id = f"{number:08d}-0b1e-4c2a-9f1e-2a0b4c6d8e01"
        assert self.stack_id is not None
        event: dict[str, Any] = {
            "RequestType": request_type,
            "ServiceToken": SERVICE_TOKEN,
            "ResponseURL": (
                "https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/"
                f"{request_id}?X-Amz-Signature={SIGNATURE}{number}"
            ),
            "StackId": self.stack_id,
            "RequestId": request_id,
            "LogicalResourceId": LOGICAL_ID,
            "ResourceType": "Custom::OmicsReadSetExport",
            "ResourceProperties": copy.deepcopy(props),
        }
        if physical_id is not None:
            event["PhysicalResourceId"] = physical_id
        if old_props is not None:
            event["OldResourceProperties"] = copy.deepcopy(old_props)
        request = CfnRequest(number, event, role, self.world.clock.now())
        self.requests[request_id] = request
        self.outbox.append(request)
        return request

    def _create(self, props: dict[str, Any], fails_elsewhere: bool) -> Operation:
        self.stacks += 1
        self.stack_id = (
            f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/Example/"
            f"{self.stacks:08d}-6f1f-4c4e-9f6b-0f4b6d432a11"
        )
        done = yield self._send("Create", props, role="deploy")
        if done.status == "SUCCESS" and not fails_elsewhere:
            self.resource = (done.physical_id, props)
            return
        # A Create that never answered gets a physical id CloudFormation makes up.
        physical = done.physical_id or f"Example-{LOGICAL_ID}-{self.stacks:04d}MADEUP"
        yield self._send("Delete", props, role="rollback", physical_id=physical)
        # ROLLBACK_COMPLETE: the stack is deleted, and the next deploy creates a new one.
        self.resource, self.stack_id = None, None

    def _update(self, props: dict[str, Any], fails_elsewhere: bool) -> Operation:
        assert self.resource is not None and self.stack_id is not None
        old_physical, old_props = self.resource
        done = yield self._send(
            "Update", props, role="deploy", physical_id=old_physical, old_props=old_props
        )
        if done.status == "SUCCESS" and not fails_elsewhere:
            self.resource = (done.physical_id, props)
            if done.physical_id != old_physical:
                yield self._send("Delete", old_props, role="cleanup", physical_id=old_physical)
            return
        if done.status != "SUCCESS":
            # The export these properties name, if it is not the one the stack goes back to,
            # is one CloudFormation never learns of: nothing will ever delete it.
            self.world.abandon(
                export_key(self.stack_id, props), export_key(self.stack_id, old_props)
            )
        current = done.physical_id if done.status == "SUCCESS" else old_physical
        yield self._send("Update", old_props, role="rollback", physical_id=current, old_props=props)
        # UPDATE_ROLLBACK_COMPLETE (a failed rollback would be continued past the resource).
        self.resource = (old_physical, old_props)
        if current != old_physical:
            yield self._send("Delete", props, role="rollback-cleanup", physical_id=current)

    def _delete_stack(self) -> Operation:
        assert self.resource is not None
        physical, props = self.resource
        yield self._send("Delete", props, role="stack-delete", physical_id=physical)
        self.resource, self.stack_id = None, None


class _Reply:
    status = 200

    def __enter__(self) -> _Reply:
        return self

    def __exit__(self, *_: Any) -> None:
        return None


class _LogScan(logging.Handler):
    """Every record the handler logs, searched for what must never be logged."""

    def __init__(self, world: World) -> None:
        super().__init__(logging.INFO)
        self.world = world

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info:
            text += "".join(traceback.format_exception(*record.exc_info))
        for secret in self.world.secrets():
            if secret in text:
                self.world.violation(f"a log record holds {secret!r}: {text[:200]}")


_WORLD: World | None = None


def _world() -> World:
    assert _WORLD is not None, "no world is open"
    return _WORLD


def _observe(service: str, operation: str) -> None:
    _world().on_call(service, operation)


@functools.cache
def _shared_clients() -> dict[str, Any]:
    """The handler's DynamoDB, S3, Step Functions and EventBridge clients, answered by the open
    world's fakes; made once per process (a botocore client takes tens of milliseconds)."""
    return {
        "dynamodb": DirectClient("dynamodb", lambda: _world().dynamodb, _observe),
        "s3": DirectClient("s3", lambda: _world().s3, _observe),
        "stepfunctions": DirectClient("stepfunctions", lambda: _world().sfn, _observe),
        "events": DirectClient("events", lambda: _world().events, _observe),
        # The world's own reads of the state table: never counted as the handler's calls.
        "harness": DirectClient("dynamodb", lambda: _world().dynamodb),
        "omics": _omics_client(),
    }


def _omics_client() -> Any:
    """The handler's HealthOmics client as clients.omics() makes it (standard retries, the
    pacer on before-send), answered by the open world's FakeOmics."""
    with mock.patch.dict(
        os.environ,
        {"AWS_DEFAULT_REGION": REGION, "AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t"},
    ):
        clients.omics.cache_clear()
        omics = clients.omics()
        clients.omics.cache_clear()
    omics.meta.events.register("before-send.omics", _send_to_omics)
    return omics


def _send_to_omics(request: Any, event_name: str = "", **_: Any) -> Any:
    return _world().send_to_omics(request, event_name)


class World:
    """The handler and everything around it; ``open`` installs it, ``close`` removes it."""

    def __init__(self) -> None:
        self.clock = SimulatedClock(T0)
        self.dynamodb = FakeDynamoDB()
        self.dynamodb.create_table(TABLE)
        self.s3 = FakeS3([BUCKET])
        self.events = FakeEvents(BUS)
        self.sfn = FakeStepFunctions(STATE_MACHINE_ARN, self.clock.now)
        self.omics = FakeOmics(STORE, self.clock.now)
        self.cfn = CloudFormation(self)
        self.s3.on_put = self._manifest_written
        self.events.on_put = self._event_published
        self.omics.on_accepted = self._job_accepted
        self.omics.on_refused = self._refused
        self.omics.on_changed = lambda read_set_id, job: self.read_set_changed(
            read_set_id, by=job.export_id
        )
        self.violations: list[str] = []
        self.problems: list[str] = self.omics.problems
        self.step_errors: list[str] = []
        self.draining = False
        # Invocations under way, innermost last; every one gets a number and two sequence
        # numbers (start, end) on one counter, which orders what happened.
        self.invocations: list[Invocation] = []
        self._numbers = itertools.count(1)
        self.seq = 0
        self.changes = 0  # bumped whenever a read set changes
        # What the world learned of the handler's exports from the state table.
        self.keys: dict[str, ExportKey] = {}
        self.runs: dict[tuple[str, int], str] = {}  # (export id, run number) -> request id
        # Per export key: the last delivery of a Create or Update (its start), of a Delete
        # (its end), and when CloudFormation abandoned it (a failed replacement's export).
        self.deployed: dict[ExportKey, int] = {}
        self.deleted: dict[ExportKey, int] = {}
        self.abandoned: dict[ExportKey, int] = {}
        # Per export: when the last crashed invocation's lease can have ended at the latest.
        self.leases_until: dict[str, float] = defaultdict(float)
        # Jobs accepted and not yet recorded, that a step since should have recorded.
        self.due_in_record: set[str] = set()
        self.samples: set[str] = set()
        # The known handler faults schedules are steered around (all of them, unless a
        # regression test replays one).
        self.avoided: set[str] = set(KNOWN_FAULTS)
        self.orphans: list[ExportKey] = []  # ORPHANED_REPLACEMENT: runners a person stops
        self._exit = contextlib.ExitStack()

    # Installing

    def open(self) -> World:
        global _WORLD  # noqa: PLW0603 (one world at a time, reached from botocore's hooks)
        assert _WORLD is None, "a world is open already"
        environment = {
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            rules.TABLE_ENV: TABLE,
            rules.LOG_GROUP_ENV: LOG_GROUP,
            rules.RATE_ENV: str(rules.MAX_REQUESTS_PER_SECOND),
            rules.POLL_ENV: str(POLL_SECONDS),
            rules.RUNNER_ENV: STATE_MACHINE_ARN,
            rules.EVENT_BUS_ENV: BUS,
        }
        self._exit.enter_context(mock.patch.dict(os.environ, environment))
        for name in list(os.environ):
            if name == "AWS_PROFILE" or name.startswith("AWS_ENDPOINT_URL"):
                del os.environ[name]  # restored with the rest when the world closes
        shared = _shared_clients()
        for name, key in (
            ("dynamodb", "dynamodb"),
            ("s3", "s3"),
            ("states", "stepfunctions"),
            ("events", "events"),
        ):
            self._exit.enter_context(mock.patch.object(clients, name, lambda c=shared[key]: c))
        self._exit.enter_context(mock.patch.object(clients, "now", self.clock.now))
        self._exit.enter_context(mock.patch.object(clients, "sleep", self.clock.sleep))
        # The lease reads time.time(); botocore sleeps between retries with time.sleep().
        self._exit.enter_context(mock.patch("time.time", self.clock.now))
        self._exit.enter_context(mock.patch("time.sleep", self.clock.sleep))
        self._exit.enter_context(mock.patch("urllib.request.urlopen", self._answer))
        # The handler's own HealthOmics client (its retries, its pacer), made by clients.omics()
        # once per process like the others (botocore's retry quota refills with every request
        # that is not retried: the few throttles of an example never drain it).
        omics = shared["omics"]
        self._exit.enter_context(mock.patch.object(clients, "omics", lambda: omics))
        # The handler's records stay here: searched for secrets, not kept by pytest.
        logger = logging.getLogger("cdk_omics_export")
        scan = _LogScan(self)
        self._exit.enter_context(mock.patch.object(logger, "propagate", False))
        self._exit.enter_context(mock.patch.object(logger, "level", logging.INFO))
        logger.addHandler(scan)
        self._exit.callback(logger.removeHandler, scan)
        _WORLD = self
        self._exit.callback(self._forget)
        return self

    def close(self) -> None:
        self._exit.close()

    @staticmethod
    def _forget() -> None:
        global _WORLD  # noqa: PLW0603
        _WORLD = None

    # Recording

    def violation(self, message: str) -> None:
        if message not in self.violations:
            self.violations.append(message)

    def secrets(self) -> list[str]:
        """What identifies a patient (the samples and subjects of the filters) and what can
        answer for the stack (the ResponseURLs' signature): never in a log record."""
        return [SIGNATURE, *sorted(self.samples)]

    # Read sets

    def add_read_set(self, sample: str, status: str) -> str:
        read_set_id = f"{1_000_000_001 + len(self.omics.read_sets)}"
        self.changes += 1
        self.omics.add_read_set(read_set_id, sample, status, self.changes)
        self.samples.update({sample, "SUBJECT-" + sample})
        return read_set_id

    def read_set_changed(self, read_set_id: str, *, by: str = "") -> None:
        """A read set's status changed, by a job of export ``by`` or ("") anyone else."""
        self.changes += 1
        read_set = self.omics.read_sets[read_set_id]
        read_set.changed, read_set.changed_by = self.changes, by

    # Invocations

    def on_call(self, service: str, operation: str) -> None:
        """Every AWS call of the handler: crash the invocation, or run another inside it."""
        if not self.invocations:
            return
        invocation = self.invocations[-1]
        invocation.operations.append(f"{service}:{operation}")
        if invocation.dead:
            raise Crash(f"invocation {invocation.number} is gone")
        invocation.calls += 1
        if (
            invocation.crash_at == invocation.calls
            and operation == "Respond"
            and LOST_ANSWER in self.avoided
        ):
            # The window between claiming an answer and sending it (LOST_ANSWER): the crash
            # comes one call later.
            invocation.crash_at += 1
        if invocation.crash_at == invocation.calls:
            invocation.dead = True
            raise Crash(f"invocation {invocation.number} crashed before {service}:{operation}")
        if invocation.intrude_at == invocation.calls and invocation.intruder is not None:
            intruder, invocation.intruder = invocation.intruder, None
            intruder()

    def invoke(
        self,
        kind: str,
        export_id: str,
        call: Callable[[Context], T],
        *,
        crash_at: int | None = None,
        intrude_at: int | None = None,
        intruder: Callable[[], None] | None = None,
    ) -> tuple[Invocation, T]:
        number = next(self._numbers)
        self.seq += 1
        now = self.clock.now()
        invocation = Invocation(
            number=number,
            kind=kind,
            export_id=export_id,
            started=now,
            start_seq=self.seq,
            context=Context(number, now + LAMBDA_TIMEOUT_SECONDS, self.clock),
            crash_at=None if self.draining else crash_at,
            intrude_at=None if self.draining else intrude_at,
            intruder=intruder,
        )
        self.invocations.append(invocation)
        try:
            result = call(invocation.context)
        except BaseException:
            if invocation.dead and export_id:
                # Its lease, if it held one, lasts until its timeout.
                self.leases_until[export_id] = max(
                    self.leases_until[export_id], now + LAMBDA_TIMEOUT_SECONDS
                )
            raise
        finally:
            self.invocations.pop()
            self.seq += 1
            invocation.end_seq = self.seq
            self._learn()
        self.stop_orphans()
        return invocation, result

    # CloudFormation's requests

    def deliver(
        self, request: CfnRequest, *, crash_at: int | None = None, **intrusion: Any
    ) -> None:
        """One delivery of a request to ``index.on_event``, as Lambda makes it."""
        if request.deliveries == 0:
            request.seen = {r.id: (r.sample_id, r.status) for r in self.omics.read_sets.values()}
            request.changes_at_delivery = self.changes
        request.deliveries += 1
        key = export_key(str(request.event["StackId"]), request.props)
        if request.type != "Delete" and not request.settled:
            self.deployed[key] = self.seq + 1
        if request.crashed_deliveries >= LAMBDA_ASYNC_RETRIES:
            crash_at = None  # Lambda's last retry: a crash now would lose the event
        try:
            self.invoke(
                "request",
                self._export_of_key(key),
                lambda context: index.on_event(copy.deepcopy(request.event), context),
                crash_at=crash_at,
                **intrusion,
            )
        except Crash:
            request.crashed_deliveries += 1
            self.cfn.outbox.appendleft(request)  # Lambda retries the event
            return
        if request.type == "Delete" and not request.handled:
            # Its first delivery that ran to its end: a redelivery is answered from the
            # record and changes nothing.
            request.handled = True
            self.deleted[key] = self.seq

    def deliver_all(self) -> None:
        """Lambda delivers what CloudFormation sent (promptly: at the end of every rule)."""
        while self.deliver_next():
            pass

    def deliver_next(self, *, crash_at: int | None = None, **intrusion: Any) -> bool:
        if not self.cfn.outbox:
            return False
        self.deliver(self.cfn.outbox.popleft(), crash_at=crash_at, **intrusion)
        return True

    def delivered(self) -> list[CfnRequest]:
        return [r for r in self.cfn.requests.values() if r.deliveries > 0]

    def _answer(self, request: urllib.request.Request, timeout: float = 0) -> _Reply:
        """The answer's PUT to the ResponseURL (``answer.send``)."""
        self.on_call("cloudformation", "Respond")
        assert request.get_method() == "PUT"
        body = json.loads(request.data)  # type: ignore[arg-type]
        self.cfn.answered(request.full_url, body)
        known = self.cfn.requests.get(str(body.get("RequestId")))
        if known is not None:
            self._check_answer(known, body)
        return _Reply()

    # The runner

    def running(self) -> list[Execution]:
        return [e for e in self.sfn.executions.values() if e.status == "RUNNING"]

    def step(
        self,
        execution: Execution,
        *,
        crash_at: int | None = None,
        intrude_at: int | None = None,
        intruder: Callable[[], None] | None = None,
    ) -> str:
        """The execution's next Task: ``index.run_step``, when it is due."""
        self.clock.advance_to(execution.due)
        event = {
            "exportId": execution.export_id,
            "steps": execution.steps,
            "execution": execution.name,
            "stateMachine": STATE_MACHINE_ARN,
        }
        # A step that carries the export and runs on its own (not inside another invocation)
        # holds the export's lease once every dead invocation's lease has run out.
        carrying = not self.invocations and self._runner_of(execution.export_id) == execution.name
        started = self.clock.now()
        try:
            invocation, result = self.invoke(
                "step",
                execution.export_id,
                lambda context: index.run_step(event, context),
                crash_at=crash_at,
                intrude_at=intrude_at,
                intruder=intruder,
            )
        except Crash:
            self._retry_later(execution)
            return "CRASHED"
        except Exception as error:  # noqa: BLE001 (Step Functions retries a failed step)
            self.step_errors.append(type(error).__name__)
            self._retry_later(execution)
            return "FAILED"
        if execution.status != "RUNNING":
            return "STOPPED"  # stopped while its step ran: the result goes nowhere
        execution.failed_attempts = 0
        execution.steps = result["steps"]
        if result["action"] == "END":
            execution.status, execution.stopped = "SUCCEEDED", self.clock.now()
        else:
            execution.due = self.clock.now() + result["waitSeconds"]
        if carrying and started >= self.leases_until[execution.export_id]:
            # This step held the export's lease: whatever was accepted before it began is
            # recorded now.
            for job in self._handler_jobs():
                if job.export_id == execution.export_id and job.invocation < invocation.number:
                    self.due_in_record.add(job.id)
        return str(result["action"])

    def run_due(self, seconds: float, *, most: int) -> int:
        """Time passes: Step Functions runs the steps that come due meanwhile, earliest first
        (at most ``most`` of them; the rest run late, at the next chance)."""
        until = self.clock.now() + seconds
        ran = 0
        while ran < most:
            due = sorted(
                (e for e in self.running() if e.due <= until), key=lambda e: (e.due, e.name)
            )
            if not due:
                break
            self.step(due[0])
            self.deliver_all()
            self.cfn.tick()
            ran += 1
        self.clock.advance_to(until)
        return ran

    def step_again(self, execution: Execution) -> None:
        """A second call of the same step while the first still runs (its result is lost)."""
        event = {
            "exportId": execution.export_id,
            "steps": execution.steps,
            "execution": execution.name,
            "stateMachine": STATE_MACHINE_ARN,
        }
        with contextlib.suppress(Exception):
            self.invoke(
                "step",
                execution.export_id,
                lambda context: index.run_step(event, context),
            )

    def _retry_later(self, execution: Execution) -> None:
        execution.failed_attempts += 1
        delay = min(POLL_SECONDS * 2 ** (execution.failed_attempts - 1), RETRY_MAX_DELAY_SECONDS)
        execution.due = self.clock.now() + delay

    def ended_with_an_answer_owed(self, execution: Execution) -> bool:
        """The execution's export ended its run, and the run's request is still owed its
        answer (its last step died in between)."""
        record = self._record(execution.export_id)
        if record is None or record["run"]["phase"] != "ENDED":
            return False
        request = self._store().load_request(record["run"]["requestId"])
        return request is not None and "answer" not in request

    def stop(self, execution: Execution, status: str, *, told: int = 1) -> None:
        """The execution ends otherwise than by succeeding (stopped by hand: ABORTED; its
        retries ran out: FAILED); the watchdog hears Step Functions' event (at least once)."""
        execution.status, execution.stopped = status, self.clock.now()
        event = {
            "version": "0",
            "detail-type": "Step Functions Execution Status Change",
            "source": "aws.states",
            "account": ACCOUNT,
            "region": REGION,
            "resources": [self.sfn.execution_arn(execution.name)],
            "detail": {
                "executionArn": self.sfn.execution_arn(execution.name),
                "stateMachineArn": STATE_MACHINE_ARN,
                "name": execution.name,
                "status": status,
                "input": execution.input,
            },
        }
        for _ in range(told):
            for _attempt in range(1 + LAMBDA_ASYNC_RETRIES):
                try:
                    self.invoke("watchdog", execution.export_id, lambda c: index.run_step(event, c))
                    break
                except Exception as error:  # noqa: BLE001 (Lambda retries the event)
                    self.step_errors.append(f"watchdog {type(error).__name__}")

    # HealthOmics

    def send_to_omics(self, request: Any, event_name: str) -> Any:
        self.on_call("omics", event_name.rpartition(".")[2])
        if self.invocations:
            # The lease: two steps of one export at once never both advance it.
            current = self.invocations[-1]
            current.advanced = True
            for other in self.invocations[:-1]:
                if other.advanced and other.export_id == current.export_id:
                    self.violation(
                        f"invocations {other.number} and {current.number} advanced export "
                        f"{current.export_id} at once (the lease let both in)"
                    )
        return self.omics.serve(request)

    def _handler_jobs(self, *, activation: bool = False) -> list[Job]:
        jobs = self.omics.activations if activation else self.omics.jobs
        return [job for job in jobs.values() if job.export_id]

    def _job_accepted(self, job: Job) -> None:
        """HealthOmics accepted a job: whose it is, and whether it breaks a promise."""
        invocation = self.invocations[-1] if self.invocations else None
        if invocation is None or not invocation.export_id:
            self.violation(f"job {job.id} was started outside a step of an export")
            return
        export_id = invocation.export_id
        record = self._record(export_id)
        job.invocation, job.export_id = invocation.number, export_id
        job.run = record["run"]["number"] if record is not None else -1
        job.accepted_at = self.clock.now()
        kind = "activated" if job.activation else "exported"
        earlier = [
            j
            for j in self._handler_jobs(activation=job.activation)
            if j.export_id == export_id and j is not job
        ]
        for read_set_id in job.read_set_ids:
            for other in earlier:
                if read_set_id not in other.read_set_ids:
                    continue
                if other.run == job.run:
                    self.violation(
                        f"promise 2: read set {read_set_id} {kind} twice in run {job.run} of "
                        f"export {export_id} (jobs {other.id} and {job.id})"
                    )
                elif not other.ended:
                    self.violation(
                        f"promise 2: read set {read_set_id} {kind} by job {job.id} while job "
                        f"{other.id} of the same export still carries it"
                    )
                elif not job.activation and other.finished(read_set_id):
                    self.violation(
                        f"promise 2/5: read set {read_set_id} exported again by job {job.id} "
                        f"(run {job.run}) though job {other.id} (run {other.run}) of the same "
                        "export exported it"
                    )
        key = self.keys.get(export_id)
        if key is None:
            return
        deleted = self.deleted.get(key)
        if deleted is not None and deleted > self.deployed.get(key, -1):
            if invocation.start_seq > deleted:
                self.violation(
                    f"promise 4: export {export_id} {kind} {job.read_set_ids} (job {job.id}) "
                    "after its resource was deleted"
                )
        abandoned = self.abandoned.get(key)
        if abandoned is not None and abandoned > self.deployed.get(key, -1):
            if invocation.start_seq > abandoned:
                self.violation(
                    f"promise 5: export {export_id}, whose Update failed and was rolled back, "
                    f"{kind} {job.read_set_ids} (job {job.id}) after the rollback began"
                )

    def _refused(self, operation: str, read_set_ids: list[str], why: str) -> None:
        """HealthOmics refused what the handler asked: a fault of the handler, unless someone
        else (another export's job, or anyone) changed those read sets since its run began."""
        invocation = self.invocations[-1] if self.invocations else None
        export_id = invocation.export_id if invocation is not None else ""
        record = self._record(export_id) if export_id else None
        request = self.cfn.requests.get(record["run"]["requestId"]) if record else None
        since = request.changes_at_delivery if request is not None else -1
        changed = [
            r
            for r in read_set_ids
            if r in self.omics.read_sets
            and self.omics.read_sets[r].changed > since
            and self.omics.read_sets[r].changed_by != export_id
        ]
        if "token" in why or not changed:
            self.violation(
                f"HealthOmics refused {operation} of {read_set_ids} for export {export_id}: "
                f"{why}, though nobody else changed them during its run"
            )

    def abandon(self, key: ExportKey, rolled_back_to: ExportKey) -> None:
        """CloudFormation rolls a failed Update back: the export its properties name, if it
        is not the one the stack goes back to, is never deleted."""
        if key != rolled_back_to:
            self.seq += 1
            self.abandoned[key] = self.seq
            if ORPHANED_REPLACEMENT in self.avoided:
                self.orphans.append(key)

    def stop_orphans(self) -> None:
        """ORPHANED_REPLACEMENT: a person stops the abandoned export's runner (as soon as no
        invocation runs: CloudFormation's rollback is under way)."""
        while self.orphans and not self.invocations:
            export_id = self._export_of_key(self.orphans.pop())
            for execution in sorted(self.running(), key=lambda e: e.name):
                if execution.export_id == export_id and execution.status == "RUNNING":
                    self.stop(execution, "ABORTED")

    # The state table, as the world reads it (StateStore, through a client of its own)

    def _store(self) -> st.StateStore:
        return st.StateStore(_shared_clients()["harness"], TABLE)

    def export_ids(self) -> list[str]:
        return sorted(
            pk for pk, items in self.dynamodb.tables[TABLE].items() if st.EXPORT_SK in items
        )

    def _record(self, export_id: str) -> st.ExportRecord | None:
        return self._store().load_record(export_id)

    def export_record(self, export_id: str) -> st.ExportRecord | None:
        return self._record(export_id)

    def _runner_of(self, export_id: str) -> str:
        record = self._record(export_id)
        return record.get("runner", {}).get("name", "") if record is not None else ""

    def _learn(self) -> None:
        for export_id in self.export_ids():
            if export_id in self.keys and (export_id, self._run_number(export_id)) in self.runs:
                continue
            record = self._record(export_id)
            assert record is not None
            self.keys[export_id] = (
                record["stackId"],
                record["constructPath"],
                record["destination"],
                record["generation"],
            )
            self.runs[(export_id, record["run"]["number"])] = record["run"]["requestId"]

    def _run_number(self, export_id: str) -> int:
        item = self.dynamodb.tables[TABLE][export_id][st.EXPORT_SK]
        return int(item["runNumber"]["N"])

    def _export_of_key(self, key: ExportKey) -> str:
        for export_id, known in self.keys.items():
            if known == key:
                return export_id
        return ""

    # Promise 3: COMPLETED only once every selected read set was exported

    def expected_selection(self, request: CfnRequest) -> set[str]:
        """The read sets the run must export: its ids, or those its filter matched when the
        request came. A sample never changes, and every status the world knows is one the
        filter selects with activation; without it (only ACTIVE read sets), those whose status
        changed since are left out."""
        props = request.props
        if "ReadSetIds" in props:
            return set(props["ReadSetIds"])
        sample = props["ReadSetFilter"]["sampleId"]
        activates = props.get("ArchivedReadSets", "ACTIVATE") == "ACTIVATE"
        return {
            read_set_id
            for read_set_id, (seen_sample, status) in request.seen.items()
            if seen_sample == sample
            and (
                activates
                or (
                    status == "ACTIVE"
                    and self.omics.read_sets[read_set_id].changed <= request.changes_at_delivery
                )
            )
        }

    def _finished(self, export_id: str, read_set_id: str) -> bool:
        return any(
            job.export_id == export_id and job.finished(read_set_id)
            for job in self.omics.jobs.values()
        )

    def _check_completed(self, export_id: str, request_id: str | None, where: str) -> None:
        request = self.cfn.requests.get(request_id or "")
        if request is None:
            self.violation(f"{where}: export {export_id} COMPLETED for an unknown request")
            return
        missing = sorted(
            r for r in self.expected_selection(request) if not self._finished(export_id, r)
        )
        if missing:
            self.violation(
                f"promise 3: {where} says export {export_id} COMPLETED (request "
                f"{request.number}), but read sets {missing} have no finished export"
            )

    def _request_of_run(self, export_id: str, run: int) -> str | None:
        if (export_id, run) not in self.runs:
            self._learn()
        return self.runs.get((export_id, run))

    def _manifest_written(self, bucket: str, key: str, data: bytes) -> None:
        manifest = json.loads(data)
        if manifest.get("status") != "COMPLETED":
            return
        export_id = str(manifest["exportId"])
        where = "the manifest"
        self._check_completed(
            export_id, self._request_of_run(export_id, manifest["run"]["number"]), where
        )
        unfinished = [
            r["id"]
            for r in manifest["readSets"]
            if r["status"] != "EXPORTED" or not self._finished(export_id, r["id"])
        ]
        if unfinished:
            self.violation(
                f"promise 3: the manifest of export {export_id} says COMPLETED with read sets "
                f"{unfinished} not exported"
            )

    def _event_published(self, entry: dict[str, Any]) -> None:
        detail = json.loads(entry["Detail"])
        for secret in self.secrets():
            if secret in entry["Detail"]:
                self.violation(f"a status-change event holds {secret!r}")
        if detail.get("status") != "COMPLETED":
            return
        export_id = str(detail["exportId"])
        request_id = self._request_of_run(export_id, int(detail["run"]))
        self._check_completed(export_id, request_id, "a COMPLETED event")
        counts = detail["counts"]
        if counts["failed"] or counts["inFlight"] or counts["exported"] != counts["selected"]:
            self.violation(f"promise 3: a COMPLETED event of export {export_id} counts {counts}")

    def _check_answer(self, request: CfnRequest, body: dict[str, Any]) -> None:
        if request.type == "Delete" and body["Status"] != "SUCCESS":
            self.violation(
                f"promise 4: Delete (request {request.number}) answered {body['Status']}: "
                f"{body.get('Reason', '')[:200]}"
            )
        data = body.get("Data") or {}
        if body["Status"] == "SUCCESS" and data.get("Status") == "COMPLETED":
            self._check_completed(str(data["ExportId"]), request.id, "the answer")

    # The checks

    def check(self) -> None:
        """The promises, as they must hold after every rule."""
        self.stop_orphans()
        for request_id, answers in self.cfn.answers.items():
            if len(answers) > 1:
                self.violation(
                    f"promise 1: request {self.cfn.requests[request_id].number} answered "
                    f"{len(answers)} times: {[a['Status'] for a in answers]}"
                )
        for export_id in self.export_ids():
            record = self._record(export_id)
            if record is not None and record["status"] == "COMPLETED":
                self._check_completed(export_id, record["run"]["requestId"], "the state record")
        self._check_recorded(final=False)
        self.cfn.tick()
        problems = self.problems + self.violations
        assert not problems, "\n".join(problems)

    def check_final(self) -> None:
        """After ``drain``: every request answered exactly once, every job recorded."""
        for request in self.cfn.requests.values():
            answers = self.cfn.answers.get(request.id, [])
            if len(answers) != 1:
                self.violation(
                    f"promise 1: request {request.number} ({request.type}, {request.role}) "
                    f"answered {len(answers)} times after the drain"
                )
        if self.running():
            self.violation(f"runners still running after the drain: {self.running()}")
        self._check_recorded(final=True)
        problems = self.problems + self.violations
        assert not problems, "\n".join(problems)

    def _stranded(self, export_id: str) -> bool:
        """No runner carries the export any more, and none will until the next deploy (the
        last one was stopped by hand or failed for good)."""
        mine = [e for e in self.sfn.executions.values() if e.export_id == export_id]
        return bool(mine) and all(e.status in ("ABORTED", "FAILED") for e in mine)

    def _check_recorded(self, *, final: bool) -> None:
        """Promise 6: every job HealthOmics accepted is in the state record, but for one whose
        batch is still STARTING (its start was accepted by an invocation that died before
        recording it) until a step that holds the lease has run since."""
        snapshots: dict[str, st.Snapshot] = {}
        for activation in (False, True):
            for job in self._handler_jobs(activation=activation):
                if job.export_id not in snapshots:
                    snapshots[job.export_id] = self._store().load(job.export_id)
                snapshot = snapshots[job.export_id]
                records: list[Any] = list(
                    (snapshot.activations if activation else snapshot.batches).values()
                )
                if any(r.get("jobId") == job.id for r in records):
                    continue
                starting = any(
                    r["status"] == st.STARTING
                    and sorted(r["readSetIds"]) == sorted(job.read_set_ids)
                    for r in records
                )
                excused = not final or self._stranded(job.export_id)
                if starting and excused and job.id not in self.due_in_record:
                    continue
                kind = "activation" if activation else "export"
                self.violation(
                    f"promise 6: {kind} job {job.id} of export {job.export_id} "
                    f"({job.read_set_ids}) is not in its state record"
                    + (" (its batch is STARTING)" if starting else "")
                )

    # The end of a schedule

    def drain(self) -> None:
        """Deliver every request, end every job, and step every runner until none runs (and
        CloudFormation waits for nothing any more)."""
        self.draining = True
        self.omics.faults.clear()
        self.omics.max_concurrent_jobs = None
        for _ in range(DRAIN_STEPS):
            if self.deliver_next():
                continue
            for job in self.omics.running() + self.omics.running(activation=True):
                self.omics.end(job, set())
            running = sorted(self.running(), key=lambda e: (e.due, e.name))
            if running:
                self.step(running[0])
                self.cfn.tick()
                continue
            awaiting = self.cfn.awaiting
            if awaiting is not None and not awaiting.settled:
                # Nothing runs that could answer it: CloudFormation times out and moves on.
                self.clock.advance_to(awaiting.sent_at + awaiting.service_timeout + 1)
                self.cfn.tick()
                continue
            return
        self.violation(f"the drain did not settle after {DRAIN_STEPS} rounds")
