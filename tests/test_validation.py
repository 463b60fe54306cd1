"""Props of the wrong type fail at synth time like wrong values do: named, with what was
expected, gathered into one error (a TypeError when any of them is a wrong type)."""

from __future__ import annotations

import inspect
import re
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any

import pytest
from aws_cdk import App, RemovalPolicy, Stack
from aws_cdk import aws_lambda as lambda_

from cdk_omics_export import ReadSetExport, ReadSetExportService, ReadSetFilter
from cdk_omics_export.props import ExportProps

STORE = "1234567890"
READ_SETS = ["1111111111", "2222222222"]
HEADER = "ReadSetExport Invalid/Export: invalid props:\n- "


def build(**props: Any) -> None:
    props.setdefault("sequence_store_id", STORE)
    if "read_set_filter" not in props:
        props.setdefault("read_set_ids", READ_SETS)
    ReadSetExport(Stack(App(), "Invalid"), "Export", **props)


def problems(error: pytest.ExceptionInfo[Exception]) -> list[str]:
    """The gathered problems of an error, one line each, after the header."""
    text = str(error.value)
    assert text.startswith(HEADER)
    return text.removeprefix(HEADER).split("\n- ")


@pytest.mark.parametrize(
    ("props", "problem"),
    [
        ({"read_set_ids": "1111111111"}, "read_set_ids: give a list of ids, not a string"),
        ({"read_set_ids": 1111111111}, "read_set_ids: expected a list of read set ids, got int"),
        (
            {"read_set_ids": ["1111111111", 2222222222]},
            "read_set_ids: expected strings of 10-36 digits, got int 2222222222 at [1]",
        ),
        (
            {"timeout": 3000},
            "timeout: expected an aws_cdk.Duration (e.g. Duration.minutes(50)), got int",
        ),
        (
            {"sequence_store_id": 1234567890},
            "sequence_store_id: expected a string of 10-36 digits, got int",
        ),
        ({"export_generation": "1"}, "export_generation: expected an int (0, 1, 2, ...), got str"),
        (
            {"export_generation": True},
            "export_generation: expected an int (0, 1, 2, ...), got bool",
        ),
        ({"wait_for_completion": "false"}, "wait_for_completion: expected True or False, got str"),
        ({"allow_partial_failure": 1}, "allow_partial_failure: expected True or False, got int"),
        (
            {"read_set_filter": ReadSetFilter(sample_id="s"), "allow_empty_selection": "yes"},
            "allow_empty_selection: expected True or False, got str",
        ),
        (
            {"removal_policy": RemovalPolicy.DESTROY, "auto_delete_objects": "yes"},
            "auto_delete_objects: expected True or False, got str",
        ),
        (
            {"destination_bucket": "genomics-data-lake"},
            "destination_bucket: expected an s3.IBucket (e.g. s3.Bucket.from_bucket_name(self, "
            "'Lake', 'my-lake')), got str",
        ),
        (
            {"read_set_filter": {"sample_id": "s"}},
            "read_set_filter: expected a ReadSetFilter (e.g. ReadSetFilter(sample_id='S1')), "
            "got dict",
        ),
        (
            {"max_requests_per_second": "5"},
            "max_requests_per_second: expected an int (e.g. 5), got str",
        ),
        (
            {"poll_interval": 30},
            "poll_interval: expected an aws_cdk.Duration (e.g. Duration.seconds(30)), got int",
        ),
        (
            {"runtime": "python3.12"},
            "runtime: expected an aws_lambda.Runtime (e.g. Runtime.PYTHON_3_12), got str",
        ),
    ],
)
def test_a_wrong_type_is_a_type_error_naming_the_prop(props: dict[str, Any], problem: str) -> None:
    with pytest.raises(TypeError, match=re.escape(problem)) as raised:
        build(**props)
    assert problems(raised) == [problem]


@pytest.mark.parametrize(
    ("props", "problem"),
    [
        (
            {"destination_prefix": "s3://genomics-data-lake/exports/"},
            "destination_prefix: 's3://genomics-data-lake/exports/' is a URI; give the key "
            "prefix only (e.g. 'exports/') and the bucket as destination_bucket",
        ),
        (
            {"runtime": lambda_.Runtime.NODEJS_22_X},
            "runtime: nodejs22.x is not a Python runtime; the handler needs python3.11 or newer",
        ),
        (
            {"runtime": lambda_.Runtime.PYTHON_3_10},
            "runtime: python3.10 is older than python3.11, which the handler needs",
        ),
    ],
)
def test_a_wrong_value_of_the_right_type_is_a_value_error(
    props: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)) as raised:
        build(**props)
    assert problems(raised) == [problem]


def test_every_wrong_type_is_reported_at_once_with_the_other_problems() -> None:
    with pytest.raises(TypeError) as raised:
        build(
            sequence_store_id=1234567890,
            read_set_ids="1111111111",
            destination_prefix="exports",
            timeout=3000,
            export_generation="1",
            wait_for_completion="no",
            max_requests_per_second="5",
        )
    assert [problem.split(":")[0] for problem in problems(raised)] == [
        "sequence_store_id",
        "read_set_ids",
        "destination_prefix",  # a wrong value, in the same error
        "timeout",
        "export_generation",
        "wait_for_completion",
        "max_requests_per_second",
    ]


def test_a_naive_datetime_in_the_filter_is_gathered_with_the_other_problems() -> None:
    naive = ReadSetFilter(created_after=datetime(2026, 1, 1), creation_type="COPY")
    with pytest.raises(ValueError) as raised:
        build(read_set_filter=naive, destination_prefix="p")
    assert problems(raised) == [
        "read_set_filter.created_after: 2026-01-01T00:00:00 has no time zone; give an aware "
        "datetime (e.g. datetime(2026, 1, 1, tzinfo=UTC))",
        "read_set_filter.creation_type: 'COPY' is not one of IMPORT, UPLOAD",
        "destination_prefix: 'p' must be empty or end with '/'",
    ]
    # Called directly, the filter still refuses to produce an API filter.
    with pytest.raises(ValueError, match="created_after: 2026-01-01T00:00:00 has no time zone"):
        naive.to_api()


def test_an_aware_datetime_is_sent_in_utc() -> None:
    aware = ReadSetFilter(name="x", created_before=datetime(2026, 1, 1, 1, tzinfo=UTC))
    assert aware.problems() == []
    assert aware.to_api()["createdBefore"] == "2026-01-01T01:00:00Z"


def test_a_filter_field_of_the_wrong_type_fails_where_the_filter_is_made() -> None:
    with pytest.raises(
        TypeError,
        match=re.escape(
            "ReadSetFilter: invalid fields:\n- sample_id: expected a string, got int\n"
            "- created_after: expected a timezone-aware datetime or an ISO 8601 string, got int"
        ),
    ):
        ReadSetFilter(sample_id=7, created_after=20260101)  # type: ignore[arg-type]


def test_a_service_option_of_the_wrong_type_is_a_type_error() -> None:
    with pytest.raises(
        TypeError,
        match=re.escape(
            "ReadSetExportService Invalid/Exports: invalid props:\n"
            "- max_requests_per_second: expected an int (e.g. 5), got str\n"
            "- poll_interval: expected an aws_cdk.Duration (e.g. Duration.seconds(30)), got int"
        ),
    ):
        ReadSetExportService(
            Stack(App(), "Invalid"),
            "Exports",
            max_requests_per_second="5",  # type: ignore[arg-type]
            poll_interval=30,  # type: ignore[arg-type]
        )


def test_a_service_of_another_stack_is_refused() -> None:
    app = App()
    elsewhere = ReadSetExportService(Stack(app, "Shared"), "Exports")
    with pytest.raises(ValueError, match="service: Shared/Exports belongs to stack Shared"):
        ReadSetExport(
            Stack(app, "Mine"),
            "Export",
            sequence_store_id="1234567890",
            read_set_ids=["1111111111"],
            service=elsewhere,
        )


def test_every_prop_reaches_the_checks() -> None:
    """The checks read the props from one record, filled by name from ReadSetExport's
    signature: a prop added to one and not the other fails here, not silently."""
    signature = inspect.signature(ReadSetExport.__init__).parameters.values()
    keyword_only = [p.name for p in signature if p.kind is inspect.Parameter.KEYWORD_ONLY]
    assert keyword_only == [field.name for field in fields(ExportProps)]
