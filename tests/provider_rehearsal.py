"""CloudFormation's custom-resource lifecycle, played the way CDK's Provider framework plays it.

Mirrors `custom-resources/lib/provider-framework/runtime/framework.js` of aws-cdk-lib 2.275:
on_event, then the waiter calling is_complete every poll until it is complete, raises, or the
attempts (total timeout / poll interval) run out; the final Data is on_event's merged with
is_complete's; a Create that fails answers with a marker physical id whose Delete is ignored;
Delete may not change the physical id; Data with an incomplete answer is an error.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cdk_omics_export.handler import index

CREATE_FAILED_MARKER = "AWSCDK::CustomResourceProviderFramework::CREATE_FAILED"
STACK_ID = "arn:aws:cloudformation:us-east-1:111122223333:stack/Rehearsal/0a1b2c3d"
RESPONSE_URL = "https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/x?sig=1"


@dataclass
class Response:
    """What CloudFormation receives for one request."""

    status: str  # SUCCESS or FAILED
    physical_id: str
    data: dict[str, str] = field(default_factory=dict)
    reason: str = ""
    polls: int = 0


@dataclass
class Rehearsal:
    """One custom resource, driven through requests like CloudFormation and the framework."""

    logical_id: str = "Export16632B07"
    max_attempts: int = 100
    on_event: Callable[..., Any] = index.on_event
    is_complete: Callable[..., Any] = index.is_complete
    responses: list[Response] = field(default_factory=list)
    # The largest event (JSON bytes) handed to a handler: Lambda's asynchronous payload and
    # Step Functions' state limits are 256 KB.
    largest_event: int = 0

    def request(
        self,
        request_type: str,
        properties: dict[str, Any],
        *,
        old_properties: dict[str, Any] | None = None,
        physical_id: str | None = None,
        request_id: str | None = None,
    ) -> Response:
        event: dict[str, Any] = {
            "RequestType": request_type,
            "RequestId": request_id or str(uuid.uuid4()),
            "StackId": STACK_ID,
            "LogicalResourceId": self.logical_id,
            "ResourceType": "Custom::OmicsReadSetExport",
            "ResponseURL": RESPONSE_URL,
            # CloudFormation hands every scalar property over as a string.
            "ResourceProperties": _as_strings(properties),
        }
        if old_properties is not None:
            event["OldResourceProperties"] = _as_strings(old_properties)
        if physical_id is not None:
            event["PhysicalResourceId"] = physical_id
        response = self._respond(event)
        self.responses.append(response)
        return response

    def _respond(self, event: dict[str, Any]) -> Response:
        if event["RequestType"] == "Delete" and event.get("PhysicalResourceId") == (
            CREATE_FAILED_MARKER
        ):
            return Response("SUCCESS", CREATE_FAILED_MARKER)
        try:
            result = self._invoke(self.on_event, event) or {}
        except Exception as error:
            return self._failed(event, error)
        physical_id = result.get("PhysicalResourceId") or (
            event["RequestId"] if event["RequestType"] == "Create" else event["PhysicalResourceId"]
        )
        if event["RequestType"] == "Delete" and physical_id != event["PhysicalResourceId"]:
            raise AssertionError("DELETE: cannot change the physical resource ID")
        resource_event = {**event, **result, "PhysicalResourceId": physical_id}
        for attempt in range(1, self.max_attempts + 1):
            try:
                answer = self._invoke(self.is_complete, resource_event)
            except Exception as error:
                failed = self._failed(resource_event, error)
                failed.polls = attempt
                return failed
            if answer.get("IsComplete"):
                data = {**resource_event.get("Data", {}), **answer.get("Data", {})}
                return Response("SUCCESS", physical_id, data, polls=attempt)
            if answer.get("Data"):
                raise AssertionError('"Data" is not allowed if "IsComplete" is "False"')
        return Response(
            "FAILED", physical_id, reason="Operation timed out", polls=self.max_attempts
        )

    def _invoke(self, handler: Callable[..., Any], event: dict[str, Any]) -> Any:
        payload = json.dumps(event)
        self.largest_event = max(self.largest_event, len(payload.encode()))
        result = handler(json.loads(payload), None)
        self.between_polls()
        return result

    def between_polls(self) -> None:
        """Called after each invocation; the benchmark advances its simulated clock here."""

    @staticmethod
    def _failed(event: dict[str, Any], error: Exception) -> Response:
        physical_id = event.get("PhysicalResourceId") or CREATE_FAILED_MARKER
        return Response("FAILED", physical_id, reason=str(error))


def _as_strings(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _as_strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_strings(v) for v in value]
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
