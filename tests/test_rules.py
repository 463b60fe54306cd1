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


@pytest.mark.parametrize(("timeout", "interval"), [(30, 30), (3300, 30), (600, 10)])
def test_valid_timeouts(timeout: int, interval: int) -> None:
    assert rules.check_timeout(timeout, interval) == []


@pytest.mark.parametrize(
    ("timeout", "interval", "rule"),
    [
        (0, 30, "timeout: 0 s must be positive"),
        (3330, 30, "timeout: 3330 s exceeds 3300 s"),
        (3600, 30, "timeout: 3600 s exceeds 3300 s"),
        (100, 30, "timeout: 100 s is not a whole number of poll intervals (30 s)"),
        (50, 5, "poll_interval: 5 s is below the minimum of 10 s"),
    ],
)
def test_invalid_timeouts(timeout: int, interval: int, rule: str) -> None:
    problems = rules.check_timeout(timeout, interval)
    assert any(p.startswith(rule) for p in problems), problems
