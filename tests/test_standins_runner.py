"""Step Functions as the rehearsals run it (moto's interpreter through tests/moto_runner.py)
and the EventBridge stand-in, held to what the services do.

Each test names a rule a rehearsal of the runner (a Standard state machine looping Task, Choice,
Wait) and of its events relies on; it fails if moto's interpreter, our patches of it or the
stand-in stop enforcing it, since a rehearsal that passes where AWS would fail is a defect.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.events.models import EventPattern

from .iam_evaluator import Decision
from .moto_runner import CreateRefused, HistoryLimitExceeded, Machine, Run, Unmodelled
from .standins.clock import SimulatedClock
from .standins.deployed import DeployedStack
from .standins.eventbridge import PatternDisagreement, matches, matches_as_moto_does
from .standins.eventbridge import Unmodelled as UnmodelledPattern
from .standins.gateway import Gateway

ACCOUNT = "111122223333"
RUNNER = "@RUNNER@"  # where the definition holds the function's ARN (an Fn::GetAtt)
SOURCE = "cdk-omics-export"

LOOP = {
    "StartAt": "Run",
    "States": {
        "Run": {
            "Type": "Task",
            "Resource": RUNNER,
            "Parameters": {"n.$": "$.n", "execution.$": "$$.Execution.Name"},
            "Next": "Done?",
        },
        "Done?": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.done", "BooleanEquals": True, "Next": "Finished"}],
            "Default": "Pause",
        },
        "Pause": {"Type": "Wait", "SecondsPath": "$.wait", "Next": "Run"},
        "Finished": {"Type": "Succeed"},
    },
}


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action: Any, resource: Any, **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def role(service: str, *statements: dict[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "AssumeRolePolicyDocument": policy(
            {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
        )
    }
    if statements:
        properties["Policies"] = [{"PolicyName": "grant", "PolicyDocument": policy(*statements)}]
    return {"Type": "AWS::IAM::Role", "Properties": properties}


def definition_string(definition: dict[str, Any]) -> dict[str, Any]:
    """The definition as CDK renders it: an Fn::Join around the function's Fn::GetAtt."""
    pieces = json.dumps(definition).split(RUNNER)
    joined: list[Any] = [pieces[0]]
    for piece in pieces[1:]:
        joined += [{"Fn::GetAtt": ["Runner", "Arn"]}, piece]
    return {"Fn::Join": ["", joined]}


def machine(role_logical_id: str) -> dict[str, Any]:
    return {
        "Type": "AWS::StepFunctions::StateMachine",
        "Properties": {
            "RoleArn": {"Fn::GetAtt": [role_logical_id, "Arn"]},
            "DefinitionString": definition_string(LOOP),
        },
    }


EXECUTIONS = {
    "Fn::Sub": "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:execution:"
    "${Machine.Name}:*"
}
BUS = {"Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/default"}
RUNNER_ARN = {"Fn::GetAtt": ["Runner", "Arn"]}
TEMPLATE: dict[str, Any] = {
    "Resources": {
        "RunnerRole": role("lambda.amazonaws.com"),
        "Runner": {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "Role": {"Fn::GetAtt": ["RunnerRole", "Arn"]},
                "Runtime": "python3.12",
                "Handler": "index.handler",
                "Code": {"ZipFile": "def handler(event, context): pass"},
                "Timeout": 900,
            },
        },
        # What CDK grants a state machine's role for a LambdaInvoke task.
        "MachineRole": role(
            "states.amazonaws.com",
            allow(
                "lambda:InvokeFunction",
                [RUNNER_ARN, {"Fn::Join": [":", [RUNNER_ARN, "*"]]}],
            ),
        ),
        "BlockedRole": role("states.amazonaws.com", allow("xray:PutTraceSegments", "*")),
        "Machine": machine("MachineRole"),
        "BlockedMachine": machine("BlockedRole"),
        "StarterRole": role(
            "lambda.amazonaws.com",
            allow("states:StartExecution", {"Ref": "Machine"}),
            allow(["states:DescribeExecution", "states:StopExecution"], EXECUTIONS),
            allow(
                "events:PutEvents",
                BUS,
                # events:source is multi-valued (Service Authorization Reference): a set
                # operator, and Null so that a request without the key is not allowed.
                Condition={
                    "ForAllValues:StringEquals": {"events:source": SOURCE},
                    "Null": {"events:source": "false"},
                },
            ),
        ),
        "ReaderRole": role("lambda.amazonaws.com", allow("states:DescribeExecution", EXECUTIONS)),
        "FinishedRule": {
            "Type": "AWS::Events::Rule",
            "Properties": {
                "EventPattern": {"source": [SOURCE], "detail-type": ["Export Finished"]},
                "Targets": [{"Arn": RUNNER_ARN, "Id": "Notify"}],
            },
        },
        "FailuresRule": {
            "Type": "AWS::Events::Rule",
            "Properties": {
                "EventPattern": {
                    "source": [SOURCE],
                    "detail": {"status": [{"prefix": "FAIL"}], "failed": [{"numeric": [">", 0]}]},
                }
            },
        },
        "DisabledRule": {
            "Type": "AWS::Events::Rule",
            "Properties": {"EventPattern": {"source": [SOURCE]}, "State": "DISABLED"},
        },
    }
}


@pytest.fixture(scope="module")
def running() -> Iterator[Gateway]:
    with Gateway(clock=SimulatedClock(1_767_225_600.0)) as gateway:  # 2026-01-01T00:00:00Z
        yield gateway


@pytest.fixture(scope="module")
def deployed() -> DeployedStack:
    return DeployedStack(TEMPLATE, stack_name="Runner", account=ACCOUNT)


@pytest.fixture
def gateway(running: Gateway, deployed: DeployedStack) -> Gateway:
    running.reset()
    running.add_stack(deployed)
    return running


def client(gateway: Gateway, deployed: DeployedStack, role_id: str, service: str) -> Any:
    return gateway.client(service, *gateway.add_role(deployed, role_id))


def error_code(error: ClientError) -> str:
    return str(error.response["Error"]["Code"])


class Runner:
    """The runner's function: counts, takes 5 simulated seconds, asks to wait 10 minutes."""

    def __init__(self, clock: SimulatedClock, rounds: int = 3) -> None:
        self.clock = clock
        self.rounds = rounds
        self.calls: list[tuple[float, dict[str, Any], int]] = []

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.calls.append((self.clock.now(), event, context.get_remaining_time_in_millis()))
        self.clock.sleep(5)
        n = int(event.get("n") or 0) + 1
        return {"n": n, "done": n >= self.rounds, "wait": 600}


NUMBERS = itertools.count(1)


def start(sfn: Any, arn: str, payload: dict[str, Any], name: str | None = None) -> str:
    name = name or f"run-{next(NUMBERS)}"
    return str(
        sfn.start_execution(stateMachineArn=arn, name=name, input=json.dumps(payload))[
            "executionArn"
        ]
    )


# The clock


def test_the_clock_moves_only_forward() -> None:
    clock = SimulatedClock(100.0)
    clock.sleep(5)
    assert clock.now() == 105.0
    assert clock.advance_to(50.0) == 105.0
    assert clock.advance_to(200.0) == 200.0
    with pytest.raises(ValueError):
        clock.sleep(-1)


# Step Functions: the interpreter on the simulated clock


def test_the_runner_loop_runs_on_the_simulated_clock(
    gateway: Gateway, deployed: DeployedStack
) -> None:
    runner = Runner(gateway.clock)
    gateway.stepfunctions.register_function(str(deployed.get_att("Runner", "Arn")), runner)
    sfn = client(gateway, deployed, "StarterRole", "stepfunctions")
    t0 = gateway.clock.now()
    arn = start(sfn, str(deployed.ref("Machine")), {"n": 0}, name="loop")
    assert arn == (
        f"arn:aws:states:us-east-1:{ACCOUNT}:execution:{deployed.get_att('Machine', 'Name')}:loop"
    )
    assert runner.calls == []  # nothing runs until the test drives it
    assert gateway.stepfunctions.next_due() == t0

    # One turn: Task (5 s), Choice, then into the Wait, whose end is 10 minutes away.
    assert gateway.stepfunctions.run_due() == 1
    assert gateway.stepfunctions.next_due() == t0 + 605
    assert sfn.describe_execution(executionArn=arn)["status"] == "RUNNING"

    assert gateway.stepfunctions.run_until_idle(t0 + 3600)
    execution = gateway.stepfunctions.execution(arn)
    assert [t - t0 for t, _, _ in runner.calls] == [0, 605, 1210]
    assert [event for _, event, _ in runner.calls] == [
        {"n": 0, "execution": "loop"},
        {"n": 1, "execution": "loop"},
        {"n": 2, "execution": "loop"},
    ]
    assert {left for _, _, left in runner.calls} == {900_000}  # the template's Timeout
    assert execution.status == "SUCCEEDED"
    assert execution.output == {"n": 3, "done": True, "wait": 600}
    assert gateway.clock.now() == t0 + 1215
    # 1 + 3 Tasks of 5 events + 3 Choices of 2 + 2 Waits of 2 + Succeed's 2 + 1.
    assert execution.history_events == 29
    assert [e.type for e in execution.history[:6]] == [
        "ExecutionStarted",
        "TaskStateEntered",
        "LambdaFunctionScheduled",
        "LambdaFunctionStarted",
        "LambdaFunctionSucceeded",
        "TaskStateExited",
    ]
    assert execution.history[-1].type == "ExecutionSucceeded"
    described = sfn.describe_execution(executionArn=arn)
    assert described["status"] == "SUCCEEDED"
    assert described["stopDate"].timestamp() == t0 + 1215
    assert json.loads(described["output"])["n"] == 3
    invocations = gateway.calls("lambda:InvokeFunction")
    assert [(r.principal, r.decision) for r in invocations] == [("MachineRole", Decision.ALLOW)] * 3


def test_lambda_invoke_wraps_the_payload_and_paths_shape_the_data(
    gateway: Gateway, deployed: DeployedStack
) -> None:
    function_arn = str(deployed.get_att("Runner", "Arn"))
    seen: list[dict[str, Any]] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        seen.append(event)
        return {"count": event["count"], "tag": event["tag"]}

    gateway.stepfunctions.register_function(function_arn, handler)
    definition = {
        "StartAt": "Call",
        "States": {
            "Call": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "InputPath": "$.job",
                "Parameters": {
                    "FunctionName": function_arn,
                    "Payload": {
                        "count.$": "States.MathAdd($.count, 1)",
                        "tag.$": "States.Format('job {} of {}', $.id, $$.Execution.Name)",
                        "state.$": "$$.State.Name",
                    },
                },
                "ResultSelector": {"result.$": "$.Payload", "status.$": "$.StatusCode"},
                "ResultPath": "$.job.outcome",
                "OutputPath": "$.job",
                "End": True,
            }
        },
    }
    machine = gateway.stepfunctions.register_state_machine(
        name="Shapes", definition=definition, role_arn=deployed.role_arn("MachineRole")
    )
    arn = gateway.stepfunctions.start_execution(
        machine.arn, "shapes", json.dumps({"job": {"id": "j-7", "count": 41}, "other": 1})
    )["executionArn"]
    gateway.stepfunctions.run_due()
    execution = gateway.stepfunctions.execution(arn)
    assert seen == [{"count": 42, "tag": "job j-7 of shapes", "state": "Call"}]
    assert execution.status == "SUCCEEDED"
    assert execution.output == {
        "id": "j-7",
        "count": 41,
        "outcome": {"result": {"count": 42, "tag": "job j-7 of shapes"}, "status": 200},
    }
    assert [e.type for e in execution.history[2:5]] == [
        "TaskScheduled",
        "TaskStarted",
        "TaskSucceeded",
    ]


def retrying(machine_role: str, *, catch: list[str], timeout: int | None = None) -> dict[str, Any]:
    task: dict[str, Any] = {
        "Type": "Task",
        "Resource": RUNNER,
        "Parameters": {"retry.$": "$$.State.RetryCount"},
        "Retry": [
            {
                "ErrorEquals": ["Flaky", "States.TaskFailed"],
                "IntervalSeconds": 10,
                "BackoffRate": 3,
                "MaxAttempts": 2,
            }
        ],
        "Catch": [{"ErrorEquals": catch, "ResultPath": "$.error", "Next": "Recovered"}],
        "Next": "Recovered",
    }
    if timeout is not None:
        task["TimeoutSeconds"] = timeout
    return {
        "StartAt": "Flaky",
        "States": {"Flaky": task, "Recovered": {"Type": "Pass", "End": True}},
    }


class Flaky(Exception):
    pass


def test_retries_wait_on_the_clock_then_catch_routes_the_error(
    gateway: Gateway, deployed: DeployedStack
) -> None:
    function_arn = str(deployed.get_att("Runner", "Arn"))
    attempts: list[tuple[float, int]] = []

    def handler(event: dict[str, Any], context: Any) -> None:
        attempts.append((gateway.clock.now(), event["retry"]))
        raise Flaky("the service is busy")

    gateway.stepfunctions.register_function(function_arn, handler)
    definition = json.loads(
        json.dumps(retrying("MachineRole", catch=["States.ALL"])).replace(RUNNER, function_arn)
    )
    machine = gateway.stepfunctions.register_state_machine(
        name="Retries", definition=definition, role_arn=deployed.role_arn("MachineRole")
    )
    t0 = gateway.clock.now()
    arn = gateway.stepfunctions.start_execution(machine.arn, "retries", '{"job": 1}')[
        "executionArn"
    ]
    gateway.stepfunctions.run_due()
    assert gateway.stepfunctions.next_due() == t0 + 10  # IntervalSeconds
    assert gateway.stepfunctions.run_until_idle(t0 + 100)
    # Attempts at 0, +10, +10*3: MaxAttempts 2 retries, BackoffRate 3.
    assert attempts == [(t0, 0), (t0 + 10, 1), (t0 + 40, 2)]
    execution = gateway.stepfunctions.execution(arn)
    assert execution.status == "SUCCEEDED"
    error = execution.output["error"]
    assert error["Error"] == "Flaky"
    assert json.loads(error["Cause"])["errorMessage"] == "the service is busy"
    assert json.loads(error["Cause"])["errorType"] == "Flaky"
    assert execution.output["job"] == 1
    assert len(execution.events("LambdaFunctionFailed")) == 3
    assert len(execution.events("LambdaFunctionScheduled")) == 3


# Step Functions: the API through the gateway


def test_start_execution_is_idempotent_only_for_the_same_name_and_input_while_running(
    gateway: Gateway, deployed: DeployedStack
) -> None:
    gateway.stepfunctions.register_function(
        str(deployed.get_att("Runner", "Arn")), Runner(gateway.clock)
    )
    sfn = client(gateway, deployed, "StarterRole", "stepfunctions")
    machine_arn = str(deployed.ref("Machine"))
    first = sfn.start_execution(stateMachineArn=machine_arn, name="export-1", input='{"n": 0}')
    gateway.clock.sleep(30)
    again = sfn.start_execution(stateMachineArn=machine_arn, name="export-1", input='{"n": 0}')
    assert (again["executionArn"], again["startDate"]) == (
        first["executionArn"],
        first["startDate"],
    )
    assert len(gateway.stepfunctions.executions) == 1
    with pytest.raises(ClientError) as raised:
        sfn.start_execution(stateMachineArn=machine_arn, name="export-1", input='{"n": 1}')
    assert error_code(raised.value) == "ExecutionAlreadyExists"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    gateway.stepfunctions.stop_by_hand("export-1")
    # A closed execution's name is taken, whatever the input.
    with pytest.raises(ClientError) as raised:
        sfn.start_execution(stateMachineArn=machine_arn, name="export-1", input='{"n": 0}')
    assert error_code(raised.value) == "ExecutionAlreadyExists"
    unnamed = sfn.start_execution(stateMachineArn=machine_arn)
    assert len(unnamed["executionArn"].rsplit(":", 1)[1]) == 36  # a UUID
    for bad in ("has space", "a/b", "x" * 81, "semi;colon"):
        with pytest.raises(ClientError) as raised:
            sfn.start_execution(stateMachineArn=machine_arn, name=bad)
        assert error_code(raised.value) in {"InvalidName", "ValidationException"}
    with pytest.raises(ClientError) as raised:
        sfn.start_execution(stateMachineArn=machine_arn, name="bad-input", input="{not json")
    assert error_code(raised.value) == "InvalidExecutionInput"
    admin = gateway.client("stepfunctions")
    with pytest.raises(ClientError) as raised:
        admin.start_execution(stateMachineArn=machine_arn + "Gone")
    assert error_code(raised.value) == "StateMachineDoesNotExist"
    with pytest.raises(ClientError) as raised:
        sfn.describe_execution(executionArn=first["executionArn"] + "-gone")
    assert error_code(raised.value) == "ExecutionDoesNotExist"


def test_describe_and_stop_through_boto3(gateway: Gateway, deployed: DeployedStack) -> None:
    gateway.stepfunctions.register_function(
        str(deployed.get_att("Runner", "Arn")), Runner(gateway.clock)
    )
    sfn = client(gateway, deployed, "StarterRole", "stepfunctions")
    t0 = gateway.clock.now()
    arn = start(sfn, str(deployed.ref("Machine")), {"n": 0})
    gateway.stepfunctions.run_due()
    described = sfn.describe_execution(executionArn=arn)
    assert described["status"] == "RUNNING"
    assert described["startDate"].timestamp() == t0
    assert described["stateMachineArn"] == deployed.ref("Machine")
    assert json.loads(described["input"]) == {"n": 0}
    assert "stopDate" not in described and "output" not in described
    stopped = sfn.stop_execution(executionArn=arn, error="Operator", cause="deploy rolled back")
    assert stopped["stopDate"].timestamp() == t0 + 5
    described = sfn.describe_execution(executionArn=arn)
    assert (described["status"], described["error"], described["cause"]) == (
        "ABORTED",
        "Operator",
        "deploy rolled back",
    )
    execution = gateway.stepfunctions.execution(arn)
    # moto logs no WaitStateAborted before ExecutionAborted.
    assert [e.type for e in execution.history[-2:]] == ["WaitStateEntered", "ExecutionAborted"]
    assert gateway.stepfunctions.next_due() is None
    assert gateway.stepfunctions.run_due(until=t0 + 3600) == 0


def test_a_caller_without_start_execution_is_denied(
    gateway: Gateway, deployed: DeployedStack
) -> None:
    reader = client(gateway, deployed, "ReaderRole", "stepfunctions")
    machine_arn = str(deployed.ref("Machine"))
    with pytest.raises(ClientError) as raised:
        reader.start_execution(stateMachineArn=machine_arn, name="nope")
    assert error_code(raised.value) == "AccessDeniedException"
    assert (
        f"is not authorized to perform: states:StartExecution on resource: {machine_arn}"
        in raised.value.response["Error"]["Message"]
    )
    assert gateway.stepfunctions.executions == []
    (record,) = gateway.denied()
    assert (record.principal, record.action) == ("ReaderRole", "states:StartExecution")
    # Its DescribeExecution is allowed, and reaches the service.
    with pytest.raises(ClientError) as raised:
        reader.describe_execution(
            executionArn=machine_arn.replace("stateMachine", "execution") + ":x"
        )
    assert error_code(raised.value) == "ExecutionDoesNotExist"


def test_a_state_machine_role_without_invoke_fails_the_task(
    gateway: Gateway, deployed: DeployedStack
) -> None:
    runner = Runner(gateway.clock)
    function_arn = str(deployed.get_att("Runner", "Arn"))
    gateway.stepfunctions.register_function(function_arn, runner)
    arn = gateway.stepfunctions.start_execution(
        str(deployed.ref("BlockedMachine")), "blocked", '{"n": 0}'
    )["executionArn"]
    gateway.stepfunctions.run_due()
    execution = gateway.stepfunctions.execution(arn)
    assert runner.calls == []
    assert (execution.status, execution.error) == ("FAILED", "Lambda.AWSLambdaException")
    assert execution.cause is not None
    assert (
        f"is not authorized to perform: lambda:InvokeFunction on resource: {function_arn}"
        in execution.cause
    )
    assert "Error Code: AccessDeniedException" in execution.cause
    # moto logs the refused call as started, then failed.
    assert [e.type for e in execution.history[2:]] == [
        "LambdaFunctionScheduled",
        "LambdaFunctionStarted",
        "LambdaFunctionFailed",
        "ExecutionFailed",
    ]
    (record,) = gateway.denied()
    assert (record.principal, record.action, record.resource) == (
        "BlockedRole",
        "lambda:InvokeFunction",
        function_arn,
    )


def counting(iterations: int) -> dict[str, Any]:
    """Init, then iterations of Count (Pass), Check (Choice), Pause (Wait 0): 6N + 4 events."""
    return {
        "StartAt": "Init",
        "States": {
            "Init": {"Type": "Pass", "Result": 0, "ResultPath": "$.i", "Next": "Count"},
            "Count": {
                "Type": "Pass",
                "Parameters": {"i.$": "States.MathAdd($.i, 1)"},
                "Next": "Check",
            },
            "Check": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.i", "NumericLessThan": iterations, "Next": "Pause"}],
                "Default": "Done",
            },
            "Pause": {"Type": "Wait", "Seconds": 0, "Next": "Count"},
            "Done": {"Type": "Succeed"},
        },
    }


def test_an_execution_past_the_history_quota_fails_the_rehearsal(
    gateway: Gateway, deployed: DeployedStack
) -> None:
    """moto keeps no count of history events; Step Functions fails an execution at 25,000
    unless that event is ExecutionSucceeded. The harness stops a rehearsal that goes past it
    (here with a quota of 64, so that it runs in a moment)."""
    gateway.stepfunctions.history_limit = 64

    def run(iterations: int) -> Run:
        machine: Machine = gateway.stepfunctions.register_state_machine(
            name=f"Count{iterations}",
            definition=counting(iterations),
            role_arn=deployed.role_arn("MachineRole"),
        )
        arn = gateway.stepfunctions.start_execution(machine.arn, "count")["executionArn"]
        gateway.stepfunctions.run_due()
        return gateway.stepfunctions.execution(arn)

    # 6 * 10 + 4 = 64: the last event is ExecutionSucceeded, which the quota allows.
    exact = run(10)
    assert (exact.status, exact.history_events) == ("SUCCEEDED", 64)
    assert exact.output == {"i": 10}
    with pytest.raises(HistoryLimitExceeded, match="at 64"):
        run(11)


def test_choice_rules_and_timestamp_waits(gateway: Gateway, deployed: DeployedStack) -> None:
    definition = {
        "StartAt": "Until",
        "States": {
            "Until": {"Type": "Wait", "TimestampPath": "$.at", "Next": "Route"},
            "Route": {
                "Type": "Choice",
                "Choices": [
                    # A comparison of another type is false, not an error.
                    {"Variable": "$.size", "NumericGreaterThan": 10, "Next": "Big"},
                    {
                        "And": [
                            {"Variable": "$.size", "IsString": True},
                            {"Variable": "$.size", "StringEqualsPath": "$.expected"},
                        ],
                        "Next": "Named",
                    },
                    {"Not": {"Variable": "$.flag", "IsPresent": True}, "Next": "Unflagged"},
                ],
            },
            "Big": {"Type": "Succeed"},
            "Named": {"Type": "Succeed"},
            "Unflagged": {"Type": "Fail", "Error": "NoFlag", "Cause": "flag missing"},
        },
    }
    machine = gateway.stepfunctions.register_state_machine(
        name="Routes", definition=definition, role_arn=deployed.role_arn("MachineRole")
    )
    t0 = gateway.clock.now()
    at = datetime.fromtimestamp(t0 + 3600, UTC).isoformat().replace("+00:00", "Z")

    def run(name: str, payload: dict[str, Any]) -> Run:
        arn = gateway.stepfunctions.start_execution(
            machine.arn, name, json.dumps({"at": at, **payload})
        )["executionArn"]
        return gateway.stepfunctions.execution(arn)

    named = run("named", {"size": "xl", "expected": "xl", "flag": 1})
    unflagged = run("unflagged", {"size": 3})
    unmatched = run("unmatched", {"size": 3, "flag": True})
    missing = run("missing", {"flag": True})
    gateway.stepfunctions.run_due()
    assert gateway.stepfunctions.next_due() == t0 + 3600  # the Wait holds until the timestamp
    assert gateway.stepfunctions.run_until_idle(t0 + 3600)
    assert [e.type for e in named.history[-3:]] == [
        "SucceedStateEntered",
        "SucceedStateExited",
        "ExecutionSucceeded",
    ]
    assert named.stop == t0 + 3600
    assert (unflagged.status, unflagged.error, unflagged.cause) == (
        "FAILED",
        "NoFlag",
        "flag missing",
    )
    # Step Functions names the first States.NoChoiceMatched and says "Invalid path '$.size'"
    # of the second; moto fails both with States.Runtime ("No branching option reached").
    # The runner's Choice has a Default.
    assert unmatched.status == "FAILED"
    assert (missing.status, missing.error) == ("FAILED", "States.Runtime")


def test_what_create_state_machine_refuses_or_the_harness_does_not_run(
    gateway: Gateway, deployed: DeployedStack
) -> None:
    register = gateway.stepfunctions.register_state_machine
    with pytest.raises(CreateRefused, match="states.amazonaws.com"):
        register(
            name="Untrusted",
            definition=json.dumps(LOOP).replace(RUNNER, str(deployed.get_att("Runner", "Arn"))),
            role_arn=deployed.role_arn("RunnerRole"),
        )
    with pytest.raises(CreateRefused, match="MISSING_TRANSITION_TARGET"):
        register(
            name="Broken",
            definition={"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}}},
            role_arn=deployed.role_arn("MachineRole"),
        )
    with pytest.raises(Unmodelled, match="Map"):
        register(
            name="Mapped",
            definition={"StartAt": "A", "States": {"A": {"Type": "Map", "End": True}}},
            role_arn=deployed.role_arn("MachineRole"),
        )


def test_the_environment_points_default_clients_at_the_gateway(
    gateway: Gateway, deployed: DeployedStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in gateway.environment(*gateway.add_role(deployed, "StarterRole")).items():
        monkeypatch.setenv(key, value)
    # As in a fresh Lambda container: a default session made by an earlier test in this
    # process would still hold the credentials it resolved then.
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    arn = boto3.client("stepfunctions").start_execution(stateMachineArn=deployed.ref("Machine"))[
        "executionArn"
    ]
    assert gateway.stepfunctions.execution(arn).status == "RUNNING"
    answer = boto3.client("events").put_events(
        Entries=[{"Source": SOURCE, "DetailType": "Export Finished", "Detail": "{}"}]
    )
    assert answer["FailedEntryCount"] == 0


# EventBridge


def test_put_events_is_allowed_only_for_the_source_the_condition_names(
    gateway: Gateway, deployed: DeployedStack
) -> None:
    events = client(gateway, deployed, "StarterRole", "events")
    ok = {"Source": SOURCE, "DetailType": "Export Finished", "Detail": '{"exportId": "e-1"}'}
    answer = events.put_events(Entries=[ok])
    assert answer["FailedEntryCount"] == 0 and len(answer["Entries"][0]["EventId"]) == 36
    spoofed = {**ok, "Source": "someone.else"}
    with pytest.raises(ClientError) as raised:
        events.put_events(Entries=[ok, spoofed])
    assert error_code(raised.value) == "AccessDeniedException"
    assert "events:PutEvents on resource: arn:aws:events:us-east-1" in str(raised.value)
    assert len(gateway.events.published) == 1  # a denied call publishes none of its entries
    (record,) = gateway.denied()
    assert (record.principal, record.action) == ("StarterRole", "events:PutEvents")


def test_put_events_answers_invalid_entries_in_the_entry(gateway: Gateway) -> None:
    events = gateway.client("events")
    answer = events.put_events(
        Entries=[
            {"Source": SOURCE, "DetailType": "Export Finished"},
            {"Source": SOURCE, "DetailType": "Export Finished", "Detail": "{not json"},
            {"Source": "aws.s3", "DetailType": "Export Finished", "Detail": "{}"},
            {"Source": SOURCE, "DetailType": "Export Finished", "Detail": "{}"},
        ]
    )
    assert answer["FailedEntryCount"] == 3
    codes = [e.get("ErrorCode") for e in answer["Entries"]]
    assert codes == ["InvalidArgument", "MalformedDetail", "NotAuthorizedForSourceException", None]
    assert "EventId" in answer["Entries"][3]
    with pytest.raises(ClientError) as raised:
        events.put_events(Entries=[{"Source": SOURCE, "DetailType": "x", "Detail": "{}"}] * 11)
    assert error_code(raised.value) == "ValidationException"
    with pytest.raises(ClientError) as raised:
        events.put_events(
            Entries=[
                {"Source": SOURCE, "DetailType": "x", "Detail": json.dumps({"a": "x" * 262_144})}
            ]
        )
    assert error_code(raised.value) == "ValidationException"


def test_rules_receive_the_events_their_patterns_match(
    gateway: Gateway, deployed: DeployedStack
) -> None:
    events = gateway.client("events")
    gateway.clock.sleep(60)
    now = gateway.clock.now()
    detail = {"exportId": "e-1", "status": "FAILED", "failed": 2}
    events.put_events(
        Entries=[
            {
                "Source": SOURCE,
                "DetailType": "Export Finished",
                "Detail": json.dumps(detail),
                "Resources": ["arn:aws:omics:us-east-1:111122223333:sequenceStore/1"],
            },
            {"Source": SOURCE, "DetailType": "Export Started", "Detail": '{"status": "RUNNING"}'},
            {
                "Source": SOURCE,
                "DetailType": "Export Finished",
                "Detail": '{"status": "FAILED", "failed": 0}',
            },
        ]
    )
    (finished, _) = gateway.events.deliveries("FinishedRule")
    assert finished["detail"] == detail
    assert finished["source"] == SOURCE and finished["detail-type"] == "Export Finished"
    assert (finished["account"], finished["region"], finished["version"]) == (
        ACCOUNT,
        "us-east-1",
        "0",
    )
    assert finished["time"] == datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert finished["resources"] == ["arn:aws:omics:us-east-1:111122223333:sequenceStore/1"]
    assert [e["id"] for e in gateway.events.deliveries("FailuresRule")] == [finished["id"]]
    assert gateway.events.deliveries("DisabledRule") == []
    assert len(gateway.events.published) == 3


EVENT: dict[str, Any] = {
    "source": SOURCE,
    "detail-type": "Export Finished",
    "resources": ["arn:aws:s3:::exports", "arn:aws:omics:us-east-1:1:sequenceStore/1"],
    "detail": {
        "status": "COMPLETED_WITH_FAILURES",
        "failed": 3,
        "ratio": 0.25,
        "retried": False,
        "note": None,
        "sourceIp": "10.0.3.7",
        "readSets": [{"id": "r-1", "status": "FAILED"}, {"id": "r-2", "status": "FINISHED"}],
        "tags": ["nightly", "grch38"],
    },
}
PATTERNS: list[tuple[dict[str, Any], bool]] = [
    ({"source": [SOURCE]}, True),
    ({"source": ["other", SOURCE]}, True),
    ({"source": ["Cdk-Omics-Export"]}, False),  # exact match is case-sensitive
    ({"source": [{"equals-ignore-case": "CDK-OMICS-EXPORT"}]}, True),
    ({"detail": {"status": [{"prefix": "COMPLETED"}]}}, True),
    ({"detail": {"status": [{"prefix": {"equals-ignore-case": "completed"}}]}}, True),
    ({"detail": {"status": [{"suffix": "FAILURES"}]}}, True),
    ({"detail": {"status": [{"wildcard": "COMPLETED*FAILURES"}]}}, True),
    ({"detail": {"status": [{"wildcard": "*FINISHED"}]}}, False),
    ({"detail": {"status": [{"anything-but": "FAILED"}]}}, True),
    ({"detail": {"status": [{"anything-but": ["COMPLETED_WITH_FAILURES", "FAILED"]}]}}, False),
    ({"detail": {"status": [{"anything-but": {"prefix": "COMPLETED"}}]}}, False),
    ({"detail": {"missing": [{"anything-but": "x"}]}}, False),  # needs the field
    ({"detail": {"failed": [3]}}, True),
    ({"detail": {"failed": [3.0]}}, True),  # numbers compare as numbers
    ({"detail": {"failed": ["3"]}}, False),  # a string is not a number
    ({"detail": {"failed": [{"numeric": [">", 0, "<=", 3]}]}}, True),
    ({"detail": {"failed": [{"numeric": ["<", 3]}]}}, False),
    ({"detail": {"ratio": [{"numeric": ["=", 0.25]}]}}, True),
    ({"detail": {"status": [{"numeric": [">", 0]}]}}, False),
    ({"detail": {"retried": [False]}}, True),
    ({"detail": {"retried": [0]}}, False),  # false is not 0
    ({"detail": {"note": [None]}}, True),
    ({"detail": {"failed": [{"exists": True}]}}, True),
    ({"detail": {"missing": [{"exists": False}]}}, True),
    ({"detail": {"failed": [{"exists": False}]}}, False),
    ({"detail": {"sourceIp": [{"cidr": "10.0.0.0/16"}]}}, True),
    ({"detail": {"tags": ["grch38"]}}, True),  # an event array matches if any element does
    ({"resources": [{"prefix": "arn:aws:omics:"}]}, True),
    ({"detail": {"readSets": {"status": ["FAILED"]}}}, True),
    # Within one element of an array, all the fields must match together.
    ({"detail": {"readSets": {"id": ["r-2"], "status": ["FAILED"]}}}, False),
    ({"detail": {"status": ["FAILED"]}, "source": [SOURCE]}, False),  # fields AND
    ({"$or": [{"detail": {"status": ["FAILED"]}}, {"detail-type": ["Export Finished"]}]}, True),
    ({"$or": [{"detail": {"status": ["FAILED"]}}, {"source": ["other"]}]}, False),
    ({"detail": {"status": {"nested": ["x"]}}}, False),  # a string is not an object
]


@pytest.mark.parametrize(("pattern", "expected"), PATTERNS)
def test_event_pattern_matching(pattern: dict[str, Any], expected: bool) -> None:
    assert matches(pattern, EVENT) is expected


# Where moto's matcher (which every rehearsal's delivery is also asked) reads EventBridge's
# documentation otherwise: the rehearsals' rules use neither form.
MOTO_DIFFERS = [
    ({"detail": {"retried": [0]}}, False),  # moto: Python's False == 0
    ({"detail": {"readSets": {"status": ["FAILED"]}}}, True),  # moto: no array of objects
]


@pytest.mark.parametrize(("pattern", "expected"), PATTERNS)
def test_moto_agrees_with_the_pattern_table_but_where_it_is_known_to_differ(
    pattern: dict[str, Any], expected: bool
) -> None:
    moto = EventPattern(None, pattern).matches_event(EVENT)
    assert (moto is expected) is ((pattern, expected) not in MOTO_DIFFERS)


def test_a_delivery_moto_would_decide_otherwise_fails_the_rehearsal() -> None:
    with pytest.raises(PatternDisagreement, match="moto's matcher"):
        matches_as_moto_does({"detail": {"retried": [0]}}, EVENT, rule="Odd")


def test_an_unknown_pattern_operator_is_refused_not_guessed(gateway: Gateway) -> None:
    with pytest.raises(UnmodelledPattern, match="unheard-of"):
        gateway.events.add_rule("Odd", pattern={"source": [{"unheard-of": 1}]})
