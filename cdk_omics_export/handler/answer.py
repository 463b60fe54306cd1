"""The answer to CloudFormation: the one place that builds, sizes and sends it.

A Lambda-backed custom resource is answered by a PUT of a JSON body to the request's
``ResponseURL``, a pre-signed S3 URL: whoever holds it can answer for the stack, so it is
logged only as ``host/path?***`` and kept nowhere but the state table. The body is at most
4,096 bytes, ``Reason`` is shortened to fit, and the PUT is retried with backoff, as CDK's
provider framework (``cfn-response``) and ``CustomResourceProvider`` entrypoint do. Every
other module returns or raises; none builds a body. Imports only the standard library, so an
entry point can answer even when the rest of the handler fails to import.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypedDict
from urllib.parse import urlsplit

LOG = logging.getLogger(__name__)

RESPONSE_LIMIT = 4096
# Attempts of the PUT, waiting 1, 2, 4, 8 and 16 s between them.
PUT_ATTEMPTS = 6
PUT_TIMEOUT_SECONDS = 10
# The physical id of a Create that failed: the Delete that CloudFormation's rollback then
# sends is recognized and answered without touching any export. The export id follows it.
CREATE_FAILED_PREFIX = "CREATE_FAILED:"

Status = Literal["SUCCESS", "FAILED"]


class Body(TypedDict):
    Status: Status
    Reason: str
    PhysicalResourceId: str
    StackId: str
    RequestId: str
    LogicalResourceId: str
    NoEcho: bool
    Data: dict[str, str]


class AnswerLost(Exception):
    """Every attempt of the PUT failed: CloudFormation fails the resource at its timeout."""


def redacted(url: str) -> str:
    """The ResponseURL as it may be logged: its signature is a credential."""
    parts = urlsplit(url)
    return f"{parts.netloc}{parts.path}?***"


def body(
    request: Mapping[str, Any],
    status: Status,
    physical_id: str,
    *,
    reason: str = "",
    data: Mapping[str, str] | None = None,
) -> Body:
    """The answer to ``request`` (an event, or a request record of the state table), with
    ``Reason`` shortened so the whole body stays within 4,096 bytes."""

    def field(name: str) -> str:
        value = request.get(name, request.get(name[0].lower() + name[1:], ""))
        return str(value or "")

    answer: Body = {
        "Status": status,
        "Reason": "",
        "PhysicalResourceId": physical_id,
        "StackId": field("StackId"),
        "RequestId": field("RequestId"),
        "LogicalResourceId": field("LogicalResourceId"),
        "NoEcho": False,
        "Data": dict(data or {}),
    }
    text = " ".join((reason or status).split())
    answer["Reason"] = text
    if len(encode(answer)) <= RESPONSE_LIMIT:
        return answer
    # Measured as sent: JSON escapes make a character up to 12 bytes long.
    fits, over = 0, len(text)
    while over - fits > 1:
        middle = (fits + over) // 2
        answer["Reason"] = text[:middle] + "..."
        if len(encode(answer)) <= RESPONSE_LIMIT:
            fits = middle
        else:
            over = middle
    answer["Reason"] = text[:fits] + "..."
    if len(encode(answer)) > RESPONSE_LIMIT:
        raise ValueError(f"the answer is {len(encode(answer))} bytes even without a reason")
    return answer


def encode(answer: Body) -> bytes:
    return json.dumps(answer, separators=(",", ":")).encode()


def send(
    url: str,
    answer: Body,
    *,
    sleep: Callable[[float], None] = time.sleep,
    attempts: int = PUT_ATTEMPTS,
) -> None:
    """PUT the answer, retrying with backoff; raises ``AnswerLost`` when every attempt fails."""
    payload = encode(answer)
    where = redacted(url)
    for attempt in range(1, attempts + 1):
        request = urllib.request.Request(
            url,
            data=payload,
            method="PUT",
            # An empty content type: the URL is signed for none.
            headers={"Content-Type": "", "Content-Length": str(len(payload))},
        )
        try:
            with urllib.request.urlopen(request, timeout=PUT_TIMEOUT_SECONDS) as reply:  # noqa: S310
                LOG.info(
                    "answered %s %s for request %s to %s (HTTP %s)",
                    answer["Status"],
                    answer["PhysicalResourceId"],
                    answer["RequestId"],
                    where,
                    reply.status,
                )
                return
        except Exception as error:  # noqa: BLE001
            # The error's text may quote the URL: name its type only.
            LOG.warning(
                "answer for request %s to %s failed (attempt %d of %d): %s",
                answer["RequestId"],
                where,
                attempt,
                attempts,
                type(error).__name__,
            )
        if attempt < attempts:
            sleep(float(2 ** (attempt - 1)))
    raise AnswerLost(f"the answer to request {answer['RequestId']} could not be delivered")
