"""How an export's run turned out, in words: each read set's outcome, the counts, and the
messages CloudFormation shows (a failure that names the jobs, read sets and what the service
said; the timeout, naming what still runs). Read-only: nothing here writes the state."""

from __future__ import annotations

from typing import TYPE_CHECKING

try:  # imported as cdk_omics_export.handler.outcome (tests, the construct)
    from . import activation, rules
    from . import export as exports
    from . import state as st
except ImportError:  # Lambda: the asset's root is on sys.path
    import activation  # type: ignore[import-not-found,no-redef]
    import export as exports  # type: ignore[import-not-found,no-redef]
    import rules  # type: ignore[import-not-found,no-redef]
    import state as st  # type: ignore[import-not-found,no-redef]

if TYPE_CHECKING:
    from .export import Export

_OUTCOME_OF_STATE = {
    "EXPORTED": "EXPORTED",
    "FAILED": "FAILED",
    "IN_FLIGHT": "EXPORTING",
    "PENDING": "PENDING",
}


def _job_failure(batch: st.BatchRecord, read_set_id: str) -> str:
    """What the export job said of a read set it did not export."""
    outcome = next((o for o in batch.get("readSets", []) if o["id"] == read_set_id), None)
    message = (outcome.get("statusMessage") if outcome else None) or batch.get(
        "statusMessage", batch["status"]
    )
    return exports._one_line(str(message))


class Outcome:
    """The outcome of one export's current run, as its snapshot says."""

    def __init__(self, export: Export) -> None:
        self.export = export

    def counts(self) -> exports.Counts:
        counts = exports.Counts()
        for outcome in self.read_set_outcomes():
            counts.selected += 1
            status = outcome["status"]
            if status == "EXPORTED":
                counts.exported += 1
            elif status == "FAILED":
                counts.failed += 1
                if len(counts.failures) < exports.MAX_NAMED:
                    message = exports._one_line(outcome.get("statusMessage", ""))
                    counts.failures.append(f"{outcome['id']} ({message})")
            elif status in ("EXPORTING", "ACTIVATING"):
                counts.in_flight += 1
                counts.activating += status == "ACTIVATING"
        return counts

    def read_set_outcomes(self) -> list[st.ManifestReadSet]:
        """How each selected read set stands: EXPORTED, FAILED, EXPORTING (in a job, or
        active and about to be), ACTIVATING, or PENDING (not started)."""
        states = self.export.snapshot.read_set_states()
        number = self.export.run["number"]
        # Activation counts only after the pre-flight, for the read sets this run exports.
        activations = (
            self.export.activations.effective() if self.export.run["phase"] != "SELECTING" else {}
        )
        outcomes: list[st.ManifestReadSet] = []
        for read_set_id in self.export.selected_ids():
            outcome: st.ManifestReadSet = {"id": read_set_id, "status": "PENDING"}
            state = states.get(read_set_id)
            activated = activations.get(read_set_id)
            if activated is not None and activated[1] is not None and "jobId" in activated[1]:
                outcome["activationJobId"] = activated[1]["jobId"]
            if state is not None:
                outcome["status"] = _OUTCOME_OF_STATE[state[0]]
                if "jobId" in state[1]:
                    outcome["jobId"] = state[1]["jobId"]
                if state[0] == "FAILED":
                    outcome["statusMessage"] = _job_failure(state[1], read_set_id)
            if activated is not None and (state is None or state[1]["run"] != number):
                kind, record = activated
                if kind == "FAILED" and record is not None:
                    outcome["status"] = "FAILED"
                    outcome["statusMessage"] = activation.failure_of(record, read_set_id)
                    outcome.pop("jobId", None)
                elif self.export.run["phase"] == "ENDED":
                    pass  # nothing more starts: what its batches say stands
                elif kind != "ACTIVE":
                    outcome["status"] = "ACTIVATING"
                    outcome.pop("jobId", None)
                elif state is None or state[0] not in ("EXPORTED", "IN_FLIGHT"):
                    outcome["status"] = "EXPORTING"  # active: a batch takes it at this step
            outcomes.append(outcome)
        return outcomes

    def failure_message(self) -> str:
        watched = self.export._watched()
        failed_jobs = [b for b in watched if b["status"] not in ("COMPLETED", st.SUPERSEDED)]
        counts = self.counts()
        store = self.export.request.sequence_store_id
        if len(watched) == 1 and "jobId" in watched[0]:
            (job,) = watched
            head = f"HealthOmics export job {job['jobId']} in sequence store {store} ended "
            head += job["status"]
            if job.get("statusMessage"):
                head += f": {exports._one_line(job['statusMessage'])}"
        else:
            named = rules.first_of(
                [
                    f"{b.get('jobId', b['key'])} ({b['status']}"
                    + (
                        f": {exports._one_line(b['statusMessage'])}"
                        if b.get("statusMessage")
                        else ""
                    )
                    + ")"
                    for b in failed_jobs
                ],
                3,
            )
            head = (
                f"{len(failed_jobs)} of {len(watched)} HealthOmics export jobs in sequence "
                f"store {store} did not complete: {named}"
            )
        activations = self._activation_failures()
        if activations and not failed_jobs:
            head = activations
        elif activations:
            head += f". {activations}"
        where = ""
        if len(watched) > 1:
            started = [b["jobId"] for b in watched if "jobId" in b]
            where = (
                f". Every job and read set: {self.export.manifest_uri()}. "
                f"Jobs: {rules.first_of(started, exports.MAX_JOBS_NAMED)}"
            )
        listing = ""
        if counts.failed:
            listing = (
                f". {counts.failed} read set(s) failed: "
                f"{rules.first_of(counts.failures, exports.MAX_NAMED, '; ')}"
            )
            if counts.failed > len(counts.failures):
                listing += f" and {counts.failed - len(counts.failures)} more"
        return exports._clip(head + where + listing + ".")

    def _activation_failures(self) -> str:
        """The activations of this run that did not bring every read set back, named."""
        bad = self.export.activations.failed_records()
        if not bad:
            return ""
        total = sum(
            1 for a in self.export.activations.run_records() if a["status"] != st.SUPERSEDED
        )
        named = rules.first_of(
            [
                f"{a.get('jobId', a['key'])} ({a['status']}"
                + (f": {exports._one_line(a['statusMessage'])}" if a.get("statusMessage") else "")
                + ")"
                for a in bad
            ],
            3,
        )
        return (
            f"{len(bad)} of {total} HealthOmics activation jobs in sequence store "
            f"{self.export.request.sequence_store_id} did not activate every read set: {named}"
        )

    def timeout_message(self) -> str:
        activating = self.counts().activating
        batches = self.export.run_batches()
        started = [b for b in batches if "jobId" in b]
        running = [b for b in started if b["status"] in st.RUNNING_JOB_STATUSES]
        pending = len(batches) - len(started)
        timeout = self.export.request.timeout_seconds
        store = self.export.request.sequence_store_id
        if len(batches) == 1 and started and not activating:
            (job,) = started
            return exports._clip(
                f"HealthOmics export job {job['jobId']} in sequence store {store} is still "
                f"{job['status']} after the {timeout} s the deploy waits (timeout). The job "
                "keeps running and cannot be cancelled; its files will still arrive at "
                f"{self.export.request.destination}, and the next deploy resumes the export "
                "without exporting them again. Use a longer timeout, or wait_for_completion=False "
                "(the export then carries on after the deploy)."
            )
        ids = rules.first_of([b["jobId"] for b in running], exports.MAX_NAMED)
        phase = (
            "was still selecting read sets"
            if self.export.run["phase"] == "SELECTING"
            else f"had {len(running)} export job(s) running ({ids}) and {pending} of "
            f"{len(batches)} batch(es) not yet started"
        )
        if activating:
            phase += (
                f", and {activating} archived read set(s) still being activated (activation "
                "can take hours; it goes on, and the next deploy exports what it activated)"
            )
        return exports._clip(
            f"The export from sequence store {store} {phase} after the {timeout} s the deploy "
            f"waits (timeout). Started jobs keep running and cannot be cancelled; the next "
            f"deploy resumes the export and skips what completed. Every job so far: "
            f"{self.export.manifest_uri()}. Use a longer timeout, or wait_for_completion=False "
            "(the export then carries on after the deploy)."
        )
