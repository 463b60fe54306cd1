"""Deploy rehearsals: the real handler, a real boto3 client, a local HealthOmics endpoint.

Each test plays CloudFormation's custom-resource lifecycle through the Provider framework's
rules (provider_rehearsal.py) against the endpoint (omics_endpoint.py).
"""

from __future__ import annotations

import json
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
        # Fast rehearsals; the pacing tests use the default quota of 5.
        "MaxRequestsPerSecond": 50,
        **overrides,
    }


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[OmicsEndpoint]:
    service = OmicsEndpoint(polls_submitted=1, polls_in_progress=2)
    service.add_read_sets(STORE, READ_SETS)
    with service.serve() as url:
        monkeypatch.setenv("AWS_ENDPOINT_URL_OMICS", url)
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", url)
        # Plain PutObject bodies: the local S3 does not speak aws-chunked.
        monkeypatch.setenv("AWS_REQUEST_CHECKSUM_CALCULATION", "when_required")
        monkeypatch.setenv("AWS_DISABLE_HOST_PREFIX_INJECTION", "true")
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAREHEARSAL")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "rehearsal")
        monkeypatch.delenv("AWS_PROFILE", raising=False)
        index.omics_client.cache_clear()
        index.s3_client.cache_clear()
        yield service
    index.omics_client.cache_clear()
    index.s3_client.cache_clear()


def reported(endpoint: OmicsEndpoint, rehearsal: Rehearsal, job_id: str) -> bool:
    """A job is reported in Data, in a failure message, or in the manifest Data points to."""
    for response in rehearsal.responses:
        if job_id == response.data.get("JobId") or job_id in response.reason:
            return True
        manifest = response.data.get("ManifestUri")
        if manifest and any(j["id"] == job_id for j in endpoint.s3_json(manifest)["jobs"]):
            return True
    return False


def assert_every_job_reported(endpoint: OmicsEndpoint, rehearsal: Rehearsal) -> None:
    for job_id in endpoint.jobs:
        assert reported(endpoint, rehearsal, job_id), job_id


def test_full_lifecycle(endpoint: OmicsEndpoint) -> None:
    cfn = Rehearsal()
    created = cfn.request("Create", properties())
    assert created.status == "SUCCESS", created.reason
    (job_id,) = endpoint.jobs
    assert created.data["JobId"] == job_id
    assert created.data["Status"] == "COMPLETED"
    assert created.data["JobCount"] == "1"
    assert created.data["ReadSetCount"] == "3"
    assert created.polls == 3  # IN_PROGRESS, IN_PROGRESS, COMPLETED
    manifest = endpoint.s3_json(created.data["ManifestUri"])
    assert manifest["status"] == "COMPLETED"
    assert [r["status"] for r in manifest["jobs"][0]["readSets"]] == ["FINISHED"] * 3

    unchanged = cfn.request(
        "Update",
        properties(WaitForCompletion=True, TimeoutSeconds=1200),
        old_properties=properties(),
        physical_id=created.physical_id,
    )
    assert unchanged.status == "SUCCESS"
    assert unchanged.physical_id == created.physical_id
    assert unchanged.data["JobId"] == job_id  # GetAtt keeps working
    assert unchanged.data["Status"] == "COMPLETED"
    assert len(endpoint.jobs) == 1

    changed = cfn.request(
        "Update",
        properties(ReadSetIds=READ_SETS[:2]),
        old_properties=properties(),
        physical_id=created.physical_id,
    )
    assert changed.status == "SUCCESS"
    assert changed.physical_id != created.physical_id
    assert len(endpoint.jobs) == 2

    calls_before = len(endpoint.requests)
    # CloudFormation deletes the replaced resource, then (at stack deletion) the new one.
    for physical_id in (created.physical_id, changed.physical_id):
        deleted = cfn.request("Delete", properties(), physical_id=physical_id)
        assert deleted.status == "SUCCESS"
    assert len(endpoint.requests) == calls_before
    assert_every_job_reported(endpoint, cfn)


def test_the_same_create_delivered_twice_starts_one_job(endpoint: OmicsEndpoint) -> None:
    cfn = Rehearsal()
    request_id = "c0ffee00-0000-4000-8000-000000000001"
    first = cfn.request("Create", properties(), request_id=request_id)
    again = cfn.request("Create", properties(), request_id=request_id)
    assert first.status == again.status == "SUCCESS"
    assert len(endpoint.jobs) == 1
    assert first.physical_id == again.physical_id
    assert first.data["JobId"] == again.data["JobId"] == next(iter(endpoint.jobs))


def test_the_same_create_delivered_twice_without_its_manifest_starts_one_job(
    endpoint: OmicsEndpoint,
) -> None:
    """Two deliveries racing (the second before the first saved anything) still converge."""
    cfn = Rehearsal()
    request_id = "c0ffee00-0000-4000-8000-000000000002"
    first = cfn.request("Create", properties(), request_id=request_id)
    endpoint.objects.clear()
    again = cfn.request("Create", properties(), request_id=request_id)
    assert first.status == again.status == "SUCCESS"
    assert len(endpoint.calls("StartReadSetExportJob")) == 2
    assert len(endpoint.jobs) == 1  # the clientToken made the second start a no-op


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
    assert created.reason.startswith(
        f"GetReadSetExportJob failed for export job {job_id} in sequence store {STORE}: "
        f"{code}: Explained by the service. Export jobs already started: {job_id} (manifest "
        "s3://export-bucket/exports/cdk-omics-export/"
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
    running = client.list_read_set_export_jobs(
        sequenceStoreId=STORE, filter={"status": "IN_PROGRESS"}
    )
    assert len(running["exportJobs"]) == 3


# Cohort scale


def cohort(count: int, start: int = 4000000000) -> list[str]:
    return [str(start + n) for n in range(count)]


def put_list(endpoint: OmicsEndpoint, ids: list[str]) -> str:
    """What the construct's S3 asset holds when there are more than 100 ids."""
    endpoint.objects[("cdk-assets", "read-set-ids.json")] = json.dumps(ids).encode()
    return "s3://cdk-assets/read-set-ids.json"


def list_properties(endpoint: OmicsEndpoint, ids: list[str], **overrides: Any) -> dict[str, Any]:
    props = properties(ReadSetList=put_list(endpoint, ids), **overrides)
    del props["ReadSetIds"]
    return props


def test_a_cohort_is_exported_once_through_jobs_of_100(endpoint: OmicsEndpoint) -> None:
    ids = cohort(250)
    endpoint.add_read_sets(STORE, ids)
    cfn = Rehearsal()
    created = cfn.request("Create", list_properties(endpoint, ids))
    assert created.status == "SUCCESS", created.reason
    assert sorted(endpoint.exported()) == sorted(ids)  # every read set exactly once
    assert [len(j.read_set_ids) for j in endpoint.jobs.values()] == [100, 100, 50]
    assert created.data["JobCount"] == "3"
    assert created.data["ReadSetCount"] == "250"
    assert created.data["Status"] == "COMPLETED"
    manifest = endpoint.s3_json(created.data["ManifestUri"])
    assert [j["id"] for j in manifest["jobs"]] == list(endpoint.jobs)
    outcomes = {r["id"]: r["status"] for j in manifest["jobs"] for r in j["readSets"]}
    assert outcomes == dict.fromkeys(ids, "FINISHED")
    assert_every_job_reported(endpoint, cfn)


def test_concurrent_job_quota_means_waiting_not_failing(endpoint: OmicsEndpoint) -> None:
    ids = cohort(500)
    endpoint.add_read_sets(STORE, ids)
    endpoint.max_concurrent_jobs = 2
    cfn = Rehearsal()
    created = cfn.request("Create", list_properties(endpoint, ids))
    assert created.status == "SUCCESS", created.reason
    assert len(endpoint.jobs) == 5
    assert sorted(endpoint.exported()) == sorted(ids)
    refused = [c for c in endpoint.calls("StartReadSetExportJob") if c[2] == 402]
    assert refused  # the quota was hit, and waited out


def test_requests_stay_within_the_rate_quota(endpoint: OmicsEndpoint) -> None:
    ids = cohort(300)
    endpoint.add_read_sets(STORE, ids)
    endpoint.max_requests_per_second = 5
    cfn = Rehearsal()
    created = cfn.request("Create", list_properties(endpoint, ids, MaxRequestsPerSecond=5))
    assert created.status == "SUCCESS", created.reason
    omics_calls = [c for c in endpoint.requests if not c[1].startswith("s3:")]
    assert all(status != 429 for _, _, status in omics_calls)
    assert endpoint.peak_requests_per_second(omics_only=True) <= 5


def test_the_same_cohort_create_delivered_twice_starts_each_job_once(
    endpoint: OmicsEndpoint,
) -> None:
    ids = cohort(300)
    endpoint.add_read_sets(STORE, ids)
    cfn = Rehearsal()
    request_id = "c0ffee00-0000-4000-8000-000000000003"
    props = list_properties(endpoint, ids)
    first = cfn.request("Create", props, request_id=request_id)
    again = cfn.request("Create", props, request_id=request_id)
    assert first.status == again.status == "SUCCESS"
    assert len(endpoint.jobs) == 3
    assert sorted(endpoint.exported()) == sorted(ids)


def test_a_changed_cohort_starts_a_new_job_set(endpoint: OmicsEndpoint) -> None:
    ids = cohort(150)
    endpoint.add_read_sets(STORE, ids)
    cfn = Rehearsal()
    created = cfn.request("Create", list_properties(endpoint, ids))
    old = list_properties(endpoint, ids)
    unchanged = cfn.request("Update", old, old_properties=old, physical_id=created.physical_id)
    assert unchanged.physical_id == created.physical_id
    assert len(endpoint.jobs) == 2
    new = list_properties(endpoint, ids[:120])
    new["ReadSetList"] = "s3://cdk-assets/other-read-set-ids.json"
    endpoint.objects[("cdk-assets", "other-read-set-ids.json")] = json.dumps(ids[:120]).encode()
    changed = cfn.request("Update", new, old_properties=old, physical_id=created.physical_id)
    assert changed.status == "SUCCESS", changed.reason
    assert changed.physical_id != created.physical_id
    assert len(endpoint.jobs) == 4
    assert cfn.request("Delete", old, physical_id=created.physical_id).status == "SUCCESS"


@pytest.mark.parametrize("count", [3, 150])
def test_preflight_names_missing_and_inactive_read_sets_before_any_job(
    endpoint: OmicsEndpoint, count: int
) -> None:
    ids = cohort(count)
    endpoint.add_read_sets(STORE, ids[2:])
    endpoint.add_read_sets(STORE, ids[1:2], status="ARCHIVED")
    props = list_properties(endpoint, ids) if count > 100 else properties(ReadSetIds=ids)
    created = Rehearsal().request("Create", props)
    assert created.status == "FAILED"
    assert created.reason == (
        f"Pre-flight: 2 of {count} read sets in sequence store {STORE} cannot be exported: "
        f"{ids[0]} (not found), {ids[1]} (ARCHIVED). No export job was started. Archived read "
        "sets can be restored with StartReadSetActivationJob."
    )
    assert endpoint.jobs == {}


def test_selection_by_filter_exports_what_it_finds(endpoint: OmicsEndpoint) -> None:
    endpoint.add_read_sets(STORE, cohort(120, 6000000000), sampleId="tumour-7")
    endpoint.add_read_sets(STORE, cohort(5, 6100000000), sampleId="tumour-7", status="ARCHIVED")
    endpoint.add_read_sets(STORE, cohort(30, 6200000000), sampleId="normal-7")
    props = properties(ReadSetFilter={"sampleId": "tumour-7"})
    del props["ReadSetIds"]
    created = Rehearsal().request("Create", props)
    assert created.status == "SUCCESS", created.reason
    assert sorted(endpoint.exported()) == cohort(120, 6000000000)
    assert created.data["ReadSetCount"] == "120"
    assert created.data["JobCount"] == "2"


@pytest.mark.parametrize(("allowed", "status"), [(False, "FAILED"), (True, "SUCCESS")])
def test_an_empty_selection_fails_unless_allowed(
    endpoint: OmicsEndpoint, allowed: bool, status: str
) -> None:
    props = properties(ReadSetFilter={"subjectId": "nobody"}, AllowEmptySelection=allowed)
    del props["ReadSetIds"]
    created = Rehearsal().request("Create", props)
    assert created.status == status
    assert endpoint.jobs == {}
    if allowed:
        assert created.data["JobCount"] == "0"
        assert created.data["Status"] == "COMPLETED"
    else:
        assert created.reason.startswith(
            f"read_set_filter selected no read set in sequence store {STORE}"
        )


def test_failures_across_jobs_name_jobs_read_sets_and_the_manifest(
    endpoint: OmicsEndpoint,
) -> None:
    ids = cohort(250)
    endpoint.add_read_sets(STORE, ids)
    endpoint.failing_read_sets = {ids[5]: "Read set is ARCHIVED", ids[180]: "Access denied"}
    cfn = Rehearsal()
    created = cfn.request("Create", list_properties(endpoint, ids))
    first, second, third = endpoint.jobs
    assert created.status == "FAILED"
    assert created.reason.startswith(
        f"2 of 3 HealthOmics export jobs in sequence store {STORE} did not complete: "
        f"{first} (COMPLETED_WITH_FAILURES: Some read sets failed to export), "
        f"{second} (COMPLETED_WITH_FAILURES: Some read sets failed to export). "
        "Every job and read set: s3://export-bucket/exports/cdk-omics-export/"
    )
    assert f". Jobs: {first}, {second}, {third}. 2 read set(s)" in created.reason
    assert (
        f"2 read set(s) failed: {ids[5]} (Read set is ARCHIVED); {ids[180]} (Access denied)."
    ) in created.reason
    assert_every_job_reported(endpoint, cfn)


def test_events_stay_small_whatever_the_cohort_size(endpoint: OmicsEndpoint) -> None:
    """Ids above 100 travel in S3, so events do not grow with the cohort (make bench: 10,000)."""
    ids = cohort(1_000)
    endpoint.add_read_sets(STORE, ids)
    endpoint.polls_in_progress = 1
    cfn = Rehearsal()
    created = cfn.request("Create", list_properties(endpoint, ids, MaxRequestsPerSecond=100))
    assert created.status == "SUCCESS", created.reason
    assert len(endpoint.jobs) == 10
    assert sorted(endpoint.exported()) == sorted(ids)
    assert cfn.largest_event < 4096
    response = {"Status": created.status, "PhysicalResourceId": created.physical_id}
    assert len(json.dumps({**response, "Data": created.data})) < 1024


# Partial failures


def test_partial_failure_allowed_completes_and_reports_the_failed_read_sets(
    endpoint: OmicsEndpoint,
) -> None:
    endpoint.failing_read_sets = {READ_SETS[1]: "Read set is ARCHIVED"}
    cfn = Rehearsal()
    created = cfn.request("Create", properties(AllowPartialFailure=True))
    assert created.status == "SUCCESS", created.reason
    assert created.data["Status"] == "COMPLETED_WITH_FAILURES"
    assert created.data["FailedReadSetCount"] == "1"
    manifest = endpoint.s3_json(created.data["ManifestUri"])
    failed = [r for j in manifest["jobs"] for r in j["readSets"] if r["status"] == "FAILED"]
    assert failed == [
        {"id": READ_SETS[1], "status": "FAILED", "statusMessage": "Read set is ARCHIVED"}
    ]


def test_partial_failure_allowed_still_fails_a_failed_job(endpoint: OmicsEndpoint) -> None:
    endpoint.job_outcome = ("FAILED", "Destination is unreachable")
    created = Rehearsal().request("Create", properties(AllowPartialFailure=True))
    assert created.status == "FAILED"
    assert "ended FAILED: Destination is unreachable" in created.reason


def test_job_ids_in_data_feed_the_status_change_rule(endpoint: OmicsEndpoint) -> None:
    ids = cohort(250)
    endpoint.add_read_sets(STORE, ids)
    created = Rehearsal().request("Create", list_properties(endpoint, ids))
    assert created.data["JobIds"].split(",") == list(endpoint.jobs)
