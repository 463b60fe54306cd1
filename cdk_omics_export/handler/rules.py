"""The HealthOmics export contract, as plain Python.

Both sides use these rules: the construct checks props at synth time, the handler checks
the resolved values at deploy time (a token hides them from synth). The limits are copied
from botocore's omics service model; ``tests/test_rules.py`` compares them with the model
so they cannot drift from the real API.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from collections.abc import Callable, Sequence
from datetime import datetime

# Environment of the service's handler functions, set by ReadSetExportService (here, so the
# construct need not import the handler's boto3 to name them).
TABLE_ENV = "STATE_TABLE_NAME"
LOG_GROUP_ENV = "LOG_GROUP_NAME"
RATE_ENV = "MAX_REQUESTS_PER_SECOND"
POLL_ENV = "POLL_INTERVAL_SECONDS"
# The runner's state machine, for the functions that start and watch its executions.
RUNNER_ENV = "RUNNER_STATE_MACHINE_ARN"

# The service's own EventBridge bus, whose policy lets only the handler's role put events.
EVENT_BUS_ENV = "EVENT_BUS_NAME"

# What the service publishes to its bus at every status change of an export or of one of its
# jobs (the handler's policy allows this source only).
EVENT_SOURCE = "cdk-omics-export"
EVENT_DETAIL_TYPE = "Read Set Export Status Change"
# The value of an attribute (and stack output) that has nothing to name, such as JobId for a
# run that started no job: never empty, which reads better in describe-stacks too.
NONE = "none"
# Each export's manifest: <destination>cdk-omics-export/<export id>.json.
MANIFEST_FOLDER = "cdk-omics-export/"
# A runner execution continues in a new one after this many steps. Each step (Task, Choice,
# Wait) adds 9 events to the execution's history, which Step Functions caps at 25,000.
RUNNER_STEPS_PER_EXECUTION = 1000
RUNNER_HISTORY_EVENTS_PER_STEP = 9
# While batches wait for the concurrent-job quota, the runner looks this often rather than at
# the poll interval: a slot that a finished job freed and nobody fills delays the whole cohort,
# wave after wave.
CAPACITY_POLL_SECONDS = 10

# StartReadSetExportJob: sequenceStoreId, sources[].readSetId and the job id share one shape.
ID_MIN_LENGTH = 10
ID_MAX_LENGTH = 36
ID_PATTERN = "[0-9]+"
MAX_READ_SETS_PER_JOB = 100
# StartReadSetActivationJob takes 1 to 20 sources.
MAX_READ_SETS_PER_ACTIVATION = 20


class ArchivedReadSets(enum.Enum):
    """What an export does with selected read sets that HealthOmics has archived.

    HealthOmics archives read sets not accessed for 30 days; they must be activated before
    they can be exported.
    """

    ACTIVATE = "ACTIVATE"
    """Activate them (StartReadSetActivationJob, 20 per job), and export each once active."""
    FAIL = "FAIL"
    """Fail the pre-flight, naming them; nothing is exported."""


# One construct exports a cohort through as many jobs as needed.
MAX_READ_SETS = 10_000
# Up to this many ids travel in the custom resource's properties; more go in an S3 asset,
# so every event stays far below Lambda's and Step Functions' payload limits.
INLINE_READ_SET_LIMIT = 100
# HealthOmics' default quota for the export operations, per account and Region.
DEFAULT_MAX_REQUESTS_PER_SECOND = 5
MAX_REQUESTS_PER_SECOND = 100
# ListReadSets' filter fields (the construct's ReadSetFilter uses snake_case names).
READ_SET_STATUSES = (
    "ARCHIVED",
    "ACTIVATING",
    "ACTIVE",
    "DELETING",
    "DELETED",
    "PROCESSING_UPLOAD",
    "UPLOAD_FAILED",
)
CREATION_TYPES = ("IMPORT", "UPLOAD")
# The filter fields whose values identify a patient or a sample: no log line, message, event or
# manifest holds them (messages name the fields only).
IDENTIFYING_FILTER_FIELDS = ("name", "sampleId", "subjectId", "generatedFrom")
FILTER_TEXT_MAX_LENGTH = 127
DESTINATION_PATTERN = "s3://([a-z0-9][a-z0-9-.]{1,61}[a-z0-9])/?((.{1,1024})/)?"
# The destination pattern's `(.{1,1024})/`: the prefix is at most 1,024 characters before
# its final slash.
MAX_PREFIX_LENGTH = 1024 + 1
CLIENT_TOKEN_MAX_LENGTH = 127
# Any label (a date, a version): it travels in the export's record and the runner's input,
# which a long text would crowd.
SELECTION_REFRESH_MAX_LENGTH = 256

# CloudFormation waits at most one hour (ServiceTimeout 1-3,600 s) for a custom resource.
CUSTOM_RESOURCE_MAX_SECONDS = 3600
# What the Provider framework needs beyond the waiter's own timeout: the onEvent call that
# starts the job and the final response. ServiceTimeout = timeout + this headroom.
SERVICE_TIMEOUT_HEADROOM_SECONDS = 300
MAX_TIMEOUT_SECONDS = CUSTOM_RESOURCE_MAX_SECONDS - SERVICE_TIMEOUT_HEADROOM_SECONDS
DEFAULT_TIMEOUT_SECONDS = 50 * 60
DEFAULT_POLL_INTERVAL_SECONDS = 30
MIN_POLL_INTERVAL_SECONDS = 10

_ID = re.compile(ID_PATTERN)
DESTINATION = re.compile(DESTINATION_PATTERN)
# Any valid bucket name: stands in for a bucket whose name is a token at synth time, so the
# prefix can still be checked against the destination pattern.
PLACEHOLDER_BUCKET_NAME = "bucket-name-placeholder"


def _is_id(value: str) -> bool:
    return ID_MIN_LENGTH <= len(value) <= ID_MAX_LENGTH and _ID.fullmatch(value) is not None


def first_of(items: Sequence[str], limit: int, separator: str = ", ") -> str:
    """The first ``limit`` items, and how many more: messages stay short at any size."""
    shown = separator.join(items[:limit])
    return f"{shown} and {len(items) - limit} more" if len(items) > limit else shown


def _show(value: str, limit: int = 40) -> str:
    return repr(value if len(value) <= limit else value[:limit] + "...")


def check_sequence_store_id(value: str) -> list[str]:
    if _is_id(value):
        return []
    return [
        f"sequence_store_id: {_show(value)} is not a sequence store id "
        f"({ID_MIN_LENGTH}-{ID_MAX_LENGTH} digits)"
    ]


def check_read_set_ids(values: Sequence[str | None]) -> list[str]:
    """Check a literal list of read set ids; pass ``None`` for an id that is a token."""
    problems: list[str] = []
    if len(values) == 0:
        problems.append("read_set_ids: no ids given, the export needs at least one read set")
    elif len(values) > MAX_READ_SETS:
        problems.append(
            f"read_set_ids: {len(values)} ids given, one export takes at most {MAX_READ_SETS} "
            f"({MAX_READ_SETS // MAX_READ_SETS_PER_JOB} jobs of {MAX_READ_SETS_PER_JOB})"
        )
    bad = [v for v in values if v is not None and not _is_id(v)]
    if bad:
        shown = first_of([_show(v) for v in bad], 5)
        verdict = "is not a read set id" if len(bad) == 1 else "are not read set ids"
        problems.append(f"read_set_ids: {shown} {verdict} ({ID_MIN_LENGTH}-{ID_MAX_LENGTH} digits)")
    seen: set[str] = set()
    duplicates: list[str] = []
    for v in values:
        if v is None:
            continue
        if v in seen and v not in duplicates:
            duplicates.append(v)
        seen.add(v)
    if duplicates:
        shown = first_of([_show(v) for v in duplicates], 5)
        problems.append(f"read_set_ids: {shown} listed more than once")
    return problems


def destination_uri(bucket_name: str, prefix: str) -> str:
    return f"s3://{bucket_name}/{prefix}"


def check_destination_prefix(prefix: str, bucket_name: str | None = None) -> list[str]:
    """Check the key prefix; ``bucket_name`` None means the name is not known at synth time."""
    if prefix == "":
        problems: list[str] = []
    elif has_control_characters(prefix):
        problems = [
            f"destination_prefix: {_show(prefix)} holds control characters (tab, newline, ...)"
        ]
    elif not prefix.endswith("/"):
        problems = [f"destination_prefix: {_show(prefix)} must be empty or end with '/'"]
    elif prefix.startswith("/"):
        problems = [
            f"destination_prefix: {_show(prefix)} must not start with '/' "
            "(S3 keys would start with an empty path segment)"
        ]
    elif len(prefix) > MAX_PREFIX_LENGTH:
        problems = [
            f"destination_prefix: {len(prefix)} characters, the API accepts at most "
            f"{MAX_PREFIX_LENGTH - 1} before the final '/'"
        ]
    else:
        problems = []
    if problems:
        return problems
    uri = destination_uri(bucket_name or PLACEHOLDER_BUCKET_NAME, prefix)
    if DESTINATION.fullmatch(uri) is None:
        return [
            f"destination_prefix: destination {_show(uri, 80)} does not match the API's "
            f"pattern {DESTINATION_PATTERN}"
        ]
    return []


def check_timeout(timeout_seconds: int) -> list[str]:
    if timeout_seconds <= 0:
        return [f"timeout: {timeout_seconds} s must be positive"]
    if timeout_seconds > MAX_TIMEOUT_SECONDS:
        return [
            f"timeout: {timeout_seconds} s exceeds {MAX_TIMEOUT_SECONDS} s; CloudFormation "
            f"waits at most {CUSTOM_RESOURCE_MAX_SECONDS} s for a custom resource and the "
            f"deploy needs {SERVICE_TIMEOUT_HEADROOM_SECONDS} s of that to start and report "
            "the export (use wait_for_completion=False for longer exports)"
        ]
    return []


def check_poll_interval(poll_interval_seconds: int) -> list[str]:
    if poll_interval_seconds < MIN_POLL_INTERVAL_SECONDS:
        return [
            f"poll_interval: {poll_interval_seconds} s is below the minimum of "
            f"{MIN_POLL_INTERVAL_SECONDS} s"
        ]
    if poll_interval_seconds > MAX_TIMEOUT_SECONDS:
        return [f"poll_interval: {poll_interval_seconds} s exceeds {MAX_TIMEOUT_SECONDS} s"]
    return []


def check_export_generation(value: int) -> list[str]:
    if isinstance(value, bool) or not isinstance(value, int):
        return [f"export_generation: {value!r} must be a whole number (0, 1, 2, ...)"]
    if value >= 0:
        return []
    return [f"export_generation: {value} must be 0 or more (bump it to export everything again)"]


def check_max_requests_per_second(value: int) -> list[str]:
    if 1 <= value <= MAX_REQUESTS_PER_SECOND:
        return []
    return [
        f"max_requests_per_second: {value} must be between 1 and {MAX_REQUESTS_PER_SECOND} "
        f"(HealthOmics' default quota is {DEFAULT_MAX_REQUESTS_PER_SECOND})"
    ]


# ReadSetFilter's field names, by ListReadSets' (API) names: synth-time messages name the
# prop the user wrote.
FILTER_PROPS = {
    "name": "name",
    "sampleId": "sample_id",
    "subjectId": "subject_id",
    "referenceArn": "reference_arn",
    "generatedFrom": "generated_from",
    "creationType": "creation_type",
    "createdAfter": "created_after",
    "createdBefore": "created_before",
    "status": "status",
}


def check_read_set_filter(
    fields: dict[str, str], *, where: str = "read_set_filter", api_names: bool = False
) -> list[str]:
    """Check ListReadSets filter fields (API names); values that are tokens are left out.
    Messages name each field ``<where>.<field>``, by its prop name unless ``api_names``."""

    def field(name: str) -> str:
        return f"{where}.{name if api_names else FILTER_PROPS.get(name, name)}"

    problems: list[str] = []
    if not {k: v for k, v in fields.items() if k != "status"}:
        problems.append(
            f"{where}: give at least one field besides status; an export of every "
            "read set in the store is too easy to deploy by mistake"
        )
    status = fields.get("status")
    if status is not None and status not in READ_SET_STATUSES:
        problems.append(
            f"{field('status')}: {_show(status)} is not one of {', '.join(READ_SET_STATUSES)}"
        )
    creation_type = fields.get("creationType")
    if creation_type is not None and creation_type not in CREATION_TYPES:
        problems.append(
            f"{field('creationType')}: {_show(creation_type)} is not one of "
            f"{', '.join(CREATION_TYPES)}"
        )
    for name, text in fields.items():
        if has_control_characters(text):
            problems.append(
                f"{field(name)}: holds control characters (tab, newline, ...), which no read "
                "set's field holds"
            )
    for name in IDENTIFYING_FILTER_FIELDS:
        value = fields.get(name)
        if value is not None and not 1 <= len(value) <= FILTER_TEXT_MAX_LENGTH:
            problems.append(
                f"{field(name)}: {len(value)} characters; it must be 1-{FILTER_TEXT_MAX_LENGTH}"
            )
    reference = fields.get("referenceArn")
    if reference is not None and not (
        reference.startswith("arn:") and len(reference) <= FILTER_TEXT_MAX_LENGTH
    ):
        problems.append(
            f"{field('referenceArn')}: {_show(reference)} must be an ARN of at most "
            f"{FILTER_TEXT_MAX_LENGTH} characters"
        )
    return problems + _check_filter_times(fields, field)


def _check_filter_times(fields: dict[str, str], field: Callable[[str], str]) -> list[str]:
    """createdAfter and createdBefore: times with a zone, compared as times."""
    problems: list[str] = []
    times: dict[str, datetime] = {}
    for name in ("createdAfter", "createdBefore"):
        value = fields.get(name)
        if value is None:
            continue
        when = parse_time(value)
        if when is None:
            problems.append(
                f"{field(name)}: {_show(value)} is not an ISO 8601 time with a zone "
                "(e.g. '2026-01-01T00:00:00Z')"
            )
        else:
            times[name] = when
    if len(times) == 2 and times["createdAfter"] >= times["createdBefore"]:
        problems.append(f"{field('createdAfter')}: must be earlier than {field('createdBefore')}")
    return problems


def parse_time(value: str) -> datetime | None:
    """An ISO 8601 time with its zone (``Z`` or an offset); None when it is not one."""
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when if when.tzinfo is not None else None


def has_control_characters(value: str) -> bool:
    return any(unicodedata.category(c) == "Cc" for c in value)


def filter_fields(read_set_filter: dict[str, str]) -> str:
    """The filter's fields, never their values: "sampleId and createdAfter"."""
    names = sorted(read_set_filter)
    if len(names) <= 1:
        return "".join(names) or "no field"
    return ", ".join(names[:-1]) + " and " + names[-1]


def redact(text: str, read_set_filter: dict[str, str] | None) -> str:
    """``text`` with every identifying filter value replaced by its field's name in angle
    brackets: a service's message may repeat what it was sent."""
    if not read_set_filter:
        return text
    values = sorted(
        (
            (str(value), name)
            for name, value in read_set_filter.items()
            if name in IDENTIFYING_FILTER_FIELDS and value
        ),
        key=lambda pair: -len(pair[0]),
    )
    for value, name in values:
        text = text.replace(value, f"<{name}>")
    return text
