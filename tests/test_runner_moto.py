"""The runner's synthesized state machine run by moto's Step Functions interpreter
(tests/moto_runner.py), calling the real handler, on the simulated clock.

The stack is deployed into the IAM-enforcing gateway as in the rehearsals (moto's S3 and
DynamoDB, the HealthOmics stand-in). These scenarios hold the parts of the definition that
the interpreter decides: its Retry (which retrier, after how long), Wait (``SecondsPath``),
Choice, StartExecution's idempotency and the context object.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk.assertions import Template
from botocore.exceptions import ClientError

from cdk_omics_export import ReadSetExport
from cdk_omics_export.handler import clients, rules, runner
from cdk_omics_export.handler import export as exports
from cdk_omics_export.handler import state as st
from cdk_omics_export.handler.step import Step

from .cfn_rehearsal import StackRehearsal
from .moto_runner import MotoRunner
from .omics_endpoint import OmicsEndpoint
from .standins.gateway import Gateway

STORE = "1234567890"
READ_SETS = ["1111111111", "2222222222", "3333333333"]


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    app = App()
    stack = Stack(app, "Rehearsal")
    ReadSetExport(stack, "Export", sequence_store_id=STORE, read_set_ids=READ_SETS)
    synthesized: dict[str, Any] = Template.from_stack(stack).to_json()
    return synthesized


@pytest.fixture
def omics_read_sets() -> dict[str, list[str]]:
    """The store's read sets (tests/conftest.py's ``omics``): the listed ones."""
    return {STORE: READ_SETS}


@pytest.fixture
def cfn(gateway: Gateway, omics: OmicsEndpoint, template: dict[str, Any]) -> StackRehearsal:
    rehearsal = StackRehearsal(gateway, template)
    rehearsal.environment["MAX_REQUESTS_PER_SECOND"] = "100"
    return rehearsal


def machines(cfn: StackRehearsal) -> MotoRunner:
    assert isinstance(cfn.stepfunctions, MotoRunner)
    return cfn.stepfunctions


def exported_once(omics: OmicsEndpoint) -> bool:
    exported = omics.exported()
    return sorted(exported) == sorted(READ_SETS) and len(set(exported)) == len(exported)


def gaps(times: list[float]) -> list[float]:
    return [round(b - a, 3) for a, b in zip(times, times[1:], strict=False)]


def test_an_export_reaches_completed_with_the_runner_polling_on_its_wait(
    cfn: StackRehearsal, omics: OmicsEndpoint
) -> None:
    created = cfn.request("Create", cfn.properties())
    assert created.status == "SUCCESS", created.reason
    assert created.data["Status"] == "COMPLETED"
    assert created.data["ExportedReadSetCount"] == "3"
    assert exported_once(omics)
    (run,) = cfn.runs()
    assert run.status == "SUCCEEDED"
    # Step, CarryOn, Wait, Step, ... Ended: each poll is a Wait of the step's waitSeconds.
    entered = [e.details.get("name") for e in run.events() if e.type.endswith("StateEntered")]
    assert entered[0] == "Step" and entered[-1] == "Ended"
    waits = run.events("WaitStateEntered")
    assert len(waits) >= 2
    scheduled = run.events("LambdaFunctionScheduled")
    assert json.loads(scheduled[0].details["input"])["steps"] == 0
    steps = [e.timestamp for e in scheduled]
    assert len(steps) == len(waits) + 1
    assert all(gap >= cfn.query_interval for gap in gaps(steps))
    assert created.waited >= len(waits) * cfn.query_interval


def test_a_failed_step_is_retried_by_the_definition_and_starts_no_second_job(
    cfn: StackRehearsal, omics: OmicsEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The step dies after HealthOmics started a job, before the job was recorded: the Task's
    States.ALL retrier calls it again after IntervalSeconds (the poll interval), and the
    retried start (same client token) finds that job."""
    failures: list[str] = []
    original = Step.save_batch

    def fail_once(self: Step, batch: st.BatchRecord) -> None:
        if "jobId" in batch and not failures:
            failures.append(batch["jobId"])
            raise RuntimeError("the step's container died")
        original(self, batch)

    monkeypatch.setattr(Step, "save_batch", fail_once)
    created = cfn.request("Create", cfn.properties())
    assert created.status == "SUCCESS", created.reason
    assert list(omics.jobs) == failures  # one job: the retried start returned it
    assert exported_once(omics)
    (run,) = cfn.runs()
    assert run.status == "SUCCEEDED"
    (failed,) = run.events("LambdaFunctionFailed")
    assert failed.details["error"] == "RuntimeError"
    (retried,) = [e for e in run.events("LambdaFunctionScheduled") if e.id > failed.id][:1]
    assert retried.timestamp - failed.timestamp == cfn.query_interval


def test_a_throttled_invocation_is_retried_as_lambda_too_many_requests(
    cfn: StackRehearsal, omics: OmicsEndpoint
) -> None:
    """Lambda refuses the first two invocations (429): Step Functions names the error
    Lambda.TooManyRequestsException, which the Lambda retrier matches: 2 s, then 4 s."""
    machines(cfn).throttle(cfn.runner_function_arn, 2)
    created = cfn.request("Create", cfn.properties())
    assert created.status == "SUCCESS", created.reason
    assert exported_once(omics)
    (run,) = cfn.runs()
    assert run.status == "SUCCEEDED"
    failed = run.events("LambdaFunctionFailed")
    assert [e.details["error"] for e in failed] == ["Lambda.TooManyRequestsException"] * 2
    scheduled = [e.timestamp for e in run.events("LambdaFunctionScheduled")]
    assert gaps(scheduled[:3]) == [2, 4]  # IntervalSeconds 2, BackoffRate 2
    assert machines(cfn).function(cfn.runner_function_arn).invocations == len(scheduled) - 2


def test_an_execution_started_twice_with_one_name_and_input_is_one_execution(
    cfn: StackRehearsal, omics: OmicsEndpoint
) -> None:
    cfn.request("Create", cfn.properties(), deliveries=3)  # at least once
    (run,) = cfn.runs()
    assert run.status == "SUCCEEDED"
    assert len(omics.jobs) == 1
    # While one runs, StartExecution with its name and input returns it; with another input,
    # or once it has closed, the name is refused.
    name = "idempotent-start"
    machine = run.machine.arn
    with cfn.as_handler():
        first = runner.start_execution(name, "export-a", machine)
        second = runner.start_execution(name, "export-a", machine)
        client = clients.states()
        with pytest.raises(ClientError) as other_input:
            client.start_execution(stateMachineArn=machine, name=name, input='{"other": 1}')
    assert (first, second) == (True, True)
    assert other_input.value.response["Error"]["Code"] == "ExecutionAlreadyExists"
    assert [r.name for r in cfn.runs()].count(name) == 1
    assert cfn.finish()
    with cfn.as_handler():
        assert runner.start_execution(name, "export-a", machine) is False


def test_the_context_object_reaches_the_handler(cfn: StackRehearsal, omics: OmicsEndpoint) -> None:
    seen: list[dict[str, Any]] = []
    step = machines(cfn).function(cfn.runner_function_arn).handler
    assert step is not None

    def recording(event: dict[str, Any], context: Any) -> Any:
        seen.append(json.loads(json.dumps(event)))
        return step(event, context)

    machines(cfn).register_function(cfn.runner_function_arn, recording)
    created = cfn.request("Create", cfn.properties())
    assert created.status == "SUCCESS", created.reason
    (run,) = cfn.runs()
    assert seen, "the handler was never called"
    assert {e["execution"] for e in seen} == {run.name}  # $$.Execution.Name
    assert {e["stateMachine"] for e in seen} == {run.machine.arn}  # $$.StateMachine.Id
    assert run.name == exports.runner_name(created.physical_id, 0, 0)
    assert [e["steps"] for e in seen] == list(range(len(seen)))
    assert len(seen) < rules.RUNNER_STEPS_PER_EXECUTION
