"""The export jobs of an export: each batch of at most 100 read sets started as the quota
allows, with a client token, and followed to its end (``jobs.py`` holds what both kinds of
job share; this module what an export job adds: its destination and role, the run's job ids,
and the per-read-set outcome of its Get)."""

from __future__ import annotations

from typing import Any

try:  # imported as cdk_omics_export.handler.batches (tests, the construct)
    from . import jobs
    from . import state as st
    from .core import decide, progress
    from .core.model import batch_client_token
    from .step import Budget
except ImportError:  # Lambda: the asset's root is on sys.path
    import jobs  # type: ignore[import-not-found,no-redef]
    import state as st  # type: ignore[import-not-found,no-redef]
    from core import decide, progress  # type: ignore[import-not-found,no-redef]
    from core.model import batch_client_token  # type: ignore[import-not-found,no-redef]
    from step import Budget  # type: ignore[import-not-found,no-redef]


class ExportJobs(jobs.Jobs[st.BatchRecord]):
    """The export jobs of one export, as one step sees them."""

    kind = jobs.Kind(
        noun="export",
        start="StartReadSetExportJob",
        get="GetReadSetExportJob",
        list="ListReadSetExportJobs",
        items="exportJobs",
        quota_wait="quotaWait",
    )

    def follow(self, budget: Budget) -> None:
        """Find lost starts, then record the progress of every running export job of this
        export, whichever run started it."""
        self.resolve_starting(budget)
        self.follow_listed(budget, decide.with_export_detail)

    def records(self) -> list[st.BatchRecord]:
        return self.step.snapshot.ordered_batches()

    def run_records(self) -> list[st.BatchRecord]:
        return progress.run_batches(self.step.snapshot)

    def save(self, record: st.BatchRecord) -> None:
        self.step.save_batch(record)

    def reload(self, record: st.BatchRecord) -> None:
        self.step.reload_batch(record)

    def start_parameters(self, record: st.BatchRecord) -> dict[str, Any]:
        step = self.step
        return {
            "destination": step.request.destination,
            "roleArn": step.request.role_arn,
            "clientToken": batch_client_token(step.export_id, record["run"], record["number"]),
        }

    def read_sets_of(self, detail: dict[str, Any]) -> list[str]:
        return [r["id"] for r in detail.get("readSets", [])]

    def may_be_ours(self, job: dict[str, Any]) -> bool:
        return bool(job.get("destination") == self.step.request.destination)

    def recorded(self, record: st.BatchRecord) -> None:
        run = self.step.run
        if record["run"] == run["number"] and record["jobId"] not in run["jobIds"]:
            run["jobIds"].append(record["jobId"])
