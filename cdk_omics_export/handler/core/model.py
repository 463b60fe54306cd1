"""What an export is asked to do, what it is called, and how its words are shaped: the
request as the record keeps it, the names derived from it (export id, manifest, runner
execution, client tokens), the counts of its read sets, and the limits of its messages."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from . import records as st

try:  # imported as cdk_omics_export.handler.core.model (tests, the construct)
    from .. import rules
except ImportError:  # Lambda: the asset's root is on sys.path
    import rules  # type: ignore[import-not-found,no-redef]

MANIFEST_FOLDER = "cdk-omics-export/"
# CloudFormation shows the reason of a failed resource from a response of at most 4,096
# bytes, which also carries ids and Data.
MAX_MESSAGE_LENGTH = 1000
START_OPERATIONS = frozenset({"StartReadSetExportJob", "StartReadSetActivationJob"})
# What a filter selects: with activation, archived read sets too; never deleted or failed ones.
SELECTABLE = frozenset({"ACTIVE", "ARCHIVED", "ACTIVATING"})
MAX_NAMED = 10
MAX_JOBS_NAMED = 20
MAX_EVENT_JOBS = 200
# How long a refusal by the concurrent-job quota holds before starting is tried again anyway.
QUOTA_RETRY_SECONDS = 300.0
# IAM is eventually consistent: a role created moments ago may not be usable yet.
IAM_PROPAGATION_SECONDS = 300.0
# A job a lost start made was created after its batch was claimed; clocks differ a little.
STARTED_JOB_LOOKBACK_SECONDS = 300.0
ACTIVATE = rules.ArchivedReadSets.ACTIVATE.value


@dataclass(frozen=True)
class ExportRequest:
    """What the custom resource's properties ask for, parsed and checked."""

    stack_id: str
    construct_path: str
    destination: str
    generation: int
    sequence_store_id: str
    role_arn: str
    selection: st.SelectionSpec
    encryption: st.Encryption
    wait: bool = True
    allow_partial_failure: bool = False
    timeout_seconds: int = rules.DEFAULT_TIMEOUT_SECONDS
    poll_interval_seconds: int = rules.DEFAULT_POLL_INTERVAL_SECONDS
    archived_read_sets: str = rules.ArchivedReadSets.ACTIVATE.value

    @property
    def export_id(self) -> str:
        return export_id_of(self.stack_id, self.construct_path, self.destination, self.generation)

    @classmethod
    def of_record(cls, record: st.ExportRecord, poll_interval_seconds: int) -> ExportRequest:
        """What the export's current run asks for, as its record keeps it (the runner works
        from the state, not from CloudFormation's request)."""
        run = record["run"]
        timeout = run.get("deadline", run["startedAt"]) - run["startedAt"]
        return cls(
            stack_id=record["stackId"],
            construct_path=record["constructPath"],
            destination=record["destination"],
            generation=record["generation"],
            sequence_store_id=record["sequenceStoreId"],
            role_arn=record["roleArn"],
            selection=run["selection"],
            encryption=record["encryption"],
            wait=run["wait"],
            allow_partial_failure=run["allowPartialFailure"],
            timeout_seconds=int(timeout) or rules.DEFAULT_TIMEOUT_SECONDS,
            poll_interval_seconds=poll_interval_seconds,
            # A run recorded before activation existed failed on archived read sets.
            archived_read_sets=run.get("archivedReadSets", rules.ArchivedReadSets.FAIL.value),
        )


def export_id_of(stack_id: str, construct_path: str, destination: str, generation: int) -> str:
    """The export's id, and the resource's physical id: from these four and nothing else, so
    every request for the same export (a retry, an update, a rollback, a Delete whose physical
    id CloudFormation made up) finds the same state."""
    seed = "\n".join((stack_id, construct_path, destination, str(generation)))
    return "rse-" + hashlib.sha256(seed.encode()).hexdigest()[:28]


def manifest_location(destination: str, export_id: str) -> tuple[str, str]:
    bucket, _, prefix = destination.removeprefix("s3://").partition("/")
    return bucket, f"{prefix}{MANIFEST_FOLDER}{export_id}.json"


def manifest_uri(destination: str, export_id: str) -> str:
    bucket, key = manifest_location(destination, export_id)
    return f"s3://{bucket}/{key}"


def runner_name(export_id: str, run: int, segment: int) -> str:
    """The runner execution's name: the export and the work it carries. Starting the same
    one twice (a redelivered request) is harmless; a closed one's name is never reused."""
    return f"{export_id}-{run}-{segment}"


def execution_arn(state_machine_arn: str, name: str) -> str:
    """The ARN of the runner execution ``name`` of that state machine."""
    head, _, machine = state_machine_arn.rpartition(":stateMachine:")
    return f"{head}:execution:{machine}:{name}"


def batch_client_token(export_id: str, run: int, number: int) -> str:
    """The same batch always sends the same token: a retried start makes no second job."""
    token = hashlib.sha256(f"{export_id}/{run}/{number}".encode()).hexdigest()
    return token[: rules.CLIENT_TOKEN_MAX_LENGTH]


def activation_client_token(export_id: str, run: int, number: int) -> str:
    """The same activation record always sends the same token: a retried start makes no
    second job."""
    token = hashlib.sha256(f"{export_id}/{run}/activation/{number}".encode()).hexdigest()
    return token[: rules.CLIENT_TOKEN_MAX_LENGTH]


@dataclass
class Counts:
    selected: int = 0
    exported: int = 0
    failed: int = 0
    in_flight: int = 0
    activating: int = 0  # of in_flight: not active yet
    failures: list[str] = field(default_factory=list)  # "<id> (<message>)", first few


def iso_time(value: Any) -> str:
    """A time as ISO 8601: epoch seconds, a datetime from botocore, or text as it is."""
    if isinstance(value, int | float):
        return datetime.fromtimestamp(int(value), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def clip(text: str) -> str:
    if len(text) <= MAX_MESSAGE_LENGTH:
        return text
    return text[: MAX_MESSAGE_LENGTH - 3] + "..."


def redact(text: str, record: st.ExportRecord | None) -> str:
    """``text`` without the values of the run's filter that identify a sample or a subject
    (a service's message may repeat them)."""
    if record is None or "run" not in record:
        return text
    return rules.redact(text, record["run"]["selection"].get("filter"))
