"""The validation rules, and their agreement with botocore's omics service model."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import botocore.session
import pytest

from cdk_omics_export.handler import rules


@pytest.fixture(scope="module")
def start_job_input() -> dict[str, object]:
    model = botocore.session.get_session().get_service_model("omics")
    shape = model.operation_model("StartReadSetExportJob").input_shape
    assert shape is not None
    return dict(shape.members)


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


# The messages a user reads, word for word: at synth time (the construct) and in the deploy's
# failure reason (the handler).


def test_messages_show_long_values_cut_at_forty_characters() -> None:
    assert rules.check_sequence_store_id("1" * 40 + "x") == [
        f"sequence_store_id: '{'1' * 40}...' is not a sequence store id (10-36 digits)"
    ]
    assert rules.check_sequence_store_id("x" * 40) == [
        f"sequence_store_id: '{'x' * 40}' is not a sequence store id (10-36 digits)"
    ]


def test_a_list_names_its_first_items_and_how_many_more() -> None:
    assert rules.first_of(["a", "b"], 5) == "a, b"
    assert rules.first_of(["a", "b", "c"], 3) == "a, b, c"
    assert rules.first_of(list("abcdefg"), 5) == "a, b, c, d, e and 2 more"
    assert rules.first_of(list("abc"), 1, separator=" | ") == "a and 2 more"


def test_a_single_read_set_id_is_enough() -> None:
    assert rules.check_read_set_ids(["1111111111"]) == []


def test_read_set_ids_empty_message() -> None:
    assert rules.check_read_set_ids([]) == [
        "read_set_ids: no ids given, the export needs at least one read set"
    ]


def test_one_malformed_read_set_id() -> None:
    assert rules.check_read_set_ids(["1111111111", "abc"]) == [
        "read_set_ids: 'abc' is not a read set id (10-36 digits)"
    ]


def test_many_malformed_read_set_ids_are_counted_past_the_fifth() -> None:
    bad = [f"bad{n}" for n in range(7)]
    assert rules.check_read_set_ids(bad) == [
        "read_set_ids: 'bad0', 'bad1', 'bad2', 'bad3', 'bad4' and 2 more are not read set ids "
        "(10-36 digits)"
    ]


def test_duplicates_are_named_once_past_unknown_values() -> None:
    ids = ["1111111111", None, "1111111111", "1111111111"]
    assert rules.check_read_set_ids(ids) == ["read_set_ids: '1111111111' listed more than once"]


def test_many_duplicates_are_counted_past_the_fifth() -> None:
    ids = [str(1000000000 + n) for n in range(7)] * 2
    assert rules.check_read_set_ids(ids) == [
        "read_set_ids: '1000000000', '1000000001', '1000000002', '1000000003', '1000000004' "
        "and 2 more listed more than once"
    ]


@pytest.mark.parametrize(
    ("prefix", "problem"),
    [
        (
            "exports\t/",
            "destination_prefix: 'exports\\t/' holds control characters (tab, newline, ...)",
        ),
        ("exports", "destination_prefix: 'exports' must be empty or end with '/'"),
        (
            "/exports/",
            "destination_prefix: '/exports/' must not start with '/' (S3 keys would start with "
            "an empty path segment)",
        ),
        (
            "x" * 1025 + "/",
            "destination_prefix: 1026 characters, the API accepts at most 1024 before the "
            "final '/'",
        ),
    ],
)
def test_destination_prefix_messages(prefix: str, problem: str) -> None:
    assert rules.check_destination_prefix(prefix) == [problem]


def test_a_destination_that_does_not_match_shows_eighty_characters_of_it() -> None:
    prefix = "exports/" * 12
    uri = f"s3://Not_A_Bucket/{prefix}"
    assert rules.check_destination_prefix(prefix, bucket_name="Not_A_Bucket") == [
        f"destination_prefix: destination '{uri[:80]}...' does not match the API's pattern "
        f"{rules.DESTINATION_PATTERN}"
    ]


def test_an_empty_prefix_is_checked_with_the_bucket_name() -> None:
    assert rules.check_destination_prefix("", bucket_name="export-bucket") == []
    (problem,) = rules.check_destination_prefix("", bucket_name="Not_A_Bucket")
    assert problem.startswith("destination_prefix: destination 's3://Not_A_Bucket/' does not")


@pytest.mark.parametrize("value", [True, "1", 1.0])
def test_an_export_generation_must_be_a_whole_number(value: object) -> None:
    assert rules.check_export_generation(value) == [  # type: ignore[arg-type]
        f"export_generation: {value!r} must be a whole number (0, 1, 2, ...)"
    ]


# The read set filter (ListReadSets' fields, by their API names).

ARN = "arn:aws:omics:us-east-1:111122223333:referenceStore/1234567890/reference/9876543210"


def test_a_filter_with_valid_fields_has_no_problem() -> None:
    fields = {
        "name": "n",
        "sampleId": "s" * 127,
        "subjectId": "patient-7",
        "generatedFrom": "lab",
        "referenceArn": ARN,
        "creationType": "IMPORT",
        "status": "ACTIVE",
        "createdAfter": "2026-01-01T00:00:00Z",
        "createdBefore": "2026-02-01T00:00:00+01:00",
    }
    assert rules.check_read_set_filter(fields) == []
    assert rules.check_read_set_filter({"referenceArn": "arn:" + "x" * 123}) == []
    assert rules.check_read_set_filter({"creationType": "UPLOAD", "status": "ARCHIVED"}) == []


def test_a_filter_needs_a_field_besides_status() -> None:
    message = (
        "read_set_filter: give at least one field besides status; an export of every read set "
        "in the store is too easy to deploy by mistake"
    )
    assert rules.check_read_set_filter({}) == [message]
    assert rules.check_read_set_filter({"status": "ACTIVE"}) == [message]
    assert rules.check_read_set_filter({"sampleId": "s"}) == []


def test_filter_messages_name_the_props_or_the_api_fields() -> None:
    fields = {"sampleId": "", "status": "GONE"}
    assert rules.check_read_set_filter(fields) == [
        "read_set_filter.status: 'GONE' is not one of ARCHIVED, ACTIVATING, ACTIVE, DELETING, "
        "DELETED, PROCESSING_UPLOAD, UPLOAD_FAILED",
        "read_set_filter.sample_id: 0 characters; it must be 1-127",
    ]
    assert rules.check_read_set_filter(fields, where="Filter", api_names=True) == [
        "Filter.status: 'GONE' is not one of ARCHIVED, ACTIVATING, ACTIVE, DELETING, DELETED, "
        "PROCESSING_UPLOAD, UPLOAD_FAILED",
        "Filter.sampleId: 0 characters; it must be 1-127",
    ]


def test_a_filter_field_the_construct_does_not_know_is_named_as_given() -> None:
    assert rules.check_read_set_filter({"sampleId": "s", "uploadId": "u\n"}) == [
        "read_set_filter.uploadId: holds control characters (tab, newline, ...), which no read "
        "set's field holds"
    ]


def test_filter_creation_type_and_control_characters() -> None:
    assert rules.check_read_set_filter({"creationType": "COPY", "subjectId": "a\tb"}) == [
        "read_set_filter.creation_type: 'COPY' is not one of IMPORT, UPLOAD",
        "read_set_filter.subject_id: holds control characters (tab, newline, ...), which no read "
        "set's field holds",
    ]


def test_filter_text_fields_have_a_length_limit() -> None:
    assert rules.check_read_set_filter({"name": "n" * 128, "generatedFrom": "g"}) == [
        "read_set_filter.name: 128 characters; it must be 1-127"
    ]


@pytest.mark.parametrize(
    ("reference", "shown"),
    [
        ("reference-1", "'reference-1'"),
        ("arn:" + "x" * 124, "'arn:" + "x" * 36 + "...'"),  # 128 characters
    ],
)
def test_a_filter_reference_must_be_a_short_arn(reference: str, shown: str) -> None:
    assert rules.check_read_set_filter({"referenceArn": reference}) == [
        f"read_set_filter.reference_arn: {shown} must be an ARN of at most 127 characters"
    ]


@pytest.mark.parametrize("name", ["createdAfter", "createdBefore"])
@pytest.mark.parametrize("value", ["yesterday", "2026-01-01T00:00:00"])
def test_filter_times_must_be_iso_8601_with_a_zone(name: str, value: str) -> None:
    prop = rules.FILTER_PROPS[name]
    assert rules.check_read_set_filter({"sampleId": "s", name: value}) == [
        f"read_set_filter.{prop}: {value!r} is not an ISO 8601 time with a zone "
        "(e.g. '2026-01-01T00:00:00Z')"
    ]


@pytest.mark.parametrize(
    ("after", "before"),
    [
        ("2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z"),
        ("2026-01-01T00:00:00Z", "2026-01-01T00:30:00+01:00"),  # 23:30 UTC the day before
    ],
)
def test_filter_times_must_be_in_order(after: str, before: str) -> None:
    fields = {"createdAfter": after, "createdBefore": before}
    assert rules.check_read_set_filter(fields) == [
        "read_set_filter.created_after: must be earlier than read_set_filter.created_before"
    ]
    assert rules.check_read_set_filter(fields, where="f", api_names=True) == [
        "f.createdAfter: must be earlier than f.createdBefore"
    ]


def test_a_time_is_read_with_its_zone() -> None:
    assert rules.parse_time("2026-01-01T01:00:00+01:00") == datetime(2026, 1, 1, tzinfo=UTC)
    assert rules.parse_time("2026-01-01T00:00:00") is None
    assert rules.parse_time("2026-13-01T00:00:00Z") is None


def test_control_characters() -> None:
    assert rules.has_control_characters("a\tb")
    assert rules.has_control_characters("\x7f")
    assert not rules.has_control_characters("sample é 7")
    assert not rules.has_control_characters("")


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({}, "no field"),
        ({"sampleId": "s"}, "sampleId"),
        ({"sampleId": "s", "createdAfter": "t"}, "createdAfter and sampleId"),
        ({"status": "a", "sampleId": "s", "name": "n"}, "name, sampleId and status"),
        ({"d": "", "c": "", "b": "", "a": ""}, "a, b, c and d"),
    ],
)
def test_a_filter_is_described_by_its_fields_never_their_values(
    fields: dict[str, str], named: str
) -> None:
    assert rules.filter_fields(fields) == named


def test_identifying_values_are_redacted_longest_first() -> None:
    text = "read set NA12878-A of sample NA12878 (ACTIVE, arn:ref) failed"
    read_set_filter = {
        "sampleId": "NA12878",
        "name": "NA12878-A",
        "status": "ACTIVE",
        "referenceArn": "arn:ref",
        "subjectId": "",
    }
    assert rules.redact(text, read_set_filter) == (
        "read set <name> of sample <sampleId> (ACTIVE, arn:ref) failed"
    )
    assert rules.redact(text, None) == text
    assert rules.redact(text, {}) == text
