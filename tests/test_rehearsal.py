"""Deploy rehearsals: the real handler, a real boto3 client, a local HealthOmics endpoint.

Each test plays CloudFormation's custom-resource lifecycle through the Provider framework's
rules (provider_rehearsal.py) against the endpoint (omics_endpoint.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from cdk_omics_export.handler import index

from .omics_endpoint import OmicsEndpoint
from .provider_rehearsal import CREATE_FAILED_MARKER, Rehearsal

STORE = "1234567890"
READ_SETS = ["1111111111", "2222222222", "3333333333"]


def properties(**overrides: Any) -> dict[str, Any]:
    return {
        "ServiceToken": "arn:aws:lambda:us-east-1:111122223333:function:framework-onEvent",
        "SequenceStoreId": STORE,
        "ReadSetIds": list(READ_SETS),
        "Destination": "s3://export-bucket/exports/",
        "RoleArn": "arn:aws:iam::111122223333:role/ExportRole",
        "WaitForCompletion": True,
        "TimeoutSeconds": 3000,
        "PollIntervalSeconds": 30,
        **overrides,
    }


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[OmicsEndpoint]:
    service = OmicsEndpoint(polls_submitted=1, polls_in_progress=2)
    with service.serve() as url:
        monkeypatch.setenv("AWS_ENDPOINT_URL_OMICS", url)
        monkeypatch.setenv("AWS_DISABLE_HOST_PREFIX_INJECTION", "true")
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAREHEARSAL")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "rehearsal")
        monkeypatch.delenv("AWS_PROFILE", raising=False)
        index.omics_client.cache_clear()
        yield service
    index.omics_client.cache_clear()


def reported(rehearsal: Rehearsal, job_id: str) -> bool:
    return any(
        job_id in (r.physical_id, r.data.get("JobId")) or job_id in r.reason
        for r in rehearsal.responses
    )


def assert_every_job_reported(endpoint: OmicsEndpoint, rehearsal: Rehearsal) -> None:
    for job_id in endpoint.jobs:
        assert reported(rehearsal, job_id), job_id


def test_full_lifecycle(endpoint: OmicsEndpoint) -> None:
    cfn = Rehearsal()
    created = cfn.request("Create", properties())
    assert created.status == "SUCCESS", created.reason
    (job_id,) = endpoint.jobs
    assert created.physical_id == job_id
    assert created.data["JobId"] == job_id
    assert created.data["Status"] == "COMPLETED"
    assert created.polls == 3  # SUBMITTED, IN_PROGRESS, IN_PROGRESS -> COMPLETED on poll 3

    unchanged = cfn.request(
        "Update",
        properties(WaitForCompletion=True, TimeoutSeconds=1200),
        old_properties=properties(),
        physical_id=job_id,
    )
    assert unchanged.status == "SUCCESS"
    assert unchanged.physical_id == job_id
    assert unchanged.data["JobId"] == job_id  # GetAtt keeps working
    assert unchanged.data["Status"] == "COMPLETED"
    assert len(endpoint.jobs) == 1

    changed = cfn.request(
        "Update",
        properties(ReadSetIds=READ_SETS[:2]),
        old_properties=properties(),
        physical_id=job_id,
    )
    assert changed.status == "SUCCESS"
    assert changed.physical_id != job_id
    assert len(endpoint.jobs) == 2

    calls_before = len(endpoint.requests)
    # CloudFormation deletes the replaced resource, then (at stack deletion) the new one.
    for physical_id in (job_id, changed.physical_id):
        deleted = cfn.request("Delete", properties(), physical_id=physical_id)
        assert deleted.status == "SUCCESS"
    assert len(endpoint.requests) == calls_before
    assert_every_job_reported(endpoint, cfn)


def test_the_same_create_delivered_twice_starts_one_job(endpoint: OmicsEndpoint) -> None:
    cfn = Rehearsal()
    first = cfn.request("Create", properties(), request_id="c0ffee00-0000-4000-8000-000000000001")
    again = cfn.request("Create", properties(), request_id="c0ffee00-0000-4000-8000-000000000001")
    assert first.status == again.status == "SUCCESS"
    assert len(endpoint.jobs) == 1
    assert first.physical_id == again.physical_id == next(iter(endpoint.jobs))
    assert len(endpoint.calls("StartReadSetExportJob")) == 2


def test_a_new_request_starts_a_new_job(endpoint: OmicsEndpoint) -> None:
    cfn = Rehearsal()
    cfn.request("Create", properties())
    cfn.request("Create", properties())
    assert len(endpoint.jobs) == 2


@pytest.mark.parametrize(
    "code", ["ThrottlingException", "InternalServerException", "RequestTimeoutException"]
)
def test_transient_faults_are_retried_and_the_deploy_succeeds(
    endpoint: OmicsEndpoint, code: str
) -> None:
    endpoint.inject("StartReadSetExportJob", code, times=2)
    endpoint.inject("GetReadSetExportJob", code, times=1)
    cfn = Rehearsal()
    created = cfn.request("Create", properties())
    assert created.status == "SUCCESS", created.reason
    assert created.data["Status"] == "COMPLETED"
    assert len(endpoint.jobs) == 1
    assert [s for _, _, s in endpoint.calls("StartReadSetExportJob")][:3] == [
        endpoint_status(code),
        endpoint_status(code),
        200,
    ]


def endpoint_status(code: str) -> int:
    return {"ThrottlingException": 429, "InternalServerException": 500}.get(code, 408)


@pytest.mark.parametrize(
    "code", ["ValidationException", "AccessDeniedException", "ResourceNotFoundException"]
)
def test_permanent_fault_on_start_fails_the_create_and_its_delete_succeeds(
    endpoint: OmicsEndpoint, code: str
) -> None:
    endpoint.inject("StartReadSetExportJob", code, message="Explained by the service")
    cfn = Rehearsal()
    created = cfn.request("Create", properties())
    assert created.status == "FAILED"
    assert created.physical_id == CREATE_FAILED_MARKER
    assert created.reason == (
        f"StartReadSetExportJob failed for sequence store {STORE} "
        f"(read sets {', '.join(READ_SETS)}): {code}: Explained by the service"
    )
    assert len(endpoint.calls("StartReadSetExportJob")) == 1  # not retried
    calls_before = len(endpoint.requests)
    rollback = cfn.request("Delete", properties(), physical_id=created.physical_id)
    assert rollback.status == "SUCCESS"
    assert len(endpoint.requests) == calls_before


@pytest.mark.parametrize(
    "code", ["ValidationException", "AccessDeniedException", "ResourceNotFoundException"]
)
def test_permanent_fault_while_following_the_job_names_it(
    endpoint: OmicsEndpoint, code: str
) -> None:
    endpoint.inject("GetReadSetExportJob", code, message="Explained by the service")
    cfn = Rehearsal()
    created = cfn.request("Create", properties())
    (job_id,) = endpoint.jobs
    assert created.status == "FAILED"
    assert created.physical_id == job_id
    assert created.reason == (
        f"GetReadSetExportJob failed for export job {job_id} in sequence store {STORE}: "
        f"{code}: Explained by the service"
    )


def test_job_ending_failed_fails_the_deploy_with_the_service_message(
    endpoint: OmicsEndpoint,
) -> None:
    endpoint.job_outcome = ("FAILED", "Destination bucket is in another Region")
    cfn = Rehearsal()
    created = cfn.request("Create", properties())
    (job_id,) = endpoint.jobs
    assert created.status == "FAILED"
    assert created.reason.startswith(
        f"HealthOmics export job {job_id} in sequence store {STORE} ended FAILED: "
        "Destination bucket is in another Region. 3 read set(s) failed: "
    )


def test_job_completed_with_failures_names_the_failed_read_sets(endpoint: OmicsEndpoint) -> None:
    endpoint.failing_read_sets = {READ_SETS[1]: "Read set is ARCHIVED"}
    cfn = Rehearsal()
    created = cfn.request("Create", properties())
    (job_id,) = endpoint.jobs
    assert created.status == "FAILED"
    assert created.reason == (
        f"HealthOmics export job {job_id} in sequence store {STORE} ended "
        "COMPLETED_WITH_FAILURES: Some read sets failed to export. "
        f"1 read set(s) failed: {READ_SETS[1]} (Read set is ARCHIVED)."
    )
    rollback = cfn.request("Delete", properties(), physical_id=created.physical_id)
    assert rollback.status == "SUCCESS"


def test_delete_while_the_job_is_still_running(endpoint: OmicsEndpoint) -> None:
    endpoint.polls_in_progress = 1000
    cfn = Rehearsal()
    created = cfn.request("Create", properties(WaitForCompletion=False))
    assert created.status == "SUCCESS"
    assert created.data["Status"] == "SUBMITTED"
    assert created.polls == 1
    calls_before = len(endpoint.requests)
    deleted = cfn.request("Delete", properties(), physical_id=created.physical_id)
    assert deleted.status == "SUCCESS"
    assert len(endpoint.requests) == calls_before
    assert_every_job_reported(endpoint, cfn)


def test_a_job_outlasting_the_wait_is_named_before_the_waiter_gives_up(
    endpoint: OmicsEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint.polls_in_progress = 1000
    clock = {"calls": 0}
    start = index.now()

    def ticking() -> Any:
        # Every poll the waiter makes is 30 s later.
        clock["calls"] += 1
        return start + (clock["calls"] - 1) * timedelta(seconds=30)

    monkeypatch.setattr(index, "now", ticking)
    cfn = Rehearsal(max_attempts=10)
    created = cfn.request("Create", properties(TimeoutSeconds=300, PollIntervalSeconds=30))
    (job_id,) = endpoint.jobs
    assert created.status == "FAILED"
    assert created.reason != "Operation timed out"
    assert f"export job {job_id} " in created.reason
    assert "still IN_PROGRESS after the 300 s the deploy waits" in created.reason
    assert created.polls <= 10


def test_requests_match_the_api_contract(endpoint: OmicsEndpoint) -> None:
    """The endpoint rejects what the real API's model rejects; the handler's calls pass."""
    cfn = Rehearsal()
    assert cfn.request("Create", properties()).status == "SUCCESS"
    assert all(status == 200 for _, _, status in endpoint.requests)
    invalid = cfn.request("Create", properties(Destination="s3://Not_A_Bucket/x"))
    assert invalid.status == "FAILED"
    assert (
        "ValidationException: StartReadSetExportJobRequest.destination: "
        "'s3://Not_A_Bucket/x' does not match"
    ) in invalid.reason


def test_list_export_jobs_paginates_like_the_service(endpoint: OmicsEndpoint) -> None:
    cfn = Rehearsal()
    for _ in range(3):
        cfn.request("Create", properties(WaitForCompletion=False))
    client = index.omics_client()
    pages = list(
        client.get_paginator("list_read_set_export_jobs").paginate(
            sequenceStoreId=STORE, PaginationConfig={"PageSize": 2}
        )
    )
    assert [len(page["exportJobs"]) for page in pages] == [2, 1]
    listed = {job["id"] for page in pages for job in page["exportJobs"]}
    assert listed == set(endpoint.jobs)
    submitted = client.list_read_set_export_jobs(
        sequenceStoreId=STORE, filter={"status": "SUBMITTED"}
    )
    assert len(submitted["exportJobs"]) == 3
