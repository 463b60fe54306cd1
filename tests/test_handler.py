"""The handler's entry points and its answers to CloudFormation, against botocore's omics
model through Stubber.

Every HealthOmics request the handler makes is checked by Stubber against the service model
and the expected parameters. The state table, the destination, the runner's executions and the
event bus are moto's DynamoDB, S3, Step Functions and EventBridge (in process); the answers'
PUTs are caught where ``answer.py`` sends them; the runner's steps are called here as its state
machine calls them. tests/test_rehearsal.py covers the whole stack, state machine and
CloudFormation's side included, under enforced IAM.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.error
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from cdk_omics_export.handler import (
    activation,
    answer,
    batches,
    clients,
    index,
    observe,
    resource,
    rules,
    runner,
)
from cdk_omics_export.handler import export as exports
from cdk_omics_export.handler import state as st
from cdk_omics_export.handler.core import decide, model
from cdk_omics_export.handler.runner import RunnerStepResult

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
REQUEST_ID = "7f3c5ad4-0b1e-4c2a-9f1e-2a0b4c6d8e01"
SIGNATURE = "s3cr3t"
RESPONSE_URL = (
    f"https://cloudformation-custom-resource-response.example/presigned?X-Amz-Signature={SIGNATURE}"
)
T0 = 1_000_000.0


def properties(**overrides: Any) -> dict[str, Any]:
    props: dict[str, Any] = {
        "ServiceToken": "arn:aws:lambda:us-east-1:111122223333:function:OnEventHandler",
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


def event(request_type: str, **fields: Any) -> resource.CloudFormationEvent:
    base: dict[str, Any] = {
        "RequestType": request_type,
        "RequestId": REQUEST_ID,
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


def expect_list(
    stub: Stubber,
    jobs: list[dict[str, Any]],
    *,
    since: datetime = CREATED,
    token: str | None = None,
    next_token: str | None = None,
    operation: str = "list_read_set_export_jobs",
) -> None:
    """One page of the store's jobs created since the earliest running one (a margin before)."""
    params: dict[str, Any] = {
        "sequenceStoreId": STORE,
        "maxResults": observe.PAGE_SIZE,
        "filter": {"createdAfter": since - timedelta(seconds=observe.LOOKBACK_SECONDS)},
    }
    if token is not None:
        params["nextToken"] = token
    key = "exportJobs" if operation == "list_read_set_export_jobs" else "activationJobs"
    response: dict[str, Any] = {key: jobs}
    if next_token is not None:
        response["nextToken"] = next_token
    stub.add_response(operation, response, params)


def expect_running(stub: Stubber, status: str, job_id: str = JOB, **kw: Any) -> None:
    """The listing shows the job still running: no Get follows."""
    expect_list(stub, [started(job_id, status)], **kw)


def expect_ended(stub: Stubber, detail: dict[str, Any], job_id: str = JOB, **kw: Any) -> None:
    """The listing shows the job ended; its one Get gives each read set's outcome."""
    expect_list(stub, [started(job_id, detail["status"])], **kw)
    expect_get(stub, detail, job_id)


@dataclass
class Answers:
    """The PUTs the handler sends to ResponseURLs; ``refuse`` makes the endpoint fail."""

    sent: list[dict[str, Any]] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)
    refuse: int = 0
    attempts: int = 0

    def only(self) -> dict[str, Any]:
        assert len(self.sent) == 1, self.sent
        return self.sent[0]


class Reply:
    status = 200

    def __enter__(self) -> Reply:
        return self

    def __exit__(self, *_: Any) -> None:
        return None


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The handler's clock, set by the test; sleeps advance it."""
    now = [T0]
    monkeypatch.setattr(clients, "now", lambda: now[0])

    def sleep(seconds: float) -> None:
        now[0] += seconds

    monkeypatch.setattr(clients, "sleep", sleep)
    return now


@pytest.fixture
def answers(monkeypatch: pytest.MonkeyPatch) -> Answers:
    caught = Answers()

    def urlopen(request: Any, timeout: float) -> Reply:
        caught.attempts += 1
        if caught.refuse:
            caught.refuse -= 1
            raise urllib.error.URLError(f"refused by {request.full_url}")
        assert request.get_method() == "PUT"
        assert request.headers["Content-type"] == ""
        caught.urls.append(request.full_url)
        caught.sent.append(json.loads(request.data))
        return Reply()

    monkeypatch.setattr(answer.urllib.request, "urlopen", urlopen)
    return caught


@contextmanager
def moto_service(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """moto for everything but HealthOmics; yields the events the handler publishes."""
    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        rules.TABLE_ENV: TABLE,
        rules.LOG_GROUP_ENV: LOG_GROUP,
        rules.RATE_ENV: "100",
        rules.POLL_ENV: "30",
    }.items():
        monkeypatch.setenv(name, value)
    for name in list(os.environ):
        if name == "AWS_PROFILE" or name.startswith("AWS_ENDPOINT_URL"):
            monkeypatch.delenv(name, raising=False)
    with mock_aws():
        boto3.DEFAULT_SESSION = None
        for make in clients.ALL:
            make.cache_clear()
        create_state_table(boto3.client("dynamodb"), TABLE)
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        machine = boto3.client("stepfunctions").create_state_machine(
            name="Runner",
            definition=json.dumps({"StartAt": "S", "States": {"S": {"Type": "Succeed"}}}),
            roleArn="arn:aws:iam::123456789012:role/RunnerRole",
        )
        monkeypatch.setenv(rules.RUNNER_ENV, machine["stateMachineArn"])
        boto3.client("events").create_event_bus(Name="export-events")
        monkeypatch.setenv(rules.EVENT_BUS_ENV, "export-events")
        published: list[dict[str, Any]] = []

        def capture(params: dict[str, Any], **_: Any) -> None:
            published.extend(params["Entries"])

        clients.events().meta.events.register("provide-client-params.events.PutEvents", capture)
        yield published
        for make in clients.ALL:
            make.cache_clear()
        boto3.DEFAULT_SESSION = None


@pytest.fixture
def aws(
    monkeypatch: pytest.MonkeyPatch, clock: list[float], answers: Answers
) -> Iterator[list[dict[str, Any]]]:
    """moto for everything but HealthOmics; yields the events the handler publishes."""
    with moto_service(monkeypatch) as published:
        yield published


@pytest.fixture
def stub(aws: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubber]:
    client = boto3.client("omics")
    monkeypatch.setattr(clients, "omics", lambda: client)
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def stored(export: str) -> st.Snapshot:
    return clients.state_store().load(export)


def request_record(request_id: str = REQUEST_ID) -> st.RequestRecord:
    record = clients.state_store().load_request(request_id)
    assert record is not None
    return record


def step(
    steps: int = 0, *, execution: str | None = None, context: Any = None, **props: Any
) -> RunnerStepResult:
    """One call of the runner's Task, as its state machine makes it."""
    export = export_id(**props)
    if execution is None:
        record = stored(export).record
        assert record is not None and "runner" in record
        execution = record["runner"]["name"]
    result: RunnerStepResult = index.run_step(
        {
            "exportId": export,
            "steps": steps,
            "execution": execution,
            "stateMachine": os.environ[rules.RUNNER_ENV],
        },
        context,
    )
    return result


def execution_ended(name: str, status: str, export: str | None = None) -> dict[str, Any]:
    """Step Functions' status-change event, as the watchdog rule delivers it."""
    machine = os.environ[rules.RUNNER_ENV]
    return {
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "detail": {
            "name": name,
            "status": status,
            "stateMachineArn": machine,
            "executionArn": exports.execution_arn(machine, name),
            "input": json.dumps({"exportId": export or export_id(), "steps": 0}),
        },
    }


def runner_executions() -> list[dict[str, Any]]:
    client = boto3.client("stepfunctions")
    machine = os.environ[rules.RUNNER_ENV]
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


def create_and_start(stub: Stubber, **props: Any) -> None:
    """A Create whose runner checked the read sets and started their one job."""
    index.on_event(event("Create", ResourceProperties=properties(**props)))
    expect_preflight(stub, READ_SETS)
    expect_start(stub, READ_SETS, **props)
    assert step(**props)["action"] == "WAIT"


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


# Create: the function registers the run and starts the runner; the runner answers


def test_create_registers_the_run_and_starts_its_runner_without_answering(
    stub: Stubber, aws: list[dict[str, Any]], answers: Answers
) -> None:
    assert index.on_event(event("Create")) is None  # no HealthOmics call: the runner does them
    export = export_id()
    assert answers.sent == []  # the runner answers, once the export ends
    (execution,) = runner_executions()
    assert execution["name"] == f"{export}-0-0"
    described = boto3.client("stepfunctions").describe_execution(
        executionArn=execution["executionArn"]
    )
    # The ResponseURL is a credential: never in the execution's input (or its history).
    assert json.loads(described["input"]) == {"exportId": export, "steps": 0}
    record = stored(export).record
    assert record is not None and record["runner"]["name"] == f"{export}-0-0"
    assert record["run"]["requestId"] == REQUEST_ID
    assert record["run"]["deadline"] == T0 + 3000  # the deadline starts when the request came
    request = request_record()
    assert (request["requestType"], request["exportId"]) == ("Create", export)
    assert request["responseUrl"] == RESPONSE_URL and "answer" not in request
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
    assert detail["manifestUri"] == f"s3://{BUCKET}/exports/cdk-omics-export/{export}.json"
    machine = os.environ[rules.RUNNER_ENV]
    assert detail["runner"] == {
        "execution": f"{export}-0-0",
        "executionArn": machine.replace(":stateMachine:", ":execution:") + f":{export}-0-0",
        "active": True,
    }
    assert manifest(export)["status"] == "SUBMITTED"
    assert SIGNATURE not in json.dumps(manifest(export)) + json.dumps(aws)


def test_the_runner_checks_starts_follows_reports_and_answers_at_the_end(
    stub: Stubber, aws: list[dict[str, Any]], answers: Answers
) -> None:
    index.on_event(event("Create"))
    expect_preflight(stub, READ_SETS)
    expect_start(stub, READ_SETS)
    assert step() == {"exportId": export_id(), "steps": 1, "action": "WAIT", "waitSeconds": 30}
    expect_running(stub, "IN_PROGRESS")
    assert step(1)["action"] == "WAIT"
    assert answers.sent == []
    expect_ended(stub, job("COMPLETED", dict.fromkeys(READ_SETS, "FINISHED")))
    assert step(2)["action"] == "END"
    export = export_id()
    assert answers.urls == [RESPONSE_URL]
    assert answers.only() == {
        "Status": "SUCCESS",
        "Reason": "SUCCESS",
        "PhysicalResourceId": export,
        "StackId": STACK_ID,
        "RequestId": REQUEST_ID,
        "LogicalResourceId": "Export16632B07",
        "NoEcho": False,
        "Data": {
            "ExportId": export,
            "JobId": JOB,
            "JobIds": JOB,
            "Status": "COMPLETED",
            "Destination": DESTINATION,
            "SequenceStoreId": STORE,
            "CreationTime": exports.iso_time(T0),
            "JobCount": "1",
            "ReadSetCount": "2",
            "ExportedReadSetCount": "2",
            "FailedReadSetCount": "0",
            "ManifestUri": f"s3://{BUCKET}/exports/cdk-omics-export/{export}.json",
        },
    }
    # Claimed with the answer, the URL leaves the table.
    request = request_record()
    assert (request["answer"], request["responseUrl"]) == ("SUCCESS", "")
    record = manifest(export)
    assert record["counts"] == {
        "selected": 2,
        "exported": 2,
        "failed": 0,
        "inFlight": 0,
        "activating": 0,
    }
    assert record["runner"]["execution"] == f"{export}-0-0"
    assert record["runner"]["executionArn"].endswith(f":execution:Runner:{export}-0-0")
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
    create_and_start(stub)
    head = boto3.client("s3").head_object(
        Bucket=BUCKET, Key=f"exports/cdk-omics-export/{export_id()}.json"
    )
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"] == KEY_ARN
    assert manifest(export_id())["jobs"][0]["id"] == JOB


def test_a_redelivered_create_keeps_one_run_one_runner_and_one_answer(
    stub: Stubber, answers: Answers
) -> None:
    index.on_event(event("Create"))
    index.on_event(event("Create"))  # Lambda's retry of an invocation it thinks failed
    expect_preflight(stub, READ_SETS)
    expect_start(stub, READ_SETS)
    step()
    index.on_event(event("Create"))
    record = stored(export_id()).record
    assert record is not None and record["runs"] == 1
    assert [e["name"] for e in runner_executions()] == [f"{export_id()}-0-0"]
    expect_ended(stub, job("COMPLETED", dict.fromkeys(READ_SETS, "FINISHED")))
    step(1)
    index.on_event(event("Create"))  # after the answer: nothing more is sent
    assert answers.only()["Status"] == "SUCCESS"


def test_preflight_names_missing_and_archived_read_sets_and_starts_nothing(
    stub: Stubber, aws: list[dict[str, Any]], answers: Answers
) -> None:
    """With ArchivedReadSets FAIL, an archived read set fails the pre-flight as before."""
    index.on_event(event("Create", ResourceProperties=properties(ArchivedReadSets="FAIL")))
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
    failed = answers.only()
    assert failed["Status"] == "FAILED"
    assert failed["Reason"] == (
        f"Pre-flight: 2 of 2 read sets to export from sequence store {STORE} cannot be "
        f"exported: {READ_SETS[0]} (ARCHIVED), {READ_SETS[1]} (not found). No export job was "
        "started. Archived read sets can be restored with StartReadSetActivationJob. "
        f"Handler logs: {LOG_GROUP}."
    )
    # A failed Create answers the marker its rollback's Delete recognizes and skips.
    assert failed["PhysicalResourceId"] == answer.CREATE_FAILED_PREFIX + export_id()
    assert failed["Data"] == {}
    record = stored(export_id()).record
    assert record is not None and record["status"] == "FAILED"
    assert manifest(export_id())["status"] == "FAILED"
    assert statuses(aws) == ["SUBMITTED", "FAILED"]
    assert json.loads(aws[-1]["Detail"])["statusReason"].startswith("Pre-flight: 2 of 2")
    # The rollback's Delete of the marker touches nothing and succeeds.
    index.on_event(
        event("Delete", RequestId="rollback", PhysicalResourceId=failed["PhysicalResourceId"])
    )
    assert answers.sent[-1]["Status"] == "SUCCESS"
    assert answers.sent[-1]["PhysicalResourceId"] == failed["PhysicalResourceId"]


def test_a_manifest_that_cannot_be_written_never_hides_the_error(
    stub: Stubber, answers: Answers, caplog: pytest.LogCaptureFixture
) -> None:
    missing_bucket = properties(Destination="s3://no-such-bucket/")
    index.on_event(event("Create", ResourceProperties=missing_bucket))
    stub.add_client_error(
        "get_read_set_metadata",
        "ResourceNotFoundException",
        "Read set not found",
        404,
        expected_params={"sequenceStoreId": STORE, "id": READ_SETS[0]},
    )
    expect_preflight(stub, READ_SETS[1:])
    assert step(Destination="s3://no-such-bucket/")["action"] == "END"
    failed = answers.only()
    assert failed["Status"] == "FAILED"
    assert failed["Reason"].startswith("Pre-flight: 1 of 2 read sets to export from sequence")
    assert f"{READ_SETS[0]} (not found)" in failed["Reason"]
    assert "could not write the manifest" in caplog.text


def test_events_that_cannot_be_published_are_published_by_a_later_step(
    stub: Stubber, aws: list[dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    client = clients.events()

    def refuse(**_: Any) -> None:
        raise RuntimeError("the bus is unreachable")

    client.meta.events.register_first("before-call.events.PutEvents", refuse)
    create_and_start(stub)
    assert "could not publish the status" in caplog.text
    client.meta.events.unregister("before-call.events.PutEvents", refuse)
    aws.clear()  # what was tried while the bus refused
    expect_running(stub, "SUBMITTED")
    step(1)  # nothing changed, but what was not told yet is told now
    assert statuses(aws) == ["RUNNING"]


def test_the_runner_ends_only_once_its_final_status_is_published(
    stub: Stubber, aws: list[dict[str, Any]], answers: Answers
) -> None:
    """Rules wait for the last event: a step that cannot publish it fails, and Step Functions
    retries it. CloudFormation's answer does not wait for it."""
    create_and_start(stub)
    client = clients.events()

    def refuse(**_: Any) -> None:
        raise RuntimeError("the bus is unreachable")

    client.meta.events.register_first("before-call.events.PutEvents", refuse)
    expect_ended(stub, job("COMPLETED", dict.fromkeys(READ_SETS, "FINISHED")))
    with pytest.raises(exports.ExportError, match="ended COMPLETED, but its status-change event"):
        step(1)
    assert answers.only()["Status"] == "SUCCESS"
    client.meta.events.unregister("before-call.events.PutEvents", refuse)
    aws.clear()
    assert step(1)["action"] == "END"  # the retry: nothing to call, the event goes out
    assert statuses(aws) == ["COMPLETED"]
    assert len(answers.sent) == 1


# Following


@pytest.mark.parametrize("allow", [True, False])
def test_partial_failures_fail_or_complete_as_asked(
    stub: Stubber, answers: Answers, allow: bool
) -> None:
    props = {"AllowPartialFailure": "true"} if allow else {}
    create_and_start(stub, **props)
    expect_ended(
        stub,
        job(
            "COMPLETED_WITH_FAILURES",
            {READ_SETS[0]: "FINISHED", READ_SETS[1]: "FAILED"},
            statusMessage="Some read sets failed",
        ),
    )
    assert step(1, **props)["action"] == "END"
    done = answers.only()
    if allow:
        assert done["Status"] == "SUCCESS"
        assert done["Data"]["Status"] == "COMPLETED_WITH_FAILURES"
        assert done["Data"]["FailedReadSetCount"] == "1"
        return
    assert done["Status"] == "FAILED"
    assert done["Reason"] == (
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
    stub: Stubber, answers: Answers
) -> None:
    index.on_event(event("Create", ResourceProperties=properties(WaitForCompletion="false")))
    assert answers.sent == []  # not selected yet
    expect_preflight(stub, READ_SETS)
    stub.add_client_error(
        "start_read_set_export_job", "ServiceQuotaExceededException", "Too many jobs", 402
    )
    assert step(WaitForCompletion="false")["action"] == "WAIT"  # the runner carries on
    done = answers.only()  # the quota holds every start: no matter
    assert done["Status"] == "SUCCESS"
    assert (done["Data"]["Status"], done["Data"]["JobCount"]) == ("RUNNING", "0")
    # No attribute is ever empty: a run that started no job names none.
    assert (done["Data"]["JobId"], done["Data"]["JobIds"]) == (rules.NONE, rules.NONE)
    assert all(done["Data"].values())


def test_the_timeout_is_answered_at_the_deadline_and_the_runner_goes_on(
    stub: Stubber, clock: list[float], answers: Answers
) -> None:
    create_and_start(stub, TimeoutSeconds="600")
    expect_running(stub, "SUBMITTED")
    clock[0] = T0 + 580
    # The next wait ends at the deadline, not a whole poll after it.
    assert step(1, TimeoutSeconds="600")["waitSeconds"] == 20
    assert answers.sent == []
    clock[0] = T0 + 600
    expect_running(stub, "SUBMITTED")
    assert step(2, TimeoutSeconds="600")["action"] == "WAIT"
    failed = answers.only()
    assert failed["Status"] == "FAILED"
    assert failed["Reason"].startswith(
        f"HealthOmics export job {JOB} in sequence store {STORE} is still SUBMITTED after the "
        "600 s the deploy waits (timeout)."
    )
    assert failed["PhysicalResourceId"] == answer.CREATE_FAILED_PREFIX + export_id()
    # A timed-out Create is rolled back: its Delete names the marker, so the export is
    # cancelled now. The runner follows the running job to its end, and answers nothing more.
    record = stored(export_id()).record
    assert record is not None and record["cancelled"] is True
    expect_ended(stub, job("COMPLETED", dict.fromkeys(READ_SETS, "FINISHED")))
    assert step(3, TimeoutSeconds="600")["action"] == "END"
    assert len(answers.sent) == 1


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


def test_a_superseded_request_is_answered_failed_and_its_runner_ends(
    stub: Stubber, answers: Answers
) -> None:
    index.on_event(event("Create"))
    newer = event("Update", RequestId="newer", OldResourceProperties=properties())
    index.on_event(newer)
    superseded = answers.only()
    assert (superseded["RequestId"], superseded["Status"]) == (REQUEST_ID, "FAILED")
    assert superseded["Reason"] == (
        f"Request {REQUEST_ID} of export {export_id()} was superseded by request newer."
    )
    # The newer run has a runner of its own; the older one ends at its next step.
    assert [e["name"] for e in runner_executions()] == [
        f"{export_id()}-0-0",
        f"{export_id()}-1-0",
    ]
    assert step(execution=f"{export_id()}-0-0")["action"] == "END"
    assert len(answers.sent) == 1


# Observing running jobs: one listing, a Get only for a job that ended or was not listed

THREE = ["1111111111", "2222222222", "3333333333"]
JOBS = ["5555555551", "5555555552", "5555555553"]


def three_jobs_running(stub: Stubber, monkeypatch: pytest.MonkeyPatch) -> None:
    """A Create of three read sets, one job each, all started by the runner's first step."""
    monkeypatch.setattr(rules, "MAX_READ_SETS_PER_JOB", 1)
    index.on_event(event("Create", ResourceProperties=properties(ReadSetIds=THREE)))
    stub.add_response(
        "list_read_sets",
        {"readSets": [metadata(r) for r in THREE]},
        {"sequenceStoreId": STORE, "maxResults": 100},
    )
    for number, (read_set_id, job_id) in enumerate(zip(THREE, JOBS, strict=True)):
        stub.add_response(
            "start_read_set_export_job",
            started(job_id),
            {
                "sequenceStoreId": STORE,
                "destination": DESTINATION,
                "roleArn": ROLE_ARN,
                "sources": [{"readSetId": read_set_id}],
                "clientToken": exports.batch_client_token(export_id(), 0, number),
            },
        )
    assert step()["action"] == "WAIT"
    stub.assert_no_pending_responses()


def batch_statuses() -> list[tuple[str, str]]:
    return [(b["jobId"], b["status"]) for b in stored(export_id()).ordered_batches()]


def test_running_jobs_are_observed_with_one_listing_not_a_get_each(
    stub: Stubber, monkeypatch: pytest.MonkeyPatch
) -> None:
    three_jobs_running(stub, monkeypatch)
    expect_list(stub, [started(j, "IN_PROGRESS") for j in JOBS])
    assert step(1)["action"] == "WAIT"
    stub.assert_no_pending_responses()  # and Stubber refuses any Get it was not told of
    assert batch_statuses() == [(j, "IN_PROGRESS") for j in JOBS]
    # Unchanged: the next step's listing is all it costs, and nothing is written.
    expect_list(stub, [started(j, "IN_PROGRESS") for j in JOBS])
    assert step(2)["action"] == "WAIT"
    assert batch_statuses() == [(j, "IN_PROGRESS") for j in JOBS]


def test_a_job_the_listing_shows_ended_gets_one_get_for_its_read_sets(
    stub: Stubber, monkeypatch: pytest.MonkeyPatch, answers: Answers
) -> None:
    three_jobs_running(stub, monkeypatch)
    first, second, third = JOBS
    expect_list(
        stub,
        [started(first, "COMPLETED"), started(second, "IN_PROGRESS"), started(third, "SUBMITTED")],
    )
    expect_get(stub, job("COMPLETED", {THREE[0]: "FINISHED"}, id=first), first)
    assert step(1)["action"] == "WAIT"
    assert batch_statuses() == [(first, "COMPLETED"), (second, "IN_PROGRESS"), (third, "SUBMITTED")]
    (done, *_) = stored(export_id()).ordered_batches()
    assert done["readSets"] == [{"id": THREE[0], "status": "FINISHED"}]
    # An ended job is not followed again: the next listing starts from the running ones.
    expect_list(stub, [started(j, "COMPLETED") for j in JOBS[1:]])
    for read_set_id, job_id in zip(THREE[1:], JOBS[1:], strict=True):
        expect_get(stub, job("COMPLETED", {read_set_id: "FINISHED"}, id=job_id), job_id)
    assert step(2)["action"] == "END"
    assert answers.only()["Data"]["ExportedReadSetCount"] == "3"


def test_a_listing_of_two_pages_is_read_to_its_end(
    stub: Stubber, monkeypatch: pytest.MonkeyPatch
) -> None:
    three_jobs_running(stub, monkeypatch)
    someone_elses = {**started("9999999999", "IN_PROGRESS"), "destination": "s3://other/"}
    expect_list(stub, [started(JOBS[0], "IN_PROGRESS"), someone_elses], next_token="page-2")
    expect_list(stub, [started(j, "IN_PROGRESS") for j in JOBS[1:]], token="page-2")
    assert step(1)["action"] == "WAIT"
    stub.assert_no_pending_responses()
    assert batch_statuses() == [(j, "IN_PROGRESS") for j in JOBS]


def test_a_job_missing_from_the_listing_is_not_taken_as_ended(
    stub: Stubber, monkeypatch: pytest.MonkeyPatch, answers: Answers
) -> None:
    """Listings are eventually consistent: a job they do not show is asked for, and stays in
    flight (and in the record) for as long as its Get says it runs."""
    three_jobs_running(stub, monkeypatch)
    expect_list(stub, [started(j, "IN_PROGRESS") for j in JOBS[:2]])
    expect_get(stub, job("IN_PROGRESS", id=JOBS[2]), JOBS[2])
    assert step(1)["action"] == "WAIT"
    assert batch_statuses() == [(j, "IN_PROGRESS") for j in JOBS]
    # A listing that shows none of them, its last page included, ends nothing either.
    expect_list(stub, [])
    for job_id in JOBS:
        expect_get(stub, job("IN_PROGRESS", id=job_id), job_id)
    assert step(2)["action"] == "WAIT"
    assert batch_statuses() == [(j, "IN_PROGRESS") for j in JOBS]
    assert answers.sent == []
    record = stored(export_id()).record
    assert record is not None and record["status"] == "RUNNING"


def test_pages_beyond_one_per_running_job_are_not_read() -> None:
    """Past as many pages as jobs running, a Get for each job still unseen costs less."""

    class Pages:
        def __init__(self) -> None:
            self.calls = 0

        def __call__(self, **request: Any) -> dict[str, Any]:
            self.calls += 1
            return {"exportJobs": [], "nextToken": f"page-{self.calls + 1}"}

    class Caller:
        request = SimpleNamespace(sequence_store_id=STORE)

        def ensure_time(self, budget: Any) -> None:
            return None

        def call(self, operation: str, method: Any, **params: Any) -> Any:
            return method(**params)

    pages = Pages()
    running = [observe.Running(j, "IN_PROGRESS", T0) for j in JOBS]
    seen = observe.listed_statuses(
        Caller(),  # type: ignore[arg-type]
        operation="ListReadSetExportJobs",
        method=pages,
        items="exportJobs",
        running=running,
        budget=None,  # type: ignore[arg-type]
    )
    assert (seen, pages.calls) == ({}, len(JOBS))


@pytest.mark.parametrize(
    ("recorded", "listed", "decided"),
    [
        ("SUBMITTED", "SUBMITTED", None),  # unchanged: nothing to do
        ("SUBMITTED", "IN_PROGRESS", "IN_PROGRESS"),  # further along: recorded from the list
        ("IN_PROGRESS", "SUBMITTED", None),  # a stale listing moves nothing back
        ("IN_PROGRESS", "COMPLETED", decide.GET),  # ended: its read sets' outcome
        ("IN_PROGRESS", "FAILED", decide.GET),
        ("IN_PROGRESS", None, decide.GET),  # not listed: never taken as ended
    ],
)
def test_what_a_listing_asks_of_a_running_job(
    recorded: str, listed: str | None, decided: str | None
) -> None:
    assert decide.seen_in_listing(recorded, listed) == decided


# A lost start


def test_a_batch_left_starting_is_found_among_the_stores_jobs_and_followed(
    stub: Stubber, answers: Answers
) -> None:
    """The function died after HealthOmics accepted the start, before the job was recorded:
    the next step finds that job and follows it, and starts no second one."""
    index.on_event(event("Create"))
    expect_preflight(stub, READ_SETS)
    expect_start(stub, READ_SETS)

    def killed(self: batches.ExportJobs, batch: st.BatchRecord, started: Any) -> None:
        raise SystemExit("the function's sandbox was stopped")

    with pytest.MonkeyPatch.context() as dying, pytest.raises(SystemExit):
        dying.setattr(batches.ExportJobs, "_record_started", killed)
        step()
    (batch,) = stored(export_id()).batches.values()
    assert batch["status"] == st.STARTING and "jobId" not in batch
    other = {**started("9999999999"), "destination": "s3://someone-else/"}
    stub.add_response(
        "list_read_set_export_jobs",
        {"exportJobs": [other, started()]},
        {
            "sequenceStoreId": STORE,
            "maxResults": 100,
            "filter": {
                "createdAfter": datetime.fromtimestamp(T0 - model.STARTED_JOB_LOOKBACK_SECONDS, UTC)
            },
        },
    )
    # Its read sets say it is this batch's job; then it is followed like any other, the
    # listings bounded by its creation time as the store listed it.
    expect_get(stub, job("SUBMITTED", dict.fromkeys(READ_SETS, "SUBMITTED")))
    expect_running(stub, "IN_PROGRESS")
    assert step(1)["action"] == "WAIT"
    (batch,) = stored(export_id()).batches.values()
    assert (batch["status"], batch["jobId"]) == ("IN_PROGRESS", JOB)
    expect_ended(stub, job("COMPLETED", dict.fromkeys(READ_SETS, "FINISHED")))
    assert step(2)["action"] == "END"
    done = answers.only()
    assert (done["Status"], done["Data"]["ExportedReadSetCount"]) == ("SUCCESS", "2")


def test_a_batch_left_starting_and_not_found_is_sent_again_with_its_client_token(
    stub: Stubber,
) -> None:
    index.on_event(event("Create"))
    expect_preflight(stub, READ_SETS)
    with pytest.MonkeyPatch.context() as dying, pytest.raises(SystemExit):
        # Killed between claiming the batch and sending its start.
        dying.setattr(batches.ExportJobs, "_send_start", _dies_after_claiming)
        step()
    (batch,) = stored(export_id()).batches.values()
    assert batch["status"] == st.STARTING
    stub.add_response("list_read_set_export_jobs", {"exportJobs": []})
    expect_start(stub, READ_SETS)
    assert step(1)["action"] == "WAIT"
    (batch,) = stored(export_id()).batches.values()
    assert (batch["status"], batch["jobId"]) == ("SUBMITTED", JOB)


def _dies_after_claiming(self: batches.ExportJobs, *_: Any, **__: Any) -> bool:
    raise SystemExit("the function's sandbox was stopped")


# The runner's executions


def test_a_runner_continues_in_a_new_execution_before_its_history_fills(
    stub: Stubber, answers: Answers, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert rules.RUNNER_STEPS_PER_EXECUTION * rules.RUNNER_HISTORY_EVENTS_PER_STEP < 25_000
    monkeypatch.setattr(rules, "RUNNER_STEPS_PER_EXECUTION", 2)
    create_and_start(stub)
    expect_running(stub, "IN_PROGRESS")
    assert step(1)["action"] == "END"  # its second step: the successor carries on
    successor = f"{export_id()}-0-1"
    assert [e["name"] for e in runner_executions()] == [f"{export_id()}-0-0", successor]
    record = stored(export_id()).record
    assert record is not None and record["runner"]["name"] == successor
    # The manifest names the execution that carries the export now (the status command asks
    # Step Functions about it).
    assert manifest(export_id())["runner"]["execution"] == successor
    expect_ended(stub, job("COMPLETED", dict.fromkeys(READ_SETS, "FINISHED")))
    assert step(0, execution=successor)["action"] == "END"
    assert answers.only()["Status"] == "SUCCESS"


def test_a_failed_runner_execution_is_restarted_by_the_watchdog(
    stub: Stubber, answers: Answers
) -> None:
    index.on_event(event("Create"))
    first = f"{export_id()}-0-0"
    for restart in range(1, runner.RUNNER_RESTARTS + 1):
        index.run_step(execution_ended(stored(export_id()).record["runner"]["name"], "FAILED"))  # type: ignore[index]
        record = stored(export_id()).record
        assert record is not None
        assert record["runner"]["name"] == f"{export_id()}-0-{restart}"
        assert record["runner"]["restarts"] == restart
    assert len(runner_executions()) == runner.RUNNER_RESTARTS + 1
    assert answers.sent == []
    # The restarts are spent: the deploy is told, not left to its ServiceTimeout.
    last = stored(export_id()).record["runner"]["name"]  # type: ignore[index]
    index.run_step(execution_ended(last, "TIMED_OUT"))
    failed = answers.only()
    assert failed["Status"] == "FAILED"
    assert failed["Reason"].startswith(
        f"Runner execution {last} of export {export_id()} ended TIMED_OUT after its retries, "
        f"{runner.RUNNER_RESTARTS} times this run while the deploy waited for it"
    )
    # An old execution's event changes nothing.
    index.run_step(execution_ended(first, "FAILED"))
    assert len(answers.sent) == 1


def test_a_runner_stopped_by_hand_answers_the_waiting_deploy_at_once(
    stub: Stubber, answers: Answers
) -> None:
    index.on_event(event("Create"))
    (first,) = runner_executions()
    boto3.client("stepfunctions").stop_execution(executionArn=first["executionArn"])
    index.run_step(execution_ended(first["name"], "ABORTED"))
    failed = answers.only()
    assert failed["Status"] == "FAILED"
    assert failed["Reason"].startswith(
        f"Runner execution {first['name']} of export {export_id()} was stopped (ABORTED: "
        "StopExecution, by a person or a tool) while the deploy waited for it; nothing "
        "carries the export now."
    )
    assert len(runner_executions()) == 1  # a stop is obeyed, not undone
    # The stopped execution's step in flight, if any, calls no HealthOmics API it was not
    # already going to: its export is still its own, and the next deploy resumes it.
    expect_preflight(stub, READ_SETS)
    expect_start(stub, READ_SETS)
    step(execution=first["name"])
    assert len(answers.sent) == 1


def test_a_running_runner_is_left_alone(stub: Stubber) -> None:
    index.on_event(event("Create"))
    export = runner.export_of_state(export_id(), 30, os.environ[rules.RUNNER_ENV])
    assert export is not None
    export.load()
    for _ in range(3):
        runner.keep_going(export, grace=False)
    assert len(runner_executions()) == 1


def test_two_takeovers_at_once_record_one_successor(stub: Stubber) -> None:
    index.on_event(event("Create"))
    machine = os.environ[rules.RUNNER_ENV]
    first, second = (runner.export_of_state(export_id(), 30, machine) for _ in range(2))
    assert first is not None and second is not None
    first.load()
    second.load()
    current = first.record["runner"]
    first.claim_runner(1, replacing=current)
    with pytest.raises(st.Cancelled, match="took over first"):
        second.claim_runner(1, replacing=current)
    record = stored(export_id()).record
    assert record is not None and record["runner"]["segment"] == 1


# Delete


def test_delete_marks_the_export_cancelled_and_answers_at_once(
    stub: Stubber, aws: list[dict[str, Any]], answers: Answers
) -> None:
    create_and_start(stub, WaitForCompletion="false")
    assert answers.only()["Status"] == "SUCCESS"
    aws.clear()
    # A cancelled Create's Delete may carry a physical id CloudFormation made up: it is the
    # one answered, never changed.
    delete = event(
        "Delete",
        RequestId="delete",
        PhysicalResourceId="made-up-by-cloudformation",
        ResourceProperties=properties(WaitForCompletion="false"),
    )
    index.on_event(delete)
    deleted = answers.sent[-1]
    assert (deleted["RequestId"], deleted["Status"]) == ("delete", "SUCCESS")
    assert deleted["PhysicalResourceId"] == "made-up-by-cloudformation"
    record = stored(export_id()).record
    assert record is not None and record["cancelled"] is True
    # Final at once, the running job named: cdk destroy deletes the runner with the stack.
    assert (record["status"], record["run"]["phase"]) == ("CANCELLED", "ENDED")
    reason = (
        f"Export {export_id()} was cancelled (its resource was deleted). Jobs running then: "
        f"{JOB}. HealthOmics cannot cancel a job: their files may still arrive at {DESTINATION};"
    )
    assert record["statusReason"].startswith(reason)
    at_delete = manifest(export_id())
    assert (at_delete["status"], at_delete["cancelled"]) == ("CANCELLED", True)
    assert at_delete["statusReason"] == record["statusReason"]
    assert [(j["id"], j["status"]) for j in at_delete["jobs"]] == [(JOB, "SUBMITTED")]
    # Told at once: CloudFormation deletes the export's rule right after the resource.
    assert statuses(aws) == ["CANCELLED"]
    assert json.loads(aws[0]["Detail"])["statusReason"] == record["statusReason"]
    # The runner starts nothing more, records the running job's end, then ends.
    expect_running(stub, "IN_PROGRESS")
    assert step(1, WaitForCompletion="false")["action"] == "WAIT"
    expect_ended(stub, job("COMPLETED", dict.fromkeys(READ_SETS, "FINISHED")))
    assert step(2, WaitForCompletion="false")["action"] == "END"
    assert manifest(export_id())["status"] == "CANCELLED"
    assert manifest(export_id())["jobs"][0]["status"] == "COMPLETED"
    assert len(answers.sent) == 2


def test_a_delete_after_the_export_ended_keeps_its_outcome_and_tells_no_target_again(
    stub: Stubber, aws: list[dict[str, Any]], answers: Answers
) -> None:
    create_and_start(stub)
    expect_ended(stub, job("COMPLETED", dict.fromkeys(READ_SETS, "FINISHED")))
    assert step(1)["action"] == "END"
    assert statuses(aws)[-1] == "COMPLETED"
    aws.clear()
    index.on_event(event("Delete", RequestId="delete", PhysicalResourceId=export_id()))
    assert answers.sent[-1]["Status"] == "SUCCESS"
    assert aws == []
    record = manifest(export_id())
    assert (record["status"], record["cancelled"], record["statusReason"]) == (
        "COMPLETED",
        True,
        "",
    )


def test_a_delete_while_the_deploy_waits_answers_both(stub: Stubber, answers: Answers) -> None:
    create_and_start(stub)
    index.on_event(event("Delete", RequestId="delete", PhysicalResourceId=export_id()))
    by_request = {a["RequestId"]: a for a in answers.sent}
    assert by_request["delete"]["Status"] == "SUCCESS"
    assert by_request[REQUEST_ID]["Status"] == "FAILED"
    assert by_request[REQUEST_ID]["Reason"].startswith(
        f"Export {export_id()} was cancelled (its resource was deleted)."
    )
    assert len(answers.sent) == 2


def test_delete_never_fails(
    aws: list[dict[str, Any]], answers: Answers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(rules.TABLE_ENV, "no-such-table")
    index.on_event(event("Delete", PhysicalResourceId="x"))
    index.on_event(
        event("Delete", RequestId="other", PhysicalResourceId="x", ResourceProperties={})
    )
    assert [(a["Status"], a["PhysicalResourceId"]) for a in answers.sent] == [
        ("SUCCESS", "x"),
        ("SUCCESS", "x"),
    ]


# Every request answered, whatever goes wrong


def test_a_create_without_the_state_table_is_answered_failed(
    aws: list[dict[str, Any]], answers: Answers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(rules.TABLE_ENV, "no-such-table")
    index.on_event(event("Create"))
    failed = answers.only()
    assert failed["Status"] == "FAILED"
    assert failed["Reason"].startswith("The export's state table could not be reached:")
    assert failed["PhysicalResourceId"] == answer.CREATE_FAILED_PREFIX + REQUEST_ID


def test_a_handler_that_cannot_load_still_answers(
    answers: Answers, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(name: str) -> Any:
        raise ImportError(f"No module named {name!r}")

    monkeypatch.setattr(index, "_module", broken)
    index.on_event(event("Create"))
    index.on_event(event("Delete", RequestId="delete", PhysicalResourceId="rse-x"))
    created, deleted = answers.sent
    assert created["Status"] == "FAILED"
    assert created["Reason"] == (
        "The export's handler could not be loaded: ImportError: No module named 'resource'"
    )
    assert created["PhysicalResourceId"] == answer.CREATE_FAILED_PREFIX + REQUEST_ID
    assert (deleted["Status"], deleted["PhysicalResourceId"]) == ("SUCCESS", "rse-x")


# Malformed requests: tests/test_malformed_requests.py


def test_a_request_without_a_response_url_is_ignored(
    stub: Stubber, answers: Answers, caplog: pytest.LogCaptureFixture
) -> None:
    bad = event("Create")
    del bad["ResponseURL"]  # type: ignore[misc]
    index.on_event(bad)
    assert answers.sent == [] and runner_executions() == []
    assert "not a CloudFormation request" in caplog.text


# The answer


def test_data_fits_the_response_at_any_size(stub: Stubber) -> None:
    long_destination = f"s3://{'b' * 63}/{'p' * 900}/"
    long_stack = STACK_ID.replace("Example", "S" * 128)
    create = event(
        "Create",
        StackId=long_stack,
        RequestId="r" * 36,
        ResourceProperties=properties(Destination=long_destination),
    )
    export = runner.export_for(resource.parse(create))
    export.begin(create["RequestId"], "Create", 0.0)
    export.run["jobIds"] = [str(10**35 + n) for n in range(100)]
    request: st.RequestRecord = {
        "requestId": create["RequestId"],
        "requestType": "Create",
        "stackId": long_stack,
        "logicalResourceId": create["LogicalResourceId"],
        "exportId": export.export_id,
        "physicalResourceId": "",
        "responseUrl": RESPONSE_URL,
        "receivedAt": 0.0,
        "version": 0,
    }
    data = runner.data(request, export)
    body = answer.body(request, "SUCCESS", export.export_id, data=data)
    assert len(answer.encode(body)) <= answer.RESPONSE_LIMIT
    assert data["JobIds"]  # as many as fit, the rest in the manifest
    assert data["JobCount"] == "100"


def test_a_long_reason_is_shortened_so_the_body_fits() -> None:
    request = {"RequestId": "r", "StackId": STACK_ID, "LogicalResourceId": "Export"}
    body = answer.body(request, "FAILED", "rse-x", reason="é " * 5000)
    encoded = answer.encode(body)
    assert len(encoded) <= answer.RESPONSE_LIMIT
    assert body["Reason"].endswith("...")
    assert len(encoded) > answer.RESPONSE_LIMIT - 8  # shortened, not cut to nothing
    assert answer.body(request, "SUCCESS", "rse-x")["Reason"] == "SUCCESS"


def test_the_put_is_retried_with_backoff_and_never_logs_the_signature(
    answers: Answers, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    waits: list[float] = []
    body = answer.body({"RequestId": "r"}, "SUCCESS", "rse-x")
    answers.refuse = 3
    answer.send(RESPONSE_URL, body, sleep=waits.append)
    assert waits == [1.0, 2.0, 4.0]
    assert answers.sent == [body]
    answers.refuse = answer.PUT_ATTEMPTS
    with pytest.raises(answer.AnswerLost):
        answer.send(RESPONSE_URL, body, sleep=waits.append)
    assert waits[3:] == [1.0, 2.0, 4.0, 8.0, 16.0]
    assert SIGNATURE not in caplog.text
    assert "cloudformation-custom-resource-response.example/presigned?***" in caplog.text


def test_the_response_url_is_never_logged(stub: Stubber, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    create_and_start(stub)
    expect_ended(stub, job("COMPLETED", dict.fromkeys(READ_SETS, "FINISHED")))
    step(1)
    index.on_event(event("Delete", RequestId="delete", PhysicalResourceId=export_id()))
    assert SIGNATURE not in caplog.text
    assert "Delete" in caplog.text


def test_the_handler_imports_only_the_standard_library_and_boto3() -> None:
    import ast
    import sys
    from pathlib import Path

    allowed = {"boto3", "botocore"} | {
        f"mypy_boto3_{service}"
        for service in ("dynamodb", "events", "omics", "s3", "stepfunctions")
    }
    here = Path(index.__file__).parent
    sources = sorted(here.rglob("*.py"))
    assert here / "core" / "records.py" in sources
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
                local = (here / f"{top}.py").exists() or (here / top / "__init__.py").exists()
                assert top in sys.stdlib_module_names or top in allowed or local, (
                    source.name,
                    name,
                )


def test_the_handler_loads_as_lambda_loads_it(tmp_path: Path) -> None:
    """Lambda puts the asset's root on sys.path: every module, the core's too, must import
    from there, where the package's relative imports fail and the fallbacks take over."""
    import shutil
    import subprocess
    import sys

    root = tmp_path / "asset"
    shutil.copytree(Path(index.__file__).parent, root, ignore=shutil.ignore_patterns("__pycache__"))
    modules = sorted(
        ".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__")
        for path in root.rglob("*.py")
    )
    script = "import importlib, sys\nfor name in sys.argv[1:]: importlib.import_module(name)\n"
    loaded = subprocess.run(
        [sys.executable, "-c", script, *modules],
        check=False,
        cwd=root,
        capture_output=True,
        text=True,
    )
    assert loaded.returncode == 0, loaded.stderr
    assert "core.records" in modules and "runner" in modules


def test_the_answer_module_imports_only_the_standard_library() -> None:
    """So that an entry point answers even when the rest of the handler cannot load."""
    import ast
    import sys
    from pathlib import Path

    tree = ast.parse(Path(answer.__file__).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            assert getattr(node, "level", 0) == 0
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
            for name in names:
                assert str(name).split(".")[0] in sys.stdlib_module_names, name


# Archived read sets


def activation_job(status: str, sources: dict[str, str], job_id: str = "7777777777") -> Any:
    return {
        "id": job_id,
        "sequenceStoreId": STORE,
        "status": status,
        "creationTime": CREATED,
        "sources": [
            {
                "readSetId": r,
                "status": s,
                **({"statusMessage": "Restore failed"} if s == "FAILED" else {}),
            }
            for r, s in sources.items()
        ],
    }


def activation_listed(status: str, job_id: str = "7777777777") -> dict[str, Any]:
    return {"id": job_id, "sequenceStoreId": STORE, "status": status, "creationTime": CREATED}


def expect_activation_start(stub: Stubber, ids: list[str], number: int = 0) -> None:
    stub.add_response(
        "start_read_set_activation_job",
        {
            "id": "7777777777",
            "sequenceStoreId": STORE,
            "status": "SUBMITTED",
            "creationTime": CREATED,
        },
        {
            "sequenceStoreId": STORE,
            "sources": [{"readSetId": r} for r in ids],
            "clientToken": activation.activation_client_token(export_id(), 0, number),
        },
    )


def test_an_archived_read_set_is_activated_with_a_client_token_then_exported(
    stub: Stubber, aws: list[dict[str, Any]], answers: Answers
) -> None:
    index.on_event(event("Create"))
    archived, active = READ_SETS
    stub.add_response(
        "get_read_set_metadata",
        {**metadata(archived, "ARCHIVED"), "etag": {"algorithm": "CRAM_MD5up", "source1": "ab12"}},
        {"sequenceStoreId": STORE, "id": archived},
    )
    stub.add_response(
        "get_read_set_metadata", metadata(active), {"sequenceStoreId": STORE, "id": active}
    )
    # The active one is exported at once; the archived one is activated meanwhile.
    expect_activation_start(stub, [archived])
    expect_start(stub, [active])
    assert step()["action"] == "WAIT"
    record = stored(export_id()).record
    assert record is not None and record["status"] == "ACTIVATING"
    assert manifest(export_id())["counts"]["activating"] == 1
    # Export jobs are followed first, then activations.
    expect_ended(stub, job("COMPLETED", {active: "FINISHED"}))
    expect_list(
        stub,
        [activation_listed("COMPLETED")],
        operation="list_read_set_activation_jobs",
    )
    stub.add_response(
        "get_read_set_activation_job",
        activation_job("COMPLETED", {archived: "FINISHED"}),
        {"sequenceStoreId": STORE, "id": "7777777777"},
    )
    expect_start(stub, [archived], batch=1)
    assert step(1)["action"] == "WAIT"
    assert stored(export_id()).record["status"] == "RUNNING"  # type: ignore[index]
    expect_ended(stub, job("COMPLETED", {archived: "FINISHED"}))
    assert step(2)["action"] == "END"
    stub.assert_no_pending_responses()
    assert answers.only()["Status"] == "SUCCESS"
    shown = manifest(export_id())
    outcomes = {r["id"]: r for r in shown["readSets"]}
    assert outcomes[archived]["activationJobId"] == "7777777777"
    assert outcomes[archived]["etag"] == {"algorithm": "CRAM_MD5up", "source1": "ab12"}
    assert "activationJobId" not in outcomes[active]
    assert statuses(aws) == ["SUBMITTED", "ACTIVATING", "RUNNING", "COMPLETED"]


def test_a_read_set_that_fails_to_activate_fails_the_export_naming_it(
    stub: Stubber, answers: Answers
) -> None:
    index.on_event(event("Create", ResourceProperties=properties(ReadSetIds=READ_SETS[:1])))
    (only,) = READ_SETS[:1]
    stub.add_response(
        "get_read_set_metadata", metadata(only, "ARCHIVED"), {"sequenceStoreId": STORE, "id": only}
    )
    expect_activation_start(stub, [only])
    assert step()["action"] == "WAIT"
    expect_list(stub, [activation_listed("FAILED")], operation="list_read_set_activation_jobs")
    stub.add_response(
        "get_read_set_activation_job",
        activation_job("FAILED", {only: "FAILED"}),
        {"sequenceStoreId": STORE, "id": "7777777777"},
    )
    assert step(1)["action"] == "END"
    failed = answers.only()
    assert failed["Status"] == "FAILED"
    assert failed["Reason"].startswith(
        f"1 of 1 HealthOmics activation jobs in sequence store {STORE} did not activate every "
        f"read set: 7777777777 (FAILED). 1 read set(s) failed: {only} (activation job "
        "7777777777: Restore failed)."
    )


def test_a_running_activation_is_observed_with_the_listing_and_got_once_it_ended(
    stub: Stubber, answers: Answers
) -> None:
    index.on_event(event("Create", ResourceProperties=properties(ReadSetIds=READ_SETS[:1])))
    (only,) = READ_SETS[:1]
    stub.add_response(
        "get_read_set_metadata", metadata(only, "ARCHIVED"), {"sequenceStoreId": STORE, "id": only}
    )
    expect_activation_start(stub, [only])
    assert step()["action"] == "WAIT"
    # Hours of activation cost a listing a step, and no Get.
    for steps in (1, 2):
        expect_list(
            stub, [activation_listed("IN_PROGRESS")], operation="list_read_set_activation_jobs"
        )
        assert step(steps)["action"] == "WAIT"
        stub.assert_no_pending_responses()
    (record,) = stored(export_id()).activations.values()
    assert (record["status"], "sources" in record) == ("IN_PROGRESS", False)
    expect_list(stub, [activation_listed("COMPLETED")], operation="list_read_set_activation_jobs")
    stub.add_response(
        "get_read_set_activation_job",
        activation_job("COMPLETED", {only: "FINISHED"}),
        {"sequenceStoreId": STORE, "id": "7777777777"},
    )
    expect_start(stub, [only], ReadSetIds=READ_SETS[:1])
    assert step(3)["action"] == "WAIT"
    (batch,) = stored(export_id()).batches.values()
    assert (batch["readSetIds"], batch["status"]) == ([only], "SUBMITTED")
