"""One export, carried forward one runner step at a time.

An export is a record in the service's state table (see ``state.py``), not work done inside
one request. Each Create or Update of the custom resource starts a *run* of the export: it
selects read sets, plans batches of at most 100 for those that are neither exported nor in
flight, checks them (the pre-flight), then starts them as the concurrent-job quota allows
and follows them to their end. The service's runner (a Step Functions execution) does that
work, one step at a time: each step loads the state, advances as far as its time allows,
and saves what changed, conditional on what it read. So a rollback to an earlier selection
starts nothing, adding one id exports one read set, reordering ids changes nothing, and a
failed or cancelled export is resumed by the next deploy, which skips what completed.

A step observes (loads the records; the modules that act list the jobs), asks the core what
to do (``core/decide.py``: the next piece of work, what each observation means, whether the
run ends and how), acts (``selection.py``, ``batches.py``, ``activation.py``, each action
idempotent) and saves, conditional on what it read (``step.py``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

try:  # imported as cdk_omics_export.handler.export (tests, the construct)
    from . import activation, batches, reporting, selection
    from . import state as st
    from .core import decide, outcome, progress
    from .core.model import (
        Counts,
        ExportRequest,
        batch_client_token,
        execution_arn,
        export_id_of,
        iso_time,
        manifest_location,
        manifest_uri,
        runner_name,
    )
    from .errors import ExportError, NotYetAuthorized, OutOfTime, QuotaExceeded, ReadSetMissing
    from .step import Budget, Step
except ImportError:  # Lambda: the asset's root is on sys.path
    import activation  # type: ignore[import-not-found,no-redef]
    import batches  # type: ignore[import-not-found,no-redef]
    import reporting  # type: ignore[import-not-found,no-redef]
    import selection  # type: ignore[import-not-found,no-redef]
    import state as st  # type: ignore[import-not-found,no-redef]
    from core import decide, outcome, progress  # type: ignore[import-not-found,no-redef]
    from core.model import (  # type: ignore[import-not-found,no-redef]
        Counts,
        ExportRequest,
        batch_client_token,
        execution_arn,
        export_id_of,
        iso_time,
        manifest_location,
        manifest_uri,
        runner_name,
    )
    from errors import (  # type: ignore[import-not-found,no-redef]
        ExportError,
        NotYetAuthorized,
        OutOfTime,
        QuotaExceeded,
        ReadSetMissing,
    )
    from step import Budget, Step  # type: ignore[import-not-found,no-redef]

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_s3 import S3Client

# Callers and tests name these exports.X: the request, the names derived from it, the errors.
__all__ = [
    "Budget",
    "Counts",
    "Export",
    "ExportError",
    "ExportRequest",
    "NotYetAuthorized",
    "OutOfTime",
    "QuotaExceeded",
    "ReadSetMissing",
    "batch_client_token",
    "execution_arn",
    "export_id_of",
    "iso_time",
    "manifest_location",
    "manifest_uri",
    "runner_name",
]

LOG = logging.getLogger(__name__)


class Export(Step):
    """Carries one export's run forward: a step's work in the order the core gives it, the
    run's end, a new run, a Delete's cancellation and the runner that carries it."""

    # A new run

    def begin(self, request_id: str, request_type: str, started_at: float) -> str | None:
        """Make this request the export's current run; a redelivered request keeps its run.
        Returns the request id of the run this one replaced, if its answer may be owed."""
        while True:
            snapshot = self.load()
            record = snapshot.record
            if record is not None and record["run"]["requestId"] == request_id:
                LOG.info("request %s already runs export %s", request_id, self.export_id)
                return None
            try:
                # Batches an earlier run planned but never started give way to this run's.
                given_way, watched = progress.given_way(snapshot)
                for batch in given_way:
                    batch["status"] = st.SUPERSEDED
                    self.store.save_batch(self.export_id, batch)
                for pending in watched:
                    pending["status"] = st.SUPERSEDED
                    self.store.save_activation(self.export_id, pending)
                self.snapshot.record = progress.new_run(
                    record, self.request, request_id, request_type, started_at
                )
                self.passed_statuses.append(st.SUBMITTED)
                self.store.save_record(self.record)
                if record is None or record["run"].get("answered"):
                    return None
                return record["run"]["requestId"]
            except st.Conflict:
                LOG.info("export %s changed while a run began; reading it again", self.export_id)

    def is_current_run(self, request_id: str) -> bool:
        return self.run["requestId"] == request_id

    # A step's work

    def advance(self, budget: Budget) -> None:
        """Do what the budget allows, in the order the core gives: select and check, follow
        running jobs, plan and start activations and batches."""
        done: set[decide.Work] = set()
        try:
            while (work := decide.next_work(self.snapshot, frozenset(done))) is not None:
                done.add(work)
                self._do(work, budget)
        except OutOfTime:
            LOG.info("out of time for this invocation; the next poll carries on")
        except ExportError as error:
            self._end("FAILED", str(error))
            raise

    def _do(self, work: decide.Work, budget: Budget) -> None:
        if work == "SELECT":
            selection.Selection(self).select(budget)
        elif work == "FOLLOW_EXPORTS":
            batches.ExportJobs(self).follow(budget)
        elif work == "FOLLOW_ACTIVATIONS":
            activation.Activations(self).follow(budget)
        elif work == "PLAN_ACTIVATIONS":
            activation.Activations(self).plan()
        elif work == "PLAN_BATCHES":
            selection.Selection(self).plan_batches(progress.ready(self.snapshot))
        elif work == "START_ACTIVATIONS":
            activation.Activations(self).start(budget)
        else:
            batches.ExportJobs(self).start(budget)

    # Ending

    def settle(self) -> bool:
        """End the run once nothing is left to start or follow, and save. True when the
        runner's work is over: the run ended and no job of the export is running (a cancelled
        or failed run still records its running jobs' outcomes)."""
        verdict = decide.verdict(self.snapshot)
        if verdict == "CANCEL":
            self._end("CANCELLED")
        elif verdict == "CONCLUDE":
            status, reason = decide.conclusion(self.snapshot, self.request)
            if reason is None and status != "COMPLETED":
                LOG.warning("%s", outcome.failure_message(self.snapshot, self.request))
            self._end(status, reason)
        else:
            if decide.activations_done(self.snapshot):
                self.set_status(st.RUNNING)
            self.save_record()
        return self.runner_done()

    def runner_done(self) -> bool:
        return progress.runner_done(self.snapshot)

    def end_cancelled(self) -> None:
        """End the run CANCELLED at once (the resource was deleted), naming the jobs still
        running: the state and the manifest are final even when the service goes next
        (``cdk destroy`` deletes the runner with the stack). A runner that lives on records
        those jobs' outcomes later; the status stays CANCELLED."""
        if self.run["phase"] == "ENDED":
            return
        self._end("CANCELLED", decide.cancellation(self.snapshot, self.request))

    def _end(self, status: str, reason: str | None = None) -> None:
        self.snapshot.record, passed = decide.ended(self.record, status, reason)
        self.passed_statuses += passed
        # Batches of this run that never started give way: a later deploy plans them again.
        for batch in progress.run_batches(self.snapshot):
            if batch["status"] == st.PENDING:
                batch["status"] = st.SUPERSEDED
                self.save_batch(batch)
        self.save_record()

    # What the run says (the core words it, reporting.py tells it)

    def counts(self) -> Counts:
        return outcome.counts(self.snapshot)

    def timeout_message(self) -> str:
        return outcome.timeout_message(self.snapshot, self.request)

    def write_manifest(self, s3: S3Client) -> None:
        reporting.write_manifest(self, s3)

    def publish(self, events: EventBridgeClient) -> None:
        reporting.publish(self, events)

    def told(self) -> bool:
        return reporting.told(self)

    # The runner

    def claim_runner(
        self, segment: int, *, replacing: st.Runner | None = None, restarts: int = 0
    ) -> st.Runner:
        """Record that execution ``segment`` of this run's runner carries the export now.

        With ``replacing``, only if that one is still the recorded runner (or none is): two
        takeovers at once record one successor, and the other stops (``st.Cancelled``).
        """
        for _ in range(5):
            recorded = self.record.get("runner")
            if replacing is not None and recorded not in (None, replacing):
                raise st.Cancelled(
                    f"export {self.export_id}: runner {recorded['name'] if recorded else ''} "
                    "took over first"
                )
            runner: st.Runner = {
                "name": runner_name(self.export_id, self.run["number"], segment),
                "segment": segment,
                "startedAt": self.now(),
            }
            if restarts:
                runner["restarts"] = restarts
            self.record["runner"] = runner
            self.record["updatedAt"] = self.now()
            try:
                self.store.save_record(self.record)
                return runner
            except st.Conflict:
                fresh = self.store.load_record(self.export_id)
                if fresh is None or fresh["run"]["number"] != self.run["number"]:
                    raise st.Cancelled(
                        f"export {self.export_id} was taken over by a newer request"
                    ) from None
                self.snapshot.record = fresh
        raise st.StateError(f"export {self.export_id}: the record kept changing; try again")
