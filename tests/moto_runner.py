"""The runner's state machine run by moto's Step Functions interpreter, on a simulated clock
(test code, never shipped).

moto 5.x carries LocalStack's ASL interpreter (``moto.stepfunctions.parser``): the definition
as synthesized is parsed and evaluated by it, Task, Choice, Wait, Retry and the context object
included. Three things it does its own way are patched, only while a ``MotoRunner`` is open:

- **Lambda.** A Task naming a function ARN calls moto's Lambda, which runs functions in
  Docker (absent on the CI machines). The call goes to a Python handler registered for the
  ARN instead, in process, after the state machine's role is asked for
  ``lambda:InvokeFunction`` (when an IAM authority is given); the handler's exception becomes
  Lambda's ``FunctionError`` payload, as the Python runtime reports it.
- **Time.** A Wait state waits on a ``threading.Event`` in real time, a retry sleeps with
  ``time.sleep`` and a ``TimestampPath`` is compared with the local clock: all of them use the
  simulated clock instead, as do history timestamps, so hours of polling take no real time.
- **Lambda's error names.** moto names every error of the Lambda API call ``Exception``;
  Step Functions names them ``Lambda.<code>`` (``Lambda.TooManyRequestsException`` for a
  throttled invocation), which is what a Retry's ``ErrorEquals`` matches.

moto runs each execution in a thread of its own. Here those threads take turns: an execution
runs only when the driver (``run_due``) hands it the turn, and gives it back when it waits
(Wait, retry) or ends; the driver moves the clock to the next execution that is due. Only one
execution runs at any time and the order is the clock's, then the order of arrival, so a
rehearsal is deterministic whatever the machine's load.

What moto lets through and Step Functions refuses is checked here (execution names,
transitions to no state, the role's trust, the 25,000-event history quota), and what it lacks
is kept here (StopExecution's error and cause, a stop before the first state). The patches are
process-wide, so one ``MotoRunner`` is open at a time.
"""

from __future__ import annotations

import datetime as datetime_module
import heapq
import itertools
import json
import threading
import traceback
import types
import uuid
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol
from unittest import mock

from botocore.exceptions import ClientError
from moto.stepfunctions.parser.api import ExecutionStatus, InvalidDefinition
from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import (
    CustomErrorName,
)
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
)
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task_lambda import (
    StateTaskLambda,
)
from moto.stepfunctions.parser.asl.component.state.wait.wait_function import timestamp
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import (
    WaitFunction,
)
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
from moto.stepfunctions.parser.models import (
    StepFunctionsParserBackend,
    stepfunctions_parser_backends,
)

from .standins.clock import SimulatedClock

STATES_PRINCIPAL = "states.amazonaws.com"
NAME_LIMIT = 80
_NAME_FORBIDDEN = frozenset('<>{}[]?*"#%\\^|~`$&,;:/')
# Step Functions' hard quota of events in one execution's history. moto keeps no count: a
# rehearsal whose execution goes past it fails loudly here rather than pass where AWS fails.
HISTORY_LIMIT = 25_000
DEFAULT_LAMBDA_TIMEOUT = 3.0
DEFAULT_LAMBDA_MEMORY = 128
# Errors of Lambda's Invoke API that Step Functions reports under their own code
# ("Error handling in Step Functions"); any other client error is Lambda.AWSLambdaException,
# an AccessDenied included (as reported for a Task whose Resource is a function ARN).
LAMBDA_API_ERRORS = frozenset(
    {
        "ClientExecutionTimeoutException",
        "ServiceException",
        "SdkClientException",
        "TooManyRequestsException",
    }
)
# How long the driver waits for an execution's thread to give the turn back. Only a defect
# (a deadlock, a handler that hangs) comes near it: the thread never waits on real time.
TURN_LIMIT_SECONDS = 300.0

Handler = Callable[[Any, Any], Any]


class RoleAuthority(Protocol):
    """The IAM side (the gateway): may this role call that action on that resource?"""

    def service_role_call(
        self, role_arn: str, action: str, resource: str, *, service: str
    ) -> str | None: ...

    def role_trusts(
        self, role_arn: str, service_principal: str, context: Mapping[str, str]
    ) -> bool: ...


class ServiceError(Exception):
    """An error answer of the Step Functions API (JSON 1.0: ``__type`` and ``message``)."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


class CreateRefused(ValueError):
    """What CreateStateMachine (so the stack's deployment) would refuse."""


class HistoryLimitExceeded(AssertionError):
    """An execution went past Step Functions' history quota, which moto does not enforce."""


class Unmodelled(Exception):
    """A request the harness does not serve."""


class LambdaContext:
    """The context object the Python runtime passes to a handler, on the simulated clock."""

    def __init__(self, clock: SimulatedClock, function_arn: str, timeout: float, memory: int):
        self._clock = clock
        self._deadline = clock.now() + timeout
        self.function_name = function_arn.rsplit(":", 1)[-1]
        self.function_version = "$LATEST"
        self.invoked_function_arn = function_arn
        self.memory_limit_in_mb = memory
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = f"2026/01/01/[$LATEST]{uuid.uuid4().hex}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - self._clock.now()) * 1000))


@dataclass
class Function:
    arn: str
    timeout: float = DEFAULT_LAMBDA_TIMEOUT
    memory: int = DEFAULT_LAMBDA_MEMORY
    handler: Handler | None = None
    invocations: int = 0
    throttles: int = 0  # invocations still to refuse with TooManyRequestsException


@dataclass(frozen=True)
class Machine:
    arn: str
    name: str


@dataclass(frozen=True)
class HistoryEvent:
    id: int
    type: str
    timestamp: float
    details: Mapping[str, Any]


@dataclass
class Run:
    """One execution as the rehearsals read it: moto's, with times on the simulated clock."""

    arn: str
    name: str
    machine: Machine
    input_text: str
    start: float
    moto: Any  # moto's Execution
    stop: float | None = None
    # StopExecution's error and cause: moto keeps them out of DescribeExecution.
    stopped_with: tuple[str | None, str | None] = (None, None)

    @property
    def status(self) -> str:
        return str(self.moto.status)

    @property
    def error(self) -> str | None:
        if self.status == "ABORTED":
            return self.stopped_with[0]
        return self.moto.error  # type: ignore[no-any-return]

    @property
    def cause(self) -> str | None:
        if self.status == "ABORTED":
            return self.stopped_with[1]
        return self.moto.cause  # type: ignore[no-any-return]

    @property
    def output(self) -> Any:
        return self.moto.output

    @property
    def history(self) -> list[HistoryEvent]:
        worker = self.moto.exec_worker
        if worker is None or worker.env is None:
            return []
        events = []
        for event in worker.env.event_manager.get_event_history():
            details = {k: v for k, v in event.items() if k.endswith("EventDetails")}
            flat = next(iter(details.values()), {}) if details else {}
            events.append(
                HistoryEvent(
                    id=int(event["id"]),
                    type=str(getattr(event["type"], "value", event["type"])),
                    timestamp=_epoch(event["timestamp"]),
                    details=dict(flat),
                )
            )
        return events

    @property
    def history_events(self) -> int:
        return len(self.history)

    def events(self, type: str | None = None) -> list[HistoryEvent]:
        return [e for e in self.history if type is None or e.type == type]


@dataclass
class _Fiber:
    """An execution's thread, which runs only while it holds the turn."""

    arn: str
    go: threading.Event = field(default_factory=threading.Event)
    ticket: int = -1  # the queue entry that is current; older ones are stale
    done: bool = False


class _Turns:
    """Threads taking turns on the simulated clock: a queue of (due, arrival, fiber)."""

    def __init__(self, clock: SimulatedClock) -> None:
        self.clock = clock
        self._lock = threading.Condition()
        self._queue: list[tuple[float, int, _Fiber]] = []
        self._tickets = itertools.count()
        self._holder: _Fiber | None = None
        self.failures: list[BaseException] = []

    def spawn(self, fiber: _Fiber, target: Callable[[], None]) -> None:
        """A thread for ``target`` that waits for its first turn (due now)."""

        def body() -> None:
            fiber.go.wait()
            try:
                target()
            except BaseException as error:  # noqa: BLE001 (handed to the driver)
                self.failures.append(error)
            finally:
                with self._lock:
                    fiber.done = True
                    self._holder = None
                    self._lock.notify_all()

        self._enqueue(fiber, self.clock.now())
        threading.Thread(target=body, name=f"execution {fiber.arn}", daemon=True).start()

    def _enqueue(self, fiber: _Fiber, due: float) -> None:
        with self._lock:
            fiber.ticket = next(self._tickets)
            heapq.heappush(self._queue, (due, fiber.ticket, fiber))

    def sleep(self, seconds: float) -> None:
        """Called by an execution's thread: give the turn back until ``seconds`` have passed."""
        # moto evaluates some states in threads of its own: the caller is whichever
        # execution holds the turn, since only one does at a time.
        with self._lock:
            fiber = self._holder
            if fiber is None:
                raise Unmodelled("a wait outside any execution's turn")
            fiber.go.clear()
            fiber.ticket = next(self._tickets)
            heapq.heappush(self._queue, (self.clock.now() + seconds, fiber.ticket, fiber))
            self._holder = None
            self._lock.notify_all()
        fiber.go.wait()

    def wake(self, fiber: _Fiber) -> None:
        """Make a waiting execution due now (it was stopped)."""
        if not fiber.done:
            self._enqueue(fiber, self.clock.now())

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()
            self.failures.clear()

    def _valid(self) -> None:
        while self._queue and (
            self._queue[0][2].done or self._queue[0][1] != self._queue[0][2].ticket
        ):
            heapq.heappop(self._queue)

    def next_due(self) -> float | None:
        with self._lock:
            self._valid()
            return self._queue[0][0] if self._queue else None

    def run_one(self, until: float) -> _Fiber | None:
        """Give the turn to the first execution due by ``until``; back when it waits or ends."""
        with self._lock:
            self._valid()
            if not self._queue or self._queue[0][0] > until:
                return None
            due, _, fiber = heapq.heappop(self._queue)
            self.clock.advance_to(due)
            fiber.ticket = -1
            self._holder = fiber
            fiber.go.set()
            if not self._lock.wait_for(lambda: self._holder is None, TURN_LIMIT_SECONDS):
                raise RuntimeError(f"{fiber.arn} kept the turn for {TURN_LIMIT_SECONDS} s")
        if self.failures:
            raise self.failures.pop(0)
        return fiber


class MotoRunner:
    """State machines of deployed stacks run by moto's interpreter, and the Step Functions API
    the handler calls (StartExecution, DescribeExecution, StopExecution), on ``clock``.

    Same interface as the gateway expects of its Step Functions: ``register_stack``,
    ``authorization``, ``handle``, ``reset``; and the rehearsal's: ``register_function``,
    ``next_due``, ``run_due``, ``executions``, ``stop_execution``, ``stop_by_hand``.
    """

    _open: ClassVar[MotoRunner | None] = None

    def __init__(
        self,
        clock: SimulatedClock,
        *,
        region: str = "us-east-1",
        account: str = "111122223333",
        partition: str = "aws",
        authority: RoleAuthority | None = None,
    ) -> None:
        self.clock = clock
        self.region = region
        self.account = account
        self.partition = partition
        self.authority = authority
        self._lock = threading.RLock()
        self._driving = threading.Lock()
        self._turns = _Turns(clock)
        self._functions: dict[str, Function] = {}
        self._runs: dict[str, Run] = {}
        self._fibers: dict[str, _Fiber] = {}
        self._machines: dict[str, Machine] = {}
        self.history_limit = HISTORY_LIMIT
        self._patches = ExitStack()
        if MotoRunner._open is not None:
            raise RuntimeError("another MotoRunner is open: its patches would be undone by ours")
        self._patch()
        MotoRunner._open = self

    # moto's backend and the patches

    @property
    def backend(self) -> StepFunctionsParserBackend:
        return stepfunctions_parser_backends[self.account][self.region]  # type: ignore[no-any-return]

    def _patch(self) -> None:
        runner = self

        def start(worker: ExecutionWorker) -> None:
            runner._spawn(worker)

        patches = [
            mock.patch.object(ExecutionWorker, "start", start),
            mock.patch.object(WaitFunction, "_wait_interval", _wait_interval(self._turns)),
            mock.patch.object(retrier_decl, "time", types.SimpleNamespace(sleep=self._turns.sleep)),
            mock.patch.object(timestamp, "datetime", _datetime_module(self.clock)),
            mock.patch.object(
                EventManager,
                "_get_current_timestamp",
                staticmethod(lambda: datetime.fromtimestamp(runner.clock.now(), UTC)),
            ),
            mock.patch.object(
                lambda_eval_utils, "execute_lambda_function_integration", self._lambda_task
            ),
            mock.patch.object(StateTaskLambda, "_from_error", _lambda_error_names()),
        ]
        for patch in patches:
            self._patches.enter_context(patch)

    def close(self) -> None:
        """Undo the patches (executions still waiting never run again)."""
        self._patches.close()
        if MotoRunner._open is self:
            MotoRunner._open = None

    def __enter__(self) -> MotoRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def reset(self) -> None:
        """Forget every state machine, execution and function."""
        with self._lock:
            self.backend.reset()
            self._functions.clear()
            self._runs.clear()
            self._fibers.clear()
            self._machines.clear()
            # Executions still waiting are left waiting: they never get another turn.
            self._turns.clear()

    # Deploying

    def register_stack(self, deployed: Any) -> None:
        """A ``DeployedStack``'s Lambda functions (Timeout, MemorySize) and state machines,
        created in moto with their definitions as CloudFormation resolves them."""
        for logical, resource in deployed.resources("AWS::Lambda::Function").items():
            properties = resource.get("Properties", {})
            function = self.configure_function(str(deployed.get_att(logical, "Arn")))
            function.timeout = float(deployed.resolve(properties.get("Timeout", function.timeout)))
            function.memory = int(deployed.resolve(properties.get("MemorySize", function.memory)))
        for logical, resource in deployed.resources("AWS::StepFunctions::StateMachine").items():
            properties = resource.get("Properties", {})
            if "DefinitionString" in properties:
                definition = deployed.resolve(properties["DefinitionString"])
            else:
                definition = json.dumps(deployed.resolve(properties["Definition"]))
            for key, value in deployed.resolve(
                properties.get("DefinitionSubstitutions", {})
            ).items():
                definition = definition.replace("${" + key + "}", str(value))
            self.create_state_machine(
                deployed.physical_name(logical),
                definition,
                str(deployed.resolve(properties["RoleArn"])),
                kind=str(deployed.resolve(properties.get("StateMachineType", "STANDARD"))),
            )

    def register_state_machine(
        self,
        *,
        name: str,
        definition: str | Mapping[str, Any],
        role_arn: str,
        substitutions: Mapping[str, Any] | None = None,
    ) -> Machine:
        """CreateStateMachine with a definition as text or as a document."""
        text = definition if isinstance(definition, str) else json.dumps(definition)
        for key, value in (substitutions or {}).items():
            text = text.replace("${" + key + "}", str(value))
        return self.create_state_machine(name, text, role_arn)

    def create_state_machine(
        self, name: str, definition: str, role_arn: str, *, kind: str = "STANDARD"
    ) -> Machine:
        _check_definition(definition)
        # moto creates a state machine with any role; Step Functions assumes it first.
        arn = f"arn:{self.partition}:states:{self.region}:{self.account}:stateMachine:{name}"
        context = {"aws:SourceAccount": self.account, "aws:SourceArn": arn}
        if self.authority is not None and not self.authority.role_trusts(
            role_arn, STATES_PRINCIPAL, context
        ):
            raise CreateRefused(
                "AccessDeniedException: Neither the global service principal "
                f"{STATES_PRINCIPAL}, nor the regional one is authorized to assume the "
                f"provided role: {role_arn}"
            )
        try:
            if arn in self._machines:
                # A stack deployed again: CloudFormation updates the state machine (moto's
                # CreateStateMachine would return the old one, definition and all).
                machine = self.backend.update_state_machine(
                    arn, definition=definition, role_arn=role_arn
                )
            else:
                machine = self.backend.create_state_machine(
                    name=name, definition=definition, roleArn=role_arn, sm_type=kind
                )
        except InvalidDefinition as error:
            raise CreateRefused(f"InvalidDefinition: {error}") from None
        with self._lock:
            self._machines[machine.arn] = Machine(machine.arn, name)
            return self._machines[machine.arn]

    def configure_function(self, function_arn: str) -> Function:
        with self._lock:
            return self._functions.setdefault(function_arn, Function(function_arn))

    def register_function(
        self, function_arn: str, handler: Handler, *, timeout: float | None = None
    ) -> Function:
        """The code a Lambda function runs: ``handler(event, context)``."""
        function = self.configure_function(function_arn)
        function.handler = handler
        if timeout is not None:
            function.timeout = timeout
        return function

    def throttle(self, function_arn: str, invocations: int) -> None:
        """Refuse the function's next ``invocations`` with Lambda's TooManyRequestsException."""
        self.configure_function(function_arn).throttles += invocations

    # Looking things up

    def state_machine(self, name_or_arn: str) -> Machine:
        for machine in self._machines.values():
            if name_or_arn in {machine.arn, machine.name}:
                return machine
        raise KeyError(f"no state machine {name_or_arn}")

    @property
    def executions(self) -> list[Run]:
        with self._lock:
            return list(self._runs.values())

    def execution(self, name_or_arn: str) -> Run:
        with self._lock:
            if name_or_arn in self._runs:
                return self._runs[name_or_arn]
            found = [r for r in self._runs.values() if r.name == name_or_arn]
        if len(found) != 1:
            raise KeyError(f"{len(found)} executions are named {name_or_arn}")
        return found[0]

    def function(self, function_arn: str) -> Function:
        return self._functions[function_arn]

    # The API

    def authorization(self, operation: str, body: Mapping[str, Any]) -> tuple[str, str]:
        key = {
            "StartExecution": "stateMachineArn",
            "DescribeExecution": "executionArn",
            "StopExecution": "executionArn",
        }.get(operation)
        if key is None:
            raise Unmodelled(f"Step Functions {operation} is not served here")
        resource = body.get(key)
        return f"states:{operation}", resource if isinstance(resource, str) else "*"

    def handle(self, operation: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """An authorized request's answer, dates as epoch seconds (JSON 1.0)."""
        try:
            if operation == "StartExecution":
                return self.start_execution(
                    str(body.get("stateMachineArn")), body.get("name"), body.get("input")
                )
            if operation == "DescribeExecution":
                return self.describe_execution(str(body.get("executionArn")))
            if operation == "StopExecution":
                return self.stop_execution(
                    str(body.get("executionArn")), body.get("error"), body.get("cause")
                )
        except ServiceError:
            raise
        except Exception as error:  # moto's service exceptions
            code = getattr(error, "error_type", None) or type(error).__name__
            message = getattr(error, "message", None) or str(error)
            raise ServiceError(str(code), str(message)) from None
        raise Unmodelled(f"Step Functions {operation} is not served here")

    def start_execution(
        self, state_machine_arn: str, name: str | None = None, input: str | None = None
    ) -> dict[str, Any]:
        # moto's backend names an unnamed execution "None"; Step Functions gives it a UUID.
        name = name or str(uuid.uuid4())
        _validate_name(name)
        if state_machine_arn not in self._machines:
            raise ServiceError(
                "StateMachineDoesNotExist", f"State Machine Does Not Exist: '{state_machine_arn}'"
            )
        with self._lock:
            execution = self.backend.start_execution(
                state_machine_arn, name, "{}" if input is None else input
            )
            run = self._runs[execution.execution_arn]
        return {"executionArn": run.arn, "startDate": run.start}

    def describe_execution(self, execution_arn: str) -> dict[str, Any]:
        with self._lock:
            run = self._runs.get(execution_arn)
        if run is None:
            raise ServiceError(
                "ExecutionDoesNotExist", f"Execution Does Not Exist: '{execution_arn}'"
            )
        described: dict[str, Any] = {
            "executionArn": run.arn,
            "stateMachineArn": run.machine.arn,
            "name": run.name,
            "status": run.status,
            "startDate": run.start,
            "input": run.input_text,
            "inputDetails": {"included": True},
            "redriveCount": 0,
        }
        if run.stop is not None:
            described["stopDate"] = run.stop
        if run.status == "SUCCEEDED":
            described["output"] = json.dumps(run.output, separators=(",", ":"))
            described["outputDetails"] = {"included": True}
        if run.error is not None:
            described["error"] = run.error
        if run.cause is not None:
            described["cause"] = run.cause
        return described

    def stop_execution(
        self, execution_arn: str, error: str | None = None, cause: str | None = None
    ) -> dict[str, Any]:
        with self._lock:
            run = self._runs.get(execution_arn)
        if run is None:
            raise ServiceError(
                "ExecutionDoesNotExist", f"Execution Does Not Exist: '{execution_arn}'"
            )
        if run.status == "RUNNING":
            run.stopped_with = (error, cause)
            fiber = self._fibers[run.arn]
            if run.moto.exec_worker.env is None:
                # Not started yet: moto can only stop a program that has begun.
                fiber.done = True
                run.moto.exec_status = ExecutionStatus.ABORTED
                run.stop = self.clock.now()
            else:
                run.moto.stop(
                    stop_date=datetime.fromtimestamp(self.clock.now(), UTC),
                    error=error,
                    cause=cause,
                )
                # Its thread waits for its turn: it ends (ABORTED) when the driver next runs.
                self._turns.wake(fiber)
                self.run_due()
        return {"stopDate": run.stop if run.stop is not None else self.clock.now()}

    def stop_by_hand(self, execution_name: str) -> Run:
        """What a person does with "Stop execution" in the console: ABORTED."""
        run = self.execution(execution_name)
        self.stop_execution(run.arn)
        return run

    # Driving

    def next_due(self) -> float | None:
        return self._turns.next_due()

    def run_due(self, until: float | None = None) -> int:
        """Run, in due order, every execution due at or before ``until`` (now by default),
        moving the clock forward to each; returns how many turns ran."""
        if not self._driving.acquire(blocking=False):
            # Called from a handler inside a turn (StopExecution): the driver runs it next.
            return 0
        try:
            turns = 0
            while fiber := self._turns.run_one(self.clock.now() if until is None else until):
                turns += 1
                self._check_history(self._runs[fiber.arn])
            return turns
        finally:
            self._driving.release()

    def _check_history(self, run: Run) -> None:
        env = run.moto.exec_worker.env
        history = [] if env is None else env.event_manager._history_event_list
        events = len(history)
        # The quota lets event number 25,000 be ExecutionSucceeded, and nothing else.
        succeeded = bool(history) and str(history[-1]["type"]).endswith("ExecutionSucceeded")
        if events > self.history_limit or (events == self.history_limit and not succeeded):
            raise HistoryLimitExceeded(
                f"{run.name} has {events} history events; Step Functions fails an execution "
                f"at {self.history_limit} (States.Runtime)"
            )

    def run_until_idle(self, limit_time: float) -> bool:
        """Run everything due up to ``limit_time``; True when no execution is still running."""
        self.run_due(until=limit_time)
        return all(run.status != "RUNNING" for run in self.executions)

    # What the patches call

    def _spawn(self, worker: ExecutionWorker) -> None:
        details = worker._evaluation_details
        arn = details.execution_details.arn
        machine = self._machines[details.state_machine_details.arn]
        execution = self.backend.describe_execution(arn)
        run = Run(
            arn=arn,
            name=details.execution_details.name,
            machine=machine,
            input_text=execution.execution_input,
            start=self.clock.now(),
            moto=execution,
        )
        fiber = _Fiber(arn)
        with self._lock:
            self._runs[arn] = run
            self._fibers[arn] = fiber

        def logic() -> None:
            try:
                worker._execution_logic()
            finally:
                run.stop = self.clock.now()

        self._turns.spawn(fiber, logic)

    def _lambda_task(self, env: Any, parameters: dict[str, Any], region: str, **_: Any) -> None:
        """moto's Lambda integration, the call made in process (state_task_lambda.py)."""
        role = env.aws_execution_details.role_arn
        function_arn = str(parameters["FunctionName"])
        payload = parameters.get("Payload") or b"{}"
        answer = self.invoke(role, function_arn, payload)
        if "FunctionError" in answer:
            raise lambda_eval_utils.LambdaFunctionErrorException(
                answer["FunctionError"], answer["Payload"]
            )
        env.stack.append(
            {
                "StatusCode": 200,
                "ExecutedVersion": "$LATEST",
                "Payload": json.loads(answer["Payload"]),
            }
        )

    def invoke(self, role_arn: str, function_arn: str, payload: bytes) -> dict[str, Any]:
        """Lambda's synchronous Invoke as the state machine's role: the result's payload (JSON
        text), with ``FunctionError`` when the handler raised; a refused call raises."""
        if self.authority is not None:
            denied = self.authority.service_role_call(
                role_arn, "lambda:InvokeFunction", function_arn, service="lambda"
            )
            if denied is not None:
                raise _client_error("AccessDeniedException", denied, 403)
        with self._lock:
            function = self._functions.get(function_arn.removesuffix(":$LATEST"))
            if function is None or function.handler is None:
                raise _client_error(
                    "ResourceNotFoundException", f"Function not found: {function_arn}", 404
                )
            if function.throttles:
                function.throttles -= 1
                raise _client_error("TooManyRequestsException", "Rate Exceeded.", 429)
            function.invocations += 1
        context = LambdaContext(self.clock, function_arn, function.timeout, function.memory)
        try:
            # As Lambda does: the event and the result round-trip through JSON.
            result = function.handler(json.loads(payload), context)
            return {"Payload": json.dumps(result)}
        except Exception as error:  # noqa: BLE001 (what the Python runtime reports)
            report = {
                "errorMessage": str(error),
                "errorType": type(error).__name__,
                "requestId": context.aws_request_id,
                "stackTrace": traceback.format_tb(error.__traceback__),
            }
            return {"FunctionError": "Unhandled", "Payload": json.dumps(report)}


def _check_definition(text: str) -> None:
    """What CreateStateMachine refuses and moto's parser lets through (transitions to no
    state), and what the turns cannot run (branches in threads of their own)."""
    definition = json.loads(text)
    states = definition.get("States", {})
    targets = [("StartAt", definition.get("StartAt"))]
    for name, state in states.items():
        if state.get("Type") in {"Map", "Parallel"}:
            raise Unmodelled(f"{name}: {state['Type']} states run branches in threads of their own")
        targets += [(f"{name}.Next", state.get("Next")), (f"{name}.Default", state.get("Default"))]
        targets += [(f"{name}.Choices", choice.get("Next")) for choice in state.get("Choices", [])]
        targets += [(f"{name}.Catch", catcher.get("Next")) for catcher in state.get("Catch", [])]
    for where, target in targets:
        if target is not None and target not in states:
            raise CreateRefused(
                "InvalidDefinition: Invalid State Machine Definition: "
                f"'MISSING_TRANSITION_TARGET: Missing 'Next' target: {target} at /{where}'"
            )


def _validate_name(name: str) -> None:
    """StartExecution's name: 1-80 characters, none of whitespace, brackets, wildcards,
    ``"#%\\^|~`$&,;:/`` or control characters (StartExecution API reference); moto checks
    nothing."""
    if len(name) > NAME_LIMIT:
        raise ServiceError(
            "ValidationException",
            f"1 validation error detected: Value '{name}' at 'name' failed to satisfy "
            f"constraint: Member must have length less than or equal to {NAME_LIMIT}",
        )
    forbidden = any(
        c in _NAME_FORBIDDEN or c.isspace() or ord(c) <= 0x1F or 0x7F <= ord(c) <= 0x9F
        for c in name
    )
    if not name or forbidden:
        raise ServiceError("InvalidName", f"Invalid Name: '{name}'")


def _epoch(moment: datetime | str) -> float:
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.timestamp()


def _client_error(code: str, message: str, status: int) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        "Invoke",
    )


def _wait_interval(turns: _Turns) -> Callable[[WaitFunction, Any, int], None]:
    def wait_interval(self: WaitFunction, env: Any, wait_seconds: int) -> None:
        # A StopExecution wakes the wait early; moto then sees the program stopped.
        if wait_seconds > 0 and env.is_running():
            turns.sleep(wait_seconds)

    return wait_interval


def _datetime_module(clock: SimulatedClock) -> types.ModuleType:
    """The datetime module as a TimestampPath wait sees it: its ``datetime.now()`` (naive, as
    moto compares it with the parsed timestamp) is the simulated clock's."""

    class SimulatedDatetime(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> SimulatedDatetime:
            moment = datetime.fromtimestamp(clock.now(), tz or UTC)
            if tz is None:
                moment = moment.replace(tzinfo=None)
            return cls.fromisoformat(moment.isoformat())

    shim = types.ModuleType("datetime")
    shim.__dict__.update(vars(datetime_module))
    shim.datetime = SimulatedDatetime  # type: ignore[attr-defined]
    return shim


def _lambda_error_names() -> Callable[[StateTaskLambda, Any, Exception], FailureEvent]:
    original = StateTaskLambda._from_error

    def from_error(self: StateTaskLambda, env: Any, ex: Exception) -> FailureEvent:
        if not isinstance(ex, ClientError):
            return original(self, env, ex)
        code = str(ex.response["Error"]["Code"])
        name = f"Lambda.{code}" if code in LAMBDA_API_ERRORS else "Lambda.AWSLambdaException"
        event: FailureEvent = original(self, env, ex)
        details = event.event_details["lambdaFunctionFailedEventDetails"]
        details["error"] = name
        # As Step Functions words it: the Java SDK's message of the Lambda call's error.
        status = ex.response["ResponseMetadata"]["HTTPStatusCode"]
        details["cause"] = (
            f"{ex.response['Error']['Message']} (Service: AWSLambda; Status Code: {status}; "
            f"Error Code: {code}; Request ID: {uuid.uuid4()}; Proxy: null)"
        )
        return FailureEvent(
            env=env,
            error_name=CustomErrorName(name),
            event_type=event.event_type,
            event_details=EventDetails(lambdaFunctionFailedEventDetails=details),
        )

    return from_error
