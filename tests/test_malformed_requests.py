"""Every malformed custom-resource request gets a FAILED answer that says what is wrong, and no
export starts: a table of cases, each with the reason it must give.

A request that cannot be answered (not a map, or no ResponseURL to answer to) is logged and
ignored. A malformed Delete still succeeds: nothing can have started for it, and a failed
Delete would leave the stack stuck. No case logs the ResponseURL's signature.

``python -m tests.test_malformed_requests`` prints the table's tally (tried, refused clearly,
accepted, crashed).
"""

from __future__ import annotations

import sys
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from cdk_omics_export.handler import answer, clients, index

from .test_handler import (  # noqa: F401 (answers and clock are fixtures)
    SIGNATURE,
    Answers,
    answers,
    clock,
    event,
    moto_service,
    properties,
    runner_executions,
)

MISSING = object()
IGNORED = "ignored"

Event = Any


@dataclass(frozen=True)
class Case:
    """``make()`` is the request; its answer must be ``status`` with ``reason`` in it
    (``reason`` IGNORED: no answer, nothing started)."""

    what: str
    make: Callable[[], Event]
    reason: str
    status: str = "FAILED"

    def __str__(self) -> str:
        return self.what


def _event(request_type: str = "Create", **fields: Any) -> Event:
    # Each case is a new request: one state table serves the whole table of cases.
    base: dict[str, Any] = dict(event(request_type, RequestId=str(uuid.uuid4())))
    if request_type != "Create":
        base["PhysicalResourceId"] = "rse-physical"
        base["OldResourceProperties"] = properties()
    for name, value in fields.items():
        if value is MISSING:
            base.pop(name, None)
        else:
            base[name] = value
    return base


def _props(request_type: str = "Create", **overrides: Any) -> Event:
    props = properties()
    for name, value in overrides.items():
        if value is MISSING:
            props.pop(name, None)
        else:
            props[name] = value
    return _event(request_type, ResourceProperties=props)


def request(what: str, reason: str, **fields: Any) -> Case:
    return Case(what, lambda: _event(**fields), reason)


def props(what: str, reason: str, request_type: str = "Create", **overrides: Any) -> Case:
    return Case(f"{request_type}: {what}", lambda: _props(request_type, **overrides), reason)


def by_filter(what: str, reason: str, read_set_filter: Any) -> Case:
    return props(what, reason, ReadSetIds=MISSING, ReadSetFilter=read_set_filter)


NOT_ANSWERABLE = [
    Case("event None", lambda: None, IGNORED),
    Case("event a string", lambda: "Create", IGNORED),
    Case("event a list", lambda: [event("Create")], IGNORED),
    Case("event a number", lambda: 5, IGNORED),
    request("ResponseURL missing", IGNORED, ResponseURL=MISSING),
    request("ResponseURL None", IGNORED, ResponseURL=None),
    request("ResponseURL a number", IGNORED, ResponseURL=5),
    request("ResponseURL a list", IGNORED, ResponseURL=["https://example/"]),
]

REQUEST_TYPE = [
    request(
        f"RequestType {value!r}",
        f"RequestType {str(value)[:40]!r} is not one of Create, Update, Delete",
        RequestType=value,
    )
    for value in ("Replace", "", "create", "CREATE", "Create ", 5, None, ["Create"], {})
] + [request("RequestType missing", "RequestType '' is not one of", RequestType=MISSING)]

IDENTITY = [
    request(f"{name} {label}", f"The request has no {name}", **{name: value})
    for name in ("RequestId", "StackId", "LogicalResourceId")
    for label, value in (("missing", MISSING), ("None", None), ("empty", ""), ("a number", 7))
]

RESOURCE_PROPERTIES = [
    request(f"ResourceProperties {label}", "The request has no ResourceProperties", **fields)
    for label, fields in (
        ("missing", {"ResourceProperties": MISSING}),
        ("None", {"ResourceProperties": None}),
        ("a string", {"ResourceProperties": "SequenceStoreId=1234567890"}),
        ("a list", {"ResourceProperties": [properties()]}),
        ("a number", {"ResourceProperties": 1}),
    )
]

REQUIRED = [
    props(f"{name} {label}", reason, **{name: value})
    for name in ("ConstructPath", "SequenceStoreId", "Destination", "RoleArn")
    for label, value, reason in (
        ("missing", MISSING, f"ResourceProperties lack {name}"),
        ("None", None, f"ResourceProperties lack {name}"),
        ("empty", "", f"ResourceProperties lack {name}"),
        ("a number", 1234567890, f"{name}: expected a string, got int"),
        ("a list", ["x"], f"{name}: expected a string, got list"),
        ("a map", {"x": "y"}, f"{name}: expected a string, got dict"),
    )
] + [
    props(
        "two required properties missing",
        "ResourceProperties lack Destination, RoleArn",
        Destination=MISSING,
        RoleArn=None,
    )
]

VALUES = [
    props(
        "SequenceStoreId not 10 digits",
        "sequence_store_id: 'store-abc'",
        SequenceStoreId="store-abc",
    ),
    props("SequenceStoreId too short", "sequence_store_id: '123'", SequenceStoreId="123"),
    props(
        "Destination not s3://",
        "Destination: 'https://b/exports/'",
        Destination="https://b/exports/",
    ),
    props(
        "Destination a bad bucket",
        "Destination: 's3://B_b/exports/'",
        Destination="s3://B_b/exports/",
    ),
    props(
        "Destination with spaces", "Destination: 's3://b/ex ports/'", Destination="s3://b/ex ports/"
    ),
    props(
        "RoleArn not an ARN", "RoleArn: 'ExportRole' is not an IAM role ARN", RoleArn="ExportRole"
    ),
    props("Encryption unknown", "Encryption: 'kms' is not one of", Encryption="kms"),
    props("Encryption a list", "Encryption: expected a string, got list", Encryption=["aws:kms"]),
    props("KmsKeyArn not an ARN", "KmsKeyArn: 'alias/x' is not a KMS key ARN", KmsKeyArn="alias/x"),
    props("KmsKeyArn a map", "KmsKeyArn: expected a string, got dict", KmsKeyArn={"Ref": "Key"}),
    props(
        "ExportGeneration not a number",
        "ExportGeneration: 'x' is not a whole number",
        ExportGeneration="x",
    ),
    props(
        "ExportGeneration a fraction",
        "ExportGeneration: '1.5' is not a whole number",
        ExportGeneration="1.5",
    ),
    props("ExportGeneration negative", "export_generation", ExportGeneration="-1"),
    props(
        "ExportGeneration a list",
        "ExportGeneration: expected a string, got list",
        ExportGeneration=[],
    ),
    props(
        "TimeoutSeconds not a number",
        "TimeoutSeconds: 'ten' is not a whole number",
        TimeoutSeconds="ten",
    ),
    props("TimeoutSeconds zero", "timeout", TimeoutSeconds="0"),
    props("TimeoutSeconds negative", "timeout", TimeoutSeconds="-60"),
    props("TimeoutSeconds beyond an hour", "timeout", TimeoutSeconds="99999"),
    props("TimeoutSeconds a map", "TimeoutSeconds: expected a string, got dict", TimeoutSeconds={}),
    props(
        "WaitForCompletion not a flag",
        "WaitForCompletion: 'maybe' is neither true nor false",
        WaitForCompletion="maybe",
    ),
    props(
        "WaitForCompletion a list",
        "WaitForCompletion: expected a string, got list",
        WaitForCompletion=[True],
    ),
    props(
        "AllowPartialFailure not a flag",
        "AllowPartialFailure: 'yes' is neither true nor false",
        AllowPartialFailure="yes",
    ),
    props(
        "AllowEmptySelection a number",
        "AllowEmptySelection: '5' is neither true nor false",
        AllowEmptySelection=5,
    ),
    props(
        "ArchivedReadSets unknown",
        "ArchivedReadSets: 'THAW' is not one of",
        ArchivedReadSets="THAW",
    ),
    props(
        "ArchivedReadSets a list",
        "ArchivedReadSets: expected a string, got list",
        ArchivedReadSets=["FAIL"],
    ),
    props(
        "SelectionRefresh too long",
        "SelectionRefresh: 300 characters; at most 256",
        SelectionRefresh="x" * 300,
    ),
    props(
        "SelectionRefresh a map",
        "SelectionRefresh: expected a string, got dict",
        SelectionRefresh={},
    ),
    props("ServiceToken a list", "ServiceToken: expected a string, got list", ServiceToken=[]),
    props("ConstructPath a flag", "ConstructPath: expected a string, got bool", ConstructPath=True),
]

SELECTION = [
    props("no selection", "ResourceProperties name no read sets", ReadSetIds=MISSING),
    props("ReadSetIds None", "ResourceProperties name no read sets", ReadSetIds=None),
    props("ReadSetIds a string", "ReadSetIds: not a list of read set ids", ReadSetIds="1111111111"),
    props(
        "ReadSetIds a map",
        "ReadSetIds: not a list of read set ids",
        ReadSetIds={"id": "1111111111"},
    ),
    props(
        "ReadSetIds of numbers", "ReadSetIds: not a list of read set ids", ReadSetIds=[1111111111]
    ),
    props("ReadSetIds holding None", "ReadSetIds: not a list of read set ids", ReadSetIds=[None]),
    props("ReadSetIds empty", "read_set_ids", ReadSetIds=[]),
    props("ReadSetIds malformed", "read_set_ids", ReadSetIds=["abc"]),
    props("ReadSetIds repeated", "read_set_ids", ReadSetIds=["1111111111", "1111111111"]),
    props(
        "ReadSetList not s3://",
        "ReadSetList: not an s3:// URL",
        ReadSetIds=MISSING,
        ReadSetList="https://x/ids.txt",
    ),
    props(
        "ReadSetList a number", "ReadSetList: not an s3:// URL", ReadSetIds=MISSING, ReadSetList=5
    ),
    props("ReadSetList empty", "ReadSetList: not an s3:// URL", ReadSetIds=MISSING, ReadSetList=""),
    props(
        "ids and a filter",
        "ResourceProperties give ReadSetIds and ReadSetFilter",
        ReadSetFilter={"sampleId": "S1"},
    ),
    props(
        "ids and a list",
        "ResourceProperties give ReadSetIds and ReadSetList",
        ReadSetList="s3://b/ids.txt",
    ),
]

FILTER = [
    by_filter("ReadSetFilter a string", "ReadSetFilter: not a map of filter fields", "sampleId=S1"),
    by_filter(
        "ReadSetFilter a list", "ReadSetFilter: not a map of filter fields", [{"sampleId": "S1"}]
    ),
    by_filter("ReadSetFilter empty", "ReadSetFilter: give at least one field", {}),
    by_filter(
        "ReadSetFilter status only",
        "ReadSetFilter: give at least one field besides status",
        {"status": "ACTIVE"},
    ),
    by_filter("an unknown field", "ReadSetFilter: unknown field sample", {"sample": "S1"}),
    by_filter("two unknown fields", "ReadSetFilter: unknown fields a, b", {"a": "1", "b": "2"}),
    by_filter("a number value", "ReadSetFilter: sampleId must be strings", {"sampleId": 7}),
    by_filter("a list value", "ReadSetFilter: name must be strings", {"name": ["x"]}),
    by_filter("an empty name", "ReadSetFilter.name: 0 characters; it must be 1-127", {"name": ""}),
    by_filter("a long sampleId", "ReadSetFilter.sampleId: 128 characters", {"sampleId": "s" * 128}),
    by_filter(
        "a tab in sampleId",
        "ReadSetFilter.sampleId: holds control characters",
        {"sampleId": "S\t1"},
    ),
    by_filter(
        "a newline in subjectId",
        "ReadSetFilter.subjectId: holds control characters",
        {"subjectId": "P\n1"},
    ),
    by_filter("a NUL in name", "ReadSetFilter.name: holds control characters", {"name": "n\x00"}),
    by_filter(
        "a bad creationType",
        "ReadSetFilter.creationType: 'COPY' is not one of IMPORT, UPLOAD",
        {"creationType": "COPY"},
    ),
    by_filter(
        "a bad status",
        "ReadSetFilter.status: 'GONE' is not one of",
        {"sampleId": "S1", "status": "GONE"},
    ),
    by_filter("a bad referenceArn", "ReadSetFilter.referenceArn:", {"referenceArn": "reference-1"}),
    by_filter("a bad generatedFrom", "ReadSetFilter.generatedFrom:", {"generatedFrom": "g" * 128}),
    by_filter(
        "createdAfter not a date", "ReadSetFilter.createdAfter:", {"createdAfter": "yesterday"}
    ),
    by_filter(
        "createdBefore not a date",
        "ReadSetFilter.createdBefore:",
        {"createdBefore": "2026-13-01T00:00:00Z"},
    ),
    by_filter(
        "createdAfter without a zone",
        "ReadSetFilter.createdAfter:",
        {"createdAfter": "2026-01-01T00:00:00"},
    ),
    by_filter(
        "createdAfter later than createdBefore",
        "ReadSetFilter.createdAfter: must be earlier than ReadSetFilter.createdBefore",
        {"createdAfter": "2026-02-01T00:00:00Z", "createdBefore": "2026-01-01T00:00:00Z"},
    ),
    by_filter(
        "the same instant in two zones",
        "ReadSetFilter.createdAfter: must be earlier than ReadSetFilter.createdBefore",
        {"createdAfter": "2026-01-01T01:00:00+01:00", "createdBefore": "2026-01-01T00:00:00Z"},
    ),
]

UPDATE = [
    props(
        "RequestType Update, RoleArn missing",
        "ResourceProperties lack RoleArn",
        "Update",
        RoleArn=MISSING,
    ),
    props(
        "RequestType Update, a bad filter",
        "ReadSetFilter: unknown field x",
        "Update",
        ReadSetIds=MISSING,
        ReadSetFilter={"x": "1"},
    ),
    props(
        "RequestType Update, TimeoutSeconds a list",
        "TimeoutSeconds: expected a string, got list",
        "Update",
        TimeoutSeconds=[],
    ),
]

# A Delete is never refused: nothing started for a malformed request, and a failed Delete
# would leave the stack stuck.
DELETE = [
    Case(f"Delete: {label}", lambda fields=fields: _event("Delete", **fields), "", "SUCCESS")
    for label, fields in (
        ("ResourceProperties missing", {"ResourceProperties": MISSING}),
        ("ResourceProperties a string", {"ResourceProperties": "x"}),
        ("PhysicalResourceId missing", {"PhysicalResourceId": MISSING}),
        ("PhysicalResourceId a number", {"PhysicalResourceId": 5}),
        ("a bad filter", {"ResourceProperties": properties(ReadSetIds=None, ReadSetFilter=7)}),
        ("ExportGeneration not a number", {"ResourceProperties": properties(ExportGeneration="x")}),
    )
]

CASES = (
    NOT_ANSWERABLE
    + REQUEST_TYPE
    + IDENTITY
    + RESOURCE_PROPERTIES
    + REQUIRED
    + VALUES
    + SELECTION
    + FILTER
    + UPDATE
    + DELETE
)
# What each case came to, by case: the tally of ``python -m`` reads it.
OUTCOMES: dict[str, str] = {}


def outcome(  # noqa: PLR0911 (one return per outcome)
    case: Case, caught: Answers, log: str, error: BaseException | None, *, started: bool
) -> tuple[str, str]:
    """``refused`` (answered as the case says, nothing started), ``accepted`` (an export
    started, or an answer other than the case's), or ``crashed`` (the handler raised, or
    answered with an unexpected error), with what was seen."""
    if error is not None:
        return "crashed", f"{type(error).__name__}: {error}"
    if started:
        return "accepted", "a runner execution started"
    if case.reason == IGNORED:
        if caught.sent or "not a CloudFormation request" not in log:
            return "accepted", f"answered {caught.sent} / logged {log[-200:]!r}"
        return "refused", "ignored"
    if len(caught.sent) != 1:
        return "accepted", f"{len(caught.sent)} answers"
    sent = caught.sent[0]
    seen = f"{sent['Status']}: {sent['Reason']}"
    if "The export's handler failed" in sent["Reason"]:
        return "crashed", seen
    if sent["Status"] != case.status or case.reason not in sent["Reason"]:
        return "accepted", seen
    return "refused", seen


@pytest.fixture(scope="module")
def service() -> Iterator[None]:
    """moto's state table, bucket and runner, once for the module; a HealthOmics stub that
    answers nothing (a case that reaches the API fails)."""
    with pytest.MonkeyPatch.context() as patch, moto_service(patch):
        client = boto3.client("omics")
        patch.setattr(clients, "omics", lambda: client)
        with Stubber(client):
            yield


@pytest.mark.usefixtures("service", "clock")
@pytest.mark.parametrize("case", CASES, ids=str)
def test_a_malformed_request_is_answered_saying_what_is_wrong_and_starts_nothing(
    request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture, case: Case
) -> None:
    caught: Answers = request.getfixturevalue("answers")
    raised: BaseException | None = None
    executions = len(runner_executions())
    try:
        index.on_event(case.make())
    except Exception as error:  # noqa: BLE001 (the table counts what CloudFormation would see)
        raised = error
    result, seen = outcome(
        case, caught, caplog.text, raised, started=len(runner_executions()) > executions
    )
    OUTCOMES[case.what] = result
    assert result == "refused", seen
    assert SIGNATURE not in caplog.text
    if case.status == "FAILED" and case.reason != IGNORED:
        sent = caught.only()
        assert "nothing was started" in sent["Reason"].lower(), sent["Reason"]
        if case.make().get("RequestType") == "Create":
            assert sent["PhysicalResourceId"].startswith(answer.CREATE_FAILED_PREFIX)


def test_the_cases_are_distinct() -> None:
    names = [case.what for case in CASES]
    assert len(names) == len(set(names))


if __name__ == "__main__":
    code = pytest.main([__file__, "-q", "-p", "no:cacheprovider", "-k", "malformed_request"])
    outcomes = sys.modules["tests.test_malformed_requests"].OUTCOMES
    counts = Counter(outcomes.values())
    print(
        f"malformed requests: {len(CASES)} tried, {counts['refused']} refused clearly, "
        f"{counts['accepted']} accepted, {counts['crashed']} crashed"
    )
    sys.exit(code)
