"""CloudFormation's custom-resource lifecycle, played the way CDK's Provider framework plays it,
against a synthesized stack deployed into the IAM-enforcing stand-ins, on a simulated clock.

Mirrors `custom-resources/lib/provider-framework/runtime/framework.js` of aws-cdk-lib 2.275:
on_event, then the waiter calling is_complete at once and then every query interval until it
is complete, raises, or the attempts run out; the final Data is on_event's merged with
is_complete's; a Create that fails answers with a marker physical id whose Delete is ignored;
Delete may not change the physical id; Data with an incomplete answer is an error. The
properties CloudFormation sends are the template's own, resolved; the handler runs with its
function's environment and the credentials of its role, so every request it makes is judged
by the policies the template grants.

The service's runner is the template's own state machine, run by the Step Functions stand-in
(tests/standins/stepfunctions.py): it calls the runner function (``index.run_step``, here in
process) as its definition says, between the waiter's polls, as time passes. Time is the
gateway's simulated clock: the handler's ``now`` and ``sleep`` (its pacer's waits included),
the HealthOmics stand-in's jobs and request counts, and Step Functions' Wait states all run on
it, so hours of export take seconds. ``simulated=False`` keeps real time, for tests of real
concurrency that call the runner's steps from threads.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3

from cdk_omics_export.handler import index, rules

from .standins.deployed import DeployedStack
from .standins.gateway import Gateway

CREATE_FAILED_MARKER = "AWSCDK::CustomResourceProviderFramework::CREATE_FAILED"
RESPONSE_URL = "https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/x?sig=1"
ASSETS_BUCKET = "cdk-hnb659fds-assets-111122223333-us-east-1"
# How many invocations are inside `as_handler`, then the environment they replaced.
_ACTIVE: list[Any] = [0]
_ACTIVE_LOCK = threading.Lock()
# The environment the handler's cached clients were made in.
_CLIENTS_FOR: list[dict[str, str] | None] = [None]


@dataclass
class Response:
    """What CloudFormation receives for one request."""

    status: str  # SUCCESS or FAILED
    physical_id: str
    data: dict[str, str] = field(default_factory=dict)
    reason: str = ""
    polls: int = 0
    size: int = 0  # bytes of the answer, as the framework sends it


class StackRehearsal:
    """One synthesized stack in the stand-ins, and CloudFormation's requests to its exports."""

    def __init__(
        self,
        gateway: Gateway,
        template: dict[str, Any],
        *,
        stack_name: str = "Rehearsal",
        simulated: bool = True,
    ) -> None:
        self.gateway = gateway
        self.template = template
        self.simulated = simulated
        self.clock = gateway.clock
        self.deployed = DeployedStack(
            template, stack_name=stack_name, account=gateway.account, region=gateway.region
        )
        gateway.add_stack(self.deployed)
        if simulated:
            gateway.set_simulated()
        s3 = gateway.client("s3")
        s3.create_bucket(Bucket=ASSETS_BUCKET)
        functions = self.deployed.resources("AWS::Lambda::Function")
        by_handler = {f["Properties"].get("Handler"): k for k, f in functions.items()}
        self.function = functions[by_handler["index.on_event"]]
        role = self.function["Properties"]["Role"]["Fn::GetAtt"][0]
        self.handler_role = role
        key, secret = gateway.add_role(self.deployed, role)
        # The three handler functions share the role and this environment (the runner
        # function's lacks only the state machine's ARN, which its steps take from their
        # event).
        variables = self.deployed.resolve(self.function["Properties"]["Environment"]["Variables"])
        self.environment = {**gateway.environment(key, secret), **variables}
        # Plain PutObject bodies: the stand-in S3 compares what the SDK signs.
        self.environment["AWS_REQUEST_CHECKSUM_CALCULATION"] = "when_required"
        self.query_interval = int(self.environment[rules.POLL_ENV])
        self.runner_function_arn = str(
            self.deployed.resolve({"Fn::GetAtt": [by_handler["index.run_step"], "Arn"]})
        )
        gateway.stepfunctions.register_function(self.runner_function_arn, self._run_step)
        self.responses: list[Response] = []
        self.largest_event = 0

    # Time and the runner

    @property
    def stepfunctions(self) -> Any:
        return self.gateway.stepfunctions

    def wait(self, seconds: float) -> None:
        """Let ``seconds`` of simulated time pass: the runner's executions run meanwhile."""
        until = self.clock.now() + seconds
        self.stepfunctions.run_due(until=until)
        self.clock.advance_to(until)

    def run_runner(self) -> None:
        """Run every state transition of the runner that is due now."""
        self.stepfunctions.run_due(until=self.clock.now())

    def finish(self, limit_seconds: float = 7 * 24 * 3600) -> bool:
        """Run the runner's executions until none is left running (False: the limit came)."""
        idle: bool = self.stepfunctions.run_until_idle(self.clock.now() + limit_seconds)
        return idle

    def runs(self) -> list[Any]:
        """The runner's executions, in the order they started."""
        return sorted(self.stepfunctions.executions, key=lambda e: (e.start, e.name))

    def runner_steps(self) -> dict[str, dict[str, Any]]:
        """The first step's event of each runner execution, by name: what the state machine
        would pass, for tests that call the steps themselves (``step``)."""
        return {
            run.name: {
                "exportId": run.name.rsplit("-", 2)[0],
                "steps": 0,
                "execution": run.name,
                "stateMachine": run.machine.arn,
            }
            for run in self.runs()
        }

    def step(self, event: dict[str, Any]) -> dict[str, Any]:
        """One call of the runner's step, outside the state machine."""
        with self.as_handler():
            answer: dict[str, Any] = self.invoke(index.run_step, event)
            return answer

    def _run_step(self, event: dict[str, Any], context: Any) -> Any:
        with self.as_handler():
            return self.invoke(index.run_step, event, context)

    @property
    def stack_id(self) -> str:
        return str(self.deployed.resolve({"Ref": "AWS::StackId"}))

    def exports(self) -> list[str]:
        """Logical ids of the stack's export resources."""
        return sorted(self.deployed.resources("Custom::OmicsReadSetExport"))

    def properties(self, logical_id: str | None = None, **overrides: Any) -> dict[str, Any]:
        """The export resource's properties as CloudFormation sends them (all strings)."""
        logical_id = logical_id or self.exports()[0]
        resource = self.deployed.resources("Custom::OmicsReadSetExport")[logical_id]
        properties = self.deployed.resolve(resource["Properties"])
        properties.update(overrides)
        return {k: v for k, v in _as_strings(properties).items() if v is not None}

    def upload_list(self, uri: str, ids: list[str]) -> None:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        self.gateway.client("s3").put_object(Bucket=bucket, Key=key, Body=json.dumps(ids))

    @contextmanager
    def as_handler(self) -> Iterator[None]:
        """The process environment of the handler's function, and fresh clients.

        Concurrent invocations (threads) share one environment and one set of clients, as
        one container would; the first to enter sets them up, the last to leave restores.
        """
        with _ACTIVE_LOCK:
            if _ACTIVE[0] == 0:
                _ACTIVE.append({k: os.environ.get(k) for k in self.environment})
                _ACTIVE.append((index.now, index.sleep))
                os.environ.update(self.environment)
                if self.simulated:
                    index.now = self.clock.now
                    index.sleep = self.clock.sleep
                if _CLIENTS_FOR[0] != self.environment:
                    # boto3's default session keeps the credentials it first found. A new
                    # session reloads the service models (a second or two), so the clients
                    # are kept for as long as the environment is the same, as in a container.
                    boto3.DEFAULT_SESSION = None
                    for make in (
                        index.omics_client,
                        index.s3_client,
                        index.dynamodb_client,
                        index.states_client,
                        index.events_client,
                    ):
                        make.cache_clear()
                    _CLIENTS_FOR[0] = dict(self.environment)
            _ACTIVE[0] += 1
        try:
            yield
        finally:
            with _ACTIVE_LOCK:
                _ACTIVE[0] -= 1
                if _ACTIVE[0] == 0:
                    index.now, index.sleep = _ACTIVE.pop()
                    saved = _ACTIVE.pop()
                    for k, v in saved.items():
                        if v is None:
                            os.environ.pop(k, None)
                        else:
                            os.environ[k] = v

    def event(
        self,
        request_type: str,
        properties: dict[str, Any],
        *,
        logical_id: str | None = None,
        old_properties: dict[str, Any] | None = None,
        physical_id: str | None = None,
        request_id: str | None = None,
    ) -> dict[str, Any]:
        event: dict[str, Any] = {
            "RequestType": request_type,
            "RequestId": request_id or str(uuid.uuid4()),
            "StackId": self.stack_id,
            "LogicalResourceId": logical_id or self.exports()[0],
            "ResourceType": "Custom::OmicsReadSetExport",
            "ResponseURL": RESPONSE_URL,
            "ResourceProperties": properties,
        }
        if old_properties is not None:
            event["OldResourceProperties"] = old_properties
        if physical_id is not None:
            event["PhysicalResourceId"] = physical_id
        return event

    def request(
        self, request_type: str, properties: dict[str, Any], *, max_polls: int = 100, **kw: Any
    ) -> Response:
        """One request, through on_event and the waiter's polls, to CloudFormation's answer."""
        event = self.event(request_type, properties, **kw)
        with self.as_handler():
            response = self._respond(event, max_polls)
        self.responses.append(response)
        return response

    def start(self, request_type: str, properties: dict[str, Any], **kw: Any) -> dict[str, Any]:
        """on_event alone (the runner it starts runs when time passes: ``wait``,
        ``run_runner``, ``finish``); returns the event the waiter would then poll with."""
        event = self.event(request_type, properties, **kw)
        with self.as_handler():
            result = self.invoke(index.on_event, event) or {}
        physical_id = result.get("PhysicalResourceId") or event.get("PhysicalResourceId")
        return {**event, **result, "PhysicalResourceId": physical_id}

    def poll(self, resource_event: dict[str, Any]) -> dict[str, Any]:
        """One is_complete call of the waiter."""
        with self.as_handler():
            answer: dict[str, Any] = self.invoke(index.is_complete, resource_event)
            return answer

    def _respond(self, event: dict[str, Any], max_polls: int) -> Response:
        if event["RequestType"] == "Delete" and event.get("PhysicalResourceId") == (
            CREATE_FAILED_MARKER
        ):
            return Response("SUCCESS", CREATE_FAILED_MARKER)
        try:
            result = self.invoke(index.on_event, event) or {}
        except Exception as error:
            return self._failed(event, error)
        physical_id = result.get("PhysicalResourceId") or (
            event["RequestId"] if event["RequestType"] == "Create" else event["PhysicalResourceId"]
        )
        if event["RequestType"] == "Delete" and physical_id != event["PhysicalResourceId"]:
            raise AssertionError("DELETE: cannot change the physical resource ID")
        resource_event = {**event, **result, "PhysicalResourceId": physical_id}
        for attempt in range(1, max_polls + 1):
            # The waiter's first call comes at once, then one each query interval; the
            # runner's executions run meanwhile.
            if attempt == 1:
                self.run_runner()
            else:
                self.wait(self.query_interval)
            try:
                answer = self.invoke(index.is_complete, resource_event)
            except Exception as error:
                failed = self._failed(resource_event, error)
                failed.polls = attempt
                return failed
            if answer.get("IsComplete"):
                data = {**resource_event.get("Data", {}), **answer.get("Data", {})}
                response = Response("SUCCESS", physical_id, data, polls=attempt)
                response.size = _answer_size(event, response)
                assert response.size <= 4096, response.size
                return response
            if answer.get("Data"):
                raise AssertionError('"Data" is not allowed if "IsComplete" is "False"')
        return Response("FAILED", physical_id, reason="Operation timed out", polls=max_polls)

    def invoke(
        self, handler: Callable[..., Any], event: dict[str, Any], context: Any = None
    ) -> Any:
        """Call a handler entry point with the event as JSON round-trips it, as Lambda does."""
        payload = json.dumps(event)
        self.largest_event = max(self.largest_event, len(payload.encode()))
        return json.loads(json.dumps(handler(json.loads(payload), context)))

    @staticmethod
    def _failed(event: dict[str, Any], error: Exception) -> Response:
        physical_id = event.get("PhysicalResourceId") or CREATE_FAILED_MARKER
        return Response("FAILED", physical_id, reason=str(error))


def _answer_size(event: dict[str, Any], response: Response) -> int:
    answer = {
        "Status": response.status,
        "Reason": "SUCCESS",
        "StackId": event["StackId"],
        "RequestId": event["RequestId"],
        "LogicalResourceId": event["LogicalResourceId"],
        "PhysicalResourceId": response.physical_id,
        "NoEcho": False,
        "Data": response.data,
    }
    return len(json.dumps(answer).encode())


def _as_strings(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _as_strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_strings(v) for v in value]
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return None
    return str(value)
