"""The command's output: the tables and reasons of text mode, the JSON of ``--json``, and the
progress bar of ``--watch``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from ..handler.state import Manifest, ManifestActivation, ManifestJob
from .status import (
    FINAL,
    MISMATCH,
    STATUS_NAMES,
    WAITING,
    ExportStatus,
    JobStatus,
    job_code,
    job_read_sets,
    overall,
)


def render_jobs_table(jobs: Sequence[JobStatus]) -> Table:
    table = Table(title="HealthOmics read set export jobs")
    for column in ("job", "status", "finished", "failed", "in progress", "destination"):
        table.add_column(column, justify="right" if column in ("finished", "failed") else "left")
    for job in jobs:
        table.add_row(
            job.id,
            job.status,
            f"{job.finished}/{job.read_sets}",
            str(job.failed),
            str(job.in_progress),
            job.destination,
        )
    return table


def render_exports_table(stack: str, exports: Sequence[ExportStatus], *, jobs: bool) -> Table:
    """A row per export; with ``jobs``, a section per export with a row per job and
    activation under it."""
    table = Table(
        title=f"Read set exports of stack {stack}",
        caption="jobs: running/ended/not started yet",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    table.add_column("export")
    table.add_column("status", overflow="fold")
    for column in ("exported", "failed", "in flight"):
        table.add_column(column, justify="right")
    table.add_column("jobs", justify="center", no_wrap=True)
    table.add_column("runner")
    table.add_column("updated")
    for number, export in enumerate(exports):
        if jobs and number:
            table.add_section()
        if export.manifest is None:
            table.add_row(export.construct, WAITING)
        elif export.mismatches:
            table.add_row(export.construct, MISMATCH)
        else:
            table.add_row(*_export_row(export, export.manifest))
            if jobs:
                _add_job_rows(table, export, export.manifest)
    return table


def _export_row(export: ExportStatus, manifest: Manifest) -> list[str]:
    counts, tally = export.counts(), export.tally()
    return [
        export.construct,
        export.status,
        f"{counts['exported']}/{counts['selected']}",
        str(counts["failed"]),
        # Read sets still being activated are in flight too; how many of them, said so.
        f"{counts['inFlight']} ({counts['activating']} activating)"
        if counts.get("activating")
        else str(counts["inFlight"]),
        f"{tally.running}/{tally.ended}/{tally.pending}",
        export.runner_state,
        manifest.get("updatedAt", "").replace("T", " "),
    ]


def _add_job_rows(table: Table, export: ExportStatus, manifest: Manifest) -> None:
    for job in export.jobs():
        read_sets = job_read_sets(job)
        table.add_row(
            f"  {job['id'] or '(not started)'}",
            job["status"],
            f"{read_sets.exported}/{read_sets.total}",
            str(read_sets.failed),
            str(read_sets.in_flight),
        )
    for activation in manifest.get("activations", []):
        sources = activation.get("sources", [])
        finished = sum(1 for s in sources if s["status"] == "FINISHED")
        failed = sum(1 for s in sources if s["status"] == "FAILED")
        table.add_row(
            f"  {activation['id'] or '(watched)'} (activation)",
            activation["status"],
            f"{finished}/{len(activation['readSetIds'])} active",
            str(failed),
            str(len(activation["readSetIds"]) - finished - failed),
        )


def reasons(exports: Sequence[ExportStatus], *, jobs: bool) -> list[str]:
    """Why exports (and, with ``--jobs``, jobs) ended the way they did, one line each."""
    lines = []
    for export in exports:
        if export.mismatches:
            lines.append(
                f"{export.construct}: the manifest at {export.manifest_uri} does not match: "
                + "; ".join(export.mismatches)
                + ". It is not the service's record of this export, and nothing it says is "
                "reported."
            )
            lines.extend(export.notes)
            continue
        if export.status_reason:
            lines.append(f"{export.construct}: {export.status_reason}")
        if export.stalled:
            lines.append(stalled_note(export))
        elif export.stopped_early and not export.status_reason:
            lines.append(
                f"{export.construct}: its runner ended while the export was {export.status}; "
                "the next deploy resumes it."
            )
        lines.extend(export.notes)
        if jobs:
            for job in export.jobs():
                if job.get("statusMessage"):
                    lines.append(f"{export.construct} job {job['id']}: {job['statusMessage']}")
    return lines


def stalled_note(export: ExportStatus) -> str:
    said = (
        f"{export.construct}: its runner execution {export.execution} is {export.execution_status}"
    )
    if export.status in FINAL:
        return f"{said}; the export is {export.status}, and nothing updates its manifest now."
    return (
        f"{said}; nothing carries the export now. The next deploy that changes its properties, "
        "or a deploy in progress, resumes it and skips what completed."
    )


def export_json(export: ExportStatus, *, jobs: bool) -> dict[str, Any]:
    """One export for ``--json``: only what disagrees, for a manifest that is a mismatch."""
    if export.mismatches:
        return {
            "construct": export.construct,
            "exportId": export.export_id,
            "status": MISMATCH,
            "mismatches": export.mismatches,
            "manifestUri": export.manifest_uri,
            "exitCode": export.exit_code(),
        }
    manifest = export.manifest
    tally = export.tally()
    report: dict[str, Any] = {
        "construct": export.construct,
        "exportId": None if manifest is None else manifest.get("exportId"),
        "status": export.status,
        "statusReason": export.status_reason,
        "cancelled": False if manifest is None else manifest.get("cancelled", False),
        "counts": export.counts(),
        "runner": {
            "execution": export.execution,
            "active": export.active,
            "executionStatus": export.execution_status,
        },
        "stalled": export.stalled,
        "jobs": {
            "running": tally.running,
            "ended": tally.ended,
            "pending": tally.pending,
            "total": tally.total,
        },
        "manifestUri": export.manifest_uri,
        "updatedAt": None if manifest is None else manifest.get("updatedAt"),
        "sequenceStoreId": None if manifest is None else manifest.get("sequenceStoreId"),
        "destination": None if manifest is None else manifest.get("destination"),
        "run": None,
        "exitCode": export.exit_code(),
    }
    if manifest is not None and "run" in manifest:
        run = manifest["run"]
        report["run"] = {
            "number": run.get("number"),
            "requestType": run.get("requestType"),
            "startedAt": run.get("startedAt"),
        }
    if jobs:
        report["jobList"] = [_job_json(job) for job in export.jobs()]
        activations = [] if manifest is None else manifest.get("activations", [])
        report["activationList"] = [_activation_json(a) for a in activations]
    return report


def _job_json(job: ManifestJob) -> dict[str, Any]:
    read_sets = job_read_sets(job)
    return {
        "batch": job["batch"],
        "id": job["id"],
        "status": job["status"],
        "statusMessage": job.get("statusMessage", ""),
        "readSets": {
            "total": read_sets.total,
            "exported": read_sets.exported,
            "failed": read_sets.failed,
            "inFlight": read_sets.in_flight,
        },
        "creationTime": job.get("creationTime"),
        "completionTime": job.get("completionTime"),
    }


def _activation_json(activation: ManifestActivation) -> dict[str, Any]:
    return {
        "key": activation["key"],
        "id": activation["id"],
        "status": activation["status"],
        "statusMessage": activation.get("statusMessage", ""),
        "readSetIds": activation["readSetIds"],
        "sources": activation.get("sources", []),
    }


def exports_json(exports: Sequence[ExportStatus], *, jobs: bool) -> str:
    code = overall([export.exit_code() for export in exports])
    return json.dumps(
        {
            "status": STATUS_NAMES[code],
            "exitCode": code,
            "exports": [export_json(export, jobs=jobs) for export in exports],
        },
        indent=2,
    )


def jobs_json(jobs: Sequence[JobStatus]) -> str:
    code = overall([job_code(job) for job in jobs])
    return json.dumps(
        {"status": STATUS_NAMES[code], "exitCode": code, "jobs": [asdict(job) for job in jobs]},
        indent=2,
    )


def progress_bar(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]read sets"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        console=console,
    )
