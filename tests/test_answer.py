"""The answer to CloudFormation (``handler/answer.py``): the body as CloudFormation reads it,
its 4,096-byte limit, and the PUT to the ResponseURL with its retries and logs."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from typing import Any

import pytest

from cdk_omics_export.handler import answer

STACK_ID = "arn:aws:cloudformation:us-east-1:111122223333:stack/Example/guid"
EVENT = {"StackId": STACK_ID, "RequestId": "req-1", "LogicalResourceId": "Export"}
URL = "https://responses.example/stack/req-1?X-Amz-Signature=s3cr3t"
LIMIT = answer.RESPONSE_LIMIT


def test_the_body_is_what_cloudformation_reads() -> None:
    body = answer.body(EVENT, "SUCCESS", "rse-1", reason="done", data={"JobCount": "2"})
    assert body == {
        "Status": "SUCCESS",
        "Reason": "done",
        "PhysicalResourceId": "rse-1",
        "StackId": STACK_ID,
        "RequestId": "req-1",
        "LogicalResourceId": "Export",
        "NoEcho": False,
        "Data": {"JobCount": "2"},
    }
    # Sent compact: every byte counts against the limit.
    assert answer.encode(body) == json.dumps(body, separators=(",", ":")).encode()
    assert b", " not in answer.encode(body) and b'": ' not in answer.encode(body)


def test_a_request_record_of_the_state_table_is_answered_as_its_event() -> None:
    record = {"stackId": STACK_ID, "requestId": "req-1", "logicalResourceId": "Export"}
    assert answer.body(record, "FAILED", "rse-1", reason="x") == answer.body(
        EVENT, "FAILED", "rse-1", reason="x"
    )


def test_missing_fields_are_empty_and_the_reason_defaults_to_the_status() -> None:
    body = answer.body({"RequestId": "req-1", "StackId": None}, "FAILED", "rse-1")
    assert body == {
        "Status": "FAILED",
        "Reason": "FAILED",
        "PhysicalResourceId": "rse-1",
        "StackId": "",
        "RequestId": "req-1",
        "LogicalResourceId": "",
        "NoEcho": False,
        "Data": {},
    }


def test_the_reason_is_one_line() -> None:
    body = answer.body(EVENT, "FAILED", "rse-1", reason="  the export failed:\n\tjob  1 ")
    assert body["Reason"] == "the export failed: job 1"


def fixed_part(data: dict[str, str] | None = None) -> int:
    """The size of the body without its reason."""
    return len(answer.encode(answer.body(EVENT, "FAILED", "rse-1", reason=" ", data=data)))


def test_a_reason_that_just_fits_is_sent_whole() -> None:
    reason = "x" * (LIMIT - fixed_part())
    body = answer.body(EVENT, "FAILED", "rse-1", reason=reason)
    assert body["Reason"] == reason
    assert len(answer.encode(body)) == LIMIT


def test_a_longer_reason_keeps_as_much_as_fits() -> None:
    reason = "abcdefghij" * 1000
    body = answer.body(EVENT, "FAILED", "rse-1", reason=reason)
    kept = LIMIT - fixed_part() - len("...")
    assert body["Reason"] == reason[:kept] + "..."
    assert len(answer.encode(body)) == LIMIT


def test_a_reason_is_measured_as_sent_with_json_escapes() -> None:
    # Each control character is six bytes in JSON (\u0001): the reason keeps what fits.
    reason = "\u0001" * 1000
    body = answer.body(EVENT, "FAILED", "rse-1", reason=reason)
    size = len(answer.encode(body))
    assert size <= LIMIT < size + 6
    assert body["Reason"] == "\u0001" * ((LIMIT - fixed_part() - 3) // 6) + "..."


def test_only_the_ellipsis_is_left_when_the_data_fill_the_body() -> None:
    room = LIMIT - fixed_part({"Key": ""}) - len("...")
    body = answer.body(EVENT, "FAILED", "rse-1", reason="why not", data={"Key": "d" * room})
    assert body["Reason"] == "..."
    assert len(answer.encode(body)) == LIMIT


def test_a_body_too_large_without_its_reason_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^the answer is 4\d{3} bytes even without a reason$"):
        answer.body(EVENT, "SUCCESS", "rse-1", data={"Key": "d" * LIMIT})


def test_a_long_reason_is_shortened_in_a_few_measurements(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bisection: a reason of a million characters costs some twenty measurements, not one
    per character (the handler answers within its Lambda's time)."""
    measured: list[int] = []
    encode = answer.encode

    def counted(body: answer.Body) -> bytes:
        measured.append(len(body["Reason"]))
        assert len(measured) <= 40, "the reason is not bisected"
        return encode(body)

    monkeypatch.setattr(answer, "encode", counted)
    body = answer.body(EVENT, "FAILED", "rse-1", reason="x" * 1_000_000)
    assert body["Reason"] == "x" * (LIMIT - fixed_part() - 3) + "..."


def test_the_response_url_is_logged_without_its_signature() -> None:
    assert answer.redacted(URL) == "responses.example/stack/req-1?***"


class Endpoint:
    """The ResponseURL's endpoint: records each request; fails the first ``refuse`` ones."""

    def __init__(self, refuse: int = 0) -> None:
        self.refuse = refuse
        self.requests: list[urllib.request.Request] = []
        self.timeouts: list[float] = []

    def urlopen(self, request: urllib.request.Request, timeout: float) -> Any:
        self.requests.append(request)
        self.timeouts.append(timeout)
        if len(self.requests) <= self.refuse:
            raise urllib.error.URLError("connection refused")
        return Reply()


class Reply:
    status = 200

    def __enter__(self) -> Reply:
        return self

    def __exit__(self, *_: object) -> None:
        return None


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Endpoint:
    caught = Endpoint()
    monkeypatch.setattr(urllib.request, "urlopen", caught.urlopen)
    return caught


def test_the_answer_is_put_as_the_presigned_url_expects(
    endpoint: Endpoint, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=answer.LOG.name)
    body = answer.body(EVENT, "SUCCESS", "rse-1")
    waits: list[float] = []
    answer.send(URL, body, sleep=waits.append)
    (request,) = endpoint.requests
    assert request.full_url == URL
    assert request.get_method() == "PUT"
    assert request.data == answer.encode(body)
    # No content type: the URL is signed for none.
    assert request.header_items() == [
        ("Content-type", ""),
        ("Content-length", str(len(answer.encode(body)))),
    ]
    assert endpoint.timeouts == [answer.PUT_TIMEOUT_SECONDS] == [10]
    assert waits == []
    assert [r.getMessage() for r in caplog.records] == [
        "answered SUCCESS rse-1 for request req-1 to responses.example/stack/req-1?*** (HTTP 200)"
    ]


def test_a_failed_put_is_retried_with_backoff(
    endpoint: Endpoint, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=answer.LOG.name)
    endpoint.refuse = 2
    waits: list[float] = []
    answer.send(URL, answer.body(EVENT, "FAILED", "rse-1"), sleep=waits.append)
    assert len(endpoint.requests) == 3
    assert waits == [1.0, 2.0]
    where = "responses.example/stack/req-1?***"
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", f"answer for request req-1 to {where} failed (attempt 1 of 6): URLError"),
        ("WARNING", f"answer for request req-1 to {where} failed (attempt 2 of 6): URLError"),
        ("INFO", f"answered FAILED rse-1 for request req-1 to {where} (HTTP 200)"),
    ]
    assert "s3cr3t" not in caplog.text


def test_an_answer_is_lost_after_six_attempts(endpoint: Endpoint) -> None:
    endpoint.refuse = 100
    waits: list[float] = []
    with pytest.raises(answer.AnswerLost) as lost:
        answer.send(URL, answer.body(EVENT, "SUCCESS", "rse-1"), sleep=waits.append)
    assert str(lost.value) == "the answer to request req-1 could not be delivered"
    assert len(endpoint.requests) == answer.PUT_ATTEMPTS == 6
    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0]  # none after the last attempt


def test_the_number_of_attempts_can_be_given(endpoint: Endpoint) -> None:
    endpoint.refuse = 100
    waits: list[float] = []
    with pytest.raises(answer.AnswerLost):
        answer.send(URL, answer.body(EVENT, "SUCCESS", "rse-1"), sleep=waits.append, attempts=2)
    assert len(endpoint.requests) == 2
    assert waits == [1.0]
