"""The deploy-time handler, against botocore's omics model through Stubber.

Every HealthOmics request the handler makes is checked by Stubber against the service model
and the expected parameters. The state table and the destination are moto's DynamoDB and S3
(in process); tests/test_rehearsal.py covers the whole stack under enforced IAM.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from cdk_omics_export.handler import export as exports
from cdk_omics_export.handler import index
from cdk_omics_export.handler import state as st
from cdk_omics_export.handler.index import CloudFormationEvent, ExportError

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


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
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
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_DYNAMODB"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        boto3.DEFAULT_SESSION = None
        for make in (index.s3_client, index.dynamodb_client, index.omics_client):
            make.cache_clear()
        create_state_table(boto3.client("dynamodb"), TABLE)
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        yield
        for make in (index.s3_client, index.dynamodb_client, index.omics_client):
            getattr(make, "cache_clear", lambda: None)()
        boto3.DEFAULT_SESSION = None


@pytest.fixture
def stub(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubber]:
    client = boto3.client("omics")
    monkeypatch.setattr(index, "omics_client", lambda: client)
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def stored(export: str) -> st.Snapshot:
    return index.state_store().load(export)


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


def test_create_checks_starts_and_reports(stub: Stubber) -> None:
    expect_preflight(stub, READ_SETS)
    expect_start(stub, READ_SETS)
    result = index.on_event(event("Create"))
    export = export_id()
    assert result == {
        "PhysicalResourceId": export,
        "Data": {
            "ExportId": export,
            "JobId": JOB,
            "JobIds": JOB,
            "Status": "IN_PROGRESS",
            "Destination": DESTINATION,
            "SequenceStoreId": STORE,
            "CreationTime": result["Data"]["CreationTime"],
            "JobCount": "1",
            "ReadSetCount": "2",
            "ExportedReadSetCount": "0",
            "FailedReadSetCount": "0",
            "ManifestUri": f"s3://{BUCKET}/exports/cdk-omics-export/{export}.json",
        },
    }
    snapshot = stored(export)
    assert snapshot.record is not None
    assert snapshot.record["run"]["jobIds"] == [JOB]
    (batch,) = snapshot.batches.values()
    assert (batch["status"], batch["jobId"], batch["readSetIds"]) == ("SUBMITTED", JOB, READ_SETS)


def test_the_manifest_carries_the_destinations_encryption_headers(stub: Stubber) -> None:
    expect_preflight(stub, READ_SETS)
    expect_start(stub, READ_SETS)
    index.on_event(event("Create"))
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
    expect_preflight(stub, READ_SETS)
    expect_start(stub, READ_SETS)
    index.on_event(event("Create"))
    record = stored(export_id()).record
    assert record is not None
    assert record["run"]["deadline"] == 1_000_000.0 + 3000


def test_the_same_create_delivered_twice_keeps_one_run(stub: Stubber) -> None:
    expect_preflight(stub, READ_SETS)
    expect_start(stub, READ_SETS)
    first = index.on_event(event("Create"))
    expect_get(stub, job("IN_PROGRESS"))
    again = index.on_event(event("Create"))
    assert first["PhysicalResourceId"] == again["PhysicalResourceId"]
    assert again["Data"]["JobIds"] == JOB
    record = stored(export_id()).record
    assert record is not None and record["runs"] == 1


def test_preflight_names_missing_and_archived_read_sets_and_starts_nothing(
    stub: Stubber,
) -> None:
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
    with pytest.raises(ExportError) as failed:
        index.on_event(event("Create"))
    assert str(failed.value) == (
        f"Pre-flight: 2 of 2 read sets to export from sequence store {STORE} cannot be "
        f"exported: {READ_SETS[0]} (ARCHIVED), {READ_SETS[1]} (not found). No export job was "
        "started. Archived read sets can be restored with StartReadSetActivationJob. "
        f"Handler logs: {LOG_GROUP}."
    )
    record = stored(export_id()).record
    assert record is not None and record["status"] == "FAILED"
    assert manifest(export_id())["status"] == "FAILED"


def test_a_manifest_that_cannot_be_written_never_hides_the_error(
    stub: Stubber, caplog: pytest.LogCaptureFixture
) -> None:
    stub.add_client_error(
        "get_read_set_metadata",
        "ResourceNotFoundException",
        "Read set not found",
        404,
        expected_params={"sequenceStoreId": STORE, "id": READ_SETS[0]},
    )
    expect_preflight(stub, READ_SETS[1:])
    missing_bucket = properties(Destination="s3://no-such-bucket/")
    with pytest.raises(ExportError, match=r"Pre-flight: 1 of 2 .*1111111111 \(not found\)"):
        index.on_event(event("Create", ResourceProperties=missing_bucket))
    assert "could not write the manifest" in caplog.text


# Following


def test_is_complete_follows_the_job_to_its_end(stub: Stubber) -> None:
    expect_preflight(stub, READ_SETS)
    expect_start(stub, READ_SETS)
    index.on_event(event("Create"))
    expect_get(stub, job("IN_PROGRESS"))
    assert index.is_complete(event("Create")) == {"IsComplete": False}
    expect_get(stub, job("COMPLETED", dict.fromkeys(READ_SETS, "FINISHED")))
    done = index.is_complete(event("Create"))
    assert done["IsComplete"] is True
    assert done["Data"]["Status"] == "COMPLETED"
    assert done["Data"]["ExportedReadSetCount"] == "2"
    assert manifest(export_id())["counts"] == {
        "selected": 2,
        "exported": 2,
        "failed": 0,
        "inFlight": 0,
    }


@pytest.mark.parametrize("allow", [True, False])
def test_partial_failures_fail_or_complete_as_asked(stub: Stubber, allow: bool) -> None:
    props = properties(AllowPartialFailure="true") if allow else properties()
    expect_preflight(stub, READ_SETS)
    expect_start(stub, READ_SETS)
    index.on_event(event("Create", ResourceProperties=props))
    expect_get(
        stub,
        job(
            "COMPLETED_WITH_FAILURES",
            {READ_SETS[0]: "FINISHED", READ_SETS[1]: "FAILED"},
            statusMessage="Some read sets failed",
        ),
    )
    if allow:
        done = index.is_complete(event("Create", ResourceProperties=props))
        assert done["Data"]["Status"] == "COMPLETED_WITH_FAILURES"
        assert done["Data"]["FailedReadSetCount"] == "1"
        return
    with pytest.raises(ExportError) as failed:
        index.is_complete(event("Create", ResourceProperties=props))
    assert str(failed.value) == (
        f"HealthOmics export job {JOB} in sequence store {STORE} ended "
        "COMPLETED_WITH_FAILURES: Some read sets failed. 1 read set(s) failed: "
        f"{READ_SETS[1]} (Archived). Handler logs: {LOG_GROUP}."
    )


def test_a_quota_refusal_waits_for_a_later_poll(stub: Stubber) -> None:
    expect_preflight(stub, READ_SETS)
    stub.add_client_error(
        "start_read_set_export_job", "ServiceQuotaExceededException", "Too many jobs", 402
    )
    result = index.on_event(event("Create"))
    assert result["Data"]["JobCount"] == "0"
    (batch,) = stored(export_id()).batches.values()
    assert batch["status"] == st.PENDING
    record = stored(export_id()).record
    assert record is not None and "quotaWait" in record["run"]


def test_the_waiter_fails_with_the_job_before_its_bare_timeout(
    stub: Stubber, monkeypatch: pytest.MonkeyPatch
) -> None:
    expect_preflight(stub, READ_SETS)
    expect_start(stub, READ_SETS)
    monkeypatch.setattr(index, "now", lambda: 1_000_000.0)
    index.on_event(event("Create", ResourceProperties=properties(TimeoutSeconds="600")))
    monkeypatch.setattr(index, "now", lambda: 1_000_000.0 + 590)
    expect_get(stub, job("IN_PROGRESS"))
    with pytest.raises(ExportError, match=f"export job {JOB} .* still IN_PROGRESS after the 600 s"):
        index.is_complete(event("Create", ResourceProperties=properties(TimeoutSeconds="600")))


def test_out_of_time_the_invocation_sends_nothing_and_the_next_carries_on(
    stub: Stubber,
) -> None:
    class ShortLived:
        aws_request_id = "short"

        @staticmethod
        def get_remaining_time_in_millis() -> int:
            return 34_000  # too little to call and still save the state

    result = index.on_event(event("Create"), ShortLived())
    assert result["Data"]["Status"] == "SELECTING"
    expect_preflight(stub, READ_SETS)
    expect_start(stub, READ_SETS)
    assert index.is_complete(event("Create")) == {"IsComplete": False}
    assert stored(export_id()).record["run"]["jobIds"] == [JOB]  # type: ignore[index]


def test_a_stale_waiter_stops_without_calling_the_service(stub: Stubber) -> None:
    expect_preflight(stub, READ_SETS)
    expect_start(stub, READ_SETS)
    index.on_event(event("Create"))
    expect_get(stub, job("IN_PROGRESS"))
    newer = event("Update", RequestId="newer", OldResourceProperties=properties())
    index.on_event(newer)
    with pytest.raises(ExportError, match="superseded by request newer"):
        index.is_complete(event("Create"))


# Delete


def test_delete_marks_the_export_cancelled_and_calls_no_api(stub: Stubber) -> None:
    expect_preflight(stub, READ_SETS)
    expect_start(stub, READ_SETS)
    created = index.on_event(event("Create"))
    # A cancelled Create's Delete may carry a physical id CloudFormation made up.
    assert index.on_event(event("Delete", PhysicalResourceId="made-up-by-cloudformation")) == {}
    record = stored(created["PhysicalResourceId"]).record
    assert record is not None and record["cancelled"] is True
    assert index.is_complete(event("Delete")) == {"IsComplete": True}


def test_delete_never_fails(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
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

    allowed = {"boto3", "botocore", "mypy_boto3_dynamodb", "mypy_boto3_omics", "mypy_boto3_s3"}
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
