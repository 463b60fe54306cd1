"""``--watch``: read again until every export's runner (or the job) has ended."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

from rich.console import Console
from rich.markup import escape

from ..handler.pacing import Pacer
from .aws import Clients
from .rendering import progress_bar
from .status import WAITING, ExportStatus, JobStatus
from .verification import collect_jobs, refresh


def watch_exports(
    clients: Clients,
    exports: Sequence[ExportStatus],
    *,
    pacer: Pacer,
    console: Console,
    interval: float,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Re-read the manifests until every export's runner has ended (or stopped: the export
    stalled), with one progress bar over the read sets of all exports, a line whenever an
    export's status, its runner's or one of its jobs' changes, and each note once."""
    seen: dict[str, tuple[Any, ...]] = {}
    noted: set[str] = set()
    with progress_bar(console) as progress:
        task = progress.add_task("", total=None)
        while True:
            refresh(clients, exports, watching=True, pacer=pacer)
            for export in exports:
                state = (export.status, export.runner_state, *asdict(export.tally()).values())
                if seen.get(export.construct) != state:
                    seen[export.construct] = state
                    line = escape(export.summary())
                    progress.console.print(line, highlight=False, soft_wrap=True)
                for note in export.notes:
                    if note not in noted:
                        noted.add(note)
                        progress.console.print(escape(note), highlight=False, soft_wrap=True)
            done = sum(export.progress()[0] for export in exports)
            selected = sum(export.progress()[1] for export in exports)
            active = [e for e in exports if e.active and not e.waiting]
            waiting = sum(export.waiting for export in exports)
            description = (
                f"{len(active)} export(s) running, "
                f"{sum(e.tally().running for e in exports)} job(s) running"
            )
            if waiting:
                description += f", {waiting} {WAITING}"
            progress.update(task, total=selected or None, completed=done, description=description)
            if not active and not waiting:
                return
            sleep(interval)


def watch_jobs(
    clients: Clients,
    targets: Sequence[tuple[str, str, str]],
    *,
    pacer: Pacer,
    console: Console,
    interval: float,
    sleep: Callable[[float], None] = time.sleep,
) -> list[JobStatus]:
    """Follow jobs until each has ended, with one progress bar over all read sets."""
    jobs = collect_jobs(clients, targets, pacer)
    total = sum(job.read_sets for job in jobs) or len(jobs)
    with progress_bar(console) as progress:
        task = progress.add_task("", total=total)
        while True:
            done = sum(job.finished + job.failed for job in jobs) or sum(j.done for j in jobs)
            running = sum(not job.done for job in jobs)
            progress.update(task, completed=done, description=f"{running} job(s) running")
            if running == 0:
                return jobs
            sleep(interval)
            jobs = collect_jobs(clients, targets, pacer)
