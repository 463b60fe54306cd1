"""Builders of an export's records for the tests of the handler's core (tests/test_core_*.py).

Each builder gives a valid record with everyday defaults and takes, as keywords, the fields a
test is about; ``snapshot`` puts records together as the store would read them. Pure Python:
no AWS, no CDK.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, cast

from cdk_omics_export.handler.core import records as st
from cdk_omics_export.handler.core.model import ExportRequest

STORE = "1234567890"
STACK_ID = "arn:aws:cloudformation:us-east-1:111122223333:stack/Genomics/guid"
CONSTRUCT_PATH = "Genomics/Cohort7"
DESTINATION = "s3://export-bucket/cohort-7/"
ROLE_ARN = "arn:aws:iam::111122223333:role/ExportRole"
STATE_MACHINE_ARN = "arn:aws:states:us-east-1:111122223333:stateMachine:Runner"
# 2027-01-15T08:00:00Z
T0 = 1_800_000_000.0
TIMEOUT = 3000


def rs(n: int) -> str:
    """Read set id number ``n``: ten digits, as HealthOmics gives them."""
    return f"{1_000_000_000 + n}"


def rss(count: int, start: int = 0) -> list[str]:
    """``count`` read set ids from number ``start`` on."""
    return [rs(n) for n in range(start, start + count)]


def job(n: int) -> str:
    """Export or activation job id number ``n``."""
    return f"{5_000_000_000 + n}"


def request(**changes: Any) -> ExportRequest:
    """What the resource asks for: two listed read sets, waiting, activation on."""
    base = ExportRequest(
        stack_id=STACK_ID,
        construct_path=CONSTRUCT_PATH,
        destination=DESTINATION,
        generation=0,
        sequence_store_id=STORE,
        role_arn=ROLE_ARN,
        selection={"readSetIds": rss(2), "allowEmpty": False},
        encryption={"mode": "AES256"},
        timeout_seconds=TIMEOUT,
        poll_interval_seconds=30,
        archived_read_sets="ACTIVATE",
    )
    return dataclasses.replace(base, **changes)


EXPORT_ID = request().export_id
MANIFEST_URI = f"s3://export-bucket/cohort-7/cdk-omics-export/{EXPORT_ID}.json"


def run(**changes: Any) -> st.Run:
    """Run 0 of a Create, exporting (selected and checked), with activation."""
    base: dict[str, Any] = {
        "number": 0,
        "requestId": "request-0",
        "requestType": "Create",
        "startedAt": T0,
        "deadline": T0 + TIMEOUT,
        "wait": True,
        "allowPartialFailure": False,
        "archivedReadSets": "ACTIVATE",
        "selection": {"readSetIds": rss(2), "allowEmpty": False},
        "phase": "EXPORTING",
        "preflight": {"checked": 2, "problems": [], "problemCount": 0, "archived": False},
        "planned": True,
        "batches": 1,
        "followed": [],
        "jobIds": [],
    }
    return cast(st.Run, base | changes)


def record(run_: st.Run | None = None, **changes: Any) -> st.ExportRecord:
    """The export's record, RUNNING its run (``run()`` unless given)."""
    base: dict[str, Any] = {
        "schema": st.SCHEMA_VERSION,
        "exportId": EXPORT_ID,
        "stackId": STACK_ID,
        "constructPath": CONSTRUCT_PATH,
        "destination": DESTINATION,
        "generation": 0,
        "sequenceStoreId": STORE,
        "roleArn": ROLE_ARN,
        "encryption": {"mode": "AES256"},
        "status": st.RUNNING,
        "cancelled": False,
        "createdAt": T0,
        "updatedAt": T0,
        "runs": 1,
        "run": run_ if run_ is not None else run(),
        "version": 3,
    }
    return cast(st.ExportRecord, base | changes)


def batch(
    number: int, read_sets: list[str], status: str = st.PENDING, *, run: int = 0, **changes: Any
) -> st.BatchRecord:
    base: dict[str, Any] = {
        "key": st.batch_key(run, number),
        "run": run,
        "number": number,
        "readSetIds": read_sets,
        "status": status,
        "version": 1,
    }
    return cast(st.BatchRecord, base | changes)


def activation(
    number: int, read_sets: list[str], status: str = st.PENDING, *, run: int = 0, **changes: Any
) -> st.ActivationRecord:
    base: dict[str, Any] = {
        "key": st.activation_key(run, number),
        "run": run,
        "number": number,
        "readSetIds": read_sets,
        "status": status,
        "version": 1,
    }
    return cast(st.ActivationRecord, base | changes)


def sources(statuses: dict[str, str]) -> list[st.ActivationSource]:
    """An activation's sources: read set id -> its status."""
    return [{"readSetId": r, "status": s} for r, s in statuses.items()]


def outcomes(statuses: dict[str, str]) -> list[st.ReadSetOutcome]:
    """An export job's read sets: read set id -> its status."""
    return [{"id": r, "status": s} for r, s in statuses.items()]


def selection(
    selected: list[str],
    *,
    run: int = 0,
    todo: list[str] | None = None,
    archived: list[str] | None = None,
    activating: list[str] | None = None,
    complete: bool = True,
) -> st.SelectionRecord:
    """A run's selection; ``todo`` (what its plan exports) only when given."""
    value: st.SelectionRecord = {
        "run": run,
        "count": len(selected),
        "ids": st.pack_ids(selected),
        "complete": complete,
        "version": 1,
    }
    if todo is not None:
        value["todo"] = st.pack_ids(todo)
    if archived is not None:
        value["archived"] = st.pack_ids(archived)
    if activating is not None:
        value["activating"] = st.pack_ids(activating)
    return value


def facts(number: int, known: dict[str, st.ReadSetFacts], *, run: int = 0) -> st.FactsRecord:
    return {
        "key": st.facts_key(run, number),
        "run": run,
        "facts": st.pack_json(known),
        "version": 0,
    }


def snapshot(
    record_: st.ExportRecord | None,
    batches: Iterable[st.BatchRecord] = (),
    selections: Iterable[st.SelectionRecord] = (),
    activations: Iterable[st.ActivationRecord] = (),
    facts_: Iterable[st.FactsRecord] = (),
) -> st.Snapshot:
    return st.Snapshot(
        record_,
        {b["key"]: b for b in batches},
        {s["run"]: s for s in selections},
        {a["key"]: a for a in activations},
        {f["key"]: f for f in facts_},
    )


def exporting(
    batches: Iterable[st.BatchRecord],
    selected: list[str] | None = None,
    activations: Iterable[st.ActivationRecord] = (),
    **run_changes: Any,
) -> st.Snapshot:
    """Run 0 exporting: its selection (every read set of ``batches`` unless ``selected``),
    all of it to do, and these batches and activations."""
    batches = list(batches)
    chosen = selected if selected is not None else [r for b in batches for r in b["readSetIds"]]
    return snapshot(
        record(run(**run_changes)),
        batches,
        [selection(chosen, todo=chosen)],
        activations,
    )


def state_of(value: object) -> object:
    """A deep copy of what a value holds (a snapshot's records, or the value itself)."""
    if isinstance(value, st.Snapshot):
        return copy.deepcopy(vars(value))
    return copy.deepcopy(value)


@contextmanager
def unchanged(*values: object) -> Iterator[None]:
    """Asserts that the block changes none of ``values`` (the core never changes its inputs)."""
    before = [state_of(v) for v in values]
    yield
    assert [state_of(v) for v in values] == before
