"""How an export's run turned out, in words: each read set's outcome, the counts, and the
messages CloudFormation shows (a failure that names the jobs, read sets and what the service
said; the timeout, naming what still runs). Read-only and pure: a snapshot in, words out."""

from __future__ import annotations

from . import progress
from . import records as st
from .model import (
    MAX_JOBS_NAMED,
    MAX_NAMED,
    Counts,
    ExportRequest,
    clip,
    manifest_uri,
    one_line,
)

try:  # imported as cdk_omics_export.handler.core.outcome (tests, the construct)
    from .. import rules
except ImportError:  # Lambda: the asset's root is on sys.path
    import rules  # type: ignore[import-not-found,no-redef]

_OUTCOME_OF_STATE = {
    "EXPORTED": "EXPORTED",
    "FAILED": "FAILED",
    "IN_FLIGHT": "EXPORTING",
    "PENDING": "PENDING",
}


def job_failure(batch: st.BatchRecord, read_set_id: str) -> str:
    """What the export job said of a read set it did not export."""
    outcome = next((o for o in batch.get("readSets", []) if o["id"] == read_set_id), None)
    message = (outcome.get("statusMessage") if outcome else None) or batch.get(
        "statusMessage", batch["status"]
    )
    return one_line(str(message))


def activation_failure(record: st.ActivationRecord, read_set_id: str) -> str:
    """What the service said of a read set that its activation did not bring back."""
    source = next((s for s in record.get("sources", []) if s["readSetId"] == read_set_id), None)
    said = (source.get("statusMessage") if source else None) or record.get(
        "statusMessage", record["status"]
    )
    job = record.get("jobId")
    where = f"activation job {job}" if job else "activation by someone else"
    return f"{where}: {one_line(str(said))}"


def counts(snapshot: st.Snapshot) -> Counts:
    tally = Counts()
    for outcome in read_set_outcomes(snapshot):
        tally.selected += 1
        status = outcome["status"]
        if status == "EXPORTED":
            tally.exported += 1
        elif status == "FAILED":
            tally.failed += 1
            if len(tally.failures) < MAX_NAMED:
                message = one_line(outcome.get("statusMessage", ""))
                tally.failures.append(f"{outcome['id']} ({message})")
        elif status in ("EXPORTING", "ACTIVATING"):
            tally.in_flight += 1
            tally.activating += status == "ACTIVATING"
    return tally


def read_set_outcomes(snapshot: st.Snapshot) -> list[st.ManifestReadSet]:
    """How each selected read set stands: EXPORTED, FAILED, EXPORTING (in a job, or active
    and about to be), ACTIVATING, or PENDING (not started)."""
    run = progress.run_of(snapshot)
    states = snapshot.read_set_states()
    # Activation counts only after the pre-flight, for the read sets this run exports.
    activations = progress.effective(snapshot) if run["phase"] != "SELECTING" else {}
    outcomes: list[st.ManifestReadSet] = []
    for read_set_id in progress.selected_ids(snapshot):
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
                outcome["statusMessage"] = job_failure(state[1], read_set_id)
        if activated is not None and (state is None or state[1]["run"] != run["number"]):
            kind, record = activated
            if kind == "FAILED" and record is not None:
                outcome["status"] = "FAILED"
                outcome["statusMessage"] = activation_failure(record, read_set_id)
                outcome.pop("jobId", None)
            elif run["phase"] == "ENDED":
                pass  # nothing more starts: what its batches say stands
            elif kind != "ACTIVE":
                outcome["status"] = "ACTIVATING"
                outcome.pop("jobId", None)
            elif state is None or state[0] not in ("EXPORTED", "IN_FLIGHT"):
                outcome["status"] = "EXPORTING"  # active: a batch takes it at this step
        outcomes.append(outcome)
    return outcomes


def _job_named(job: st.BatchRecord | st.ActivationRecord) -> str:
    said = f": {one_line(job['statusMessage'])}" if job.get("statusMessage") else ""
    return f"{job.get('jobId', job['key'])} ({job['status']}{said})"


def failure_message(snapshot: st.Snapshot, request: ExportRequest) -> str:
    """Why the run did not export every read set: the jobs, the activations and the read
    sets that failed, each with what the service said."""
    watched = progress.watched(snapshot)
    failed_jobs = [b for b in watched if b["status"] not in ("COMPLETED", st.SUPERSEDED)]
    tally = counts(snapshot)
    store = request.sequence_store_id
    if len(watched) == 1 and "jobId" in watched[0]:
        (job,) = watched
        head = f"HealthOmics export job {job['jobId']} in sequence store {store} ended "
        head += job["status"]
        if job.get("statusMessage"):
            head += f": {one_line(job['statusMessage'])}"
    else:
        named = rules.first_of([_job_named(b) for b in failed_jobs], 3)
        head = (
            f"{len(failed_jobs)} of {len(watched)} HealthOmics export jobs in sequence "
            f"store {store} did not complete: {named}"
        )
    activations = activation_failures(snapshot, request)
    if activations and not failed_jobs:
        head = activations
    elif activations:
        head += f". {activations}"
    where = ""
    if len(watched) > 1:
        started = [b["jobId"] for b in watched if "jobId" in b]
        where = (
            f". Every job and read set: {manifest_uri(request.destination, request.export_id)}. "
            f"Jobs: {rules.first_of(started, MAX_JOBS_NAMED)}"
        )
    listing = ""
    if tally.failed:
        listing = (
            f". {tally.failed} read set(s) failed: "
            f"{rules.first_of(tally.failures, MAX_NAMED, '; ')}"
        )
        if tally.failed > len(tally.failures):
            listing += f" and {tally.failed - len(tally.failures)} more"
    return clip(head + where + listing + ".")


def activation_failures(snapshot: st.Snapshot, request: ExportRequest) -> str:
    """The activations of this run that did not bring every read set back, named."""
    bad = progress.failed_activations(snapshot)
    if not bad:
        return ""
    total = sum(1 for a in progress.activation_records(snapshot) if a["status"] != st.SUPERSEDED)
    named = rules.first_of([_job_named(a) for a in bad], 3)
    return (
        f"{len(bad)} of {total} HealthOmics activation jobs in sequence store "
        f"{request.sequence_store_id} did not activate every read set: {named}"
    )


def timeout_message(snapshot: st.Snapshot, request: ExportRequest) -> str:
    """What the deploy is told at its deadline: what still runs, and that it goes on."""
    activating = counts(snapshot).activating
    batches = progress.run_batches(snapshot)
    started = [b for b in batches if "jobId" in b]
    running = [b for b in started if b["status"] in st.RUNNING_JOB_STATUSES]
    pending = len(batches) - len(started)
    timeout = request.timeout_seconds
    store = request.sequence_store_id
    if len(batches) == 1 and started and not activating:
        (job,) = started
        return clip(
            f"HealthOmics export job {job['jobId']} in sequence store {store} is still "
            f"{job['status']} after the {timeout} s the deploy waits (timeout). The job "
            "keeps running and cannot be cancelled; its files will still arrive at "
            f"{request.destination}, and the next deploy resumes the export "
            "without exporting them again. Use a longer timeout, or wait_for_completion=False "
            "(the export then carries on after the deploy)."
        )
    ids = rules.first_of([b["jobId"] for b in running], MAX_NAMED)
    phase = (
        "was still selecting read sets"
        if progress.run_of(snapshot)["phase"] == "SELECTING"
        else f"had {len(running)} export job(s) running ({ids}) and {pending} of "
        f"{len(batches)} batch(es) not yet started"
    )
    if activating:
        phase += (
            f", and {activating} archived read set(s) still being activated (activation "
            "can take hours; it goes on, and the next deploy exports what it activated)"
        )
    return clip(
        f"The export from sequence store {store} {phase} after the {timeout} s the deploy "
        f"waits (timeout). Started jobs keep running and cannot be cancelled; the next "
        f"deploy resumes the export and skips what completed. Every job so far: "
        f"{manifest_uri(request.destination, request.export_id)}. Use a longer timeout, or "
        "wait_for_completion=False (the export then carries on after the deploy)."
    )
