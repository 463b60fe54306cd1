"""CloudFormation's side of a Lambda-backed custom resource, against a synthesized stack
deployed into the IAM-enforcing stand-ins, on a simulated clock.

Played as CloudFormation plays it: each request is an asynchronous invocation of the
resource's ServiceToken function (``index.on_event``), delivered at least once (``deliveries``
plays a redelivery; an invocation that raises is retried twice, as Lambda does); the answer is
whatever reaches the request's ResponseURL, a local HTTP endpoint standing in for the
pre-signed S3 URL, which records every PUT (a second answer to one request is a defect the
rehearsal reports); no answer by the resource's ``ServiceTimeout`` fails the request with
CloudFormation's own message. The properties CloudFormation sends are the template's own,
resolved; the handler runs with its function's environment and the credentials of its role, so
every request it makes is judged by the policies the template grants.

The service's runner is the template's own state machine, run by moto's Step Functions
interpreter (tests/moto_runner.py): it calls the runner function (``index.run_step``, here in
process) as its definition says, as time passes; an execution that ends otherwise than by
succeeding is told to the watchdog rule's target when the rule's pattern matches, as
EventBridge would. Time is the gateway's simulated clock: the handler's ``now`` and ``sleep``
(its pacer's waits included), the HealthOmics stand-in's jobs and request counts, and Step
Functions' Wait states all run on it, so hours of export take seconds.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3

from cdk_omics_export.handler import clients, index, rules

from .standins import eventbridge
from .standins.deployed import DeployedStack
from .standins.gateway import Gateway

CREATE_FAILED_PREFIX = "CREATE_FAILED:"
ASSETS_BUCKET = "cdk-hnb659fds-assets-111122223333-us-east-1"
# CloudFormation's reason when no answer came within the resource's ServiceTimeout.
NO_ANSWER = "CloudFormation did not receive a response from your Custom Resource"
WATCHED_STATUSES = ("FAILED", "TIMED_OUT", "ABORTED")
# How many invocations are inside `as_handler`, then the environment they replaced.
_ACTIVE: list[Any] = [0]
_ACTIVE_LOCK = threading.Lock()
# The environment the handler's cached clients were made in.
_CLIENTS_FOR: list[dict[str, str] | None] = [None]


@dataclass
class Response:
    """What CloudFormation received for one request (its first answer)."""

    status: str  # SUCCESS or FAILED
    physical_id: str
    data: dict[str, str] = field(default_factory=dict)
    reason: str = ""
    waited: float = 0.0  # simulated seconds from the request to its answer
    size: int = 0  # bytes of the answer's body


class ResponseEndpoint:
    """The pre-signed ResponseURLs of the rehearsal: every PUT they receive, by request id.

    One per process, on a local port; a URL carries a signature that the PUT must present,
    as a pre-signed S3 URL does."""

    _instance: ResponseEndpoint | None = None

    def __init__(self) -> None:
        self.answers: dict[str, list[tuple[dict[str, Any], int]]] = {}
        self._secrets: dict[str, str] = {}
        self._lock = threading.Lock()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:  # noqa: N802
                parts = urlsplit(self.path)
                request_id = parts.path.rsplit("/", 1)[-1]
                signature = parse_qs(parts.query).get("X-Amz-Signature", [""])[0]
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with endpoint._lock:
                    valid = endpoint._secrets.get(request_id) == signature
                    if valid:
                        endpoint.answers.setdefault(request_id, []).append(
                            (json.loads(body), len(body))
                        )
                self.send_response(200 if valid else 403)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @classmethod
    def shared(cls) -> ResponseEndpoint:
        if cls._instance is None:
            cls._instance = cls()
        return cls._instance

    def url(self, request_id: str) -> str:
        secret = uuid.uuid4().hex
        with self._lock:
            self._secrets[request_id] = secret
        port = self._server.server_address[1]
        return (
            f"http://127.0.0.1:{port}/cloudformation-custom-resource-response/{request_id}"
            f"?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature={secret}"
        )

    def secret(self, request_id: str) -> str:
        return self._secrets[request_id]

    def received(self, request_id: str) -> list[tuple[dict[str, Any], int]]:
        with self._lock:
            return list(self.answers.get(request_id, []))


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
        self.endpoint = ResponseEndpoint.shared()
        self._told: set[str] = set()  # executions whose end the watchdog was told of
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
        while True:
            self._tell_the_watchdog()
            due = self.stepfunctions.next_due()
            if due is None or due > until:
                break
            self.stepfunctions.run_due(until=due)
            self._tell_the_watchdog()
        self.clock.advance_to(until)

    def run_runner(self) -> None:
        """Run every state transition of the runner that is due now."""
        self.wait(0)

    def finish(self, limit_seconds: float = 7 * 24 * 3600) -> bool:
        """Run the runner's executions until none is left running (False: the limit came)."""
        limit = self.clock.now() + limit_seconds
        while True:
            self._tell_the_watchdog()
            due = self.stepfunctions.next_due()
            if due is None:
                return True
            if due > limit:
                return False
            self.stepfunctions.run_due(until=due)
            self._tell_the_watchdog()

    def _tell_the_watchdog(self) -> None:
        """What EventBridge does with Step Functions' status-change event of an execution
        that ended: the watchdog rule's target is invoked when its pattern matches."""
        rules_ = self.deployed.resources("AWS::Events::Rule")
        watchdogs = [
            self.deployed.resolve(rule["Properties"])
            for logical, rule in rules_.items()
            if "Watchdog" in logical
        ]
        for run in self.runs():
            if run.status not in WATCHED_STATUSES or run.arn in self._told:
                continue
            self._told.add(run.arn)
            event = status_change(run)
            for rule in watchdogs:
                if eventbridge.matches_as_moto_does(
                    rule["EventPattern"], event, rule="RunnerWatchdog"
                ):
                    self.step(event)

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
                _ACTIVE.append((clients.now, clients.sleep))
                os.environ.update(self.environment)
                if self.simulated:
                    clients.now = self.clock.now  # type: ignore[method-assign]
                    clients.sleep = self.clock.sleep  # type: ignore[method-assign]
                if _CLIENTS_FOR[0] != self.environment:
                    # boto3's default session keeps the credentials it first found. A new
                    # session reloads the service models (a second or two), so the clients
                    # are kept for as long as the environment is the same, as in a container.
                    boto3.DEFAULT_SESSION = None
                    for make in clients.ALL:
                        make.cache_clear()
                    _CLIENTS_FOR[0] = dict(self.environment)
            _ACTIVE[0] += 1
        try:
            yield
        finally:
            with _ACTIVE_LOCK:
                _ACTIVE[0] -= 1
                if _ACTIVE[0] == 0:
                    clients.now, clients.sleep = _ACTIVE.pop()
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
        request_id = request_id or str(uuid.uuid4())
        event: dict[str, Any] = {
            "RequestType": request_type,
            "RequestId": request_id,
            "StackId": self.stack_id,
            "LogicalResourceId": logical_id or self.exports()[0],
            "ResourceType": "Custom::OmicsReadSetExport",
            "ResponseURL": self.endpoint.url(request_id),
            "ResourceProperties": properties,
        }
        if old_properties is not None:
            event["OldResourceProperties"] = old_properties
        if physical_id is not None:
            event["PhysicalResourceId"] = physical_id
        return event

    def request(
        self,
        request_type: str,
        properties: dict[str, Any],
        *,
        deliveries: int = 1,
        **kw: Any,
    ) -> Response:
        """One request, from its delivery to the answer CloudFormation receives (or its
        ServiceTimeout), the runner running meanwhile."""
        event = self.start(request_type, properties, deliveries=deliveries, **kw)
        return self.await_answer(event)

    def start(
        self, request_type: str, properties: dict[str, Any], *, deliveries: int = 1, **kw: Any
    ) -> dict[str, Any]:
        """Deliver the request (``deliveries`` times: a redelivery) and return its event; the
        runner it starts runs when time passes (``wait``, ``run_runner``, ``finish``)."""
        event = self.event(request_type, properties, **kw)
        event["sentAt"] = self.clock.now()
        for _ in range(deliveries):
            self.deliver(event)
        return event

    def deliver(self, event: dict[str, Any]) -> None:
        """One asynchronous invocation of the ServiceToken function, retried twice if it
        raises, as Lambda retries a failed asynchronous invocation."""
        payload = {k: v for k, v in event.items() if k != "sentAt"}
        for attempt in range(3):
            try:
                with self.as_handler():
                    self.invoke(index.on_event, payload)
                return
            except Exception:
                if attempt == 2:
                    raise

    def answers(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        """Every answer the request's ResponseURL received, in order."""
        return [body for body, _ in self.endpoint.received(event["RequestId"])]

    def answer(self, event: dict[str, Any]) -> Response | None:
        """CloudFormation's view of the request now: its first answer, if any came."""
        received = self.endpoint.received(event["RequestId"])
        if len(received) > 1:
            raise AssertionError(f"request {event['RequestId']} was answered {len(received)} times")
        if not received:
            return None
        body, size = received[0]
        assert size <= 4096, size
        assert body["RequestId"] == event["RequestId"]
        assert body["StackId"] == event["StackId"]
        assert body["LogicalResourceId"] == event["LogicalResourceId"]
        if event["RequestType"] == "Delete":
            assert body["PhysicalResourceId"] == event["PhysicalResourceId"], (
                "DELETE: cannot change the physical resource ID"
            )
        return Response(
            body["Status"],
            body["PhysicalResourceId"],
            dict(body.get("Data") or {}),
            body.get("Reason", ""),
            size=size,
        )

    def service_timeout(self, logical_id: str) -> float:
        resource = self.deployed.resources("Custom::OmicsReadSetExport")[logical_id]
        return float(resource["Properties"].get("ServiceTimeout", 3600))

    def await_answer(self, event: dict[str, Any]) -> Response:
        """Let time pass until the request is answered, or its ServiceTimeout expires."""
        deadline = event["sentAt"] + self.service_timeout(event["LogicalResourceId"])
        while True:
            self._tell_the_watchdog()  # of an execution stopped since (by hand, say)
            response = self.answer(event)
            if response is not None:
                response.waited = self.clock.now() - event["sentAt"]
                return response
            due = self.stepfunctions.next_due()
            if due is None or due > deadline:
                self.clock.advance_to(deadline)
                physical_id = event.get("PhysicalResourceId") or event["RequestId"]
                return Response(
                    "FAILED",
                    physical_id,
                    reason=f"{NO_ANSWER}. Please check your logs for requestId "
                    f"[{event['RequestId']}].",
                    waited=deadline - event["sentAt"],
                )
            self.stepfunctions.run_due(until=due)
            self._tell_the_watchdog()

    def invoke(
        self, handler: Callable[..., Any], event: dict[str, Any], context: Any = None
    ) -> Any:
        """Call a handler entry point with the event as JSON round-trips it, as Lambda does."""
        payload = json.dumps(event)
        self.largest_event = max(self.largest_event, len(payload.encode()))
        return json.loads(json.dumps(handler(json.loads(payload), context)))


def status_change(run: Any) -> dict[str, Any]:
    """Step Functions' own event for an execution that ended, as EventBridge delivers it."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": run.arn.split(":")[4],
        "region": run.arn.split(":")[3],
        "resources": [run.arn],
        "detail": {
            "executionArn": run.arn,
            "stateMachineArn": run.machine.arn,
            "name": run.name,
            "status": run.status,
            "startDate": int(run.start * 1000),
            "stopDate": int((run.stop or run.start) * 1000),
            "input": run.input_text,
        },
    }


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
