"""Archived read sets, brought back before they are exported.

HealthOmics archives read sets that were not accessed for 30 days, and most of a cohort older
than a month is ARCHIVED when a deploy wants to export it. With ``ArchivedReadSets.ACTIVATE``
the pre-flight accepts them, and each runner step:

- plans activation records (``activation#RRRR#NNNN``, at most 20 read sets each) for this
  run's read sets that are archived and not being activated by an earlier run;
- watches read sets that someone else is activating (``WATCHING`` records, polled with
  GetReadSetMetadata), and activates those that end up archived again;
- starts activation jobs as the concurrent-activation quota allows, each with a client token
  and claimed first, like export batches, so a retried step starts no second job;
- follows them with one ListReadSetActivationJobs a step, and gets a job
  (GetReadSetActivationJob) once the listing shows it ended, or if the listing missed it;
  each read set whose source is FINISHED is handed to the export then, so one job's exports
  run while the other activations go on.

How long an activation takes and how many may run at once are not published: nothing here
assumes either. A refusal by the quota holds starts back until one of ours ends or
``QUOTA_RETRY_SECONDS`` pass; the deploy, with ``wait_for_completion=True``, waits as long as
its timeout allows. What each read set needs, what a job's Get or a watched read set's
status means, and whether a start may go now are the core's (``core/progress.py``,
``core/decide.py``); this module makes the calls and saves what they said.
"""

from __future__ import annotations

import logging
from typing import Any

try:  # imported as cdk_omics_export.handler.activation (tests, the construct)
    from . import jobs
    from . import state as st
    from .core import decide, progress
    from .core.model import activation_client_token
    from .errors import ReadSetMissing
    from .step import Budget
except ImportError:  # Lambda: the asset's root is on sys.path
    import jobs  # type: ignore[import-not-found,no-redef]
    import state as st  # type: ignore[import-not-found,no-redef]
    from core import decide, progress  # type: ignore[import-not-found,no-redef]
    from core.model import activation_client_token  # type: ignore[import-not-found,no-redef]
    from errors import ReadSetMissing  # type: ignore[import-not-found,no-redef]
    from step import Budget  # type: ignore[import-not-found,no-redef]

LOG = logging.getLogger(__name__)


class Activations(jobs.Jobs[st.ActivationRecord]):
    """The activation jobs of one export, as one step sees them."""

    kind = jobs.Kind(
        noun="activation",
        start="StartReadSetActivationJob",
        get="GetReadSetActivationJob",
        list="ListReadSetActivationJobs",
        items="activationJobs",
        quota_wait="activationQuotaWait",
    )

    def plan(self) -> None:
        """Records for this run's read sets that are archived (activated by us) or activated by
        someone else (watched), saved before anything starts from them."""
        step = self.step
        planned, activated, watched = progress.new_activations(step.snapshot)
        if not planned:
            return
        step.add_activations(planned)
        LOG.info(
            "export %s: %d read set(s) to activate, %d being activated by someone else",
            step.export_id,
            activated,
            watched,
        )

    # Following

    def follow(self, budget: Budget) -> None:
        """Find lost starts, look at read sets someone else activates, then record the
        progress of every activation job of the export that is still going."""
        self.resolve_starting(budget)
        for record in self.step.snapshot.ordered_activations():
            if record["status"] == st.WATCHING:
                self._watch(record, budget)
        self.follow_listed(budget, decide.with_activation_detail)

    def _watch(self, record: st.ActivationRecord, budget: Budget) -> None:
        """Read sets someone else activates: looked at one by one until each is active."""
        step = self.step
        statuses: dict[str, str] = {}
        for source in record.get("sources", []):
            if source["status"] != "IN_PROGRESS":
                continue
            step.ensure_time(budget)
            try:
                metadata = step.call(
                    "GetReadSetMetadata",
                    step.omics.get_read_set_metadata,
                    sequenceStoreId=step.request.sequence_store_id,
                    id=source["readSetId"],
                    read_set_ids=[source["readSetId"]],
                    missing_ok=True,
                )
                statuses[source["readSetId"]] = metadata["status"]
            except ReadSetMissing:
                statuses[source["readSetId"]] = "DELETED"
        step.update_activation(record, decide.with_watched_statuses(record, statuses))

    # What differs from export jobs

    def records(self) -> list[st.ActivationRecord]:
        return self.step.snapshot.ordered_activations()

    def run_records(self) -> list[st.ActivationRecord]:
        return progress.activation_records(self.step.snapshot)

    def save(self, record: st.ActivationRecord) -> None:
        self.step.save_activation(record)

    def reload(self, record: st.ActivationRecord) -> None:
        self.step.reload_activation(record)

    def start_parameters(self, record: st.ActivationRecord) -> dict[str, Any]:
        token = activation_client_token(self.step.export_id, record["run"], record["number"])
        return {"clientToken": token}

    def read_sets_of(self, detail: dict[str, Any]) -> list[str]:
        return [s["readSetId"] for s in detail.get("sources", [])]

    def not_to_start_again(self, record: st.ActivationRecord) -> bool:
        # An earlier run's activation is not this run's to start (a rollback starts nothing
        # new); this run activates what it still needs itself.
        return self.step.record["cancelled"] or record["run"] != self.step.run["number"]
