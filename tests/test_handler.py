"""The deploy-time handler, against botocore's omics model through Stubber.

Every HealthOmics request the handler makes is checked by Stubber against the service model
and the expected parameters. The export's manifest (S3 in Lambda) is kept in memory here;
tests/test_rehearsal.py covers it through a real S3 client.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from cdk_omics_export.handler import export as export_module
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
        "MaxRequestsPerSecond": "100",
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


def metadata(read_set_id: str, status: str = "ACTIVE", store: str = STORE) -> dict[str, Any]:
    return {
        "id": read_set_id,
        "arn": f"arn:aws:omics:us-east-1:111122223333:sequenceStore/{store}/readSet/{read_set_id}",
        "sequenceStoreId": store,
        "status": status,
        "fileType": "CRAM",
        "creationTime": CREATED,
    }


def start_params(evt: CloudFormationEvent, batch: int = 0) -> dict[str, Any]:
    props = evt["ResourceProperties"]
    return {
        "sequenceStoreId": props["SequenceStoreId"],
        "destination": props["Destination"],
        "roleArn": props["RoleArn"],
        "sources": [{"readSetId": r} for r in props["ReadSetIds"]],
        "clientToken": index.client_token(evt, batch),
    }


def expect_preflight(stub: Stubber, evt: CloudFormationEvent) -> None:
    store = evt["ResourceProperties"]["SequenceStoreId"]
    for read_set_id in evt["ResourceProperties"]["ReadSetIds"]:
        stub.add_response(
            "get_read_set_metadata",
            metadata(read_set_id, store=store),
            {"sequenceStoreId": store, "id": read_set_id},
        )


def expect_create(stub: Stubber, evt: CloudFormationEvent, response: dict[str, Any]) -> None:
    expect_preflight(stub, evt)
    stub.add_response("start_read_set_export_job", response, start_params(evt))


@pytest.fixture
def manifests(monkeypatch: pytest.MonkeyPatch) -> dict[str, dict[str, Any]]:
    """The export manifests, by export id, instead of S3."""
    saved: dict[str, dict[str, Any]] = {}

    def load(destination: str, export_id: str) -> dict[str, Any] | None:
        found = saved.get(export_id)
        return copy.deepcopy(found) if found is not None else None

    def save(destination: str, state: dict[str, Any]) -> None:
        saved[state["exportId"]] = copy.deepcopy(state)

    monkeypatch.setattr(index, "_load_state", load)
    monkeypatch.setattr(index, "_save_state", save)
    return saved


@pytest.fixture
def stub(
    monkeypatch: pytest.MonkeyPatch, manifests: dict[str, dict[str, Any]]
) -> Iterator[Stubber]:
    client = boto3.client(
        "omics", region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
    )
    monkeypatch.setattr(index, "omics_client", lambda: client)
    monkeypatch.setattr(index, "now", lambda: CREATED)
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def expected_data(status: str = "SUBMITTED", **overrides: str) -> dict[str, str]:
    export_id = index.export_id_for(event("Create"))
    return {
        "JobId": JOB,
        "JobIds": JOB,
        "FailedReadSetCount": "0",
        "Status": status,
        "Destination": DESTINATION,
        "SequenceStoreId": STORE,
        "CreationTime": "2026-11-29T06:00:00+00:00",
        "JobCount": "1",
        "ReadSetCount": "2",
        "ManifestUri": f"s3://export-bucket/exports/cdk-omics-export/{export_id}.json",
        **overrides,
    }


def created(stub: Stubber) -> tuple[CloudFormationEvent, str]:
    """A Create that started JOB; returns the is_complete event and the physical id."""
    evt = event("Create")
    expect_create(stub, evt, started())
    result = index.on_event(evt)
    return {**evt, **result}, result["PhysicalResourceId"]  # type: ignore[typeddict-item]


# Create


def test_create_checks_the_read_sets_starts_the_job_and_reports_it(stub: Stubber) -> None:
    evt = event("Create")
    expect_create(stub, evt, started())
    result = index.on_event(evt)
    assert result == {
        "PhysicalResourceId": index.export_id_for(evt),
        "Data": expected_data("IN_PROGRESS"),
    }


def test_retried_create_sends_the_same_client_token(
    stub: Stubber, manifests: dict[str, dict[str, Any]]
) -> None:
    first = event("Create")
    again = copy.deepcopy(first)
    expect_create(stub, first, started())
    assert index.on_event(first)["Data"]["JobId"] == JOB
    # The second delivery lost the first's manifest: it starts again, with the same token.
    manifests.clear()
    expect_create(stub, again, started())
    assert index.on_event(again)["Data"]["JobId"] == JOB
    assert index.client_token(first) == index.client_token(again)


def test_client_token_differs_per_request_and_batch_and_fits_the_api() -> None:
    first = event("Create")
    other_request = event("Create", RequestId="another-request")
    other_resource = event("Create", LogicalResourceId="SecondExport")
    tokens = {index.client_token(e) for e in (first, other_request, other_resource)}
    tokens.add(index.client_token(first, batch=1))
    assert len(tokens) == 4
    assert all(1 <= len(t) <= 127 for t in tokens)


def test_create_rejects_ids_that_were_tokens_at_synth_time(stub: Stubber) -> None:
    evt = event("Create", ResourceProperties=properties(SequenceStoreId="store-abc"))
    with pytest.raises(ExportError, match="sequence_store_id: 'store-abc' is not a sequence"):
        index.on_event(evt)


def test_preflight_failure_starts_no_job(stub: Stubber) -> None:
    evt = event("Create")
    stub.add_response(
        "get_read_set_metadata",
        metadata(READ_SETS[0], "ARCHIVED"),
        {"sequenceStoreId": STORE, "id": READ_SETS[0]},
    )
    stub.add_client_error(
        "get_read_set_metadata",
        service_error_code="ResourceNotFoundException",
        http_status_code=404,
        expected_params={"sequenceStoreId": STORE, "id": READ_SETS[1]},
    )
    with pytest.raises(ExportError) as raised:
        index.on_event(evt)
    assert str(raised.value) == (
        f"Pre-flight: 2 of 2 read sets in sequence store {STORE} cannot be exported: "
        f"{READ_SETS[0]} (ARCHIVED), {READ_SETS[1]} (not found). No export job was started. "
        "Archived read sets can be restored with StartReadSetActivationJob."
    )


# is_complete


@pytest.mark.parametrize("status", ["SUBMITTED", "IN_PROGRESS", "CANCELLING"])
def test_running_job_is_not_complete(stub: Stubber, status: str) -> None:
    evt, _ = created(stub)
    stub.add_response("get_read_set_export_job", job(status), {"sequenceStoreId": STORE, "id": JOB})
    assert index.is_complete(evt) == {"IsComplete": False}


def test_completed_job_is_complete_with_final_data(stub: Stubber) -> None:
    evt, _ = created(stub)
    stub.add_response(
        "get_read_set_export_job",
        job(
            "COMPLETED",
            completionTime=CREATED,
            readSets=[{"id": r, "status": "FINISHED"} for r in READ_SETS],
        ),
        {"sequenceStoreId": STORE, "id": JOB},
    )
    assert index.is_complete(evt) == {"IsComplete": True, "Data": expected_data("COMPLETED")}


@pytest.mark.parametrize("status", ["FAILED", "CANCELLED", "COMPLETED_WITH_FAILURES"])
def test_unsuccessful_job_fails_naming_job_message_and_read_sets(
    stub: Stubber, status: str
) -> None:
    evt, _ = created(stub)
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
        index.is_complete(evt)
    assert str(raised.value) == (
        f"HealthOmics export job {JOB} in sequence store {STORE} ended {status}: "
        "Some read sets could not be exported. 1 read set(s) failed: "
        "2222222222 (Read set is ARCHIVED)."
    )


def test_failure_message_stays_short_with_many_failed_read_sets(stub: Stubber) -> None:
    evt, _ = created(stub)
    read_sets = [
        {"id": str(3000000000 + n), "status": "FAILED", "statusMessage": "x" * 120}
        for n in range(100)
    ]
    stub.add_response(
        "get_read_set_export_job",
        job("FAILED", statusMessage="y" * 127, readSets=read_sets),
        {"sequenceStoreId": STORE, "id": JOB},
    )
    with pytest.raises(ExportError) as raised:
        index.is_complete(evt)
    message = str(raised.value)
    assert len(message) <= export_module.MAX_MESSAGE_LENGTH
    assert message.startswith(f"HealthOmics export job {JOB} in sequence store {STORE} ended")
    assert "100 read set(s) failed: 3000000000 (" in message


def test_without_waiting_complete_once_every_job_is_submitted(stub: Stubber) -> None:
    evt = event("Create", ResourceProperties=properties(WaitForCompletion="false"))
    expect_create(stub, evt, started())
    result = index.on_event(evt)
    followed = {**evt, **result}
    stub.add_response(
        "get_read_set_export_job", job("IN_PROGRESS"), {"sequenceStoreId": STORE, "id": JOB}
    )
    assert index.is_complete(followed) == {  # type: ignore[arg-type]
        "IsComplete": True,
        "Data": expected_data("SUBMITTED"),
    }


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
    _, physical_id = created(stub)
    evt = event(
        "Update",
        RequestId="update-request",
        PhysicalResourceId=physical_id,
        ResourceProperties=properties(**change),
        OldResourceProperties=properties(),
    )
    new_props = evt["ResourceProperties"]
    response = started(NEW_JOB, new_props["SequenceStoreId"], new_props["Destination"])
    expect_create(stub, evt, response)
    result = index.on_event(evt)
    assert result["PhysicalResourceId"] == index.export_id_for(evt) != physical_id
    assert result["Data"]["JobId"] == NEW_JOB


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"ReadSetIds": list(reversed(READ_SETS))},
        {"WaitForCompletion": "false"},
        {"RoleArn": "arn:aws:iam::111122223333:role/Renamed"},
        {"TimeoutSeconds": "600"},
    ],
)
def test_update_that_keeps_the_export_keeps_the_job_and_its_data(
    stub: Stubber, change: dict[str, Any]
) -> None:
    evt, physical_id = created(stub)
    stub.add_response(
        "get_read_set_export_job", job("COMPLETED"), {"sequenceStoreId": STORE, "id": JOB}
    )
    index.is_complete(evt)
    update = event(
        "Update",
        RequestId="update-request",
        PhysicalResourceId=physical_id,
        ResourceProperties=properties(**change),
        OldResourceProperties=properties(),
    )
    result = index.on_event(update)  # no API call: the manifest has it all
    assert result["PhysicalResourceId"] == physical_id
    data = dict(result["Data"])
    data.pop("WaitDeadline", None)
    assert data == expected_data("COMPLETED")


def test_update_of_an_export_without_manifest_does_not_fail(stub: Stubber) -> None:
    update = event(
        "Update",
        PhysicalResourceId="unknown-export",
        ResourceProperties=properties(),
        OldResourceProperties=properties(),
    )
    result = index.on_event(update)
    assert result["Data"]["Status"] == "UNKNOWN"
    # Every attribute the template reads is still there.
    assert set(expected_data()) <= set(result["Data"])
    assert index.is_complete({**update, **result}) == {"IsComplete": True}  # type: ignore[arg-type]


# Delete


def test_delete_makes_no_call_and_keeps_the_physical_id(stub: Stubber) -> None:
    # No stubbed response: any API call would fail the test.
    deleted = event("Delete", PhysicalResourceId="some-export")
    assert index.on_event(deleted) == {}
    assert index.is_complete(deleted) == {"IsComplete": True}


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
    ],
)
def test_start_errors_name_operation_store_read_sets_and_service_message(
    stub: Stubber, code: str, status: int
) -> None:
    evt = event("Create")
    expect_preflight(stub, evt)
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


def test_quota_exceeded_on_start_waits_for_the_next_poll(stub: Stubber) -> None:
    evt = event("Create")
    expect_preflight(stub, evt)
    stub.add_client_error(
        "start_read_set_export_job",
        service_error_code="ServiceQuotaExceededException",
        http_status_code=402,
        expected_params=start_params(evt),
    )
    result = index.on_event(evt)
    assert result["Data"]["JobId"] == ""
    stub.add_response("start_read_set_export_job", started(), start_params(evt))
    assert index.is_complete({**evt, **result}) == {"IsComplete": False}  # type: ignore[arg-type]


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
    evt, physical_id = created(stub)
    stub.add_client_error(
        "get_read_set_export_job",
        service_error_code=code,
        service_message="The service\nsaid no",
        http_status_code=status,
        expected_params={"sequenceStoreId": STORE, "id": JOB},
    )
    with pytest.raises(ExportError) as raised:
        index.is_complete(evt)
    assert str(raised.value) == (
        f"GetReadSetExportJob failed for export job {JOB} in sequence store {STORE}: "
        f"{code}: The service said no. Export jobs already started: {JOB} (manifest "
        f"s3://export-bucket/exports/cdk-omics-export/{physical_id}.json)."
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
    index.omics_client.cache_clear()


# Logging


def test_logs_never_contain_the_response_url(
    stub: Stubber, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    created(stub)
    index.on_event(event("Delete", PhysicalResourceId="x"))
    assert "Export16632B07" in caplog.text
    assert RESPONSE_URL not in caplog.text
    assert "s3cr3t" not in caplog.text


# Waiting no longer than the timeout


def test_create_records_when_waiting_must_stop(stub: Stubber) -> None:
    evt = event("Create", ResourceProperties=properties(TimeoutSeconds="3000"))
    expect_create(stub, evt, started())
    data = index.on_event(evt)["Data"]
    assert data["WaitDeadline"] == "2026-11-29T06:50:00+00:00"


@pytest.mark.parametrize(("minutes_left", "fails"), [(10, False), (0.75, False), (0.25, True)])
def test_running_job_fails_with_its_id_before_the_waiter_gives_up(
    stub: Stubber, monkeypatch: pytest.MonkeyPatch, minutes_left: float, fails: bool
) -> None:
    props = properties(TimeoutSeconds="3000", PollIntervalSeconds="30")
    evt = event("Create", ResourceProperties=props)
    expect_create(stub, evt, started())
    followed: Any = {**evt, **index.on_event(evt)}
    deadline = datetime.fromisoformat(followed["Data"]["WaitDeadline"])
    monkeypatch.setattr(index, "now", lambda: deadline - timedelta(minutes=minutes_left))
    stub.add_response(
        "get_read_set_export_job", job("IN_PROGRESS"), {"sequenceStoreId": STORE, "id": JOB}
    )
    if not fails:
        assert index.is_complete(followed) == {"IsComplete": False}
        return
    with pytest.raises(ExportError) as raised:
        index.is_complete(followed)
    assert str(raised.value).startswith(
        f"HealthOmics export job {JOB} in sequence store {STORE} is still IN_PROGRESS after "
        "the 3000 s the deploy waits (timeout). The job keeps running and cannot be cancelled; "
        f"its files will still arrive at {DESTINATION}."
    )


def test_the_handler_imports_as_lambda_loads_it(tmp_path: Any) -> None:
    """Lambda puts the asset's root on sys.path and imports `index`: no package, no CDK."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    handler = Path(index.__file__).parent
    shutil.copytree(handler, tmp_path / "task", ignore=shutil.ignore_patterns("__pycache__"))
    probe = (
        "import sys, index; "
        "assert index.on_event({'RequestType': 'Delete'}) == {}; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('aws_cdk', 'constructs', 'jsii', 'cdk_omics_export')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path / "task",
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
