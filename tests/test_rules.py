"""The validation rules, and their agreement with botocore's omics service model."""

from __future__ import annotations

import re

import botocore.session
import pytest

from cdk_omics_export.handler import rules


@pytest.fixture(scope="module")
def start_job_input() -> dict[str, object]:
    model = botocore.session.get_session().get_service_model("omics")
    return dict(model.operation_model("StartReadSetExportJob").input_shape.members)


def test_id_limits_match_the_service_model(start_job_input: dict[str, object]) -> None:
    store = start_job_input["sequenceStoreId"].metadata  # type: ignore[attr-defined]
    read_set = start_job_input["sources"].member.members["readSetId"].metadata  # type: ignore[attr-defined]
    for shape in (store, read_set):
        assert shape["min"] == rules.ID_MIN_LENGTH
        assert shape["max"] == rules.ID_MAX_LENGTH
        assert shape["pattern"] == rules.ID_PATTERN


def test_job_size_matches_the_service_model(start_job_input: dict[str, object]) -> None:
    sources = start_job_input["sources"].metadata  # type: ignore[attr-defined]
    assert sources["min"] == 1
    assert sources["max"] == rules.MAX_READ_SETS_PER_JOB


def test_destination_pattern_matches_the_service_model(
    start_job_input: dict[str, object],
) -> None:
    pattern = start_job_input["destination"].metadata["pattern"]  # type: ignore[attr-defined]
    assert pattern == rules.DESTINATION_PATTERN
    # The prefix limit is the pattern's own `(.{1,N})/`, plus the final slash.
    (limit,) = re.findall(r"\(\.\{1,(\d+)\}\)/", pattern)
    assert rules.MAX_PREFIX_LENGTH == int(limit) + 1


def test_client_token_limit_matches_the_service_model(
    start_job_input: dict[str, object],
) -> None:
    token = start_job_input["clientToken"].metadata  # type: ignore[attr-defined]
    assert token["max"] == rules.CLIENT_TOKEN_MAX_LENGTH


@pytest.mark.parametrize("value", ["1234567890", "1" * 36])
def test_valid_sequence_store_ids(value: str) -> None:
    assert rules.check_sequence_store_id(value) == []


@pytest.mark.parametrize("value", ["123456789", "1" * 37, "12345abcde", "", " 1234567890"])
def test_invalid_sequence_store_ids(value: str) -> None:
    (problem,) = rules.check_sequence_store_id(value)
    assert problem.startswith("sequence_store_id: ")
    assert "10-36 digits" in problem


def test_read_set_ids_at_the_export_limit_are_valid() -> None:
    ids = [str(1000000000 + n) for n in range(10_000)]
    assert rules.check_read_set_ids(ids) == []


def test_read_set_ids_over_the_export_limit() -> None:
    ids = [str(1000000000 + n) for n in range(10_001)]
    assert rules.check_read_set_ids(ids) == [
        "read_set_ids: 10001 ids given, one export takes at most 10000 (100 jobs of 100)"
    ]


def test_read_set_ids_empty() -> None:
    (problem,) = rules.check_read_set_ids([])
    assert problem.startswith("read_set_ids: no ids given")


def test_read_set_ids_malformed_and_duplicated() -> None:
    problems = rules.check_read_set_ids(["1111111111", "abc", "1111111111", "22"])
    assert problems == [
        "read_set_ids: 'abc', '22' are not read set ids (10-36 digits)",
        "read_set_ids: '1111111111' listed more than once",
    ]


def test_read_set_ids_skip_unknown_values() -> None:
    assert rules.check_read_set_ids(["1111111111", None]) == []


@pytest.mark.parametrize("prefix", ["", "exports/", "a/b/c/", "x" * 1024 + "/"])
def test_valid_destination_prefixes(prefix: str) -> None:
    assert rules.check_destination_prefix(prefix) == []


@pytest.mark.parametrize(
    ("prefix", "rule"),
    [
        ("exports", "must be empty or end with '/'"),
        ("/exports/", "must not start with '/'"),
        ("/", "must not start with '/'"),
        ("x" * 1025 + "/", "the API accepts at most 1024"),
    ],
)
def test_invalid_destination_prefixes(prefix: str, rule: str) -> None:
    (problem,) = rules.check_destination_prefix(prefix)
    assert problem.startswith("destination_prefix: ")
    assert rule in problem


def test_destination_checked_against_the_bucket_name_when_known() -> None:
    (problem,) = rules.check_destination_prefix("exports/", bucket_name="Not_A_Bucket")
    assert "does not match the API's pattern" in problem


# A timeout need not be a whole number of poll intervals: each export keeps its own, and
# the service's waiter polls for the longest one.
@pytest.mark.parametrize("timeout", [1, 30, 100, 3000, 3300])
def test_valid_timeouts(timeout: int) -> None:
    assert rules.check_timeout(timeout) == []


@pytest.mark.parametrize(
    ("timeout", "problem"),
    [
        (0, "timeout: 0 s must be positive"),
        (-30, "timeout: -30 s must be positive"),
        (
            3301,
            "timeout: 3301 s exceeds 3300 s; CloudFormation waits at most 3600 s for a custom "
            "resource and the deploy needs 300 s of that to start and report the export (use "
            "wait_for_completion=False for longer exports)",
        ),
    ],
)
def test_invalid_timeouts(timeout: int, problem: str) -> None:
    assert rules.check_timeout(timeout) == [problem]


def test_the_longest_timeout_leaves_cloudformation_its_headroom() -> None:
    assert rules.MAX_TIMEOUT_SECONDS + rules.SERVICE_TIMEOUT_HEADROOM_SECONDS == 3600
    assert rules.DEFAULT_TIMEOUT_SECONDS <= rules.MAX_TIMEOUT_SECONDS


@pytest.mark.parametrize("interval", [10, 30, 45, 3300])
def test_valid_poll_intervals(interval: int) -> None:
    assert rules.check_poll_interval(interval) == []


@pytest.mark.parametrize(
    ("interval", "problem"),
    [
        (9, "poll_interval: 9 s is below the minimum of 10 s"),
        (0, "poll_interval: 0 s is below the minimum of 10 s"),
        (3301, "poll_interval: 3301 s exceeds 3300 s"),
    ],
)
def test_invalid_poll_intervals(interval: int, problem: str) -> None:
    assert rules.check_poll_interval(interval) == [problem]


@pytest.mark.parametrize("generation", [0, 1, 1000])
def test_valid_export_generations(generation: int) -> None:
    assert rules.check_export_generation(generation) == []


def test_negative_export_generation() -> None:
    assert rules.check_export_generation(-1) == [
        "export_generation: -1 must be 0 or more (bump it to export everything again)"
    ]


@pytest.mark.parametrize("rate", [1, 5, 100])
def test_valid_request_rates(rate: int) -> None:
    assert rules.check_max_requests_per_second(rate) == []


@pytest.mark.parametrize("rate", [0, -1, 101])
def test_invalid_request_rates(rate: int) -> None:
    assert rules.check_max_requests_per_second(rate) == [
        f"max_requests_per_second: {rate} must be between 1 and 100 (HealthOmics' default "
        "quota is 5)"
    ]
