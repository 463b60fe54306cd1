"""The handler's three entry points, against botocore's omics model through Stubber.

Every HealthOmics request the handler makes is checked by Stubber against the service model
and the expected parameters. The state table, the destination, the runner's executions and the
event bus are moto's DynamoDB, S3, Step Functions and EventBridge (in process); the runner's
steps are called here as its state machine calls them. tests/test_rehearsal.py covers the whole
stack, state machine included, under enforced IAM.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from cdk_omics_export.handler import export as exports
from cdk_omics_export.handler import index, rules
from cdk_omics_export.handler import state as st
from cdk_omics_export.handler.index import CloudFormationEvent, ExportError, RunnerStepResult

from .test_state import create_state_table

STORE = "1234567890"
JOB = "5555555555"
READ_SETS = ["1111111111", "2222222222"]
BUCKET = "export-bucket"
DESTINATION = f"s3://{BUCKET}/exports/"
ROLE_ARN = "arn:aws:iam::111122223333:role/ExportRole"
KEY_ARN = "arn:aws:kms:us-east-1:111122223333:key/0f4b6d43-2a11-4c4e-9f6b-6f1f1d0c1a2b"
STACK_ID = "arn:aws:cloudformation:us-east-1:111122223333:stack/Example/guid"
TABLE = "export-state"
LOG_GROUP = "Example-ReadSetExportServiceHandlerLogs-abc"
CREATED = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)
RESPONSE_URL = (
    "https://cloudformation-custom-resource-response.example/presigned?X-Amz-Signature=s3cr3t"
)


def properties(**overrides: Any) -> dict[str, Any]:
    props: dict[str, Any] = {
        "ServiceToken": "arn:aws:lambda:us-east-1:111122223333:function:framework-onEvent",
        "ConstructPath": "Example/Export",
        "ExportGeneration": "0",
        "SequenceStoreId": STORE,
        "ReadSetIds": list(READ_SETS),
        "Destination": DESTINATION,
        "RoleArn": ROLE_ARN,
        "Encryption": "aws:kms",
        "KmsKeyArn": KEY_ARN,
        "WaitForCompletion": "true",
        "TimeoutSeconds": "3000",
    }
    props.update(overrides)
    return props


def event(request_type: str, **fields: Any) -> CloudFormationEvent:
    base: dict[str, Any] = {
        "RequestType": request_type,
        "RequestId": "7f3c5ad4-0b1e-4c2a-9f1e-2a0b4c6d8e01",
        "StackId": STACK_ID,
        "LogicalResourceId": "Export16632B07",
        "ResourceType": "Custom::OmicsReadSetExport",
        "ResponseURL": RESPONSE_URL,
        "ResourceProperties": properties(),
    }
    base.update(fields)
    return base  # type: ignore[return-value]


def export_id(**props: Any) -> str:
    p = properties(**props)
    return exports.export_id_of(
        STACK_ID, p["ConstructPath"], p["Destination"], int(p["ExportGeneration"])
    )


def started(job_id: str = JOB, status: str = "SUBMITTED") -> dict[str, Any]:
    return {
        "id": job_id,
        "sequenceStoreId": STORE,
        "destination": DESTINATION,
        "status": status,
        "creationTime": CREATED,
    }


def job(status: str, read_sets: dict[str, str] | None = None, **fields: Any) -> dict[str, Any]:
    detail = {**started(status=status), **fields}
    if read_sets is not None:
        detail["readSets"] = [
            {"id": r, "status": s, **({"statusMessage": "Archived"} if s == "FAILED" else {})}
            for r, s in read_sets.items()
        ]
    return detail


def metadata(read_set_id: str, status: str = "ACTIVE") -> dict[str, Any]:
    return {
        "id": read_set_id,
        "arn": f"arn:aws:omics:us-east-1:111122223333:sequenceStore/{STORE}/readSet/{read_set_id}",
        "sequenceStoreId": STORE,
        "status": status,
        "fileType": "CRAM",
        "creationTime": CREATED,
    }


def expect_preflight(stub: Stubber, ids: list[str], status: str = "ACTIVE") -> None:
    for read_set_id in ids:
        stub.add_response(
            "get_read_set_metadata",
            metadata(read_set_id, status),
            {"sequenceStoreId": STORE, "id": read_set_id},
        )


def expect_start(
    stub: Stubber, ids: list[str], *, run: int = 0, batch: int = 0, **props: Any
) -> None:
    stub.add_response(
        "start_read_set_export_job",
        started(),
        {
            "sequenceStoreId": STORE,
            "destination": DESTINATION,
            "roleArn": ROLE_ARN,
            "sources": [{"readSetId": r} for r in ids],
            "clientToken": exports.batch_client_token(export_id(**props), run, batch),
        },
    )


def expect_get(stub: Stubber, detail: dict[str, Any], job_id: str = JOB) -> None:
    stub.add_response("get_read_set_export_job", detail, {"sequenceStoreId": STORE, "id": job_id})


CLIENTS = (
    index.s3_client,
    index.dynamodb_client,
    index.omics_client,
    index.states_client,
    index.events_client,
)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """moto for everything but HealthOmics; yields the events the handler publishes."""
    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        index.TABLE_ENV: TABLE,
        index.LOG_GROUP_ENV: LOG_GROUP,
        index.RATE_ENV: "100",
        index.POLL_ENV: "30",
    }.items():
        monkeypatch.setenv(name, value)
    for name in list(os.environ):
        if name == "AWS_PROFILE" or name.startswith("AWS_ENDPOINT_URL"):
            monkeypatch.delenv(name, raising=False)
    with mock_aws():
        boto3.DEFAULT_SESSION = None
        for make in CLIENTS:
            make.cache_clear()
        create_state_table(boto3.client("dynamodb"), TABLE)
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        machine = boto3.client("stepfunctions").create_state_machine(
            name="Runner",
            definition=json.dumps({"StartAt": "S", "States": {"S": {"Type": "Succeed"}}}),
            roleArn="arn:aws:iam::123456789012:role/RunnerRole",
        )
        monkeypatch.setenv(index.RUNNER_ENV, machine["stateMachineArn"])
        published: list[dict[str, Any]] = []

        def capture(params: dict[str, Any], **_: Any) -> None:
            published.extend(params["Entries"])

        index.events_client().meta.events.register(
            "provide-client-params.events.PutEvents", capture
        )
        yield published
        for make in CLIENTS:
            getattr(make, "cache_clear", lambda: None)()
        boto3.DEFAULT_SESSION = None


@pytest.fixture
def stub(aws: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubber]:
    client = boto3.client("omics")
    monkeypatch.setattr(index, "omics_client", lambda: client)
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def stored(export: str) -> st.Snapshot:
    return index.state_store().load(export)


def step(
    steps: int = 0, *, execution: str | None = None, context: Any = None, **props: Any
) -> RunnerStepResult:
    """One call of the runner's Task, as its state machine makes it."""
    export = export_id(**props)
    if execution is None:
        record = stored(export).record
        assert record is not None and "runner" in record
        execution = record["runner"]["name"]
    return index.run_step(
        {
            "exportId": export,
            "steps": steps,
            "execution": execution,
            "stateMachine": os.environ[index.RUNNER_ENV],
        },
        context,
    )


def runner_executions() -> list[dict[str, Any]]:
    client = boto3.client("stepfunctions")
    machine = os.environ[index.RUNNER_ENV]
    return sorted(
        client.list_executions(stateMachineArn=machine)["executions"], key=lambda e: e["name"]
    )


def statuses(published: list[dict[str, Any]]) -> list[str]:
    return [json.loads(e["Detail"])["status"] for e in published]


def manifest(export: str) -> dict[str, Any]:
    key = f"exports/cdk-omics-export/{export}.json"
    body = boto3.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read()
    result: dict[str, Any] = json.loads(body)
    return result


# Identity


def test_the_export_id_derives_from_stack_construct_destination_and_generation() -> None:
    base = export_id()
    assert base.startswith("rse-") and len(base) == 32
    assert export_id() == base
    assert export_id(Destination="s3://other-bucket/") != base
    assert export_id(ExportGeneration="1") != base
    assert export_id(ConstructPath="Example/Other") != base
    # Nothing of the request counts: the selection, the role, the store may change.
    assert export_id(ReadSetIds=["3333333333"], RoleArn=ROLE_ARN + "2") == base


# Create


# Registering and starting the runner


def test_create_registers_the_export_and_starts_its_runner(
    stub: Stubber, aws: list[dict[str, Any]]
) -> None:
    result = index.on_event(event("Create"))  # no HealthOmics call: the runner does them
    export = export_id()
    assert result == {
        "PhysicalResourceId": export,
        "Data": {
            "ExportId": export,
            "JobId": "",
            "JobIds": "",
            "Status": "SUBMITTED",
            "Destination": DESTINATION,
            "SequenceStoreId": STORE,
            "CreationTime": result["Data"]["CreationTime"],
            "JobCount": "0",
            "ReadSetCount": "0",
            "ExportedReadSetCount": "0",
            "FailedReadSetCount": "0",
            "ManifestUri": f"s3://{BUCKET}/exports/cdk-omics-export/{export}.json",
        },
    }
    (execution,) = runner_executions()
    assert execution["name"] == f"{export}-0-0"
    described = boto3.client("stepfunctions").describe_execution(
        executionArn=execution["executionArn"]
    )
    assert json.loads(described["input"]) == {"exportId": export, "steps": 0}
    record = stored(export).record
    assert record is not None and record["runner"]["name"] == f"{export}-0-0"
    # Rules hear the export from its first status, before the runner does anything.
    (submitted,) = aws
    assert (submitted["Source"], submitted["DetailType"]) == (
        rules.EVENT_SOURCE,
        rules.EVENT_DETAIL_TYPE,
    )
    detail = json.loads(submitted["Detail"])
    assert detail["status"] == "SUBMITTED"
    assert (detail["stackId"], detail["constructPath"], detail["exportId"]) == (
        STACK_ID,
        "Example/Export",
        export,
    )
    assert detail["manifestUri"] == result["Data"]["ManifestUri"]
    machine = os.environ[index.RUNNER_ENV]
    assert detail["runner"] == {
        "execution": f"{export}-0-0",
        "executionArn": machine.replace(":stateMachine:", ":execution:") + f":{export}-0-0",
        "active": True,
    }
    assert manifest(export)["status"] == "SUBMITTED"


def test_the_runner_checks_starts_follows_and_reports(
    stub: Stubber, aws: list[dict[str, Any]]
) -> None:
    index.on_event(event("Create"))
    expect_preflight(stub, READ_SETS)
    expect_start(stub, READ_SETS)
    assert step() == {
        "exportId": export_id(),
        "steps": 1,
        "action": "WAIT",
        "waitSeconds": 30,
    }
    assert index.is_complete(event("Create")) == {"IsComplete": False}
    expect_get(stub, job("IN_PROGRESS"))
    assert step(1)["action"] == "WAIT"
    expect_get(stub, job("COMPLETED", dict.fromkeys(READ_SETS, "FINISHED")))
    assert step(2)["action"] == "END"
    done = index.is_complete(event("Create"))
    assert done["IsComplete"] is True
    assert done["Data"]["Status"] == "COMPLETED"
    assert (done["Data"]["JobIds"], done["Data"]["ExportedReadSetCount"]) == (JOB, "2")
    record = manifest(export_id())
    assert record["counts"] == {"selected": 2, "exported": 2, "failed": 0, "inFlight": 0}
    assert record["runner"]["execution"] == f"{export_id()}-0-0"
    assert record["runner"]["executionArn"].endswith(f":execution:Runner:{export_id()}-0-0")
    assert record["runner"]["active"] is False
    # One event per status of the export, and one for the job's own change.
    assert statuses(aws) == ["SUBMITTED", "RUNNING", "RUNNING", "COMPLETED"]
    jobs = [json.loads(e["Detail"])["jobs"] for e in aws]
    assert jobs[1:] == [
        [{"id": JOB, "status": "SUBMITTED"}],
        [{"id": JOB, "status": "IN_PROGRESS"}],
        [{"id": JOB, "status": "COMPLETED"}],
    ]
    assert json.loads(aws[-1]["Detail"])["counts"]["exported"] == 2


def test_the_manifest_carries_the_destinations_encryption_headers(stub: Stubber) -> None:
    index.on_event(event("Create"))
    expect_preflight(stub, READ_SETS)
    expect_start(stub, READ_SETS)
    step()
    head = boto3.client("s3").head_object(
        Bucket=BUCKET, Key=f"exports/cdk-omics-export/{export_id()}.json"
    )
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"] == KEY_ARN
    assert manifest(export_id())["jobs"][0]["id"] == JOB


def test_the_wait_deadline_starts_when_on_event_is_entered(
    stub: Stubber, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(index, "now", lambda: 1_000_000.0)
    index.on_event(event("Create"))
    record = stored(export_id()).record
    assert record is not None
    assert record["run"]["deadline"] == 1_000_000.0 + 3000


def test_the_same_create_delivered_twice_keeps_one_run_and_one_runner(stub: Stubber) -> None:
    first = index.on_event(event("Create"))
    expect_preflight(stub, READ_SETS)
    expect_start(stub, READ_SETS)
    step()
    again = index.on_event(event("Create"))
    assert first["PhysicalResourceId"] == again["PhysicalResourceId"]
    assert again["Data"]["JobIds"] == JOB
    record = stored(export_id()).record
    assert record is not None and record["runs"] == 1
    assert [e["name"] for e in runner_executions()] == [f"{export_id()}-0-0"]


def test_preflight_names_missing_and_archived_read_sets_and_starts_nothing(
    stub: Stubber, aws: list[dict[str, Any]]
) -> None:
    index.on_event(event("Create"))
    stub.add_response(
        "get_read_set_metadata",
        metadata(READ_SETS[0], "ARCHIVED"),
        {"sequenceStoreId": STORE, "id": READ_SETS[0]},
    )
    stub.add_client_error(
        "get_read_set_metadata",
        "ResourceNotFoundException",
        "Read set not found",
        404,
        expected_params={"sequenceStoreId": STORE, "id": READ_SETS[1]},
    )
    assert step()["action"] == "END"
    with pytest.raises(ExportError) as failed:
        index.is_complete(event("Create"))
    assert str(failed.value) == (
        f"Pre-flight: 2 of 2 read sets to export from sequence store {STORE} cannot be "
        f"exported: {READ_SETS[0]} (ARCHIVED), {READ_SETS[1]} (not found). No export job was "
        "started. Archived read sets can be restored with StartReadSetActivationJob. "
        f"Handler logs: {LOG_GROUP}."
    )
    record = stored(export_id()).record
    assert record is not None and record["status"] == "FAILED"
    assert manifest(export_id())["status"] == "FAILED"
    assert statuses(aws) == ["SUBMITTED", "FAILED"]
    assert json.loads(aws[-1]["Detail"])["statusReason"].startswith("Pre-flight: 2 of 2")


def test_a_manifest_that_cannot_be_written_never_hides_the_error(
    stub: Stubber, caplog: pytest.LogCaptureFixture
) -> None:
    missing_bucket = properties(Destination="s3://no-such-bucket/")
    create = event("Create", ResourceProperties=missing_bucket)
    index.on_event(create)
    stub.add_client_error(
        "get_read_set_metadata",
        "ResourceNotFoundException",
        "Read set not found",
        404,
        expected_params={"sequenceStoreId": STORE, "id": READ_SETS[0]},
    )
    expect_preflight(stub, READ_SETS[1:])
    assert step(Destination="s3://no-such-bucket/")["action"] == "END"
    with pytest.raises(ExportError, match=r"Pre-flight: 1 of 2 .*1111111111 \(not found\)"):
        index.is_complete(create)
    assert "could not write the manifest" in caplog.text


def test_events_that_cannot_be_published_are_published_by_a_later_step(
    stub: Stubber, aws: list[dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    client = index.events_client()

    def refuse(**_: Any) -> None:
        raise RuntimeError("the bus is unreachable")

    client.meta.events.register_first("before-call.events.PutEvents", refuse)
    index.on_event(event("Create"))
    expect_preflight(stub, READ_SETS)
    expect_start(stub, READ_SETS)
    step()
    assert "could not publish the status" in caplog.text
    client.meta.events.unregister("before-call.events.PutEvents", refuse)
    aws.clear()  # what was tried while the bus refused
    expect_get(stub, job("SUBMITTED"))
    step(1)  # nothing changed, but what was not told yet is told now
    assert statuses(aws) == ["RUNNING"]


def test_the_runner_ends_only_once_its_final_status_is_published(
    stub: Stubber, aws: list[dict[str, Any]]
) -> None:
    """Rules wait for the last event: a step that cannot publish it fails, and Step Functions
    retries it."""
    index.on_event(event("Create"))
    expect_preflight(stub, READ_SETS)
    expect_start(stub, READ_SETS)
    step()
    client = index.events_client()

    def refuse(**_: Any) -> None:
        raise RuntimeError("the bus is unreachable")

    client.meta.events.register_first("before-call.events.PutEvents", refuse)
    expect_get(stub, job("COMPLETED", dict.fromkeys(READ_SETS, "FINISHED")))
    with pytest.raises(ExportError, match="ended COMPLETED, but its status-change event"):
        step(1)
    client.meta.events.unregister("before-call.events.PutEvents", refuse)
    aws.clear()
    assert step(1)["action"] == "END"  # the retry: nothing to call, the event goes out
    assert statuses(aws) == ["COMPLETED"]


# Following


@pytest.mark.parametrize("allow", [True, False])
def test_partial_failures_fail_or_complete_as_asked(stub: Stubber, allow: bool) -> None:
    props = properties(AllowPartialFailure="true") if allow else properties()
    create = event("Create", ResourceProperties=props)
    index.on_event(create)
    expect_preflight(stub, READ_SETS)
    expect_start(stub, READ_SETS)
    step()
    expect_get(
        stub,
        job(
            "COMPLETED_WITH_FAILURES",
            {READ_SETS[0]: "FINISHED", READ_SETS[1]: "FAILED"},
            statusMessage="Some read sets failed",
        ),
    )
    assert step(1)["action"] == "END"
    if allow:
        done = index.is_complete(create)
        assert done["Data"]["Status"] == "COMPLETED_WITH_FAILURES"
        assert done["Data"]["FailedReadSetCount"] == "1"
        return
    with pytest.raises(ExportError) as failed:
        index.is_complete(create)
    assert str(failed.value) == (
        f"HealthOmics export job {JOB} in sequence store {STORE} ended "
        "COMPLETED_WITH_FAILURES: Some read sets failed. 1 read set(s) failed: "
        f"{READ_SETS[1]} (Archived). Handler logs: {LOG_GROUP}."
    )


def test_a_quota_refusal_waits_for_a_later_step(stub: Stubber) -> None:
    index.on_event(event("Create"))
    expect_preflight(stub, READ_SETS)
    stub.add_client_error(
        "start_read_set_export_job", "ServiceQuotaExceededException", "Too many jobs", 402
    )
    # While a batch waits for the quota, the runner looks every 10 s, not every poll (30 s).
    assert step() == {
        "exportId": export_id(),
        "steps": 1,
        "action": "WAIT",
        "waitSeconds": rules.CAPACITY_POLL_SECONDS,
    }
    (batch,) = stored(export_id()).batches.values()
    assert batch["status"] == st.PENDING
    record = stored(export_id()).record
    assert record is not None and "quotaWait" in record["run"]


def test_without_waiting_the_deploy_goes_on_once_the_read_sets_are_checked(
    stub: Stubber,
) -> None:
    props = properties(WaitForCompletion="false")
    create = event("Create", ResourceProperties=props)
    index.on_event(create)
    assert index.is_complete(create) == {"IsComplete": False}  # not selected yet
    expect_preflight(stub, READ_SETS)
    stub.add_client_error(
        "start_read_set_export_job", "ServiceQuotaExceededException", "Too many jobs", 402
    )
    step(WaitForCompletion="false")
    done = index.is_complete(create)  # the quota holds every start: no matter
    assert done["IsComplete"] is True
    assert (done["Data"]["Status"], done["Data"]["JobCount"]) == ("RUNNING", "0")


def test_the_waiter_fails_with_the_job_before_its_bare_timeout(
    stub: Stubber, monkeypatch: pytest.MonkeyPatch
) -> None:
    create = event("Create", ResourceProperties=properties(TimeoutSeconds="600"))
    monkeypatch.setattr(index, "now", lambda: 1_000_000.0)
    index.on_event(create)
    expect_preflight(stub, READ_SETS)
    expect_start(stub, READ_SETS)
    step(TimeoutSeconds="600")
    monkeypatch.setattr(index, "now", lambda: 1_000_000.0 + 590)
    with pytest.raises(ExportError, match=f"export job {JOB} .* still SUBMITTED after the 600 s"):
        index.is_complete(create)
    # The runner carries on until CloudFormation's rollback cancels or replaces the run.
    record = stored(export_id()).record
    assert record is not None and record["status"] == "RUNNING"


def test_out_of_time_a_step_sends_nothing_and_the_next_carries_on(stub: Stubber) -> None:
    class ShortLived:
        aws_request_id = "short"

        @staticmethod
        def get_remaining_time_in_millis() -> int:
            return 34_000  # too little to call and still save the state

    index.on_event(event("Create"))
    assert step(context=ShortLived())["action"] == "WAIT"
    record = stored(export_id()).record
    assert record is not None and record["status"] == "SUBMITTED"
    expect_preflight(stub, READ_SETS)
    expect_start(stub, READ_SETS)
    step(1)
    assert stored(export_id()).record["run"]["jobIds"] == [JOB]  # type: ignore[index]


def test_a_stale_waiter_stops_without_calling_the_service(stub: Stubber) -> None:
    index.on_event(event("Create"))
    newer = event("Update", RequestId="newer", OldResourceProperties=properties())
    index.on_event(newer)
    with pytest.raises(ExportError, match="superseded by request newer"):
        index.is_complete(event("Create"))
    # The newer run has a runner of its own; the older one ends at its next step.
    assert [e["name"] for e in runner_executions()] == [
        f"{export_id()}-0-0",
        f"{export_id()}-1-0",
    ]
    assert step(execution=f"{export_id()}-0-0")["action"] == "END"


# The runner's executions


def test_a_runner_continues_in_a_new_execution_before_its_history_fills(
    stub: Stubber, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert rules.RUNNER_STEPS_PER_EXECUTION * rules.RUNNER_HISTORY_EVENTS_PER_STEP < 25_000
    monkeypatch.setattr(rules, "RUNNER_STEPS_PER_EXECUTION", 2)
    index.on_event(event("Create"))
    expect_preflight(stub, READ_SETS)
    expect_start(stub, READ_SETS)
    assert step(0)["action"] == "WAIT"
    expect_get(stub, job("IN_PROGRESS"))
    assert step(1)["action"] == "END"  # its second step: the successor carries on
    successor = f"{export_id()}-0-1"
    assert [e["name"] for e in runner_executions()] == [f"{export_id()}-0-0", successor]
    record = stored(export_id()).record
    assert record is not None and record["runner"]["name"] == successor
    # The manifest names the execution that carries the export now (the status command asks
    # Step Functions about it).
    assert manifest(export_id())["runner"]["execution"] == successor
    expect_get(stub, job("COMPLETED", dict.fromkeys(READ_SETS, "FINISHED")))
    assert step(0, execution=successor)["action"] == "END"
    assert index.is_complete(event("Create"))["IsComplete"] is True


def test_a_runner_stopped_by_hand_is_taken_over_by_the_waiter(
    stub: Stubber, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(index, "now", lambda: 1_000_000.0)
    index.on_event(event("Create"))
    (first,) = runner_executions()
    boto3.client("stepfunctions").stop_execution(executionArn=first["executionArn"])
    # Within a minute of its start the waiter trusts the execution (DescribeExecution is
    # eventually consistent); after it, it takes the export over.
    assert index.is_complete(event("Create")) == {"IsComplete": False}
    assert len(runner_executions()) == 1
    monkeypatch.setattr(index, "now", lambda: 1_000_000.0 + index.RUNNER_START_GRACE_SECONDS + 1)
    assert index.is_complete(event("Create")) == {"IsComplete": False}
    successor = f"{export_id()}-0-1"
    assert [e["name"] for e in runner_executions()] == [first["name"], successor]
    # The stopped execution's step in flight, if any, ends without calling HealthOmics.
    assert step(execution=first["name"])["action"] == "END"
    expect_preflight(stub, READ_SETS)
    expect_start(stub, READ_SETS)
    assert step(execution=successor)["action"] == "WAIT"


def test_a_running_runner_is_left_alone(stub: Stubber) -> None:
    index.on_event(event("Create"))
    for _ in range(3):
        assert index.is_complete(event("Create")) == {"IsComplete": False}
    assert len(runner_executions()) == 1


def test_two_takeovers_at_once_record_one_successor(stub: Stubber) -> None:
    index.on_event(event("Create"))
    first, second = (index._export(index._request(event("Create"))) for _ in range(2))
    first.load()
    second.load()
    runner = first.record["runner"]
    first.claim_runner(1, replacing=runner)
    with pytest.raises(st.Cancelled, match="took over first"):
        second.claim_runner(1, replacing=runner)
    record = stored(export_id()).record
    assert record is not None and record["runner"]["segment"] == 1


# Delete


def test_delete_marks_the_export_cancelled_and_calls_no_api(
    stub: Stubber, aws: list[dict[str, Any]]
) -> None:
    created = index.on_event(event("Create"))
    expect_preflight(stub, READ_SETS)
    expect_start(stub, READ_SETS)
    step()
    # A cancelled Create's Delete may carry a physical id CloudFormation made up.
    aws.clear()
    assert index.on_event(event("Delete", PhysicalResourceId="made-up-by-cloudformation")) == {}
    record = stored(created["PhysicalResourceId"]).record
    assert record is not None and record["cancelled"] is True
    # Told at once: CloudFormation deletes the export's rule right after the resource.
    assert statuses(aws) == ["CANCELLED"]
    assert index.is_complete(event("Delete")) == {"IsComplete": True}
    # The runner starts nothing more, records the running job's end, then ends.
    expect_get(stub, job("IN_PROGRESS"))
    assert step(1)["action"] == "WAIT"
    expect_get(stub, job("COMPLETED", dict.fromkeys(READ_SETS, "FINISHED")))
    assert step(2)["action"] == "END"
    assert manifest(export_id())["status"] == "CANCELLED"
    assert manifest(export_id())["jobs"][0]["status"] == "COMPLETED"


def test_delete_never_fails(aws: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(index.TABLE_ENV, "no-such-table")
    assert index.on_event(event("Delete", PhysicalResourceId="x")) == {}
    assert index.on_event(event("Delete", PhysicalResourceId="x", ResourceProperties={})) == {}


# The answer to CloudFormation


def test_data_fits_the_response_at_any_size(stub: Stubber) -> None:
    long_destination = f"s3://{'b' * 63}/{'p' * 900}/"
    long_stack = STACK_ID.replace("Example", "S" * 128)
    export = exports.Export(
        index.state_store(),
        index.omics_client(),
        index._request(
            event(
                "Create",
                StackId=long_stack,
                ResourceProperties=properties(Destination=long_destination),
            )
        ),
        load_list=lambda uri: [],
    )
    export.begin("request", "Create", 0.0)
    export.run["jobIds"] = [str(10**35 + n) for n in range(100)]
    evt = event("Create", StackId=long_stack, RequestId="r" * 36)
    data = index._data(evt, export)
    answer = {
        "Status": "SUCCESS",
        "Reason": "SUCCESS",
        "StackId": evt["StackId"],
        "RequestId": evt["RequestId"],
        "LogicalResourceId": evt["LogicalResourceId"],
        "PhysicalResourceId": export.export_id,
        "NoEcho": False,
        "Data": data,
    }
    assert len(json.dumps(answer).encode()) <= 4096
    assert data["JobIds"]  # as many as fit, the rest in the manifest
    assert data["JobCount"] == "100"


def test_tokens_resolved_at_deploy_time_are_checked(stub: Stubber) -> None:
    bad = properties(SequenceStoreId="store-abc")
    with pytest.raises(ExportError, match="sequence_store_id: 'store-abc'"):
        index.on_event(event("Create", ResourceProperties=bad))


def test_the_response_url_is_never_logged(stub: Stubber, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    index.on_event(event("Delete", PhysicalResourceId="x"))
    assert "s3cr3t" not in caplog.text
    assert "Delete" in caplog.text


def test_the_handler_imports_only_the_standard_library_and_boto3() -> None:
    from pathlib import Path

    allowed = {"boto3", "botocore"} | {
        f"mypy_boto3_{service}"
        for service in ("dynamodb", "events", "omics", "s3", "stepfunctions")
    }
    sources = Path(index.__file__).parent.glob("*.py")
    import ast
    import sys

    for source in sources:
        tree = ast.parse(source.read_text())
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and node.level == 0
                else []
            )
            for name in names:
                top = name.split(".")[0]
                local = (Path(index.__file__).parent / f"{top}.py").exists()
                assert top in sys.stdlib_module_names or top in allowed or local, (
                    source.name,
                    name,
                )
