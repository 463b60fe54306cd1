"""The properties' stand-ins held to what they stand for (tests/world.py, tests/fakes.py,
tests/omics_world.py).

The fake DynamoDB answers the state store in the properties because moto costs too much for
enough examples (about 6 ms a call and 0.6 s a fresh account, against hundredths of a
millisecond). Here the same operations run against moto (in process, behind a real botocore
client, which evaluates conditions and update expressions as DynamoDB does) and against the
fake, and every result is compared: what ``StateStore`` returns or raises for each of its
operations (versioned saves, claims, leases, the request budget, paging), and the raw answers
and refusals of the expressions it relies on. A Hypothesis property does the same on generated
sequences of the store's conditional writes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from unittest import mock

import boto3
import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from cdk_omics_export.handler import state as store_module

from .fakes import DirectClient, FakeDynamoDB
from .omics_world import FakeOmics
from .test_state import create_state_table

TABLE = "state"
EXPORT = "rse-0123456789abcdef0123456789ab"
OTHER = "rse-ffffffffffffffffffffffffffff"


@pytest.fixture(scope="module", autouse=True)
def moto_account() -> Iterator[None]:
    """One moto account for the module (a fresh one costs most of a second); each use of it
    gets a table of its own."""
    credentials = {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    with mock.patch.dict("os.environ", credentials), mock_aws():
        yield


@contextmanager
def moto_client() -> Iterator[Any]:
    client = boto3.client("dynamodb", region_name="us-east-1")
    create_state_table(client, TABLE)
    try:
        yield client
    finally:
        client.delete_table(TableName=TABLE)


@contextmanager
def fake_client() -> Iterator[Any]:
    fake = FakeDynamoDB()
    fake.create_table(TABLE)
    yield DirectClient("dynamodb", lambda: fake)


BACKENDS = {"moto": moto_client, "fake": fake_client}


def normalized(value: Any) -> Any:
    """Numbers as numbers (DynamoDB normalizes "1.50" to "1.5"; moto keeps the text)."""
    if isinstance(value, dict):
        if set(value) == {"N"} and isinstance(value["N"], str):
            return {"N": Decimal(value["N"]).normalize()}
        # moto answers ConsumedCapacity unasked (DynamoDB only with ReturnConsumedCapacity).
        ignored = ("ResponseMetadata", "ConsumedCapacity")
        return {k: normalized(v) for k, v in value.items() if k not in ignored}
    if isinstance(value, list):
        return [normalized(v) for v in value]
    return value


class Recorder:
    """What each operation returned or raised, comparable across backends."""

    def __init__(self) -> None:
        self.outcomes: list[tuple[str, Any]] = []

    def __call__(self, label: str, operation: Callable[[], Any]) -> Any:
        try:
            result = operation()
        except store_module.StateError as error:
            self.outcomes.append((label, type(error).__name__))
            return None
        except ClientError as error:
            self.outcomes.append((label, error.response["Error"]["Code"]))
            return None
        self.outcomes.append((label, normalized(result)))
        return result


def record(version: int = 0, **overrides: Any) -> store_module.ExportRecord:
    run: store_module.Run = {
        "number": 0,
        "requestId": "request-1",
        "requestType": "Create",
        "startedAt": 1.0,
        "wait": True,
        "allowPartialFailure": False,
        "selection": {"readSetIds": ["1111111111"], "allowEmpty": False},
        "phase": "EXPORTING",
        "preflight": {"checked": 1, "problems": [], "problemCount": 0, "archived": False},
        "planned": True,
        "batches": 1,
        "followed": [],
        "jobIds": [],
    }
    body: dict[str, Any] = {
        "schema": store_module.SCHEMA_VERSION,
        "exportId": EXPORT,
        "stackId": "stack",
        "constructPath": "Stack/Export",
        "destination": "s3://bucket/exports/",
        "generation": 0,
        "sequenceStoreId": "1234567890",
        "roleArn": "arn:aws:iam::111122223333:role/ExportRole",
        "encryption": {"mode": ""},
        "status": "RUNNING",
        "cancelled": False,
        "createdAt": 1.0,
        "updatedAt": 1.0,
        "runs": 1,
        "run": run,
        "version": version,
    }
    body.update(overrides)
    return body  # type: ignore[return-value]


def batch(number: int, version: int = 0) -> store_module.BatchRecord:
    return {
        "key": store_module.batch_key(0, number),
        "run": 0,
        "number": number,
        "readSetIds": [f"{1_000_000_000 + number}"],
        "status": store_module.PENDING,
        "version": version,
    }


def request(request_id: str = "request-1") -> store_module.RequestRecord:
    return {
        "requestId": request_id,
        "requestType": "Create",
        "stackId": "stack",
        "logicalResourceId": "Export",
        "exportId": EXPORT,
        "physicalResourceId": "",
        "responseUrl": "https://example.com/answer?X-Amz-Signature=s",
        "receivedAt": 1.0,
        "version": 0,
    }


def exercise_the_store(client: Any) -> list[tuple[str, Any]]:
    """Every operation of StateStore, on the paths its callers rely on."""
    now = [1_000_000.0]
    store = store_module.StateStore(client, TABLE, clock=lambda: now[0])
    out = Recorder()
    with mock.patch("time.time", lambda: now[0]):
        out("no record", lambda: store.load_record(EXPORT))
        out("no lease without a record", lambda: store.acquire_lease(EXPORT, "a", 60))
        out("cancel nothing", lambda: store.cancel(EXPORT))
        out("register", lambda: store.register_request(request()))
        out("register again", lambda: store.register_request(request()))
        fresh = store.load_request("request-1")
        assert fresh is not None
        out("claim", lambda: store.claim_answer(fresh, "SUCCESS", 2.0))
        stale = request()
        stale["version"] = 1
        out("claim with a stale copy", lambda: store.claim_answer(stale, "FAILED", 3.0))
        out("answered", lambda: store.load_request("request-1"))
        first = record()
        out("save new", lambda: store.save_record(first))
        out("save it as new again", lambda: store.save_record(record()))
        out("save next", lambda: store.save_record(first))
        out("save stale", lambda: store.save_record(record(version=1)))
        out("lease a", lambda: store.acquire_lease(EXPORT, "a", 60))
        out("lease b while a holds it", lambda: store.acquire_lease(EXPORT, "b", 60))
        out("lease a again", lambda: store.acquire_lease(EXPORT, "a", 60))
        out("a save keeps the lease", lambda: store.save_record(first))
        out("still held", lambda: store.acquire_lease(EXPORT, "b", 60))
        now[0] += 61
        out("lease b once a's ran out", lambda: store.acquire_lease(EXPORT, "b", 60))
        out("release by a", lambda: store.release_lease(EXPORT, "a"))
        out("release by b", lambda: store.release_lease(EXPORT, "b"))
        out("lease a when free", lambda: store.acquire_lease(EXPORT, "a", 60))
        out("forced by b", lambda: store.acquire_lease(EXPORT, "b", 60, force=True))
        exercise_claims_and_slots(store, out, now)
    return out.outcomes


def exercise_claims_and_slots(
    store: store_module.StateStore, out: Recorder, now: list[float]
) -> None:
    """Batches over more than one page of the fake's Query, claims, cancellation, the
    request budget, and the other records, loaded back."""
    with mock.patch("time.time", lambda: now[0]):
        batches = [batch(n) for n in range(20)]
        for each in batches:
            out(f"save {each['key']}", lambda each=each: store.save_batch(EXPORT, each))  # type: ignore[misc]
        out("claim a batch", lambda: store.claim_start(EXPORT, 0, batches[0]))
        out("claim it stale", lambda: store.claim_start(EXPORT, 0, batch(0, version=1)))
        out("claim for another run", lambda: store.claim_start(EXPORT, 1, batches[1]))
        out("current", lambda: store.is_current(EXPORT, 0))
        out("not current for run 1", lambda: store.is_current(EXPORT, 1))
        out("cancel", lambda: store.cancel(EXPORT))
        out("cancel again", lambda: store.cancel(EXPORT))
        out("not current once cancelled", lambda: store.is_current(EXPORT, 0))
        out("claim once cancelled", lambda: store.claim_start(EXPORT, 0, batches[2]))
        out("slot when idle", lambda: store.reserve_request_slot(0.25, now[0]))
        out("next slot", lambda: store.reserve_request_slot(0.25, now[0]))
        out("and the next", lambda: store.reserve_request_slot(0.25, now[0] + 0.1))
        out("idle again later", lambda: store.reserve_request_slot(0.25, now[0] + 5))
        selection: store_module.SelectionRecord = {
            "run": 0,
            "count": 2,
            "ids": store_module.pack_ids(["1", "2"]),
            "complete": True,
            "version": 0,
        }
        out("selection", lambda: store.save_selection(EXPORT, selection))
        activation: store_module.ActivationRecord = {
            "key": store_module.activation_key(0, 0),
            "run": 0,
            "number": 0,
            "readSetIds": ["1"],
            "status": store_module.PENDING,
            "version": 0,
        }
        out("activation", lambda: store.save_activation(EXPORT, activation))
        facts: store_module.FactsRecord = {
            "key": store_module.facts_key(0, 0),
            "run": 0,
            "facts": store_module.pack_json({"1": {"fileType": "CRAM"}}),
            "version": 0,
        }
        out("facts", lambda: store.save_facts(EXPORT, facts))
        out("another export", lambda: store.save_record(record(exportId=OTHER)))
        snapshot = store.load(EXPORT)
        out("loaded record", lambda: snapshot.record)
        out("loaded batches", lambda: snapshot.batches)
        out("loaded selections", lambda: snapshot.selections)
        out("loaded activations", lambda: snapshot.activations)
        out("loaded facts", lambda: snapshot.facts)


def exercise_the_expressions(client: Any) -> list[tuple[str, Any]]:
    """What DynamoDB answers to the expressions' edges: refusals, projections, returns."""
    out = Recorder()
    key = {"pk": {"S": EXPORT}, "sk": {"S": "item"}}

    def update(expression: str, condition: str | None = None, **more: Any) -> Any:
        params: dict[str, Any] = {"TableName": TABLE, "Key": key, "UpdateExpression": expression}
        if condition is not None:
            params["ConditionExpression"] = condition
        params.update(more)
        return client.update_item(**params)

    def get(**more: Any) -> Any:
        return client.get_item(TableName=TABLE, Key=key, ConsistentRead=True, **more)

    values = {":one": {"N": "1.500"}, ":t": {"BOOL": True}, ":s": {"S": "x"}}
    out(
        "create with numbers",
        lambda: update(
            "SET n = :one, b = :t, s = :s",
            "attribute_not_exists(pk)",
            ExpressionAttributeValues=values,
            ReturnValues="ALL_NEW",
        ),
    )
    out("normalized", get)
    out(
        "unused value",
        lambda: update(
            "SET n = :one", ExpressionAttributeValues={":one": {"N": "1"}, ":x": {"N": "2"}}
        ),
    )
    out(
        "undefined value",
        lambda: update("SET n = :two", ExpressionAttributeValues={":one": {"N": "1"}}),
    )
    out(
        "unused name",
        lambda: update(
            "SET n = :one",
            ExpressionAttributeNames={"#x": "x"},
            ExpressionAttributeValues={":one": {"N": "1"}},
        ),
    )
    # An undefined name is not compared: moto 5.2.5 raises a KeyError of its own on it.
    out(
        "add to a missing attribute",
        lambda: update("SET m = m + :one", ExpressionAttributeValues={":one": {"N": "1"}}),
    )
    out(
        "add to a string",
        lambda: update("SET s = s + :one", ExpressionAttributeValues={":one": {"N": "1"}}),
    )
    out(
        "add and return the old",
        lambda: update(
            "SET n = n + :one",
            "n >= :one",
            ExpressionAttributeValues={":one": {"N": "1.5"}},
            ReturnValues="UPDATED_OLD",
        ),
    )
    out(
        "updated new",
        lambda: update(
            "SET n = n - :one REMOVE s",
            ExpressionAttributeValues={":one": {"N": "0.5"}},
            ReturnValues="UPDATED_NEW",
        ),
    )
    out(
        "all old",
        lambda: update(
            "SET s = :s", ExpressionAttributeValues={":s": {"S": "y"}}, ReturnValues="ALL_OLD"
        ),
    )
    for label, condition in (
        ("bool equal", "b = :t"),
        ("number equal after normalizing", "n = :v"),
        ("absent compared", "absent < :v"),
        ("a reserved word", "missing < :v"),
        ("not", "NOT b = :t"),
        ("or", "absent = :v OR b = :t"),
        ("parentheses", "attribute_exists(pk) AND (absent = :v OR n < :v)"),
        ("types differ", "s = :v"),
    ):
        used = {":v": {"N": "2.50"}, ":t": {"BOOL": True}}
        used = {k: v for k, v in used.items() if k in condition}
        out(
            label,
            lambda condition=condition, used=used, label=label: update(  # type: ignore[misc]
                "SET touched = :c",
                condition,
                ExpressionAttributeValues={**used, ":c": {"S": label}},
            ),
        )
    out("projection", lambda: get(ProjectionExpression="n, absent"))
    out("projection of a reserved word", lambda: get(ProjectionExpression="n, missing"))
    out("missing item", lambda: client.get_item(TableName=TABLE, Key={**key, "sk": {"S": "no"}}))
    out(
        "upsert without a condition",
        lambda: client.update_item(
            TableName=TABLE,
            Key={**key, "sk": {"S": "new"}},
            UpdateExpression="SET a = :a",
            ExpressionAttributeValues={":a": {"S": "a"}},
            ReturnValues="ALL_NEW",
        ),
    )
    out(
        "one item twice in a transaction",
        lambda: client.transact_write_items(
            TransactItems=[
                {
                    "ConditionCheck": {
                        "TableName": TABLE,
                        "Key": key,
                        "ConditionExpression": "attribute_exists(pk)",
                    }
                },
                {
                    "Update": {
                        "TableName": TABLE,
                        "Key": key,
                        "UpdateExpression": "SET a = :a",
                        "ExpressionAttributeValues": {":a": {"S": "a"}},
                    }
                },
            ]
        ),
    )
    out(
        "query",
        lambda: client.query(
            TableName=TABLE,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": EXPORT}},
        )["Items"],
    )
    return out.outcomes


@pytest.mark.parametrize("exercise", [exercise_the_store, exercise_the_expressions])
def test_the_fake_dynamodb_answers_as_moto_does(
    exercise: Callable[[Any], list[tuple[str, Any]]],
) -> None:
    answers = {}
    for name, backend in BACKENDS.items():
        with backend() as client:
            answers[name] = exercise(client)
    for (label, moto), (_, fake) in zip(answers["moto"], answers["fake"], strict=True):
        assert fake == moto, f"{label}: fake {json.dumps(fake, default=str)[:300]}"


# Generated sequences of the store's conditional writes, on both backends at once.

operations = st.lists(
    st.tuples(
        st.sampled_from(["save", "save stale", "lease", "release", "claim", "cancel", "slot"]),
        st.sampled_from(["a", "b"]),
        st.integers(0, 90),
    ),
    min_size=1,
    max_size=12,
)


@settings(
    max_examples=8,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(operations=operations)
def test_the_fake_dynamodb_agrees_with_moto_on_generated_writes(
    operations: list[tuple[str, str, int]],
) -> None:
    results = {name: play(backend, operations) for name, backend in BACKENDS.items()}
    assert results["fake"] == results["moto"]


def play(backend: Callable[[], Any], operations: list[tuple[str, str, int]]) -> list[Any]:
    with backend() as client:
        now = [1_000_000.0]
        store = store_module.StateStore(client, TABLE, clock=lambda: now[0])
        out = Recorder()
        copies: dict[str, store_module.ExportRecord] = {"a": record(), "b": record()}
        with mock.patch("time.time", lambda: now[0]):
            for n, (kind, who, seconds) in enumerate(operations):
                now[0] += seconds
                mine = copies[who]
                if kind == "save":
                    out(f"{n} save", lambda mine=mine: store.save_record(mine))  # type: ignore[misc]
                elif kind == "save stale":
                    stale = record(version=max(0, mine["version"] - 1))
                    out(f"{n} stale", lambda stale=stale: store.save_record(stale))  # type: ignore[misc]
                elif kind == "lease":
                    out(f"{n} lease", lambda who=who: store.acquire_lease(EXPORT, who, 60))  # type: ignore[misc]
                elif kind == "release":
                    out(f"{n} release", lambda who=who: store.release_lease(EXPORT, who))  # type: ignore[misc]
                elif kind == "claim":
                    out(f"{n} claim", lambda: store.claim_start(EXPORT, 0, batch(0)))
                elif kind == "cancel":
                    out(f"{n} cancel", lambda: store.cancel(EXPORT))
                else:
                    out(f"{n} slot", lambda: store.reserve_request_slot(0.25, now[0]))
            out("end", lambda: store.load(EXPORT).record)
        return out.outcomes


# The HealthOmics stand-in, through a real botocore client (serialization, retries, parsing).


def test_the_fake_healthomics_keeps_tokens_filters_pages_and_refuses_as_modeled() -> None:
    now = [1_800_000_000.0]
    omics = FakeOmics("1234567890", lambda: now[0])
    for n in range(3):
        omics.add_read_set(f"100000000{n}", "SAMPLE-A7", "ACTIVE", 0)
    omics.add_read_set("1000000009", "SAMPLE-A7", "ARCHIVED", 0)
    client = boto3.session.Session(
        aws_access_key_id="t", aws_secret_access_key="t", region_name="us-east-1"
    ).client("omics")
    client.meta.events.register(
        "before-send.omics",
        lambda request, **_: omics.serve(request),  # type: ignore[arg-type]
    )
    sleeps: list[float] = []

    def start(token: str, *ids: str) -> Any:
        return client.start_read_set_export_job(
            sequenceStoreId="1234567890",
            destination="s3://bucket/exports/",
            roleArn="arn:aws:iam::111122223333:role/ExportRole",
            sources=[{"readSetId": r} for r in ids],
            clientToken=token,
        )

    first = start("token-1", "1000000000")
    assert start("token-1", "1000000000")["id"] == first["id"]  # the same token: the same job
    with pytest.raises(client.exceptions.ValidationException):
        start("token-1", "1000000001")  # the same token for other work
    with pytest.raises(client.exceptions.ValidationException):
        start("token-2", "1000000009")  # not ACTIVE
    omics.inject("StartReadSetExportJob", "ServiceQuotaExceededException", 1)
    with pytest.raises(client.exceptions.ServiceQuotaExceededException):
        start("token-2", "1000000001")
    # Throttling is retried by botocore (standard mode), sleeping between attempts.
    omics.inject("StartReadSetExportJob", "ThrottlingException", 2)
    with mock.patch("time.sleep", sleeps.append):
        second = start("token-2", "1000000001")
    assert len(sleeps) == 2 and second["id"] != first["id"]
    now[0] += 600
    third = start("token-3", "1000000002")
    omics.end(omics.jobs[first["id"]], {"1000000000"})
    after = datetime.fromtimestamp(now[0] - 60, UTC)
    listed = client.list_read_set_export_jobs(
        sequenceStoreId="1234567890", filter={"createdAfter": after}
    )["exportJobs"]
    assert [j["id"] for j in listed] == [third["id"]]
    failed = client.list_read_set_export_jobs(
        sequenceStoreId="1234567890", filter={"status": "FAILED"}
    )["exportJobs"]
    assert [j["id"] for j in failed] == [first["id"]]
    page = client.list_read_set_export_jobs(sequenceStoreId="1234567890", maxResults=2)
    rest = client.list_read_set_export_jobs(
        sequenceStoreId="1234567890", maxResults=2, nextToken=page["nextToken"]
    )
    assert len(page["exportJobs"]) + len(rest["exportJobs"]) == 3 and "nextToken" not in rest
    detail = client.get_read_set_export_job(sequenceStoreId="1234567890", id=first["id"])
    assert detail["readSets"] == [
        {"id": "1000000000", "status": "FAILED", "statusMessage": "Injected failure"}
    ]
    activation = client.start_read_set_activation_job(
        sequenceStoreId="1234567890", sources=[{"readSetId": "1000000009"}], clientToken="a"
    )
    assert omics.read_sets["1000000009"].status == "ACTIVATING"
    omics.end(omics.activations[activation["id"]], set())
    assert omics.read_sets["1000000009"].status == "ACTIVE"
    assert omics.problems == []
