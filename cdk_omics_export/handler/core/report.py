"""What the export tells people, built from its records: the manifest in the destination and
the status-change events, and the digest that says whether either changed since it was last
told. Pure: the shell (``reporting.py``) writes and publishes them."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from . import outcome, progress
from . import records as st
from .model import MAX_EVENT_JOBS, Counts, ExportRequest, execution_arn, iso_time, manifest_uri

try:  # imported as cdk_omics_export.handler.core.report (tests, the construct)
    from .. import rules
except ImportError:  # Lambda: the asset's root is on sys.path
    import rules  # type: ignore[import-not-found,no-redef]


def _counts_view(tally: Counts) -> st.ManifestCounts:
    return {
        "selected": tally.selected,
        "exported": tally.exported,
        "failed": tally.failed,
        "inFlight": tally.in_flight,
        "activating": tally.activating,
    }


def manifest(
    snapshot: st.Snapshot, request: ExportRequest, state_machine_arn: str, now: float
) -> st.Manifest:
    """The record for people: the export, this run, and every job and read set."""
    record = progress.record_of(snapshot)
    run = record["run"]
    jobs: list[st.ManifestJob] = []
    for batch in snapshot.ordered_batches():
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
        "exportId": request.export_id,
        "stackId": record["stackId"],
        "constructPath": record["constructPath"],
        "sequenceStoreId": record["sequenceStoreId"],
        "destination": record["destination"],
        "generation": record["generation"],
        "status": record["status"],
        "statusReason": record.get("statusReason", ""),
        "cancelled": record["cancelled"],
        "createdAt": iso_time(record["createdAt"]),
        "updatedAt": iso_time(now),
        "run": {
            "number": run["number"],
            "requestType": run["requestType"],
            "startedAt": iso_time(run["startedAt"]),
            "jobIds": run["jobIds"],
        },
        "counts": _counts_view(outcome.counts(snapshot)),
        "runner": runner_view(snapshot, state_machine_arn),
        "jobs": jobs,
        "activations": _manifest_activations(snapshot),
        "readSets": _manifest_read_sets(snapshot),
    }


def _manifest_activations(snapshot: st.Snapshot) -> list[st.ManifestActivation]:
    listed: list[st.ManifestActivation] = []
    for record in snapshot.ordered_activations():
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


def _manifest_read_sets(snapshot: st.Snapshot) -> list[st.ManifestReadSet]:
    """Each selected read set's outcome, with its provenance (file type, HealthOmics ETag,
    the jobs): a consumer checks the exported files against these later."""
    facts = snapshot.run_facts(progress.run_of(snapshot)["number"])
    outcomes = outcome.read_set_outcomes(snapshot)
    for each in outcomes:
        known = facts.get(each["id"])
        if known is not None:
            each.update(known)  # type: ignore[typeddict-item]
    return outcomes


def status_digest(snapshot: st.Snapshot) -> str:
    """The statuses of the export, its runner (and which execution it is) and its jobs: the
    manifest is written and an event published whenever one of them changed."""
    record = progress.record_of(snapshot)
    seen = [
        record["status"],
        str(record["cancelled"]),
        str(record["run"]["number"]),
        record.get("runner", {}).get("name", ""),
        str(progress.runner_done(snapshot)),
    ] + [f"{b['key']}={b['status']}" for b in snapshot.ordered_batches()]
    seen += [f"{a['key']}={a['status']}" for a in snapshot.ordered_activations()]
    return hashlib.sha256("\n".join(seen).encode()).hexdigest()[:16]


def statuses_to_publish(record: st.ExportRecord, passed: list[str]) -> list[str]:
    """One event per export status passed since the last one told, the current one last."""
    current = record["status"]
    return [s for s in passed if s != current] + [current]


def event_detail(
    snapshot: st.Snapshot, request: ExportRequest, state_machine_arn: str, status: str
) -> dict[str, Any]:
    """What a status-change event says: enough to act on without reading the state."""
    record = progress.record_of(snapshot)
    # This run's jobs and the earlier ones it counts on (at most 100 per run and a few more),
    # so an event stays far below EventBridge's 256 KB however many runs came before.
    jobs = [
        {"id": b["jobId"], "status": b["status"]}
        for b in progress.watched(snapshot)
        if "jobId" in b and b["status"] != st.SUPERSEDED
    ][:MAX_EVENT_JOBS]
    detail: dict[str, Any] = {
        "stackId": record["stackId"],
        "constructPath": record["constructPath"],
        "exportId": request.export_id,
        "run": record["run"]["number"],
        "status": status,
        "counts": _counts_view(outcome.counts(snapshot)),
        "jobIds": [job["id"] for job in jobs],
        "jobs": jobs,
        "manifestUri": manifest_uri(request.destination, request.export_id),
        "runner": runner_view(snapshot, state_machine_arn),
        "sequenceStoreId": record["sequenceStoreId"],
        "destination": record["destination"],
    }
    if status == record["status"] and record.get("statusReason"):
        detail["statusReason"] = record["statusReason"]
    return detail


def status_event(
    snapshot: st.Snapshot,
    request: ExportRequest,
    state_machine_arn: str,
    status: str,
    bus: str,
) -> dict[str, str]:
    """The PutEvents entry that tells of the export at ``status``, on the service's bus (never
    the default one: there anyone allowed events:PutEvents could send a status as if it were
    the service's)."""
    return {
        "EventBusName": bus,
        "Source": rules.EVENT_SOURCE,
        "DetailType": rules.EVENT_DETAIL_TYPE,
        "Detail": json.dumps(
            event_detail(snapshot, request, state_machine_arn, status), separators=(",", ":")
        ),
    }


def runner_view(snapshot: st.Snapshot, state_machine_arn: str) -> st.ManifestRunner:
    name = progress.record_of(snapshot).get("runner", {}).get("name", "")
    arn = execution_arn(state_machine_arn, name) if name and state_machine_arn else ""
    return {"execution": name, "executionArn": arn, "active": not progress.runner_done(snapshot)}
