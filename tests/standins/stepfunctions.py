"""A Step Functions (Standard) stand-in interpreting the synthesized ASL (test code, never shipped).

The definition is the template's `DefinitionString` as CloudFormation would resolve it, run by an
interpreter of the Amazon States Language (https://states-language.net/spec.html) on a
`SimulatedClock`. Executions advance only when the test drives them (`run_due`): no background
thread, so a rehearsal is deterministic. A Task's Lambda function is a Python callable the test
registers; before it is called, the state machine's role (the template's `RoleArn`) must be allowed
`lambda:InvokeFunction` on it by the gateway's IAM evaluation, as Step Functions assumes that role.

Modelled, as the Step Functions Developer Guide describes it:

- states Task, Choice, Wait, Pass, Succeed, Fail (Map and Parallel raise `Unmodelled`);
- Task resources: a Lambda function ARN (output: the function's return value) and
  `arn:aws:states:::lambda:invoke` (output: `{"Payload": ..., "StatusCode": 200, ...}`);
- InputPath, Parameters, ResultSelector, ResultPath, OutputPath, the context object (`$$`), a
  JSONPath subset (`$`, `$.a.b`, `$.a[0]`) and the intrinsics States.Format, States.MathAdd,
  States.JsonToString, States.StringToJson, States.Array, States.ArrayGetItem, States.ArrayLength
  and States.UUID;
- Retry (first matching retrier only; IntervalSeconds 1, MaxAttempts 3, BackoffRate 2.0 by
  default; MaxDelaySeconds caps the delay; JitterStrategy FULL is not applied: the stand-in always
  waits the full, un-jittered delay, the longest AWS would) and Catch; `States.ALL` and
  `States.TaskFailed` (which does not match `States.Timeout`) never match the terminal
  `States.Runtime` and `States.DataLimitExceeded` ("Error handling in Step Functions");
- Task TimeoutSeconds as `States.Timeout` when the call took longer on the simulated clock, and a
  function running past its own Timeout as `Lambda.Unknown` (the guide: "Unhandled errors in Lambda
  are reported as Lambda.Unknown ... These include ... function timeouts"); HeartbeatSeconds raises;
- the execution history, counted the way Standard workflows count it, and its hard quota of
  25,000 events: bp-history-limit.md says "When an execution reaches 24,999 events, it waits for
  the next event to happen. If the event number 25,000 is ExecutionSucceeded, the execution
  finishes successfully. If [it] isn't ExecutionSucceeded, the ExecutionFailed event is logged and
  the state machine execution fails"; reports of real executions give that ExecutionFailed the
  error `States.Runtime` and the cause "The execution reached the maximum number of history events
  (25000)." (aws-samples/aws-organizations-tag-inventory#16, loads/ardere#86), which this follows.

A Lambda AccessDenied surfaces as error `Lambda.AWSLambdaException` with the cause
"User: ... is not authorized to perform: lambda:InvokeFunction on resource: ... (Service:
AWSLambda; Status Code: 403; Error Code: AccessDeniedException; ...)", as reported for a Task whose
Resource is the function's ARN (awslabs/aws-deployment-framework#460). That the optimized
`lambda:invoke` integration reports the same name, and which history events a refused call logs
(LambdaFunctionScheduled then LambdaFunctionStartFailed here; TaskScheduled, TaskStarted,
TaskFailed for `lambda:invoke`), are assumptions.
"""

from __future__ import annotations

import functools
import json
import math
import re
import threading
import traceback
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from .clock import SimulatedClock
from .eventbridge import star_match

JSON = Any
HISTORY_LIMIT = 25_000
PAYLOAD_LIMIT = 262_144  # bytes of UTF-8: input or output of a task, state or execution
NAME_LIMIT = 80
DEFAULT_TASK_TIMEOUT = 99_999_999
EXECUTION_LIMIT = 365 * 24 * 3600  # Standard workflows: at most a year
DEFAULT_LAMBDA_TIMEOUT = 3
DEFAULT_LAMBDA_MEMORY = 128
HISTORY_LIMIT_CAUSE = (
    f"The execution reached the maximum number of history events ({HISTORY_LIMIT})."
)
TERMINAL_ERRORS = frozenset({"States.Runtime", "States.DataLimitExceeded"})
LAMBDA_SERVICE_PRINCIPAL = "states.amazonaws.com"

# StartExecution's name: 1-80 characters, none of these (StartExecution API reference): whitespace,
# brackets < > { } [ ], wildcards ? *, special characters " # % \ ^ | ~ ` $ & , ; : / and control
# characters U+0000-001F, U+007F-009F.
_NAME_FORBIDDEN = frozenset('<>{}[]?*"#%\\^|~`$&,;:/')
_LAMBDA_ARN = re.compile(
    r"^arn:(?P<partition>[^:]+):lambda:(?P<region>[^:]+):(?P<account>\d{12}):function:"
    r"(?P<name>[A-Za-z0-9_-]+)(?::(?P<qualifier>[A-Za-z0-9$_-]+))?$"
)
_INVOKE = re.compile(r"^arn:[^:]+:states:::lambda:invoke$")
_EXECUTION_ARN = re.compile(
    r"^arn:(?P<partition>[^:]+):states:(?P<region>[^:]+):(?P<account>\d{12}):execution:"
    r"(?P<machine>[^:]+):(?P<name>[^:]+)$"
)
_MACHINE_ARN = re.compile(r"^arn:[^:]+:states:[^:]+:\d{12}:stateMachine:[^:]+$")
_SEGMENT = re.compile(r"\.([^.\[\]*?@()'\"]+)|\[(\d+)\]")
_INTRINSIC = re.compile(r"^(States\.[A-Za-z]+)\((.*)\)$", re.DOTALL)
_STATE_TYPES = {"Task", "Choice", "Wait", "Pass", "Succeed", "Fail"}
_UNMODELLED_FIELDS = {
    "Assign",
    "Arguments",
    "Output",
    "QueryLanguage",
    "Credentials",
    "HeartbeatSeconds",
    "HeartbeatSecondsPath",
}


class Unmodelled(Exception):
    """Something the stand-in does not interpret: it refuses loudly rather than guess."""


class CreateRefused(ValueError):
    """What CreateStateMachine (so the stack's deployment) would refuse."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class ServiceError(Exception):
    """An error answer of the Step Functions API (JSON 1.0: `__type` and `message`)."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


class RoleAuthority(Protocol):
    """The IAM side the stand-in asks (the gateway): may a role do this, does it trust that?"""

    def service_role_call(
        self, role_arn: str, action: str, resource: str, *, service: str
    ) -> str | None:
        """None when allowed, else the AccessDenied message; the call is recorded either way."""
        ...

    def role_trusts(
        self, role_arn: str, service_principal: str, context: Mapping[str, str]
    ) -> bool:
        """Whether the role's trust policy lets the service assume it."""
        ...


Handler = Callable[[Any, Any], Any]


class LambdaContext:
    """The context object the Python runtime passes to a handler."""

    def __init__(
        self,
        clock: SimulatedClock,
        function_arn: str,
        invoked_arn: str,
        timeout: float,
        memory: int,
    ) -> None:
        self._clock = clock
        self._deadline = clock.now() + timeout
        self.function_name = function_arn.rsplit(":", 1)[-1]
        self.function_version = "$LATEST"
        self.invoked_function_arn = invoked_arn
        self.memory_limit_in_mb = memory
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = f"2026/01/01/[$LATEST]{uuid.uuid4().hex}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - self._clock.now()) * 1000))


@dataclass
class Function:
    arn: str  # unqualified
    timeout: float = DEFAULT_LAMBDA_TIMEOUT
    memory: int = DEFAULT_LAMBDA_MEMORY
    handler: Handler | None = None
    invocations: int = 0


@dataclass
class StateMachine:
    arn: str
    name: str
    definition: dict[str, JSON]
    role_arn: str
    logical_id: str | None = None

    @property
    def states(self) -> dict[str, dict[str, JSON]]:
        states: dict[str, dict[str, JSON]] = self.definition["States"]
        return states


@dataclass(frozen=True)
class HistoryEvent:
    id: int
    type: str
    timestamp: float
    details: Mapping[str, JSON] = field(default_factory=dict)


@dataclass
class Execution:
    arn: str
    name: str
    machine: StateMachine
    input_text: str
    input: JSON
    start: float
    status: str = "RUNNING"
    stop: float | None = None
    output_text: str | None = None
    error: str | None = None
    cause: str | None = None
    history: list[HistoryEvent] = field(default_factory=list)
    # Where it is: the state, what the state does next ("enter", "wait", "retry"), when.
    state: str = ""
    phase: str = "enter"
    state_input: JSON = None
    effective_input: JSON = None
    due: float | None = None
    order: int = 0
    deadline: float = math.inf
    entered_time: float = 0.0
    entered_event: int = 0
    retries: dict[int, int] = field(default_factory=dict)
    retry_count: int = 0
    attempt: int = 0  # which Task attempt a returning call belongs to

    @property
    def history_events(self) -> int:
        return len(self.history)

    @property
    def output(self) -> JSON:
        return None if self.output_text is None else json.loads(self.output_text)

    def events(self, type: str | None = None) -> list[HistoryEvent]:
        return [e for e in self.history if type is None or e.type == type]


@dataclass
class _Invocation:
    execution: Execution
    state_name: str
    attempt: int
    function_arn: str  # as invoked, qualified when the definition qualifies it
    payload: JSON
    integration: str  # "direct" (the function's ARN) or "invoke" (lambda:invoke)
    timeout: float  # the Task's TimeoutSeconds


@dataclass
class _Outcome:
    started: float
    kind: str  # "succeeded", "failed", "start-failed", "timed-out"
    value: JSON = None
    error: str = ""
    cause: str | None = None
    request_id: str = ""


class _Failure(Exception):
    def __init__(self, error: str, cause: str | None) -> None:
        super().__init__(f"{error}: {cause}")
        self.error = error
        self.cause = cause


class _Closed(Exception):
    """The execution ended while a step was running (history quota, StopExecution)."""


_MISSING: Any = object()


class StepFunctionsStandIn:
    """State machines of deployed stacks, their executions, and the Step Functions API."""

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
        self._machines: dict[str, StateMachine] = {}  # by ARN
        self._executions: dict[str, Execution] = {}  # by ARN
        self._running: dict[str, Execution] = {}
        self._functions: dict[str, Function] = {}  # by unqualified ARN
        self._order = 0

    def reset(self) -> None:
        """Forget every state machine, execution and function."""
        with self._lock:
            self._machines.clear()
            self._executions.clear()
            self._running.clear()
            self._functions.clear()

    # Deploying

    def register_stack(self, deployed: Any) -> None:
        """A `DeployedStack`'s Lambda functions (Timeout, MemorySize) and state machines."""
        for logical, resource in deployed.resources("AWS::Lambda::Function").items():
            properties = resource.get("Properties", {})
            self.configure_function(
                str(deployed.get_att(logical, "Arn")),
                timeout=float(deployed.resolve(properties.get("Timeout", DEFAULT_LAMBDA_TIMEOUT))),
                memory=int(deployed.resolve(properties.get("MemorySize", DEFAULT_LAMBDA_MEMORY))),
            )
        for logical, resource in deployed.resources("AWS::StepFunctions::StateMachine").items():
            properties = resource.get("Properties", {})
            kind = deployed.resolve(properties.get("StateMachineType", "STANDARD"))
            if kind != "STANDARD":
                raise Unmodelled(f"{logical}: {kind} state machines are not modelled")
            if "DefinitionS3Location" in properties:
                raise Unmodelled(f"{logical}: DefinitionS3Location is not modelled")
            if "DefinitionString" in properties:
                definition: str | dict[str, JSON] = deployed.resolve(properties["DefinitionString"])
            else:
                definition = deployed.resolve(properties["Definition"])
            substitutions = deployed.resolve(properties.get("DefinitionSubstitutions", {}))
            self.register_state_machine(
                name=deployed.physical_name(logical),
                definition=definition,
                role_arn=str(deployed.resolve(properties["RoleArn"])),
                substitutions=substitutions,
                logical_id=logical,
            )

    def register_state_machine(
        self,
        *,
        name: str,
        definition: str | Mapping[str, JSON],
        role_arn: str,
        substitutions: Mapping[str, JSON] | None = None,
        logical_id: str | None = None,
    ) -> StateMachine:
        """CreateStateMachine (or an update of it): validates the definition and the role."""
        text = definition if isinstance(definition, str) else json.dumps(definition)
        for key, value in (substitutions or {}).items():
            text = text.replace("${" + key + "}", value if isinstance(value, str) else str(value))
        try:
            parsed = json.loads(text)
        except ValueError as error:
            raise CreateRefused(
                "InvalidDefinition", f"Invalid State Machine Definition: {error}"
            ) from None
        _validate_definition(parsed)
        arn = f"arn:{self.partition}:states:{self.region}:{self.account}:stateMachine:{name}"
        if self.authority is not None:
            context = {"aws:SourceAccount": self.account, "aws:SourceArn": arn}
            if not self.authority.role_trusts(role_arn, LAMBDA_SERVICE_PRINCIPAL, context):
                raise CreateRefused(
                    "AccessDeniedException",
                    "Neither the global service principal states.amazonaws.com, nor the regional "
                    f"one is authorized to assume the provided role: {role_arn}",
                )
        machine = StateMachine(arn, name, parsed, role_arn, logical_id)
        with self._lock:
            self._machines[arn] = machine
        return machine

    def configure_function(
        self, function_arn: str, *, timeout: float | None = None, memory: int | None = None
    ) -> Function:
        arn = _unqualified(function_arn)
        with self._lock:
            function = self._functions.setdefault(arn, Function(arn))
            if timeout is not None:
                function.timeout = timeout
            if memory is not None:
                function.memory = memory
            return function

    def register_function(
        self, function_arn: str, handler: Handler, *, timeout: float | None = None
    ) -> Function:
        """The code a Lambda function runs: `handler(event, context)`, as the Python runtime
        calls it. Its Timeout is the template's unless given (3 seconds without either)."""
        if _LAMBDA_ARN.match(function_arn) is None:
            raise ValueError(f"not a Lambda function ARN: {function_arn}")
        function = self.configure_function(function_arn, timeout=timeout)
        function.handler = handler
        return function

    # Looking things up

    def state_machine(self, name_or_arn: str) -> StateMachine:
        with self._lock:
            for machine in self._machines.values():
                if name_or_arn in {machine.arn, machine.name, machine.logical_id}:
                    return machine
        raise KeyError(f"no state machine {name_or_arn}")

    @property
    def executions(self) -> list[Execution]:
        with self._lock:
            return list(self._executions.values())

    def execution(self, name_or_arn: str) -> Execution:
        with self._lock:
            if name_or_arn in self._executions:
                return self._executions[name_or_arn]
            found = [e for e in self._executions.values() if e.name == name_or_arn]
        if len(found) != 1:
            raise KeyError(f"{len(found)} executions are named {name_or_arn}")
        return found[0]

    def function(self, function_arn: str) -> Function:
        with self._lock:
            return self._functions[_unqualified(function_arn)]

    # The API

    def authorization(self, operation: str, body: Mapping[str, JSON]) -> tuple[str, str]:
        """The IAM action and resource of a request, before anything is validated."""
        key = {
            "StartExecution": "stateMachineArn",
            "DescribeExecution": "executionArn",
            "StopExecution": "executionArn",
        }.get(operation)
        if key is None:
            raise Unmodelled(f"Step Functions {operation} is not modelled")
        resource = body.get(key)
        return f"states:{operation}", resource if isinstance(resource, str) else "*"

    def handle(self, operation: str, body: Mapping[str, JSON]) -> dict[str, JSON]:
        """An authorized request's answer (dates as epoch seconds, as JSON 1.0 carries them)."""
        if operation == "StartExecution":
            arn = _arn(body, "stateMachineArn", _MACHINE_ARN)
            return self.start_execution(arn, body.get("name"), body.get("input"))
        if operation == "DescribeExecution":
            return self.describe_execution(_arn(body, "executionArn", _EXECUTION_ARN))
        if operation == "StopExecution":
            return self.stop_execution(
                _arn(body, "executionArn", _EXECUTION_ARN), body.get("error"), body.get("cause")
            )
        raise Unmodelled(f"Step Functions {operation} is not modelled")

    def start_execution(
        self, state_machine_arn: str, name: str | None = None, input: str | None = None
    ) -> dict[str, JSON]:
        if name is None:
            name = str(uuid.uuid4())
        _validate_name(name)
        text = "{}" if input is None else input
        if len(text) > PAYLOAD_LIMIT:
            raise ServiceError(
                "ValidationException",
                "1 validation error detected: Value at 'input' failed to satisfy constraint: "
                f"Member must have length less than or equal to {PAYLOAD_LIMIT}",
            )
        if len(text.encode()) > PAYLOAD_LIMIT:
            raise ServiceError(
                "InvalidExecutionInput",
                f"Invalid State Machine Execution Input: 'larger than {PAYLOAD_LIMIT} bytes'",
            )
        try:
            parsed = json.loads(text)
        except ValueError as error:
            raise ServiceError(
                "InvalidExecutionInput", f"Invalid State Machine Execution Input: '{error}'"
            ) from None
        with self._lock:
            machine = self._machines.get(state_machine_arn)
            if machine is None:
                raise ServiceError(
                    "StateMachineDoesNotExist",
                    f"State Machine Does Not Exist: '{state_machine_arn}'",
                )
            arn = (
                f"arn:{self.partition}:states:{self.region}:{self.account}:execution:"
                f"{machine.name}:{name}"
            )
            known = self._executions.get(arn)
            if known is not None:
                # Same name and input while it runs: idempotent. Anything else: refused, for as
                # long as the closed execution is kept (90 days in AWS; here, until reset).
                if known.status == "RUNNING" and known.input_text == text:
                    return {"executionArn": arn, "startDate": _epoch(known.start)}
                raise ServiceError("ExecutionAlreadyExists", f"Execution Already Exists: '{arn}'")
            now = self.clock.now()
            timeout = machine.definition.get("TimeoutSeconds")
            execution = Execution(
                arn=arn,
                name=name,
                machine=machine,
                input_text=text,
                input=parsed,
                start=now,
                state=machine.definition["StartAt"],
                state_input=parsed,
                deadline=now + (EXECUTION_LIMIT if timeout is None else int(timeout)),
            )
            self._executions[arn] = execution
            self._running[arn] = execution
            self._append(
                execution, "ExecutionStarted", {"input": text, "roleArn": machine.role_arn}
            )
            self._schedule(execution, now)
            return {"executionArn": arn, "startDate": _epoch(now)}

    def describe_execution(self, execution_arn: str) -> dict[str, JSON]:
        with self._lock:
            execution = self._executions.get(execution_arn)
            if execution is None:
                raise ServiceError(
                    "ExecutionDoesNotExist", f"Execution Does Not Exist: '{execution_arn}'"
                )
            described: dict[str, JSON] = {
                "executionArn": execution.arn,
                "stateMachineArn": execution.machine.arn,
                "name": execution.name,
                "status": execution.status,
                "startDate": _epoch(execution.start),
                "input": execution.input_text,
                "inputDetails": {"included": True},
                "redriveCount": 0,
            }
            if execution.stop is not None:
                described["stopDate"] = _epoch(execution.stop)
            if execution.output_text is not None:
                described["output"] = execution.output_text
                described["outputDetails"] = {"included": True}
            if execution.error is not None:
                described["error"] = execution.error
            if execution.cause is not None:
                described["cause"] = execution.cause
            return described

    def stop_execution(
        self, execution_arn: str, error: str | None = None, cause: str | None = None
    ) -> dict[str, JSON]:
        if error is not None and len(error) > 256:
            raise ServiceError(
                "ValidationException",
                "1 validation error detected: Value at 'error' failed to satisfy constraint: "
                "Member must have length less than or equal to 256",
            )
        if cause is not None and len(cause) > 32768:
            raise ServiceError(
                "ValidationException",
                "1 validation error detected: Value at 'cause' failed to satisfy constraint: "
                "Member must have length less than or equal to 32768",
            )
        with self._lock:
            execution = self._executions.get(execution_arn)
            if execution is None:
                raise ServiceError(
                    "ExecutionDoesNotExist", f"Execution Does Not Exist: '{execution_arn}'"
                )
            if execution.status == "RUNNING":
                self._abort(execution, error, cause)
            # Stopping a closed execution changes nothing (assumed: its stopDate is answered).
            assert execution.stop is not None
            return {"stopDate": _epoch(execution.stop)}

    def stop_by_hand(self, execution_name: str) -> Execution:
        """What a person does with "Stop execution" in the console: ABORTED, no error or cause."""
        execution = self.execution(execution_name)
        self.stop_execution(execution.arn)
        return execution

    # Driving

    def next_due(self) -> float | None:
        with self._lock:
            dues = [e.due for e in self._running.values() if e.due is not None]
            return min(dues) if dues else None

    def run_due(self, until: float | None = None) -> int:
        """Run, in due order, every transition due at or before `until` (by default: now, as the
        clock stands after each transition), moving the clock forward to each; returns how many
        ran. A Lambda function runs in this thread and may move the clock (`clock.sleep`)."""
        if not self._driving.acquire(blocking=False):
            raise RuntimeError("run_due is already running: nothing may drive the stand-in twice")
        try:
            steps = 0
            while True:
                limit = self.clock.now() if until is None else until
                with self._lock:
                    execution = self._next(limit)
                    if execution is None:
                        return steps
                    assert execution.due is not None
                    self.clock.advance_to(execution.due)
                    execution.due = None
                    invocation = self._step(execution)
                if invocation is not None:
                    outcome = self._call(invocation)
                    with self._lock:
                        self._conclude(invocation, outcome)
                steps += 1
        finally:
            self._driving.release()

    def run_until_idle(self, limit_time: float) -> bool:
        """Run everything due up to `limit_time`; True when no execution is still running."""
        self.run_due(until=limit_time)
        with self._lock:
            return not self._running

    # The interpreter

    def _next(self, limit: float) -> Execution | None:
        due = [e for e in self._running.values() if e.due is not None and e.due <= limit]
        return min(due, key=lambda e: (e.due, e.order)) if due else None

    def _schedule(self, execution: Execution, at: float) -> None:
        self._order += 1
        execution.order = self._order
        execution.due = min(at, execution.deadline)

    def _step(self, execution: Execution) -> _Invocation | None:
        try:
            if self.clock.now() >= execution.deadline:
                self._finish(
                    execution, "TIMED_OUT", "ExecutionTimedOut", error="States.Timeout", cause=None
                )
                return None
            state = execution.machine.states[execution.state]
            if execution.phase == "enter":
                return self._enter(execution, state)
            if execution.phase == "wait":
                self._event(execution, "WaitStateExited", {"name": execution.state})
                output = self._path(state, "OutputPath", execution.effective_input, execution)
                self._transition(execution, state, output)
                return None
            if execution.phase == "retry":
                return self._attempt(execution, state)
            raise AssertionError(f"unknown phase {execution.phase}")
        except _Closed:
            return None
        except _Failure as failure:
            self._fail(execution, failure.error, failure.cause)
            return None

    def _enter(self, execution: Execution, state: Mapping[str, JSON]) -> _Invocation | None:
        kind = state["Type"]
        raw = execution.state_input
        self._event(
            execution,
            f"{kind}StateEntered",
            {"name": execution.state, "input": _dumps(raw)},
        )
        execution.entered_time = self.clock.now()
        execution.entered_event = execution.history_events
        execution.retries = {}
        execution.retry_count = 0
        if kind == "Task":
            return self._attempt(execution, state)
        effective = self._path(state, "InputPath", raw, execution)
        execution.effective_input = effective
        if kind == "Pass":
            result = (
                state["Result"]
                if "Result" in state
                else self._parameters(state, "Parameters", effective, execution)
            )
            output = self._result_path(state.get("ResultPath", "$"), raw, result, execution)
            output = self._path(state, "OutputPath", output, execution)
            self._event(execution, "PassStateExited", {"name": execution.state})
            self._transition(execution, state, output)
        elif kind == "Choice":
            target = self._choose(state, effective, execution)
            output = self._path(state, "OutputPath", effective, execution)
            self._event(execution, "ChoiceStateExited", {"name": execution.state})
            self._goto(execution, target, output)
        elif kind == "Wait":
            execution.phase = "wait"
            self._schedule(execution, self._wait_until(state, effective, execution))
        elif kind == "Succeed":
            output = self._path(state, "OutputPath", effective, execution)
            self._event(execution, "SucceedStateExited", {"name": execution.state})
            self._succeed(execution, output)
        else:  # Fail
            error = state.get("Error")
            cause = state.get("Cause")
            if "ErrorPath" in state:
                error = self._reference(state["ErrorPath"], raw, execution, "ErrorPath")
            if "CausePath" in state:
                cause = self._reference(state["CausePath"], raw, execution, "CausePath")
            self._finish(execution, "FAILED", "ExecutionFailed", error=error, cause=cause)
        return None

    def _transition(self, execution: Execution, state: Mapping[str, JSON], output: JSON) -> None:
        self._check_size(output, execution, "output")
        if state.get("End") is True:
            self._succeed(execution, output)
        else:
            self._goto(execution, state["Next"], output)

    def _goto(self, execution: Execution, name: str, data: JSON) -> None:
        execution.state = name
        execution.phase = "enter"
        execution.state_input = data
        self._schedule(execution, self.clock.now())

    def _succeed(self, execution: Execution, output: JSON) -> None:
        self._finish(execution, "SUCCEEDED", "ExecutionSucceeded", output=_dumps(output))

    def _fail(self, execution: Execution, error: str | None, cause: str | None) -> None:
        try:
            self._finish(execution, "FAILED", "ExecutionFailed", error=error, cause=cause)
        except _Closed:
            pass

    def _abort(self, execution: Execution, error: str | None, cause: str | None) -> None:
        try:
            if execution.phase in {"retry", "calling"}:
                self._event(execution, "TaskStateAborted", {"name": execution.state})
            elif execution.phase == "wait":
                self._event(execution, "WaitStateAborted", {"name": execution.state})
            self._finish(execution, "ABORTED", "ExecutionAborted", error=error, cause=cause)
        except _Closed:
            pass

    def _finish(
        self,
        execution: Execution,
        status: str,
        event: str,
        *,
        output: str | None = None,
        error: str | None = None,
        cause: str | None = None,
    ) -> None:
        details = {k: v for k, v in {"output": output, "error": error, "cause": cause}.items() if v}
        self._event(execution, event, details)
        self._close(execution, status, output=output, error=error, cause=cause)

    def _close(
        self,
        execution: Execution,
        status: str,
        *,
        output: str | None = None,
        error: str | None = None,
        cause: str | None = None,
    ) -> None:
        execution.status = status
        execution.stop = self.clock.now()
        execution.output_text = output
        execution.error = error
        execution.cause = cause
        execution.due = None
        self._running.pop(execution.arn, None)

    def _event(
        self,
        execution: Execution,
        type: str,
        details: Mapping[str, JSON] | None = None,
        *,
        at: float | None = None,
    ) -> None:
        if execution.status != "RUNNING":
            raise _Closed
        if execution.history_events == HISTORY_LIMIT - 1 and type != "ExecutionSucceeded":
            details = {"error": "States.Runtime", "cause": HISTORY_LIMIT_CAUSE}
            self._append(execution, "ExecutionFailed", details)
            self._close(execution, "FAILED", error="States.Runtime", cause=HISTORY_LIMIT_CAUSE)
            raise _Closed
        self._append(execution, type, details or {}, at=at)

    def _append(
        self,
        execution: Execution,
        type: str,
        details: Mapping[str, JSON],
        *,
        at: float | None = None,
    ) -> None:
        moment = self.clock.now() if at is None else at
        execution.history.append(HistoryEvent(execution.history_events + 1, type, moment, details))

    # Tasks

    def _attempt(self, execution: Execution, state: Mapping[str, JSON]) -> _Invocation:
        """One attempt of a Task: its input is worked out again ($$.State.RetryCount changes)."""
        effective = self._path(state, "InputPath", execution.state_input, execution)
        parameters = self._parameters(state, "Parameters", effective, execution)
        self._check_size(parameters, execution, "input")
        execution.effective_input = parameters
        resource = state["Resource"]
        if _INVOKE.match(resource):
            if not isinstance(parameters, dict) or "FunctionName" not in parameters:
                raise _Failure("States.Runtime", "lambda:invoke needs Parameters.FunctionName")
            if parameters.get("InvocationType", "RequestResponse") != "RequestResponse":
                raise Unmodelled("lambda:invoke with an InvocationType other than RequestResponse")
            if "Payload" not in parameters:
                raise Unmodelled("lambda:invoke without Payload is not modelled")
            function_arn = self._function_arn(str(parameters["FunctionName"]))
            if "Qualifier" in parameters:
                function_arn = f"{_unqualified(function_arn)}:{parameters['Qualifier']}"
            payload, integration, scheduled = parameters["Payload"], "invoke", "TaskScheduled"
        else:
            function_arn, payload, integration = resource, parameters, "direct"
            scheduled = "LambdaFunctionScheduled"
        timeout = float(state.get("TimeoutSeconds", DEFAULT_TASK_TIMEOUT))
        if "TimeoutSecondsPath" in state:
            timeout = float(
                self._reference(
                    state["TimeoutSecondsPath"],
                    execution.effective_input,
                    execution,
                    "TimeoutSecondsPath",
                )
            )
        self._event(execution, scheduled, {"resource": function_arn, "input": _dumps(payload)})
        execution.phase = "calling"
        execution.attempt += 1
        return _Invocation(
            execution,
            execution.state,
            execution.attempt,
            function_arn,
            payload,
            integration,
            timeout,
        )

    def _function_arn(self, name: str) -> str:
        """FunctionName as lambda:invoke takes it: a name, a partial ARN or an ARN."""
        if name.startswith("arn:"):
            return name
        prefix = f"arn:{self.partition}:lambda:{self.region}:{self.account}:function:"
        if ":function:" in name:
            return f"arn:{self.partition}:lambda:{self.region}:{name}"
        return prefix + name

    def _call(self, invocation: _Invocation) -> _Outcome:
        """Step Functions, as the state machine's role, invoking the function (no lock held)."""
        started = self.clock.now()
        execution = invocation.execution
        request_id = str(uuid.uuid4())
        suffix = f"Request ID: {request_id}; Proxy: null)"
        if self.authority is not None:
            denial = self.authority.service_role_call(
                execution.machine.role_arn,
                "lambda:InvokeFunction",
                invocation.function_arn,
                service="lambda",
            )
            if denial is not None:
                return _Outcome(
                    started,
                    "start-failed",
                    error="Lambda.AWSLambdaException",
                    cause=f"{denial} (Service: AWSLambda; Status Code: 403; "
                    f"Error Code: AccessDeniedException; {suffix}",
                )
        with self._lock:
            function = self._functions.get(_unqualified(invocation.function_arn))
        if function is None or function.handler is None:
            return _Outcome(
                started,
                "start-failed",
                error="Lambda.ResourceNotFoundException",
                cause=f"Function not found: {invocation.function_arn} (Service: AWSLambda; "
                f"Status Code: 404; Error Code: ResourceNotFoundException; {suffix}",
            )
        context = LambdaContext(
            self.clock, function.arn, invocation.function_arn, function.timeout, function.memory
        )
        function.invocations += 1
        event = json.loads(_dumps(invocation.payload))  # what crosses the wire is a copy
        try:
            returned = function.handler(event, context)
        except Exception as error:
            outcome = _Outcome(
                started,
                "failed",
                error=type(error).__name__,
                cause=_lambda_error(error, context.aws_request_id),
            )
        else:
            try:
                outcome = _Outcome(started, "succeeded", value=json.loads(_dumps(returned)))
            except (TypeError, ValueError) as error:
                outcome = _Outcome(
                    started,
                    "failed",
                    error="Runtime.MarshalError",
                    cause=json.dumps(
                        {
                            "errorMessage": f"Unable to marshal response: {error}",
                            "errorType": "Runtime.MarshalError",
                            "requestId": context.aws_request_id,
                            "stackTrace": [],
                        }
                    ),
                )
        outcome.request_id = context.aws_request_id
        elapsed = self.clock.now() - started
        if elapsed > invocation.timeout:
            return _Outcome(started, "timed-out", error="States.Timeout")
        if elapsed > function.timeout:
            message = (
                f"{_iso(self.clock.now())} {context.aws_request_id} Task timed out after "
                f"{function.timeout:.2f} seconds"
            )
            return _Outcome(
                started,
                "failed",
                error="Lambda.Unknown",
                cause="The cause could not be determined because Lambda did not return an error "
                f"type. Returned payload: {json.dumps({'errorMessage': message})}",
            )
        return outcome

    def _conclude(self, invocation: _Invocation, outcome: _Outcome) -> None:
        execution = invocation.execution
        if execution.status != "RUNNING" or execution.attempt != invocation.attempt:
            return  # stopped while the function ran: its result is dropped
        state = execution.machine.states[invocation.state_name]
        direct = invocation.integration == "direct"
        started = "LambdaFunctionStarted" if direct else "TaskStarted"
        ended = {
            "succeeded": "LambdaFunctionSucceeded" if direct else "TaskSucceeded",
            "failed": "LambdaFunctionFailed" if direct else "TaskFailed",
            "timed-out": "LambdaFunctionTimedOut" if direct else "TaskTimedOut",
            "start-failed": "LambdaFunctionStartFailed" if direct else "TaskFailed",
        }[outcome.kind]
        try:
            if outcome.kind != "start-failed" or not direct:
                self._event(execution, started, {}, at=outcome.started)
            if outcome.kind == "succeeded":
                result = outcome.value
                if not direct:
                    result = _invoke_result(result, outcome.request_id)
                self._check_size(result, execution, "output")
                self._event(execution, ended, {"output": _dumps(result)})
                execution.phase = "done"
                output = self._parameters(state, "ResultSelector", result, execution)
                output = self._result_path(
                    state.get("ResultPath", "$"), execution.state_input, output, execution
                )
                output = self._path(state, "OutputPath", output, execution)
                self._event(execution, "TaskStateExited", {"name": execution.state})
                self._transition(execution, state, output)
            else:
                details = {"error": outcome.error}
                if outcome.cause is not None:
                    details["cause"] = outcome.cause
                self._event(execution, ended, details)
                self._handle_error(execution, state, outcome.error, outcome.cause)
        except _Closed:
            pass
        except _Failure as failure:
            self._fail(execution, failure.error, failure.cause)

    def _handle_error(
        self, execution: Execution, state: Mapping[str, JSON], error: str, cause: str | None
    ) -> None:
        """Retry (the first retrier naming the error), else Catch, else the execution fails."""
        if error not in TERMINAL_ERRORS:
            for index, retrier in enumerate(state.get("Retry", [])):
                if not _error_matches(retrier["ErrorEquals"], error):
                    continue
                done = execution.retries.get(index, 0)
                if done >= int(retrier.get("MaxAttempts", 3)):
                    break
                delay = float(retrier.get("IntervalSeconds", 1)) * float(
                    retrier.get("BackoffRate", 2.0)
                ) ** float(done)
                if "MaxDelaySeconds" in retrier:
                    delay = min(delay, float(retrier["MaxDelaySeconds"]))
                execution.retries[index] = done + 1
                execution.retry_count += 1
                execution.phase = "retry"
                self._schedule(execution, self.clock.now() + delay)
                return
            for catcher in state.get("Catch", []):
                if _error_matches(catcher["ErrorEquals"], error):
                    thrown: dict[str, JSON] = {"Error": error}
                    if cause is not None:
                        thrown["Cause"] = cause
                    output = self._result_path(
                        catcher.get("ResultPath", "$"), execution.state_input, thrown, execution
                    )
                    self._event(execution, "TaskStateExited", {"name": execution.state})
                    self._check_size(output, execution, "output")
                    self._goto(execution, catcher["Next"], output)
                    return
        raise _Failure(error, cause)

    # Data flow

    def _context(self, execution: Execution) -> dict[str, JSON]:
        return {
            "Execution": {
                "Id": execution.arn,
                "Input": execution.input,
                "Name": execution.name,
                "RoleArn": execution.machine.role_arn,
                "StartTime": _iso(execution.start),
                "RedriveCount": 0,
            },
            "State": {
                "EnteredTime": _iso(execution.entered_time),
                "Name": execution.state,
                "RetryCount": execution.retry_count,
            },
            "StateMachine": {"Id": execution.machine.arn, "Name": execution.machine.name},
        }

    def _runtime(self, execution: Execution, detail: str) -> _Failure:
        return _Failure(
            "States.Runtime",
            f"An error occurred while executing the state '{execution.state}' (entered at the "
            f"event id #{execution.entered_event}). {detail}",
        )

    def _path(self, state: Mapping[str, JSON], name: str, data: JSON, execution: Execution) -> JSON:
        """InputPath or OutputPath: `$` by default, `null` for an empty object."""
        if name not in state:
            return data
        path = state[name]
        if path is None:
            return {}
        found = self._lookup(path, data, execution)
        if found is _MISSING:
            raise self._runtime(
                execution,
                f"Invalid path '{path}' : No results for path: $['{path.lstrip('$.')}']",
            )
        return found

    def _reference(self, path: str, data: JSON, execution: Execution, field_name: str) -> JSON:
        found = self._lookup(path, data, execution)
        if found is _MISSING:
            raise self._runtime(
                execution,
                f"The JSONPath '{path}' specified for the field '{field_name}' could not be found "
                f"in the input '{_dumps(data)}'",
            )
        return found

    def _lookup(self, path: str, data: JSON, execution: Execution) -> JSON:
        if path.startswith("$$"):
            return _get(self._context(execution), _parse_path("$" + path[2:]))
        return _get(data, _parse_path(path))

    def _parameters(
        self, state: Mapping[str, JSON], name: str, data: JSON, execution: Execution
    ) -> JSON:
        if name not in state:
            return data
        return self._template(state[name], data, execution)

    def _template(self, template: JSON, data: JSON, execution: Execution) -> JSON:
        if isinstance(template, dict):
            out: dict[str, JSON] = {}
            for key, value in template.items():
                if key.endswith(".$"):
                    out[key[:-2]] = self._dynamic(value, data, execution, key)
                else:
                    out[key] = self._template(value, data, execution)
            return out
        if isinstance(template, list):
            return [self._template(item, data, execution) for item in template]
        return template

    def _dynamic(self, value: str, data: JSON, execution: Execution, key: str) -> JSON:
        if value.startswith("States."):
            return self._intrinsic(value, data, execution)
        return self._reference(value, data, execution, key)

    def _result_path(self, path: str | None, raw: JSON, result: JSON, execution: Execution) -> JSON:
        if path is None:
            return raw
        parts = _parse_path(path)
        if not parts:
            return result
        if not isinstance(raw, dict):
            raise self._runtime(
                execution,
                f"Unable to apply ResultPath '{path}' to input '{_dumps(raw)}': not an object",
            )
        out = json.loads(_dumps(raw))
        target = out
        for part in parts[:-1]:
            if not isinstance(part, str):
                raise Unmodelled(f"ResultPath {path!r} with an index")
            child = target.get(part)
            if not isinstance(child, dict):
                child = {}
                target[part] = child
            target = child
        last = parts[-1]
        if not isinstance(last, str):
            raise Unmodelled(f"ResultPath {path!r} with an index")
        target[last] = result
        return out

    def _check_size(self, data: JSON, execution: Execution, what: str) -> None:
        size = len(_dumps(data).encode())
        if size > PAYLOAD_LIMIT:
            raise _Failure(
                "States.DataLimitExceeded",
                f"The state/task '{execution.state}' returned a result with a size exceeding the "
                f"maximum number of bytes service limit ({what}: {size} bytes).",
            )

    # Intrinsic functions

    def _intrinsic(self, text: str, data: JSON, execution: Execution) -> JSON:
        found = _INTRINSIC.match(text.strip())
        if found is None:
            raise _Failure("States.IntrinsicFailure", f"Invalid intrinsic function: {text}")
        name, arguments = found.group(1), _split_arguments(found.group(2))
        if name == "States.Format":
            if not arguments or not arguments[0].startswith("'"):
                raise _Failure("States.IntrinsicFailure", f"{text}: a template string first")
            values = [self._argument(a, data, execution) for a in arguments[1:]]
            return _format(arguments[0][1:-1], values, text)
        values = [self._argument(a, data, execution) for a in arguments]
        functions: dict[str, Callable[[list[JSON]], JSON]] = {
            "States.MathAdd": _math_add,
            "States.JsonToString": lambda v: _dumps(_only(v, text)),
            "States.StringToJson": lambda v: json.loads(_only(v, text)),
            "States.Array": list,
            "States.ArrayLength": lambda v: len(_only(v, text)),
            "States.ArrayGetItem": lambda v: v[0][int(v[1])],
            "States.UUID": lambda v: str(uuid.uuid4()),
        }
        if name not in functions:
            raise Unmodelled(f"intrinsic function {name} is not modelled")
        try:
            return functions[name](values)
        except (TypeError, ValueError, IndexError, KeyError) as error:
            raise _Failure("States.IntrinsicFailure", f"{text}: {error}") from None

    def _argument(self, argument: str, data: JSON, execution: Execution) -> JSON:
        if argument.startswith("'"):
            return _unescape(argument[1:-1])
        if argument.startswith("$"):
            found = self._lookup(argument, data, execution)
            if found is _MISSING:
                raise self._runtime(execution, f"The JSONPath '{argument}' could not be found")
            return found
        if argument.startswith("States."):
            return self._intrinsic(argument, data, execution)
        try:
            return json.loads(argument)
        except ValueError:
            raise _Failure("States.IntrinsicFailure", f"invalid argument {argument}") from None

    # Choice and Wait

    def _choose(self, state: Mapping[str, JSON], data: JSON, execution: Execution) -> str:
        for rule in state["Choices"]:
            if self._rule(rule, data, execution):
                return str(rule["Next"])
        if "Default" in state:
            return str(state["Default"])
        raise _Failure(
            "States.NoChoiceMatched",
            f"No Choice Rules matched and no Default was specified in state '{execution.state}'",
        )

    def _rule(self, rule: Mapping[str, JSON], data: JSON, execution: Execution) -> bool:
        if "And" in rule:
            return all(self._rule(r, data, execution) for r in rule["And"])
        if "Or" in rule:
            return any(self._rule(r, data, execution) for r in rule["Or"])
        if "Not" in rule:
            return not self._rule(rule["Not"], data, execution)
        variable = rule["Variable"]
        (operator,) = (k for k in rule if k not in {"Variable", "Next", "Comment"})
        wanted = rule[operator]
        value = self._lookup(variable, data, execution)
        if operator == "IsPresent":
            return (value is not _MISSING) is bool(wanted)
        if value is _MISSING:
            raise self._runtime(
                execution,
                f"Invalid path '{variable}': The choice state's condition path references an "
                "invalid value.",
            )
        if operator in _TYPE_TESTS:
            return _TYPE_TESTS[operator](value) is bool(wanted)
        if operator.endswith("Path"):
            operator = operator.removesuffix("Path")
            wanted = self._lookup(str(wanted), data, execution)
            if wanted is _MISSING:
                raise self._runtime(
                    execution,
                    f"Invalid path '{rule[operator + 'Path']}': The choice state's condition "
                    "path references an invalid value.",
                )
        return _compare(operator, value, wanted)

    def _wait_until(self, state: Mapping[str, JSON], data: JSON, execution: Execution) -> float:
        now = self.clock.now()
        if "Seconds" in state:
            return now + int(state["Seconds"])
        if "SecondsPath" in state:
            seconds = self._reference(state["SecondsPath"], data, execution, "SecondsPath")
            if not _is_integer(seconds) or seconds < 0:
                raise self._runtime(
                    execution,
                    f"The SecondsPath parameter does not reference a valid non-negative integer "
                    f"value: {_dumps(seconds)}",
                )
            return now + int(seconds)
        if "Timestamp" in state:
            return _timestamp(state["Timestamp"])
        stamp = self._reference(state["TimestampPath"], data, execution, "TimestampPath")
        try:
            return _timestamp(stamp)
        except (TypeError, ValueError):
            raise self._runtime(
                execution,
                f"The TimestampPath parameter does not reference a valid ISO-8601 extended "
                f"offset date-time format string: {_dumps(stamp)}",
            ) from None


# Definition checks (what CreateStateMachine validates, and what the stand-in refuses)


def _refuse(message: str) -> CreateRefused:
    return CreateRefused("InvalidDefinition", f"Invalid State Machine Definition: '{message}'")


def _validate_definition(definition: JSON) -> None:
    if not isinstance(definition, dict) or not isinstance(definition.get("States"), dict):
        raise _refuse("MISSING_STATES")
    if "QueryLanguage" in definition and definition["QueryLanguage"] != "JSONPath":
        raise Unmodelled(f"QueryLanguage {definition['QueryLanguage']} is not modelled")
    states: dict[str, JSON] = definition["States"]
    if definition.get("StartAt") not in states:
        raise _refuse(f"MISSING_TRANSITION_TARGET: StartAt {definition.get('StartAt')!r}")
    for name, state in states.items():
        _validate_state(name, state)
        for target in _targets(name, state, _refuse):
            if target not in states:
                raise _refuse(f"MISSING_TRANSITION_TARGET: {name} -> {target}")


def _validate_state(name: str, state: Mapping[str, JSON]) -> None:
    kind = state.get("Type")
    if kind in {"Map", "Parallel"}:
        raise Unmodelled(f"state {name}: {kind} states are not modelled")
    if kind not in _STATE_TYPES:
        raise _refuse(f"INVALID_STATE_TYPE: {name} has Type {kind!r}")
    unmodelled = _UNMODELLED_FIELDS & set(state)
    if unmodelled and not (
        unmodelled == {"QueryLanguage"} and state["QueryLanguage"] == "JSONPath"
    ):
        raise Unmodelled(f"state {name}: {sorted(unmodelled)} not modelled")
    if kind == "Task":
        _validate_task(name, state, _refuse)
    elif kind == "Choice":
        for rule in state.get("Choices", []):
            _validate_rule(name, rule, _refuse)
    elif kind == "Wait":
        _validate_wait(name, state)
    for key in ("InputPath", "OutputPath", "ResultPath"):
        if isinstance(state.get(key), str):
            _parse_path(state[key])
    for key in ("Parameters", "ResultSelector"):
        if key in state:
            _validate_template(name, state[key])


def _validate_wait(name: str, state: Mapping[str, JSON]) -> None:
    given = [k for k in ("Seconds", "SecondsPath", "Timestamp", "TimestampPath") if k in state]
    if len(given) != 1:
        raise _refuse(
            f"SCHEMA_VALIDATION_FAILED: Wait state {name} needs exactly one of "
            "Seconds, SecondsPath, Timestamp, TimestampPath"
        )
    if "Seconds" in state and (not _is_integer(state["Seconds"]) or state["Seconds"] < 0):
        raise _refuse(f"SCHEMA_VALIDATION_FAILED: {name}.Seconds must be a non-negative integer")
    if "Timestamp" in state and not _is_timestamp(state["Timestamp"]):
        raise _refuse(f"SCHEMA_VALIDATION_FAILED: {name}.Timestamp is not an ISO-8601 timestamp")


def _validate_template(name: str, template: JSON) -> None:
    """Parameters and ResultSelector: every "key.$" holds a path or an intrinsic function."""
    if isinstance(template, dict):
        for key, value in template.items():
            if not key.endswith(".$"):
                _validate_template(name, value)
            elif not isinstance(value, str):
                raise _refuse(f"SCHEMA_VALIDATION_FAILED: {name}: {key} is not a string")
            elif not value.startswith("States."):
                _parse_path(value.replace("$$", "$", 1))
    elif isinstance(template, list):
        for item in template:
            _validate_template(name, item)


def _targets(
    name: str, state: Mapping[str, JSON], refuse: Callable[[str], CreateRefused]
) -> list[str]:
    kind = state["Type"]
    targets = [str(c["Next"]) for c in state.get("Catch", [])]
    if kind == "Choice":
        if not state.get("Choices"):
            raise refuse(f"SCHEMA_VALIDATION_FAILED: Choice state {name} without Choices")
        targets += [str(rule["Next"]) for rule in state["Choices"]]
        if "Default" in state:
            targets.append(str(state["Default"]))
    elif kind in {"Task", "Pass", "Wait"}:
        if ("Next" in state) == (state.get("End") is True):
            raise refuse(f"SCHEMA_VALIDATION_FAILED: {name} needs exactly one of Next and End")
        if "Next" in state:
            targets.append(str(state["Next"]))
    elif "Next" in state or "End" in state:
        raise refuse(f"SCHEMA_VALIDATION_FAILED: a {kind} state has no Next or End ({name})")
    return targets


def _validate_task(
    name: str, state: Mapping[str, JSON], refuse: Callable[[str], CreateRefused]
) -> None:
    resource = state.get("Resource")
    if not isinstance(resource, str):
        raise refuse(f"SCHEMA_VALIDATION_FAILED: Task {name} without Resource")
    if _LAMBDA_ARN.match(resource) is None and _INVOKE.match(resource) is None:
        raise Unmodelled(f"Task {name}: Resource {resource} is not modelled")
    for retrier in state.get("Retry", []):
        errors = retrier.get("ErrorEquals")
        if not errors:
            raise refuse(f"SCHEMA_VALIDATION_FAILED: {name} has a retrier without ErrorEquals")
        if "States.ALL" in errors and len(errors) != 1:
            raise refuse(f"SCHEMA_VALIDATION_FAILED: States.ALL must appear alone ({name})")
    for catcher in state.get("Catch", []):
        if not catcher.get("ErrorEquals"):
            raise refuse(f"SCHEMA_VALIDATION_FAILED: {name} has a catcher without ErrorEquals")


def _validate_rule(
    name: str, rule: Mapping[str, JSON], refuse: Callable[[str], CreateRefused]
) -> None:
    for combinator in ("And", "Or"):
        if combinator in rule:
            for inner in rule[combinator]:
                _validate_rule(name, inner, refuse)
            return
    if "Not" in rule:
        _validate_rule(name, rule["Not"], refuse)
        return
    operators = [k for k in rule if k not in {"Variable", "Next", "Comment"}]
    if "Variable" not in rule or len(operators) != 1:
        raise refuse(f"SCHEMA_VALIDATION_FAILED: a Choice Rule of {name}: {operators}")
    (operator,) = operators
    if operator not in _TYPE_TESTS and operator != "IsPresent":
        if operator.removesuffix("Path") not in _COMPARATORS:
            raise refuse(f"SCHEMA_VALIDATION_FAILED: unknown comparison {operator} in {name}")
    _parse_path(rule["Variable"].replace("$$", "$", 1))


# Choice comparisons


def _is_number(value: JSON) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_integer(value: JSON) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_timestamp(value: JSON) -> bool:
    if not isinstance(value, str):
        return False
    try:
        _timestamp(value)
    except ValueError:
        return False
    return True


_TYPE_TESTS: dict[str, Callable[[JSON], bool]] = {
    "IsNull": lambda v: v is None,
    "IsString": lambda v: isinstance(v, str),
    "IsNumeric": _is_number,
    "IsBoolean": lambda v: isinstance(v, bool),
    "IsTimestamp": _is_timestamp,
}
_RELATIONS: dict[str, Callable[[Any, Any], bool]] = {
    "Equals": lambda a, b: bool(a == b),
    "LessThan": lambda a, b: bool(a < b),
    "GreaterThan": lambda a, b: bool(a > b),
    "LessThanEquals": lambda a, b: bool(a <= b),
    "GreaterThanEquals": lambda a, b: bool(a >= b),
}
_COMPARATORS = {
    f"{kind}{relation}" for kind in ("String", "Numeric", "Timestamp") for relation in _RELATIONS
} | {"BooleanEquals", "StringMatches"}


def _compare(operator: str, value: JSON, wanted: JSON) -> bool:
    """A comparison of values of another type than the operator's is false, not an error."""
    if operator == "BooleanEquals":
        return isinstance(value, bool) and isinstance(wanted, bool) and value == wanted
    if operator == "StringMatches":
        return isinstance(value, str) and isinstance(wanted, str) and _matches(wanted, value)
    for kind, test in (("String", _string_pair), ("Numeric", _number_pair)):
        if operator.startswith(kind):
            return test(value, wanted) and _RELATIONS[operator.removeprefix(kind)](value, wanted)
    relation = _RELATIONS[operator.removeprefix("Timestamp")]
    if not (_is_timestamp(value) and _is_timestamp(wanted)):
        return False
    return relation(_timestamp(value), _timestamp(wanted))


def _string_pair(a: JSON, b: JSON) -> bool:
    return isinstance(a, str) and isinstance(b, str)


def _number_pair(a: JSON, b: JSON) -> bool:
    return _is_number(a) and _is_number(b)


def _matches(pattern: str, value: str) -> bool:
    """StringMatches: `*` for any run of characters, `\\*` and `\\\\` escaped."""
    return star_match(pattern, value)


def _error_matches(names: Sequence[str], error: str) -> bool:
    for name in names:
        if name == error:
            return True
        if error in TERMINAL_ERRORS:
            continue
        if name == "States.ALL" or (name == "States.TaskFailed" and error != "States.Timeout"):
            return True
    return False


# JSONPath (the subset) and values


@functools.lru_cache(maxsize=1024)
def _parse_path(path: str) -> tuple[str | int, ...]:
    if not isinstance(path, str) or not path.startswith("$"):
        raise Unmodelled(f"not a JSONPath: {path!r}")
    parts: list[str | int] = []
    position = 1
    while position < len(path):
        found = _SEGMENT.match(path, position)
        if found is None:
            raise Unmodelled(f"JSONPath {path!r}: only $, $.field and $.field[index] are modelled")
        parts.append(found.group(1) if found.group(1) is not None else int(found.group(2)))
        position = found.end()
    return tuple(parts)


def _get(data: JSON, parts: Sequence[str | int]) -> JSON:
    for part in parts:
        if isinstance(part, str):
            if not isinstance(data, dict) or part not in data:
                return _MISSING
            data = data[part]
        else:
            if not isinstance(data, list) or not 0 <= part < len(data):
                return _MISSING
            data = data[part]
    return data


def _split_arguments(text: str) -> list[str]:
    arguments: list[str] = []
    current, depth, quoted, index = "", 0, False, 0
    while index < len(text):
        char = text[index]
        if quoted and char == "\\" and index + 1 < len(text):
            current += text[index : index + 2]
            index += 2
            continue
        if char == "'":
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
        elif not quoted and depth == 0 and char == ",":
            arguments.append(current.strip())
            current = ""
            index += 1
            continue
        current += char
        index += 1
    if current.strip():
        arguments.append(current.strip())
    return arguments


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def _format(template: str, values: Sequence[JSON], text: str) -> str:
    out, index, used = "", 0, 0
    while index < len(template):
        if template[index] == "\\" and index + 1 < len(template):
            out += template[index + 1]
            index += 2
            continue
        if template.startswith("{}", index):
            if used >= len(values):
                raise _Failure("States.IntrinsicFailure", f"{text}: more {{}} than arguments")
            value = values[used]
            if isinstance(value, dict | list):
                raise _Failure("States.IntrinsicFailure", f"{text}: an argument is not a scalar")
            out += value if isinstance(value, str) else _dumps(value)
            used += 1
            index += 2
            continue
        out += template[index]
        index += 1
    if used != len(values):
        raise _Failure("States.IntrinsicFailure", f"{text}: more arguments than {{}}")
    return out


def _math_add(values: list[JSON]) -> int:
    if len(values) != 2 or not all(_is_number(v) for v in values):
        raise ValueError("States.MathAdd takes two numbers")
    # AWS rounds non-integer arguments to the nearest integer (half up assumed).
    return sum(int(math.floor(v + 0.5)) for v in values)


def _only(values: list[JSON], text: str) -> Any:
    if len(values) != 1:
        raise ValueError(f"{text} takes one argument")
    return values[0]


def _arn(body: Mapping[str, JSON], key: str, shape: re.Pattern[str]) -> str:
    value = body.get(key)
    if not isinstance(value, str):
        raise ServiceError(
            "ValidationException",
            f"1 validation error detected: Value null at '{key}' failed to satisfy constraint: "
            "Member must not be null",
        )
    if shape.match(value) is None:
        raise ServiceError("InvalidArn", f"Invalid Arn: '{value}'")
    return value


def _validate_name(name: str) -> None:
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


def _unqualified(function_arn: str) -> str:
    found = _LAMBDA_ARN.match(function_arn)
    if found is None or found.group("qualifier") is None:
        return function_arn
    return function_arn.rsplit(":", 1)[0]


def _invoke_result(payload: JSON, request_id: str) -> dict[str, JSON]:
    """What the optimized lambda:invoke integration answers (Invoke's response)."""
    return {
        "ExecutedVersion": "$LATEST",
        "Payload": payload,
        "SdkHttpMetadata": {
            "HttpHeaders": {
                "Content-Type": "application/json",
                "X-Amz-Executed-Version": "$LATEST",
            },
            "HttpStatusCode": 200,
        },
        "SdkResponseMetadata": {"RequestId": request_id},
        "StatusCode": 200,
    }


def _lambda_error(error: Exception, request_id: str) -> str:
    """The Python runtime's error payload, which Step Functions reports as the Cause."""
    stack = traceback.format_tb(error.__traceback__)
    return json.dumps(
        {
            "errorMessage": str(error),
            "errorType": type(error).__name__,
            "requestId": request_id,
            "stackTrace": [line.rstrip("\n") for line in stack],
        }
    )


def _dumps(value: JSON) -> str:
    return json.dumps(value, separators=(",", ":"))


def _timestamp(value: JSON) -> float:
    if not isinstance(value, str) or "T" not in value:
        raise ValueError(f"not a timestamp: {value!r}")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"a timestamp without an offset: {value!r}")
    return parsed.timestamp()


def _iso(moment: float) -> str:
    stamp = datetime.fromtimestamp(moment, UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def _epoch(moment: float) -> float:
    return round(moment, 3)
