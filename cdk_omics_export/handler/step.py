"""One runner step's hold on an export: the snapshot it loaded, the store it saves to, the
HealthOmics client it calls and the time it has. The shell's primitives, shared by the modules
that act (selection, batches, activations, reporting): load and save conditionally, call a
service and say what failed, keep within the budget. Every decision is the core's.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

try:  # imported as cdk_omics_export.handler.step (tests, the construct)
    from . import state as st
    from .core import decide, progress
    from .core.model import ExportRequest, manifest_uri, one_line, redact
    from .errors import ExportError, NotYetAuthorized, OutOfTime, QuotaExceeded, ReadSetMissing
except ImportError:  # Lambda: the asset's root is on sys.path
    import state as st  # type: ignore[import-not-found,no-redef]
    from core import decide, progress  # type: ignore[import-not-found,no-redef]
    from core.model import (  # type: ignore[import-not-found,no-redef]
        ExportRequest,
        manifest_uri,
        one_line,
        redact,
    )
    from errors import (  # type: ignore[import-not-found,no-redef]
        ExportError,
        NotYetAuthorized,
        OutOfTime,
        QuotaExceeded,
        ReadSetMissing,
    )

if TYPE_CHECKING:
    from mypy_boto3_omics import OmicsClient

LOG = logging.getLogger("cdk_omics_export.handler.export")

# Time kept back from the invocation's budget for saving the state and the manifest.
RESERVE_SECONDS = 5.0


class Budget:
    """How long this invocation may keep calling services."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._end = clock() + seconds

    def left(self) -> float:
        return self._end - self._clock()

    def allows_a_call(self) -> bool:
        return self.left() > RESERVE_SECONDS


class Step:
    """The export's records as this step holds them, and the I/O that reads and writes them."""

    def __init__(
        self,
        store: st.StateStore,
        omics: OmicsClient,
        request: ExportRequest,
        *,
        load_list: Callable[[str], list[str]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.omics = omics
        self.request = request
        self.export_id = request.export_id
        self.load_list = load_list
        self._clock = clock
        self.snapshot = st.Snapshot(None, {}, {})
        # The runner execution this step belongs to (None outside the runner): a save that
        # finds another execution has taken the export over stops this one.
        self.runner_name: str | None = None
        # Export statuses this invocation moved through, for the status-change events.
        self.passed_statuses: list[str] = []
        # The runner's state machine, so the manifest and events can name its execution.
        self.state_machine_arn = ""

    # The records

    @property
    def record(self) -> st.ExportRecord:
        record = self.snapshot.record
        if record is None:
            raise ExportError(
                f"The state of export {self.export_id} is missing from the service's state "
                "table (was the table or the item removed?). Nothing is reported as exported; "
                "deploy again to rebuild the export (completed read sets are exported again)."
            )
        return record

    @property
    def run(self) -> st.Run:
        return self.record["run"]

    def now(self) -> float:
        return self._clock()

    def manifest_uri(self) -> str:
        return manifest_uri(self.request.destination, self.export_id)

    def set_status(self, status: str) -> None:
        self.snapshot.record, passed = decide.moved_to(self.record, status)
        self.passed_statuses += passed

    def load(self) -> st.Snapshot:
        self.snapshot = self.store.load(self.export_id)
        return self.snapshot

    def save_record(self) -> None:
        """Save the record; if someone else wrote it since, keep their cancellation mark and
        write this run's progress again, unless a newer run took the export over."""
        self.record["updatedAt"] = self._clock()
        for _ in range(5):
            try:
                self.store.save_record(self.record)
                return
            except st.Conflict:
                theirs = self.store.load_record(self.export_id)
                self.snapshot.record = decide.merged(self.record, theirs, self.runner_name)
        raise st.StateError(f"export {self.export_id}: the record kept changing; try again")

    def save_batch(self, batch: st.BatchRecord) -> None:
        """Save a batch; one someone else saved since is taken as they left it."""
        try:
            self.store.save_batch(self.export_id, batch)
        except st.Conflict:
            self.reload_batch(batch)

    def update_activation(
        self, record: st.ActivationRecord, new: st.ActivationRecord | None
    ) -> None:
        if new is not None:
            replace_in_place(record, new)
            self.save_activation(record)

    def reload_batch(self, batch: st.BatchRecord) -> None:
        fresh = self.store.load(self.export_id).batches.get(batch["key"])
        if fresh is not None:
            replace_in_place(batch, fresh)

    def save_activation(self, record: st.ActivationRecord) -> None:
        try:
            self.store.save_activation(self.export_id, record)
        except st.Conflict:
            self.reload_activation(record)

    def reload_activation(self, record: st.ActivationRecord) -> None:
        fresh = self.store.load(self.export_id).activations.get(record["key"])
        if fresh is not None:
            replace_in_place(record, fresh)

    def add_batches(self, batches: list[st.BatchRecord]) -> None:
        for batch in batches:
            self.store.save_batch(self.export_id, batch)
            self.snapshot.batches[batch["key"]] = batch

    def add_activations(self, records: list[st.ActivationRecord]) -> None:
        for record in records:
            self.store.save_activation(self.export_id, record)
            self.snapshot.activations[record["key"]] = record

    # Calls

    def ensure_time(self, budget: Budget) -> None:
        if not budget.allows_a_call():
            raise OutOfTime

    def call(
        self,
        operation: str,
        method: Callable[..., Any],
        *,
        job_id: str | None = None,
        read_set_ids: Sequence[str] = (),
        missing_ok: bool = False,
        **params: Any,
    ) -> Any:
        """A HealthOmics call whose failure says which job, read sets and what was said."""
        try:
            return method(**params)
        except OutOfTime:
            raise
        except Exception as error:
            refused = decide.refusal(
                operation, error_code(error), self.snapshot, self._clock(), missing_ok=missing_ok
            )
            if refused == "QUOTA":
                raise QuotaExceeded from error
            if refused == "MISSING":
                raise ReadSetMissing from error
            if refused == "NOT_YET_AUTHORIZED":
                LOG.info("AccessDenied on the first start; IAM may still be propagating")
                raise NotYetAuthorized from error
            message = decide.service_failure(
                operation,
                said(error),
                self.snapshot,
                self.request,
                job_id=job_id,
                read_set_ids=list(read_set_ids),
            )
            raise ExportError(message) from error

    def redact(self, text: str) -> str:
        """``text`` without the values of this run's filter that identify a sample or a
        subject (a service's message may repeat them)."""
        return redact(text, self.snapshot.record)

    def running_batches(self) -> int:
        return progress.running_batches(self.snapshot)


def replace_in_place(mine: Any, fresh: Any) -> None:
    """Make ``mine`` hold what ``fresh`` holds: the snapshot and a step's lists keep the same
    record."""
    for key in list(mine):
        del mine[key]
    mine.update(fresh)


def error_code(error: Exception) -> str | None:
    """The service's error code of a botocore ClientError, if it is one."""
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code is not None else None
    return None


def said(error: Exception) -> str:
    """What the service said, on one line: its error code and message."""
    response = getattr(error, "response", None)
    if isinstance(response, dict) and "Error" in response:
        code = response["Error"].get("Code", "Error")
        return f"{code}: {one_line(response['Error'].get('Message', ''))}"
    return f"{type(error).__name__}: {one_line(str(error))}"
