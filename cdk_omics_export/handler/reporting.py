"""Telling people how an export goes: the manifest in the destination, the status-change
events on EventBridge, each written when a status changed since the last time and best effort
(a failure is logged, never raised: it cannot hide the error that ended the export). What
they say is built by ``core/report.py``."""

from __future__ import annotations

import json
import logging
import os
from typing import TYPE_CHECKING, Any

try:  # imported as cdk_omics_export.handler.reporting (tests, the construct)
    from . import rules
    from . import state as st
    from .core import report
    from .core.model import manifest_location
    from .errors import ExportError
    from .step import Step
except ImportError:  # Lambda: the asset's root is on sys.path
    import rules  # type: ignore[import-not-found,no-redef]
    import state as st  # type: ignore[import-not-found,no-redef]
    from core import report  # type: ignore[import-not-found,no-redef]
    from core.model import manifest_location  # type: ignore[import-not-found,no-redef]
    from errors import ExportError  # type: ignore[import-not-found,no-redef]
    from step import Step  # type: ignore[import-not-found,no-redef]

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef
    from mypy_boto3_s3 import S3Client

LOG = logging.getLogger("cdk_omics_export.handler.export")


def manifest(step: Step) -> st.Manifest:
    """The manifest as the step's records say now."""
    return report.manifest(step.snapshot, step.request, step.state_machine_arn, step.now())


def write_manifest(step: Step, s3: S3Client) -> None:
    """Write the manifest when the export's or a job's status changed since last time.

    Best effort: a failure here is logged, never raised, so it cannot hide the error that
    ended the export or fail a deploy that exported everything.
    """
    try:
        digest = report.status_digest(step.snapshot)
        if step.record.get("manifestDigest") == digest:
            return
        bucket, key = manifest_location(step.request.destination, step.export_id)
        encryption = step.request.encryption
        extra: dict[str, Any] = {}
        if encryption["mode"]:
            extra["ServerSideEncryption"] = encryption["mode"]
        if encryption.get("keyArn"):
            extra["SSEKMSKeyId"] = encryption["keyArn"]
        s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=json.dumps(manifest(step), separators=(",", ":")).encode(),
            ContentType="application/json",
            **extra,
        )
        step.record["manifestDigest"] = digest
        step.save_record()
    except Exception:  # noqa: BLE001
        LOG.exception("could not write the manifest of export %s", step.export_id)


def publish(step: Step, events: EventBridgeClient) -> None:
    """Tell the service's EventBridge bus of the statuses this invocation moved through.

    One ``Read Set Export Status Change`` event per export status passed (the last one
    also whenever a job's status changed), after the state that they describe was saved.
    Best effort, like the manifest: a failure is logged, and the next step publishes the
    status then current. EventBridge delivers at least once.
    """
    try:
        digest = report.status_digest(step.snapshot)
        if step.record.get("eventDigest") == digest:
            step.passed_statuses.clear()
            return
        statuses = report.statuses_to_publish(step.record, step.passed_statuses)
        entries = [status_event(step, status) for status in statuses]
        for start in range(0, len(entries), 10):
            answer = events.put_events(Entries=entries[start : start + 10])
            if answer.get("FailedEntryCount"):
                failed = [e for e in answer["Entries"] if "ErrorCode" in e]
                raise ExportError(f"PutEvents refused {len(failed)} event(s): {failed}")
        step.passed_statuses.clear()
        step.record["eventDigest"] = digest
        step.save_record()
    except Exception:  # noqa: BLE001
        LOG.exception("could not publish the status of export %s", step.export_id)


def status_event(step: Step, status: str) -> PutEventsRequestEntryTypeDef:
    """The PutEvents entry that tells of the export at ``status``."""
    entry = report.status_event(
        step.snapshot,
        step.request,
        step.state_machine_arn,
        status,
        os.environ[rules.EVENT_BUS_ENV],
    )
    return {
        "EventBusName": entry["EventBusName"],
        "Source": entry["Source"],
        "DetailType": entry["DetailType"],
        "Detail": entry["Detail"],
    }


def told(step: Step) -> bool:
    """Whether the last status-change event carried the statuses as they are now."""
    return step.record.get("eventDigest") == report.status_digest(step.snapshot)
