"""The deploy-time handler, against botocore's omics model through Stubber."""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from cdk_omics_export.handler import index
from cdk_omics_export.handler.index import CloudFormationEvent, ExportError

STORE = "1234567890"
OTHER_STORE = "9876543210"
JOB = "5555555555"
NEW_JOB = "6666666666"
READ_SETS = ["1111111111", "2222222222"]
DESTINATION = "s3://export-bucket/exports/"
ROLE_ARN = "arn:aws:iam::111122223333:role/ExportRole"
CREATED = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)
RESPONSE_URL = (
    "https://cloudformation-custom-resource-response.example/presigned?X-Amz-Signature=s3cr3t"
)


def properties(**overrides: Any) -> dict[str, Any]:
    props: dict[str, Any] = {
        "ServiceToken": "arn:aws:lambda:us-east-1:111122223333:function:framework-onEvent",
        "SequenceStoreId": STORE,
        "ReadSetIds": list(READ_SETS),
        "Destination": DESTINATION,
        "RoleArn": ROLE_ARN,
        "WaitForCompletion": "true",
    }
    props.update(overrides)
    return props


def event(request_type: str, **fields: Any) -> CloudFormationEvent:
    base: dict[str, Any] = {
        "RequestType": request_type,
        "RequestId": "7f3c5ad4-0b1e-4c2a-9f1e-2a0b4c6d8e01",
        "StackId": "arn:aws:cloudformation:us-east-1:111122223333:stack/Example/guid",
        "LogicalResourceId": "Export16632B07",
        "ResourceType": "Custom::OmicsReadSetExport",
        "ResponseURL": RESPONSE_URL,
        "ResourceProperties": properties(),
    }
    if request_type != "Create":
        base["PhysicalResourceId"] = JOB
    base.update(fields)
    return base  # type: ignore[return-value]


def started(
    job_id: str = JOB, store: str = STORE, destination: str = DESTINATION
) -> dict[str, Any]:
    return {
        "id": job_id,
        "sequenceStoreId": store,
        "destination": destination,
        "status": "SUBMITTED",
        "creationTime": CREATED,
    }


def job(status: str, **fields: Any) -> dict[str, Any]:
    return {**started(), "status": status, **fields}


def start_params(evt: CloudFormationEvent, **overrides: Any) -> dict[str, Any]:
    props = evt["ResourceProperties"]
    params = {
        "sequenceStoreId": props["SequenceStoreId"],
        "destination": props["Destination"],
        "roleArn": props["RoleArn"],
        "sources": [{"readSetId": r} for r in props["ReadSetIds"]],
        "clientToken": index.client_token(evt),
    }
    params.update(overrides)
    return params


@pytest.fixture
def stub(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubber]:
    client = boto3.client(
        "omics", region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
    )
    monkeypatch.setattr(index, "omics_client", lambda: client)
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def expected_data(status: str = "SUBMITTED", job_id: str = JOB) -> dict[str, str]:
    return {
        "JobId": job_id,
        "Status": status,
        "Destination": DESTINATION,
        "SequenceStoreId": STORE,
        "CreationTime": "2026-11-29T06:00:00+00:00",
    }


# Create


def test_create_starts_the_job_and_reports_it(stub: Stubber) -> None:
    evt = event("Create")
    stub.add_response("start_read_set_export_job", started(), start_params(evt))
    assert index.on_event(evt) == {"PhysicalResourceId": JOB, "Data": expected_data()}


def test_retried_create_sends_the_same_client_token(stub: Stubber) -> None:
    first = event("Create")
    again = copy.deepcopy(first)
    stub.add_response("start_read_set_export_job", started(), start_params(first))
    stub.add_response("start_read_set_export_job", started(), start_params(first))
    assert index.on_event(first)["PhysicalResourceId"] == JOB
    assert index.on_event(again)["PhysicalResourceId"] == JOB
    assert index.client_token(first) == index.client_token(again)


def test_client_token_differs_per_request_and_fits_the_api() -> None:
    first = event("Create")
    other_request = event("Create", RequestId="another-request")
    other_resource = event("Create", LogicalResourceId="SecondExport")
    tokens = {index.client_token(e) for e in (first, other_request, other_resource)}
    assert len(tokens) == 3
    assert all(1 <= len(t) <= 127 for t in tokens)


def test_create_rejects_ids_that_were_tokens_at_synth_time(stub: Stubber) -> None:
    evt = event("Create", ResourceProperties=properties(SequenceStoreId="store-abc"))
    with pytest.raises(ExportError, match="sequence_store_id: 'store-abc' is not a sequence"):
        index.on_event(evt)


# is_complete


@pytest.mark.parametrize("status", ["SUBMITTED", "IN_PROGRESS", "CANCELLING"])
def test_running_job_is_not_complete(stub: Stubber, status: str) -> None:
    stub.add_response("get_read_set_export_job", job(status), {"sequenceStoreId": STORE, "id": JOB})
    assert index.is_complete(event("Create", PhysicalResourceId=JOB)) == {"IsComplete": False}


def test_completed_job_is_complete_with_final_data(stub: Stubber) -> None:
    stub.add_response(
        "get_read_set_export_job",
        job(
            "COMPLETED",
            completionTime=CREATED,
            readSets=[{"id": READ_SETS[0], "status": "FINISHED"}],
        ),
        {"sequenceStoreId": STORE, "id": JOB},
    )
    assert index.is_complete(event("Create", PhysicalResourceId=JOB)) == {
        "IsComplete": True,
        "Data": expected_data("COMPLETED"),
    }


@pytest.mark.parametrize("status", ["FAILED", "CANCELLED", "COMPLETED_WITH_FAILURES"])
def test_unsuccessful_job_fails_naming_job_message_and_read_sets(
    stub: Stubber, status: str
) -> None:
    stub.add_response(
        "get_read_set_export_job",
        job(
            status,
            statusMessage="Some read sets could not be exported",
            readSets=[
                {"id": READ_SETS[0], "status": "FINISHED"},
                {"id": READ_SETS[1], "status": "FAILED", "statusMessage": "Read set is ARCHIVED"},
            ],
        ),
        {"sequenceStoreId": STORE, "id": JOB},
    )
    with pytest.raises(ExportError) as raised:
        index.is_complete(event("Create", PhysicalResourceId=JOB))
    assert str(raised.value) == (
        f"HealthOmics export job {JOB} in sequence store {STORE} ended {status}: "
        "Some read sets could not be exported. 1 read set(s) failed: "
        "2222222222 (Read set is ARCHIVED)."
    )


def test_failure_message_stays_short_with_many_failed_read_sets() -> None:
    read_sets = [
        {"id": str(3000000000 + n), "status": "FAILED", "statusMessage": "x" * 120}
        for n in range(100)
    ]
    message = index.failure_message(job("FAILED", statusMessage="y" * 127, readSets=read_sets))
    assert len(message) <= index.MAX_FAILURE_MESSAGE_LENGTH
    assert message.startswith(
        f"HealthOmics export job {JOB} in sequence store {STORE} ended FAILED"
    )
    assert "100 read set(s) failed: 3000000000 (" in message


def test_failure_message_without_detail() -> None:
    assert index.failure_message(job("FAILED")) == (
        f"HealthOmics export job {JOB} in sequence store {STORE} ended FAILED."
    )


def test_without_waiting_complete_as_soon_as_submitted(stub: Stubber) -> None:
    evt = event(
        "Create",
        PhysicalResourceId=JOB,
        ResourceProperties=properties(WaitForCompletion="false"),
        Data=expected_data(),
    )
    # No stubbed response: any API call would fail the test.
    assert index.is_complete(evt) == {"IsComplete": True}


# Update


@pytest.mark.parametrize(
    "change",
    [
        {"SequenceStoreId": OTHER_STORE},
        {"ReadSetIds": [READ_SETS[0]]},
        {"ReadSetIds": [*READ_SETS, "3333333333"]},
        {"Destination": "s3://export-bucket/other/"},
    ],
)
def test_update_that_changes_the_export_starts_a_new_job(
    stub: Stubber, change: dict[str, Any]
) -> None:
    evt = event(
        "Update", ResourceProperties=properties(**change), OldResourceProperties=properties()
    )
    new_props = evt["ResourceProperties"]
    response = started(NEW_JOB, new_props["SequenceStoreId"], new_props["Destination"])
    stub.add_response("start_read_set_export_job", response, start_params(evt))
    result = index.on_event(evt)
    assert result["PhysicalResourceId"] == NEW_JOB
    assert result["Data"]["JobId"] == NEW_JOB


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"ReadSetIds": list(reversed(READ_SETS))},
        {"WaitForCompletion": "false"},
        {"RoleArn": "arn:aws:iam::111122223333:role/Renamed"},
    ],
)
def test_update_that_keeps_the_export_keeps_the_job_and_its_data(
    stub: Stubber, change: dict[str, Any]
) -> None:
    evt = event(
        "Update", ResourceProperties=properties(**change), OldResourceProperties=properties()
    )
    stub.add_response(
        "get_read_set_export_job", job("COMPLETED"), {"sequenceStoreId": STORE, "id": JOB}
    )
    assert index.on_event(evt) == {"PhysicalResourceId": JOB, "Data": expected_data("COMPLETED")}


# Delete


def test_delete_makes_no_call_and_keeps_the_physical_id(stub: Stubber) -> None:
    # No stubbed response: any API call would fail the test.
    assert index.on_event(event("Delete")) == {}
    assert index.is_complete(event("Delete")) == {"IsComplete": True}


def test_delete_after_failed_create_never_fails(stub: Stubber) -> None:
    evt = event(
        "Delete",
        PhysicalResourceId="AWSCDK::CustomResourceProviderFramework::CREATE_FAILED",
        ResourceProperties=properties(SequenceStoreId="not-a-store"),
    )
    assert index.on_event(evt) == {}
    assert index.is_complete(evt) == {"IsComplete": True}


# Errors


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("ValidationException", 400),
        ("AccessDeniedException", 403),
        ("ResourceNotFoundException", 404),
        ("ServiceQuotaExceededException", 402),
    ],
)
def test_start_errors_name_operation_store_read_sets_and_service_message(
    stub: Stubber, code: str, status: int
) -> None:
    evt = event("Create")
    stub.add_client_error(
        "start_read_set_export_job",
        service_error_code=code,
        service_message="The service said no",
        http_status_code=status,
        expected_params=start_params(evt),
    )
    with pytest.raises(ExportError) as raised:
        index.on_event(evt)
    assert str(raised.value) == (
        f"StartReadSetExportJob failed for sequence store {STORE} "
        f"(read sets 1111111111, 2222222222): {code}: The service said no"
    )


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("ValidationException", 400),
        ("AccessDeniedException", 403),
        ("ResourceNotFoundException", 404),
    ],
)
def test_get_errors_name_operation_job_store_and_service_message(
    stub: Stubber, code: str, status: int
) -> None:
    stub.add_client_error(
        "get_read_set_export_job",
        service_error_code=code,
        service_message="The service\nsaid no",
        http_status_code=status,
        expected_params={"sequenceStoreId": STORE, "id": JOB},
    )
    with pytest.raises(ExportError) as raised:
        index.is_complete(event("Create", PhysicalResourceId=JOB))
    assert str(raised.value) == (
        f"GetReadSetExportJob failed for export job {JOB} in sequence store {STORE}: "
        f"{code}: The service said no"
    )


def test_client_retries_transient_errors_with_botocore_standard_mode(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    index.omics_client.cache_clear()
    client = index.omics_client()
    assert client is index.omics_client()
    retries = client.meta.config.retries
    assert retries is not None
    assert retries["mode"] == "standard"
    assert retries["total_max_attempts"] == index.RETRY_MAX_ATTEMPTS


# Logging


def test_logs_never_contain_the_response_url(
    stub: Stubber, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    evt = event("Create")
    stub.add_response("start_read_set_export_job", started(), start_params(evt))
    index.on_event(evt)
    index.on_event(event("Delete"))
    assert "Export16632B07" in caplog.text
    assert RESPONSE_URL not in caplog.text
    assert "s3cr3t" not in caplog.text


# Waiting no longer than the timeout


def test_create_records_when_waiting_must_stop(
    stub: Stubber, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(index, "now", lambda: CREATED)
    evt = event("Create", ResourceProperties=properties(TimeoutSeconds="3000"))
    stub.add_response("start_read_set_export_job", started(), start_params(evt))
    data = index.on_event(evt)["Data"]
    assert data == {**expected_data(), "WaitDeadline": "2026-11-29T06:50:00+00:00"}


@pytest.mark.parametrize(("minutes_left", "fails"), [(10, False), (0.75, False), (0.25, True)])
def test_running_job_fails_with_its_id_before_the_waiter_gives_up(
    stub: Stubber, monkeypatch: pytest.MonkeyPatch, minutes_left: float, fails: bool
) -> None:
    deadline = datetime(2026, 11, 29, 6, 50, tzinfo=UTC)
    monkeypatch.setattr(index, "now", lambda: deadline - timedelta(minutes=minutes_left))
    evt = event(
        "Create",
        PhysicalResourceId=JOB,
        ResourceProperties=properties(TimeoutSeconds="3000", PollIntervalSeconds="30"),
        Data={**expected_data(), "WaitDeadline": deadline.isoformat()},
    )
    stub.add_response(
        "get_read_set_export_job", job("IN_PROGRESS"), {"sequenceStoreId": STORE, "id": JOB}
    )
    if not fails:
        assert index.is_complete(evt) == {"IsComplete": False}
        return
    with pytest.raises(ExportError) as raised:
        index.is_complete(evt)
    assert str(raised.value).startswith(
        f"HealthOmics export job {JOB} in sequence store {STORE} is still IN_PROGRESS after "
        "the 3000 s the deploy waits (timeout). The job keeps running and cannot be cancelled; "
        f"its files will still arrive at {DESTINATION}."
    )
