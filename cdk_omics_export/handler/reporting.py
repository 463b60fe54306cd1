"""Telling people how an export goes: the manifest in the destination, the status-change
events on EventBridge, each written when a status changed since the last time and best effort
(a failure is logged, never raised: it cannot hide the error that ended the export)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from typing import TYPE_CHECKING, Any

try:  # imported as cdk_omics_export.handler.reporting (tests, the construct)
    from . import export as exports
    from . import rules
    from . import state as st
except ImportError:  # Lambda: the asset's root is on sys.path
    import export as exports  # type: ignore[import-not-found,no-redef]
    import rules  # type: ignore[import-not-found,no-redef]
    import state as st  # type: ignore[import-not-found,no-redef]

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef
    from mypy_boto3_s3 import S3Client

    from .export import Export

LOG = logging.getLogger("cdk_omics_export.handler.export")


class Report:
    """The manifest and events of one export."""

    def __init__(self, export: Export) -> None:
        self.export = export

    def manifest_uri(self) -> str:
        return exports.manifest_uri(self.export.request.destination, self.export.export_id)

    def manifest(self) -> st.Manifest:
        """The record for people: the export, this run, and every job and read set."""
        record, run, counts = self.export.record, self.export.run, self.export.counts()
        jobs: list[st.ManifestJob] = []
        for batch in self.export.snapshot.ordered_batches():
            if batch["status"] == st.SUPERSEDED:
                continue
            job: st.ManifestJob = {
                "batch": batch["key"],
                "id": batch.get("jobId"),
                "status": batch["status"],
                "readSetIds": batch["readSetIds"],
                "readSets": batch.get("readSets", []),
            }
            for key in ("statusMessage", "creationTime", "completionTime"):
                if key in batch:
                    job[key] = batch[key]
            jobs.append(job)
        return {
            "schema": st.SCHEMA_VERSION,
            "exportId": self.export.export_id,
            "stackId": record["stackId"],
            "constructPath": record["constructPath"],
            "sequenceStoreId": record["sequenceStoreId"],
            "destination": record["destination"],
            "generation": record["generation"],
            "status": record["status"],
            "statusReason": record.get("statusReason", ""),
            "cancelled": record["cancelled"],
            "createdAt": exports.iso_time(record["createdAt"]),
            "updatedAt": exports.iso_time(self.export._clock()),
            "run": {
                "number": run["number"],
                "requestType": run["requestType"],
                "startedAt": exports.iso_time(run["startedAt"]),
                "jobIds": run["jobIds"],
            },
            "counts": {
                "selected": counts.selected,
                "exported": counts.exported,
                "failed": counts.failed,
                "inFlight": counts.in_flight,
                "activating": counts.activating,
            },
            "runner": self._runner_view(),
            "jobs": jobs,
            "activations": self._manifest_activations(),
            "readSets": self._manifest_read_sets(),
        }

    def _manifest_activations(self) -> list[st.ManifestActivation]:
        listed: list[st.ManifestActivation] = []
        for record in self.export.snapshot.ordered_activations():
            if record["status"] == st.SUPERSEDED:
                continue
            entry: st.ManifestActivation = {
                "key": record["key"],
                "id": record.get("jobId"),
                "status": record["status"],
                "readSetIds": record["readSetIds"],
                "sources": record.get("sources", []),
            }
            for key in ("statusMessage", "creationTime", "completionTime"):
                if key in record:
                    entry[key] = record[key]
            listed.append(entry)
        return listed

    def _manifest_read_sets(self) -> list[st.ManifestReadSet]:
        """Each selected read set's outcome, with its provenance (file type, HealthOmics ETag,
        the jobs): a consumer checks the exported files against these later."""
        facts = self.export.snapshot.run_facts(self.export.run["number"])
        outcomes = self.export.read_set_outcomes()
        for outcome in outcomes:
            known = facts.get(outcome["id"])
            if known is not None:
                outcome.update(known)  # type: ignore[typeddict-item]
        return outcomes

    def write_manifest(self, s3: S3Client) -> None:
        """Write the manifest when the export's or a job's status changed since last time.

        Best effort: a failure here is logged, never raised, so it cannot hide the error that
        ended the export or fail a deploy that exported everything.
        """
        try:
            digest = self._status_digest()
            if self.export.record.get("manifestDigest") == digest:
                return
            bucket, key = exports.manifest_location(
                self.export.request.destination, self.export.export_id
            )
            encryption = self.export.request.encryption
            extra: dict[str, Any] = {}
            if encryption["mode"]:
                extra["ServerSideEncryption"] = encryption["mode"]
            if encryption.get("keyArn"):
                extra["SSEKMSKeyId"] = encryption["keyArn"]
            s3.put_object(
                Bucket=bucket,
                Key=key,
                Body=json.dumps(self.manifest(), separators=(",", ":")).encode(),
                ContentType="application/json",
                **extra,
            )
            self.export.record["manifestDigest"] = digest
            self.export.save_record()
        except Exception:  # noqa: BLE001
            LOG.exception("could not write the manifest of export %s", self.export.export_id)

    def _status_digest(self) -> str:
        """The statuses of the export, its runner (and which execution it is) and its jobs: the
        manifest is written and an event published whenever one of them changed."""
        seen = [
            self.export.record["status"],
            str(self.export.record["cancelled"]),
            str(self.export.run["number"]),
            self.export.record.get("runner", {}).get("name", ""),
            str(self.export.runner_done()),
        ] + [f"{b['key']}={b['status']}" for b in self.export.snapshot.ordered_batches()]
        seen += [f"{a['key']}={a['status']}" for a in self.export.snapshot.ordered_activations()]
        return hashlib.sha256("\n".join(seen).encode()).hexdigest()[:16]

    def publish(self, events: EventBridgeClient) -> None:
        """Tell the service's EventBridge bus of the statuses this invocation moved through.

        One ``Read Set Export Status Change`` event per export status passed (the last one
        also whenever a job's status changed), after the state that they describe was saved.
        Best effort, like the manifest: a failure is logged, and the next step publishes the
        status then current. EventBridge delivers at least once.
        """
        try:
            digest = self._status_digest()
            if self.export.record.get("eventDigest") == digest:
                self.export.passed_statuses.clear()
                return
            current = self.export.record["status"]
            statuses = [s for s in self.export.passed_statuses if s != current] + [current]
            entries = [self.status_event(status) for status in statuses]
            for start in range(0, len(entries), 10):
                answer = events.put_events(Entries=entries[start : start + 10])
                if answer.get("FailedEntryCount"):
                    failed = [e for e in answer["Entries"] if "ErrorCode" in e]
                    raise exports.ExportError(f"PutEvents refused {len(failed)} event(s): {failed}")
            self.export.passed_statuses.clear()
            self.export.record["eventDigest"] = digest
            self.export.save_record()
        except Exception:  # noqa: BLE001
            LOG.exception("could not publish the status of export %s", self.export.export_id)

    def status_event(self, status: str) -> PutEventsRequestEntryTypeDef:
        """The PutEvents entry that tells of the export at ``status``."""
        return {
            # The service's bus, never the default one: there anyone allowed events:PutEvents
            # could send a status as if it were the service's.
            "EventBusName": os.environ[rules.EVENT_BUS_ENV],
            "Source": rules.EVENT_SOURCE,
            "DetailType": rules.EVENT_DETAIL_TYPE,
            "Detail": json.dumps(self.event_detail(status), separators=(",", ":")),
        }

    def event_detail(self, status: str) -> dict[str, Any]:
        """What a status-change event says: enough to act on without reading the state."""
        record, counts = self.export.record, self.export.counts()
        # This run's jobs and the earlier ones it counts on (at most 100 per run and a few
        # more), so an event stays far below EventBridge's 256 KB however many runs came before.
        jobs = [
            {"id": b["jobId"], "status": b["status"]}
            for b in self.export._watched()
            if "jobId" in b and b["status"] != st.SUPERSEDED
        ][: exports.MAX_EVENT_JOBS]
        detail: dict[str, Any] = {
            "stackId": record["stackId"],
            "constructPath": record["constructPath"],
            "exportId": self.export.export_id,
            "run": self.export.run["number"],
            "status": status,
            "counts": {
                "selected": counts.selected,
                "exported": counts.exported,
                "failed": counts.failed,
                "inFlight": counts.in_flight,
                "activating": counts.activating,
            },
            "jobIds": [job["id"] for job in jobs],
            "jobs": jobs,
            "manifestUri": self.manifest_uri(),
            "runner": self._runner_view(),
            "sequenceStoreId": record["sequenceStoreId"],
            "destination": record["destination"],
        }
        if status == record["status"] and record.get("statusReason"):
            detail["statusReason"] = record["statusReason"]
        return detail

    def _runner_view(self) -> st.ManifestRunner:
        name = self.export.record.get("runner", {}).get("name", "")
        arn = (
            exports.execution_arn(self.export.state_machine_arn, name)
            if name and self.export.state_machine_arn
            else ""
        )
        return {"execution": name, "executionArn": arn, "active": not self.export.runner_done()}

    def told(self) -> bool:
        """Whether the last status-change event carried the statuses as they are now."""
        return self.export.record.get("eventDigest") == self._status_digest()
