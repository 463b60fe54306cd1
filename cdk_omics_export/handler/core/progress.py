"""Where a run stands, read from a snapshot of its records, and what it plans next: the
batches and activations of this run, what it follows of earlier runs, what is selected and
still to do, and the new records a plan adds. Pure: a snapshot in, records and answers out."""

from __future__ import annotations

from . import records as st
from .model import ACTIVATE, ExportRequest

try:  # imported as cdk_omics_export.handler.core.progress (tests, the construct)
    from .. import rules
except ImportError:  # Lambda: the asset's root is on sys.path
    import rules  # type: ignore[import-not-found,no-redef]

# What the pre-flight found of a read set this run exports, and what that asks of this run.
EXPORTABLE = "ACTIVE"
TO_ACTIVATE = "ARCHIVED"
TO_WATCH = "WATCH"

Effective = dict[str, tuple[st.ActivationState | str, st.ActivationRecord | None]]


def record_of(snapshot: st.Snapshot) -> st.ExportRecord:
    record = snapshot.record
    if record is None:
        raise st.StateError("the export's record is missing")
    return record


def run_of(snapshot: st.Snapshot) -> st.Run:
    return record_of(snapshot)["run"]


def in_flight(job: st.BatchRecord | st.ActivationRecord) -> bool:
    return job["status"] == st.STARTING or job["status"] in st.RUNNING_JOB_STATUSES


# Export batches


def run_batches(snapshot: st.Snapshot) -> list[st.BatchRecord]:
    """This run's batches, in order (without those that gave way)."""
    number = run_of(snapshot)["number"]
    return [
        b for b in snapshot.ordered_batches() if b["run"] == number and b["status"] != st.SUPERSEDED
    ]


def watched(snapshot: st.Snapshot) -> list[st.BatchRecord]:
    """This run's batches and the earlier runs' in-flight batches it counts on."""
    return run_batches(snapshot) + [
        snapshot.batches[key] for key in run_of(snapshot)["followed"] if key in snapshot.batches
    ]


def running_batches(snapshot: st.Snapshot) -> int:
    return sum(1 for batch in snapshot.batches.values() if in_flight(batch))


def any_job_started(snapshot: st.Snapshot) -> bool:
    return any("jobId" in b for b in snapshot.batches.values()) or any(
        "jobId" in a for a in snapshot.activations.values()
    )


def batches_left_to_start(snapshot: st.Snapshot) -> bool:
    return any(b["status"] in (st.PENDING, st.STARTING) for b in run_batches(snapshot))


def runner_done(snapshot: st.Snapshot) -> bool:
    """The run ended and no job of the export is running (a cancelled or failed run still
    records its running jobs' outcomes)."""
    return run_of(snapshot)["phase"] == "ENDED" and not any(
        in_flight(b) for b in snapshot.batches.values()
    )


# The selection


def selection_of(snapshot: st.Snapshot) -> st.SelectionRecord | None:
    return snapshot.selections.get(run_of(snapshot)["number"])


def selected_ids(snapshot: st.Snapshot) -> list[str]:
    selection = selection_of(snapshot)
    return st.unpack_ids(selection["ids"]) if selection is not None else []


def todo(snapshot: st.Snapshot) -> list[str]:
    """The read sets this run exports, as its plan recorded them."""
    selection = selection_of(snapshot)
    if selection is not None and "todo" in selection:
        return st.unpack_ids(selection["todo"])
    # Planned before the plan recorded them: the batches hold them.
    return [r for batch in run_batches(snapshot) for r in batch["readSetIds"]]


def activates(run: st.Run) -> bool:
    return run.get("archivedReadSets") == ACTIVATE


def plan(snapshot: st.Snapshot, selected: list[str]) -> tuple[list[str], list[str]]:
    """The read sets this run exports (those selected that are neither exported nor in
    flight) and the earlier runs' batches in flight that it follows instead."""
    states = snapshot.read_set_states()
    to_do: list[str] = []
    followed: set[str] = set()
    for read_set_id in selected:
        state = states.get(read_set_id)
        if state is not None and state[0] == "IN_FLIGHT":
            followed.add(state[1]["key"])
        elif state is None or state[0] != "EXPORTED":
            to_do.append(read_set_id)
    return to_do, sorted(followed)


def new_batches(snapshot: st.Snapshot, ready: list[str]) -> list[st.BatchRecord]:
    """Batches of at most 100 for the read sets of ``ready`` that no batch of this run holds
    yet; a retried step finds the batches it saved and plans them no second time."""
    number = run_of(snapshot)["number"]
    states = snapshot.read_set_states()
    to_do = [
        r
        for r in ready
        if (state := states.get(r)) is None
        or (state[1]["run"] != number and state[0] not in ("EXPORTED", "IN_FLIGHT"))
    ]
    numbers = [b["number"] for b in snapshot.batches.values() if b["run"] == number]
    first = max(numbers) + 1 if numbers else 0
    size = rules.MAX_READ_SETS_PER_JOB
    return [
        {
            "key": st.batch_key(number, first + offset),
            "run": number,
            "number": first + offset,
            "readSetIds": to_do[start : start + size],
            "status": st.PENDING,
            "version": 0,
        }
        for offset, start in enumerate(range(0, len(to_do), size))
    ]


def new_run(
    record: st.ExportRecord | None,
    request: ExportRequest,
    request_id: str,
    request_type: str,
    started_at: float,
) -> st.ExportRecord:
    """The export's record once this request is its current run."""
    run: st.Run = {
        "number": record["runs"] if record is not None else 0,
        "requestId": request_id,
        "requestType": request_type,
        "startedAt": started_at,
        "wait": request.wait,
        "allowPartialFailure": request.allow_partial_failure,
        "archivedReadSets": request.archived_read_sets,
        "selection": request.selection,
        "phase": "SELECTING",
        "preflight": {"checked": 0, "problems": [], "problemCount": 0, "archived": False},
        "planned": False,
        "batches": 0,
        "followed": [],
        "jobIds": [],
    }
    # The deploy waits at most this long: for the jobs' end or, without waiting, for the
    # runner to have selected and checked the read sets.
    run["deadline"] = started_at + request.timeout_seconds
    fresh: st.ExportRecord = {
        "schema": st.SCHEMA_VERSION,
        "exportId": request.export_id,
        "stackId": request.stack_id,
        "constructPath": request.construct_path,
        "destination": request.destination,
        "generation": request.generation,
        "sequenceStoreId": request.sequence_store_id,
        "roleArn": request.role_arn,
        "encryption": request.encryption,
        "status": st.SUBMITTED,
        "cancelled": False,
        "createdAt": record["createdAt"] if record is not None else started_at,
        "updatedAt": started_at,
        "runs": run["number"] + 1,
        "run": run,
        "version": record["version"] if record is not None else 0,
    }
    for kept in ("manifestDigest", "eventDigest"):
        if record is not None and kept in record:
            fresh[kept] = record[kept]
    return fresh


def given_way(snapshot: st.Snapshot) -> tuple[list[st.BatchRecord], list[st.ActivationRecord]]:
    """What a new run supersedes: batches planned but never started, activations planned or
    watched. Their read sets are planned again by the run that needs them."""
    batches = [b for b in snapshot.ordered_batches() if b["status"] == st.PENDING]
    activations = [
        a for a in snapshot.ordered_activations() if a["status"] in (st.PENDING, st.WATCHING)
    ]
    return batches, activations


# Activations


def effective(snapshot: st.Snapshot) -> Effective:
    """For each read set this run exports: ACTIVE, ACTIVATING, FAILED (this run's activation
    failed), ARCHIVED (to activate) or WATCH (someone else activates it)."""
    run = run_of(snapshot)["number"]
    selection = selection_of(snapshot)
    if selection is None or "todo" not in selection:
        return {}
    archived = set(st.unpack_ids(selection.get("archived", st.pack_ids([]))))
    activating = set(st.unpack_ids(selection.get("activating", st.pack_ids([]))))
    states = snapshot.activation_states()
    result: Effective = {}
    for read_set_id in st.unpack_ids(selection["todo"]):
        state = states.get(read_set_id)
        # This run's record decides, and so does an earlier run's activation still going;
        # an earlier run's ended one says less than this run's pre-flight.
        if state is not None and (state[1]["run"] == run or state[0] == "ACTIVATING"):
            result[read_set_id] = state
        elif read_set_id in archived:
            result[read_set_id] = (TO_ACTIVATE, None)
        elif read_set_id in activating:
            result[read_set_id] = (TO_WATCH, None)
        else:
            result[read_set_id] = (EXPORTABLE, None)
    return result


def awaited(snapshot: st.Snapshot) -> int:
    """Read sets of this run still waiting to be active."""
    return sum(
        1
        for state, _ in effective(snapshot).values()
        if state in ("ACTIVATING", TO_ACTIVATE, TO_WATCH)
    )


def ready(snapshot: st.Snapshot) -> list[str]:
    """This run's read sets that are active now (by the pre-flight, or activated since)."""
    return [r for r, (state, _) in effective(snapshot).items() if state == "ACTIVE"]


def activation_records(snapshot: st.Snapshot) -> list[st.ActivationRecord]:
    run = run_of(snapshot)["number"]
    return [a for a in snapshot.ordered_activations() if a["run"] == run]


def activations_left_to_start(snapshot: st.Snapshot) -> bool:
    return any(a["status"] in (st.PENDING, st.STARTING) for a in activation_records(snapshot))


def running_activations(snapshot: st.Snapshot) -> int:
    return sum(1 for a in snapshot.activations.values() if in_flight(a))


def failed_activations(snapshot: st.Snapshot) -> list[st.ActivationRecord]:
    """This run's activations that did not bring every read set back."""
    return [
        a
        for a in activation_records(snapshot)
        if a["status"] in st.TERMINAL_JOB_STATUSES
        and (
            a["status"] != "COMPLETED" or any(s["status"] == "FAILED" for s in a.get("sources", []))
        )
    ]


def new_activations(snapshot: st.Snapshot) -> tuple[list[st.ActivationRecord], int, int]:
    """Records for this run's read sets that are archived (activated by us) or activated by
    someone else (watched), and how many of each. Idempotent: a read set already in a record
    is not planned again, so a retried step plans nothing twice."""
    if record_of(snapshot)["cancelled"]:
        return [], 0, 0
    found = effective(snapshot)
    # Archived by the pre-flight, or a watched read set that went back to ARCHIVED (its
    # record says so, whether still WATCHING or ended): activated by us now, once each.
    to_activate = [r for r, (state, _) in found.items() if state == TO_ACTIVATE]
    to_watch = [r for r, (state, _) in found.items() if state == TO_WATCH]
    run = run_of(snapshot)["number"]
    numbers = [a["number"] for a in snapshot.activations.values() if a["run"] == run]
    number = max(numbers) + 1 if numbers else 0
    size = rules.MAX_READ_SETS_PER_ACTIVATION
    planned: list[st.ActivationRecord] = []
    for ids, status in ((to_activate, st.PENDING), (to_watch, st.WATCHING)):
        for start in range(0, len(ids), size):
            chunk = ids[start : start + size]
            record: st.ActivationRecord = {
                "key": st.activation_key(run, number),
                "run": run,
                "number": number,
                "readSetIds": chunk,
                "status": status,
                "version": 0,
            }
            if status == st.WATCHING:
                record["sources"] = [{"readSetId": r, "status": "IN_PROGRESS"} for r in chunk]
            planned.append(record)
            number += 1
    return planned, len(to_activate), len(to_watch)
