"""The export state: one typed schema, kept in the service's DynamoDB table.

Every export of a stack's ``ReadSetExportService`` is a handful of items under one partition
key, the export id:

- ``export``: the export's record (:class:`ExportRecord`): what it exports where, its status,
  whether it was cancelled, and the current run (the CloudFormation request being served);
- ``run#NNNN#selection``: the read sets a run selected (:class:`SelectionRecord`), compressed,
  because a cohort of 10,000 ids of 36 digits would not fit an item otherwise;
- ``batch#NNNN#NNNN``: one batch of at most 100 read sets (:class:`BatchRecord`), the job that
  carries it and each read set's outcome.

Each CloudFormation request has an item of its own, under ``request#<RequestId>``
(:class:`RequestRecord`): where its answer goes (the pre-signed ResponseURL, a credential kept
nowhere else and removed once the answer is claimed) and whether it was answered, so that
every request is answered exactly once, whichever invocation gets there first.

A read set's state is the state of the latest batch that holds it, so a new selection exports
only what is neither exported nor in flight. Every write is conditional on the version that was
read (optimistic locking, as Powertools' idempotency records do): overlapping invocations never
lose an update, the loser reloads. The status command (``cdk-omics-export status``) reads the
same records through the manifest, which is written from them.
"""

from __future__ import annotations

import base64
import json
import time
import zlib
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, Literal, NotRequired, TypedDict

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

SCHEMA_VERSION = 1
EXPORT_SK = "export"
REQUEST_SK = "request"
PACER_KEY = "service#pacer"

# The export's statuses: registered and its runner starting; read sets selected and checked,
# jobs starting and running; then one of the final ones.
SUBMITTED = "SUBMITTED"
ACTIVATING = "ACTIVATING"  # checked; archived read sets being activated (exports may run too)
RUNNING = "RUNNING"
FINAL_STATUSES = frozenset({"COMPLETED", "COMPLETED_WITH_FAILURES", "FAILED", "CANCELLED"})

# Batch statuses of ours; a started batch carries its job's status instead.
PENDING = "PENDING"  # planned, not started
STARTING = "STARTING"  # a start was, or is about to be, sent: in flight
SUPERSEDED = "SUPERSEDED"  # never started: a later run or a Delete took its place
RUNNING_JOB_STATUSES = frozenset({"SUBMITTED", "IN_PROGRESS", "CANCELLING"})
TERMINAL_JOB_STATUSES = frozenset({"COMPLETED", "COMPLETED_WITH_FAILURES", "FAILED", "CANCELLED"})

ReadSetState = Literal["EXPORTED", "IN_FLIGHT", "FAILED", "PENDING"]

# Activation records: PENDING, STARTING and SUPERSEDED as for batches, WATCHING for read sets
# that someone else is activating, or the activation job's status.
WATCHING = "WATCHING"
# A read set's activation: active (exportable), still activating, archived again, or failed.
ActivationState = Literal["ACTIVE", "ACTIVATING", "ARCHIVED", "FAILED"]


class ReadSetOutcome(TypedDict):
    id: str
    status: str  # the job's per-read-set status: NOT_STARTED, IN_PROGRESS, FINISHED, FAILED
    statusMessage: NotRequired[str]


class BatchRecord(TypedDict):
    """At most 100 read sets, and the job that exports them."""

    key: str  # the item's sort key
    run: int
    number: int
    readSetIds: list[str]
    status: str  # PENDING, STARTING, SUPERSEDED, or the job's status
    claimedAt: NotRequired[float]  # when its start was claimed (STARTING)
    jobId: NotRequired[str]
    creationTime: NotRequired[str]
    completionTime: NotRequired[str]
    statusMessage: NotRequired[str]
    readSets: NotRequired[list[ReadSetOutcome]]
    version: int


class ActivationSource(TypedDict):
    readSetId: str
    # The activation job's per-read-set status (NOT_STARTED, IN_PROGRESS, FINISHED, FAILED);
    # for a watched read set, ARCHIVED when someone else's activation left it archived.
    status: str
    statusMessage: NotRequired[str]


class ActivationRecord(TypedDict):
    """At most 20 archived read sets, and the activation job that brings them back."""

    key: str  # activation#RRRR#NNNN
    run: int
    number: int
    readSetIds: list[str]
    status: str  # PENDING, STARTING, WATCHING, SUPERSEDED, or the activation job's status
    claimedAt: NotRequired[float]
    jobId: NotRequired[str]
    creationTime: NotRequired[str]
    completionTime: NotRequired[str]
    statusMessage: NotRequired[str]
    sources: NotRequired[list[ActivationSource]]
    version: int


class ETag(TypedDict, total=False):
    algorithm: str
    source1: str
    source2: str


class ReadSetFacts(TypedDict):
    """What the pre-flight learned of a read set that helps check the export later: never a
    sample, subject or name (they can identify a patient)."""

    fileType: NotRequired[str]
    etag: NotRequired[ETag]


class FactsRecord(TypedDict):
    """Facts of some of a run's read sets (one pre-flight page), packed."""

    key: str  # facts#RRRR#NNNN
    run: int
    facts: str  # zlib-compressed, base64 JSON: read set id -> ReadSetFacts
    version: int


class SelectionSpec(TypedDict):
    """What a run selects, as the custom resource's properties say it."""

    readSetIds: NotRequired[list[str]]
    readSetList: NotRequired[str]  # s3:// URI of a JSON list, for more than 100 ids
    filter: NotRequired[dict[str, str]]
    allowEmpty: bool


class Preflight(TypedDict):
    """Progress of the pre-flight across invocations."""

    checked: int  # read sets looked at one by one
    problems: list[str]  # the first few, "<id> (<status>)"
    problemCount: int
    archived: bool  # some read set was ARCHIVED
    archivedCount: NotRequired[int]  # read sets to activate (ARCHIVED or ACTIVATING)


class QuotaWait(TypedDict):
    running: int  # our jobs running when the concurrent-job quota refused a start
    at: float


class Run(TypedDict):
    """One CloudFormation request (Create or Update) that this export serves."""

    number: int
    requestId: str
    requestType: str
    startedAt: float
    deadline: NotRequired[float]  # the deploy waits until then (epoch seconds)
    wait: bool
    allowPartialFailure: bool
    selection: SelectionSpec
    phase: Literal["SELECTING", "EXPORTING", "ENDED"]
    preflight: Preflight
    planned: bool
    batches: int  # batches planned by this run: numbers 0..batches-1
    followed: list[str]  # keys of earlier runs' batches in flight with selected read sets
    jobIds: list[str]  # jobs this run started
    quotaWait: NotRequired[QuotaWait]
    accessDeniedSince: NotRequired[float]
    # ACTIVATE: archived read sets are activated, then exported; FAIL: the pre-flight fails.
    archivedReadSets: NotRequired[str]
    activationQuotaWait: NotRequired[QuotaWait]
    answered: NotRequired[bool]  # CloudFormation's request was answered (or is not owed one)


class Encryption(TypedDict):
    mode: str  # "aws:kms", "AES256" or "" (the bucket's default)
    keyArn: NotRequired[str]


class Runner(TypedDict):
    """The Step Functions execution that carries the export: one at a time."""

    name: str  # <export id>-<run>-<segment>: the work it carries, so a second start is harmless
    segment: int  # 0 for the run's first execution; +1 for each continuation or takeover
    startedAt: float
    restarts: NotRequired[int]  # executions of this run restarted after they failed


class ExportRecord(TypedDict):
    """One export: a stack, a construct, a destination and a generation."""

    schema: int
    exportId: str
    stackId: str
    constructPath: str
    destination: str
    generation: int
    sequenceStoreId: str
    roleArn: str
    encryption: Encryption
    status: str
    statusReason: NotRequired[str]
    cancelled: bool
    createdAt: float
    updatedAt: float
    runs: int
    run: Run
    runner: NotRequired[Runner]
    manifestDigest: NotRequired[str]  # the statuses the manifest was last written with
    eventDigest: NotRequired[str]  # the statuses the last status-change event carried
    version: int


class RequestRecord(TypedDict):
    """One CloudFormation request to an export resource, and its answer."""

    requestId: str
    requestType: str
    stackId: str
    logicalResourceId: str
    exportId: str  # "" when the request named no export that could be identified
    physicalResourceId: str  # as CloudFormation sent it ("" on Create)
    responseUrl: str  # pre-signed: "" once the answer is claimed
    receivedAt: float
    answer: NotRequired[str]  # SUCCESS or FAILED, once claimed
    answeredAt: NotRequired[float]
    version: int


class SelectionRecord(TypedDict):
    """The read sets one run selected, and its pre-flight's progress through ListReadSets."""

    run: int
    count: int
    ids: str  # zlib-compressed, base64, newline-separated
    complete: bool  # False while a filter's pages are still being read
    cursor: NotRequired[str]  # ListReadSets' nextToken
    found: NotRequired[str]  # the pre-flight's ids found so far, packed like ids
    todo: NotRequired[str]  # the ids this run exports: neither exported nor in flight, packed
    archived: NotRequired[str]  # ids of todo the pre-flight found ARCHIVED, packed
    activating: NotRequired[str]  # ids of todo the pre-flight found ACTIVATING, packed
    version: int


class ManifestJob(TypedDict):
    batch: str
    id: str | None  # None until the batch's job is started
    status: str
    statusMessage: NotRequired[str]
    creationTime: NotRequired[str]
    completionTime: NotRequired[str]
    readSetIds: list[str]
    readSets: list[ReadSetOutcome]


class ManifestActivation(TypedDict):
    key: str
    id: str | None  # the activation job; None until started, and for watched read sets
    status: str
    statusMessage: NotRequired[str]
    creationTime: NotRequired[str]
    completionTime: NotRequired[str]
    readSetIds: list[str]
    sources: list[ActivationSource]


class ManifestReadSet(TypedDict):
    """One selected read set: how it went, and what lets a consumer check its files later."""

    id: str
    status: str  # EXPORTED, FAILED, EXPORTING, ACTIVATING or PENDING
    statusMessage: NotRequired[str]
    jobId: NotRequired[str]  # the export job that carries or carried it
    activationJobId: NotRequired[str]  # the activation job that brought it back, if any
    fileType: NotRequired[str]
    etag: NotRequired[ETag]  # HealthOmics' ETag (algorithm, source1, source2), from import


class ManifestRun(TypedDict):
    number: int
    requestType: str
    startedAt: str
    jobIds: list[str]


class ManifestCounts(TypedDict):
    selected: int
    exported: int
    failed: int
    inFlight: int
    activating: int  # of inFlight: still being activated


class ManifestRunner(TypedDict):
    execution: str  # the Step Functions execution carrying the export ("" before one started)
    executionArn: str  # its ARN, for DescribeExecution ("" when not known)
    active: bool  # False once the runner has ended: nothing about the export changes any more


class Manifest(TypedDict):
    """The export as people and ``cdk-omics-export status`` read it, in the destination.

    ``status`` is the export's: SUBMITTED (registered, its runner starting), ACTIVATING (read
    sets selected and checked, archived ones being activated; export jobs for the active ones
    may run meanwhile), RUNNING (export jobs starting and running), then COMPLETED,
    COMPLETED_WITH_FAILURES, FAILED or CANCELLED.
    """

    schema: int
    exportId: str
    stackId: str
    constructPath: str
    sequenceStoreId: str
    destination: str
    generation: int
    status: str
    statusReason: str
    cancelled: bool
    createdAt: str
    updatedAt: str
    run: ManifestRun
    counts: ManifestCounts
    runner: ManifestRunner
    jobs: list[ManifestJob]
    activations: list[ManifestActivation]
    readSets: list[ManifestReadSet]


class StateError(Exception):
    """The state table answered something the export cannot carry on from."""


class Conflict(StateError):
    """Someone else wrote the item since it was read: reload and try again."""


class Cancelled(StateError):
    """The export was cancelled (Delete) or its run superseded: start nothing more."""


def pack_ids(ids: Iterable[str]) -> str:
    return base64.b64encode(zlib.compress("\n".join(ids).encode(), 9)).decode()


def unpack_ids(packed: str) -> list[str]:
    text = zlib.decompress(base64.b64decode(packed)).decode()
    return text.split("\n") if text else []


def request_key(request_id: str) -> str:
    return f"request#{request_id}"


def batch_key(run: int, number: int) -> str:
    return f"batch#{run:04d}#{number:04d}"


def selection_key(run: int) -> str:
    return f"run#{run:04d}#selection"


def activation_key(run: int, number: int) -> str:
    return f"activation#{run:04d}#{number:04d}"


def facts_key(run: int, number: int) -> str:
    return f"facts#{run:04d}#{number:04d}"


def pack_json(value: Any) -> str:
    return base64.b64encode(zlib.compress(json.dumps(value).encode(), 9)).decode()


def unpack_json(packed: str) -> Any:
    return json.loads(zlib.decompress(base64.b64decode(packed)))


class Snapshot:
    """Everything stored for one export, as read at one moment."""

    def __init__(
        self,
        record: ExportRecord | None,
        batches: dict[str, BatchRecord],
        selections: dict[int, SelectionRecord],
        activations: dict[str, ActivationRecord] | None = None,
        facts: dict[str, FactsRecord] | None = None,
    ) -> None:
        self.record = record
        self.batches = batches
        self.selections = selections
        self.activations = activations if activations is not None else {}
        self.facts = facts if facts is not None else {}

    def ordered_activations(self) -> list[ActivationRecord]:
        return [self.activations[key] for key in sorted(self.activations)]

    def activation_states(self) -> dict[str, tuple[ActivationState, ActivationRecord]]:
        """Each read set's activation: the latest record holding it that was not superseded."""
        states: dict[str, tuple[ActivationState, ActivationRecord]] = {}
        for record in self.ordered_activations():
            if record["status"] == SUPERSEDED:
                continue
            sources = {s["readSetId"]: s for s in record.get("sources", [])}
            for read_set_id in record["readSetIds"]:
                states[read_set_id] = (activation_state(record, sources.get(read_set_id)), record)
        return states

    def run_facts(self, run: int) -> dict[str, ReadSetFacts]:
        facts: dict[str, ReadSetFacts] = {}
        for key in sorted(self.facts):
            if self.facts[key]["run"] == run:
                facts.update(unpack_json(self.facts[key]["facts"]))
        return facts

    def ordered_batches(self) -> list[BatchRecord]:
        return [self.batches[key] for key in sorted(self.batches)]

    def read_set_states(self) -> dict[str, tuple[ReadSetState, BatchRecord]]:
        """Each read set's state: the latest batch holding it that was not superseded."""
        states: dict[str, tuple[ReadSetState, BatchRecord]] = {}
        for batch in self.ordered_batches():
            if batch["status"] == SUPERSEDED:
                continue
            outcomes = {o["id"]: o for o in batch.get("readSets", [])}
            for read_set_id in batch["readSetIds"]:
                states[read_set_id] = (read_set_state(batch, outcomes.get(read_set_id)), batch)
        return states


def read_set_state(batch: BatchRecord, outcome: ReadSetOutcome | None) -> ReadSetState:
    status = batch["status"]
    if status == PENDING:
        return "PENDING"
    if status == STARTING or status in RUNNING_JOB_STATUSES:
        return "IN_FLIGHT"
    if outcome is not None:
        return "EXPORTED" if outcome["status"] == "FINISHED" else "FAILED"
    return "EXPORTED" if status == "COMPLETED" else "FAILED"


def activation_state(record: ActivationRecord, source: ActivationSource | None) -> ActivationState:
    status = record["status"]
    if source is not None:
        if source["status"] == "FINISHED":
            return "ACTIVE"
        if source["status"] == "FAILED":
            return "FAILED"
        if source["status"] == "ARCHIVED":
            return "ARCHIVED"
    if status in (PENDING, STARTING, WATCHING) or status in RUNNING_JOB_STATUSES:
        return "ACTIVATING"
    # The job ended without saying this read set finished.
    return "ACTIVE" if status == "COMPLETED" else "FAILED"


class StateStore:
    """The export records in DynamoDB: load, and versioned saves that never lose an update."""

    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self.client = client
        self.table = table

    # Reading

    def load(self, export_id: str) -> Snapshot:
        record: ExportRecord | None = None
        batches: dict[str, BatchRecord] = {}
        selections: dict[int, SelectionRecord] = {}
        activations: dict[str, ActivationRecord] = {}
        facts: dict[str, FactsRecord] = {}
        for item in self._query(export_id):
            sk = item["sk"]["S"]
            body = json.loads(item["body"]["S"])
            body["version"] = int(item["version"]["N"])
            if sk == EXPORT_SK:
                body["cancelled"] = item.get("cancelled", {}).get("BOOL", False)
                record = body
            elif sk.startswith("batch#"):
                batches[sk] = body
            elif sk.endswith("#selection"):
                selections[body["run"]] = body
            elif sk.startswith("activation#"):
                activations[sk] = body
            elif sk.startswith("facts#"):
                facts[sk] = body
        return Snapshot(record, batches, selections, activations, facts)

    def _query(self, export_id: str) -> Iterator[dict[str, Any]]:
        request: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": export_id}},
            "ConsistentRead": True,
        }
        while True:
            page = self.client.query(**request)
            yield from page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def is_current(self, export_id: str, run: int) -> bool:
        """Whether the export is neither cancelled nor served by a later run, as of now."""
        item = self.client.get_item(
            TableName=self.table,
            Key={"pk": {"S": export_id}, "sk": {"S": EXPORT_SK}},
            ConsistentRead=True,
            ProjectionExpression="cancelled, runNumber",
        ).get("Item")
        if item is None:
            return False
        cancelled = item.get("cancelled", {}).get("BOOL", False)
        return not cancelled and int(item.get("runNumber", {}).get("N", "-1")) == run

    # Writing

    def save_record(self, record: ExportRecord) -> None:
        """Write the record if nobody wrote it since it was read; bump its version."""
        self._put(
            record["exportId"],
            EXPORT_SK,
            record,
            extra={
                "cancelled": {"BOOL": record["cancelled"]},
                "runNumber": {"N": str(record["run"]["number"])},
            },
        )

    def save_batch(self, export_id: str, batch: BatchRecord) -> None:
        self._put(export_id, batch["key"], batch)

    def save_selection(self, export_id: str, selection: SelectionRecord) -> None:
        self._put(export_id, selection_key(selection["run"]), selection)

    def save_activation(self, export_id: str, activation: ActivationRecord) -> None:
        self._put(export_id, activation["key"], activation)

    def save_facts(self, export_id: str, facts: FactsRecord) -> None:
        self._put(export_id, facts["key"], facts)

    def claim_start(self, export_id: str, run: int, batch: BatchRecord | ActivationRecord) -> None:
        """Mark a batch STARTING, only while the export is not cancelled and is still this
        run's: the check and the mark are one transaction, so a Delete or a newer request
        that lands first stops the start."""
        claimed: Any = {**batch, "status": STARTING}
        try:
            self.client.transact_write_items(
                TransactItems=[
                    {
                        "ConditionCheck": {
                            "TableName": self.table,
                            "Key": {"pk": {"S": export_id}, "sk": {"S": EXPORT_SK}},
                            "ConditionExpression": "cancelled = :false AND runNumber = :run",
                            "ExpressionAttributeValues": {
                                ":false": {"BOOL": False},
                                ":run": {"N": str(run)},
                            },
                        }
                    },
                    {"Update": self._put_request(export_id, batch["key"], claimed)},  # type: ignore[typeddict-item]
                ]
            )
        except self.client.exceptions.TransactionCanceledException as error:
            reasons = [r.get("Code") for r in error.response.get("CancellationReasons", [])]
            if reasons and reasons[0] == "ConditionalCheckFailed":
                raise Cancelled(f"export {export_id} was cancelled or superseded") from error
            raise Conflict(f"batch {batch['key']} of export {export_id} changed") from error
        batch.update(claimed)
        batch["version"] += 1

    def cancel(self, export_id: str, *, attempts: int = 5) -> bool:
        """Mark the export cancelled; False when there is no such export."""
        for _ in range(attempts):
            record = self.load_record(export_id)
            if record is None:
                return False
            if record["cancelled"]:
                return True
            record["cancelled"] = True
            record["updatedAt"] = time.time()
            try:
                self.save_record(record)
                return True
            except Conflict:
                continue
        raise StateError(f"export {export_id}: could not mark it cancelled after {attempts} tries")

    # CloudFormation's requests

    def register_request(self, request: RequestRecord) -> RequestRecord:
        """Record a request the first time it arrives; a redelivery gets the stored one."""
        try:
            self._put(request_key(request["requestId"]), REQUEST_SK, request)
            return request
        except Conflict:
            stored = self.load_request(request["requestId"])
            if stored is None:
                raise StateError(f"request {request['requestId']}: its record vanished") from None
            return stored

    def load_request(self, request_id: str) -> RequestRecord | None:
        item = self.client.get_item(
            TableName=self.table,
            Key={"pk": {"S": request_key(request_id)}, "sk": {"S": REQUEST_SK}},
            ConsistentRead=True,
        ).get("Item")
        if item is None:
            return None
        record: RequestRecord = json.loads(item["body"]["S"])
        record["version"] = int(item["version"]["N"])
        return record

    def claim_answer(self, request: RequestRecord, status: str, at: float) -> str | None:
        """Claim the right to answer: the ResponseURL if this caller answers, None if the
        request was answered already. The URL leaves the table with the claim."""
        for _ in range(5):
            if "answer" in request:
                return None
            url = request["responseUrl"]
            claimed: RequestRecord = {
                **request,
                "responseUrl": "",
                "answer": status,
                "answeredAt": at,
            }
            try:
                self._put(request_key(request["requestId"]), REQUEST_SK, claimed)
                request.update(claimed)
                return url
            except Conflict:
                fresh = self.load_request(request["requestId"])
                if fresh is None:
                    return None
                for key in list(request):
                    del request[key]  # type: ignore[misc]
                request.update(fresh)
        raise StateError(f"request {request['requestId']}: its record kept changing")

    def load_record(self, export_id: str) -> ExportRecord | None:
        item = self.client.get_item(
            TableName=self.table,
            Key={"pk": {"S": export_id}, "sk": {"S": EXPORT_SK}},
            ConsistentRead=True,
        ).get("Item")
        if item is None:
            return None
        record: ExportRecord = json.loads(item["body"]["S"])
        record["version"] = int(item["version"]["N"])
        record["cancelled"] = item.get("cancelled", {}).get("BOOL", False)
        return record

    # Leases: one invocation at a time advances an export

    def acquire_lease(
        self, export_id: str, owner: str, seconds: float, *, force: bool = False
    ) -> bool:
        now = time.time()
        request: dict[str, Any] = {
            "TableName": self.table,
            "Key": {"pk": {"S": export_id}, "sk": {"S": EXPORT_SK}},
            "UpdateExpression": "SET leaseOwner = :owner, leaseUntil = :until",
            "ExpressionAttributeValues": {
                ":owner": {"S": owner},
                ":until": {"N": repr(now + seconds)},
            },
        }
        if not force:
            request["ConditionExpression"] = (
                "attribute_exists(pk) AND (attribute_not_exists(leaseUntil) "
                "OR leaseUntil < :now OR leaseOwner = :owner)"
            )
            request["ExpressionAttributeValues"][":now"] = {"N": repr(now)}
        try:
            self.client.update_item(**request)
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def release_lease(self, export_id: str, owner: str) -> None:
        try:
            self.client.update_item(
                TableName=self.table,
                Key={"pk": {"S": export_id}, "sk": {"S": EXPORT_SK}},
                UpdateExpression="REMOVE leaseOwner, leaseUntil",
                ConditionExpression="leaseOwner = :owner",
                ExpressionAttributeValues={":owner": {"S": owner}},
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            pass  # taken over by a newer request: it is theirs now

    # The service's request budget

    def reserve_request_slot(self, interval: float, now: float) -> float:
        """The time at which the caller may send its next request, shared by every export of
        the service: slots are handed out ``interval`` apart through conditional updates."""
        key = {"pk": {"S": PACER_KEY}, "sk": {"S": PACER_KEY}}
        while True:
            try:
                # The next free slot is in the future: take it and push it one interval on.
                answer = self.client.update_item(
                    TableName=self.table,
                    Key=key,
                    UpdateExpression="SET nextAt = nextAt + :interval",
                    ConditionExpression="nextAt >= :now",
                    ExpressionAttributeValues={
                        ":interval": {"N": repr(interval)},
                        ":now": {"N": repr(now)},
                    },
                    ReturnValues="UPDATED_OLD",
                )
                return float(answer["Attributes"]["nextAt"]["N"])
            except self.client.exceptions.ConditionalCheckFailedException:
                pass
            try:
                # The budget is idle: go now, the next slot is one interval away.
                self.client.update_item(
                    TableName=self.table,
                    Key=key,
                    UpdateExpression="SET nextAt = :next",
                    ConditionExpression="attribute_not_exists(nextAt) OR nextAt < :now",
                    ExpressionAttributeValues={
                        ":next": {"N": repr(now + interval)},
                        ":now": {"N": repr(now)},
                    },
                )
                return now
            except self.client.exceptions.ConditionalCheckFailedException:
                continue  # another invocation took the idle slot first

    # Items

    def _put(
        self, export_id: str, sk: str, body: Any, *, extra: dict[str, Any] | None = None
    ) -> None:
        request = self._put_request(export_id, sk, body, extra=extra)
        try:
            self.client.update_item(**request)
        except self.client.exceptions.ConditionalCheckFailedException as error:
            raise Conflict(f"{sk} of export {export_id} changed since it was read") from error
        body["version"] += 1

    def _put_request(
        self, export_id: str, sk: str, body: Any, *, extra: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """An UpdateItem (not a PutItem: the record's lease lives beside it) conditional on
        the version that was read; version 0 means the item must not exist yet."""
        version = int(body["version"])
        stored = {k: v for k, v in body.items() if k != "version"}
        values: dict[str, Any] = {
            ":next": {"N": str(version + 1)},
            ":body": {"S": json.dumps(stored, separators=(",", ":"))},
        }
        names = {"#version": "version", "#body": "body"}
        assignments = ["#version = :next", "#body = :body"]
        for n, (name, value) in enumerate((extra or {}).items()):
            names[f"#x{n}"] = name
            values[f":x{n}"] = value
            assignments.append(f"#x{n} = :x{n}")
        if version == 0:
            condition = "attribute_not_exists(pk)"
        else:
            condition = "#version = :version"
            values[":version"] = {"N": str(version)}
        return {
            "TableName": self.table,
            "Key": {"pk": {"S": export_id}, "sk": {"S": sk}},
            "UpdateExpression": "SET " + ", ".join(assignments),
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
