"""The export's records: the typed schema of what the state table keeps, and the read-only
questions a snapshot of them answers (each read set's state, each activation's). Plain data
and pure functions: the store (``state.py``) reads and writes them, the decisions
(``core/``) compute with them.
"""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Iterable
from typing import Any, Literal, NotRequired, TypedDict

__all__ = [
    "ACTIVATING",
    "ActivationRecord",
    "ActivationSource",
    "ActivationState",
    "BatchRecord",
    "Cancelled",
    "Conflict",
    "ETag",
    "Encryption",
    "ExportRecord",
    "FINAL_STATUSES",
    "FactsRecord",
    "Manifest",
    "ManifestActivation",
    "ManifestCounts",
    "ManifestJob",
    "ManifestReadSet",
    "ManifestRun",
    "ManifestRunner",
    "PENDING",
    "Preflight",
    "QuotaWait",
    "RUNNING",
    "RUNNING_JOB_STATUSES",
    "ReadSetFacts",
    "ReadSetOutcome",
    "ReadSetState",
    "RequestRecord",
    "Run",
    "Runner",
    "SCHEMA_VERSION",
    "STARTING",
    "SUBMITTED",
    "SUPERSEDED",
    "SelectionRecord",
    "SelectionSpec",
    "Snapshot",
    "StateError",
    "TERMINAL_JOB_STATUSES",
    "WATCHING",
    "activation_key",
    "activation_state",
    "batch_key",
    "facts_key",
    "pack_ids",
    "pack_json",
    "read_set_state",
    "request_key",
    "selection_key",
    "unpack_ids",
    "unpack_json",
]

SCHEMA_VERSION = 1

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
