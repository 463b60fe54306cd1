"""The state table behind one small interface: versioned saves, claims, leases, slots.

Runs against moto's DynamoDB (in process), which evaluates condition expressions as the real
service does.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from cdk_omics_export.handler import state as st

TABLE = "state"


def create_state_table(client: Any, name: str) -> None:
    """The service's table as its template declares it: pk and sk strings, on demand."""
    client.create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )


EXPORT = "rse-0123456789abcdef0123456789ab"


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> Iterator[st.StateStore]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        client = boto3.client("dynamodb")
        create_state_table(client, TABLE)
        yield st.StateStore(client, TABLE)


def record(**overrides: Any) -> st.ExportRecord:
    run: st.Run = {
        "number": 0,
        "requestId": "request-1",
        "requestType": "Create",
        "startedAt": 1.0,
        "wait": True,
        "allowPartialFailure": False,
        "selection": {"readSetIds": ["1111111111"], "allowEmpty": False},
        "phase": "EXPORTING",
        "preflight": {"checked": 0, "problems": [], "problemCount": 0, "archived": False},
        "planned": True,
        "batches": 1,
        "followed": [],
        "jobIds": [],
    }
    value: st.ExportRecord = {
        "schema": st.SCHEMA_VERSION,
        "exportId": EXPORT,
        "stackId": "arn:aws:cloudformation:us-east-1:111122223333:stack/S/1",
        "constructPath": "S/Export",
        "destination": "s3://bucket/",
        "generation": 0,
        "sequenceStoreId": "1234567890",
        "roleArn": "arn:aws:iam::111122223333:role/export",
        "encryption": {"mode": "aws:kms"},
        "status": "IN_PROGRESS",
        "cancelled": False,
        "createdAt": 1.0,
        "updatedAt": 1.0,
        "runs": 1,
        "run": run,
        "version": 0,
    }
    value.update(overrides)  # type: ignore[typeddict-item]
    return value


def batch(number: int = 0, **overrides: Any) -> st.BatchRecord:
    value: st.BatchRecord = {
        "key": st.batch_key(0, number),
        "run": 0,
        "number": number,
        "readSetIds": ["1111111111"],
        "status": st.PENDING,
        "version": 0,
    }
    value.update(overrides)  # type: ignore[typeddict-item]
    return value


def test_a_save_from_a_stale_read_is_refused_and_the_winner_kept(store: st.StateStore) -> None:
    store.save_record(record())
    first, second = store.load_record(EXPORT), store.load_record(EXPORT)
    assert first is not None and second is not None
    first["status"] = "COMPLETED"
    store.save_record(first)
    second["status"] = "FAILED"
    with pytest.raises(st.Conflict, match=EXPORT):
        store.save_record(second)
    saved = store.load_record(EXPORT)
    assert saved is not None
    assert (saved["status"], saved["version"]) == ("COMPLETED", 2)


def test_creating_an_export_twice_is_a_conflict(store: st.StateStore) -> None:
    store.save_record(record())
    with pytest.raises(st.Conflict):
        store.save_record(record())


def test_a_save_keeps_the_lease_beside_the_record(store: st.StateStore) -> None:
    store.save_record(record())
    assert store.acquire_lease(EXPORT, "owner-a", 60)
    loaded = store.load_record(EXPORT)
    assert loaded is not None
    store.save_record(loaded)
    assert not store.acquire_lease(EXPORT, "owner-b", 60)
    assert store.acquire_lease(EXPORT, "owner-a", 60)
    store.release_lease(EXPORT, "owner-a")
    assert store.acquire_lease(EXPORT, "owner-b", 60)


def test_a_claim_fails_once_the_export_is_cancelled(store: st.StateStore) -> None:
    store.save_record(record())
    pending = batch()
    store.save_batch(EXPORT, pending)
    assert store.cancel(EXPORT)
    with pytest.raises(st.Cancelled):
        store.claim_start(EXPORT, 0, pending)
    snapshot = store.load(EXPORT)
    assert snapshot.batches[pending["key"]]["status"] == st.PENDING
    assert snapshot.record is not None and snapshot.record["cancelled"]


def test_a_claim_fails_once_a_newer_run_serves_the_export(store: st.StateStore) -> None:
    store.save_record(record())
    pending = batch()
    store.save_batch(EXPORT, pending)
    newer = store.load_record(EXPORT)
    assert newer is not None
    newer["run"] = {**newer["run"], "number": 1, "requestId": "request-2"}
    store.save_record(newer)
    with pytest.raises(st.Cancelled):
        store.claim_start(EXPORT, 0, pending)


def test_a_claim_from_a_stale_batch_is_a_conflict(store: st.StateStore) -> None:
    store.save_record(record())
    pending = batch()
    store.save_batch(EXPORT, pending)
    stale = dict(pending)
    store.claim_start(EXPORT, 0, pending)
    assert pending["status"] == st.STARTING
    with pytest.raises(st.Conflict):
        store.claim_start(EXPORT, 0, stale)  # type: ignore[arg-type]


def test_cancelling_an_unknown_export_reports_it(store: st.StateStore) -> None:
    assert store.cancel(EXPORT) is False


def test_request_slots_are_spaced_across_callers(store: st.StateStore) -> None:
    slots = [store.reserve_request_slot(0.25, 100.0) for _ in range(4)]
    assert slots == [100.0, 100.25, 100.5, 100.75]
    # Once the budget has been idle, the next caller goes at once.
    assert store.reserve_request_slot(0.25, 200.0) == 200.0


def test_read_set_state_is_the_latest_batch_that_was_not_superseded(
    store: st.StateStore,
) -> None:
    done = batch(
        0,
        readSetIds=["1111111111", "2222222222"],
        status="COMPLETED_WITH_FAILURES",
        jobId="5000000001",
        readSets=[
            {"id": "1111111111", "status": "FINISHED"},
            {"id": "2222222222", "status": "FAILED", "statusMessage": "Archived"},
        ],
    )
    retried = batch(1, readSetIds=["2222222222"], status="IN_PROGRESS", jobId="5000000002")
    dropped = batch(2, readSetIds=["1111111111"], status=st.SUPERSEDED)
    snapshot = st.Snapshot(None, {b["key"]: b for b in (done, retried, dropped)}, selections={})
    states = {k: v[0] for k, v in snapshot.read_set_states().items()}
    assert states == {"1111111111": "EXPORTED", "2222222222": "IN_FLIGHT"}


def test_packed_ids_round_trip_and_stay_small() -> None:
    ids = [str(10**35 + n * 7919) for n in range(10_000)]
    packed = st.pack_ids(ids)
    assert st.unpack_ids(packed) == ids
    assert st.unpack_ids(st.pack_ids([])) == []
    # A cohort of 10,000 ids of 36 digits fits a DynamoDB item (400 KB).
    assert len(packed) < 250_000
