"""Archived read sets, brought back before they are exported.

HealthOmics archives read sets that were not accessed for 30 days, and most of a cohort older
than a month is ARCHIVED when a deploy wants to export it. With ``ArchivedReadSets.ACTIVATE``
the pre-flight accepts them, and each runner step:

- plans activation records (``activation#RRRR#NNNN``, at most 20 read sets each) for this
  run's read sets that are archived and not being activated by an earlier run;
- watches read sets that someone else is activating (``WATCHING`` records, polled with
  GetReadSetMetadata), and activates those that end up archived again;
- starts activation jobs as the concurrent-activation quota allows, each with a client token
  and claimed first, like export batches, so a retried step starts no second job;
- follows them with one ListReadSetActivationJobs a step, and gets a job
  (GetReadSetActivationJob) once the listing shows it ended, or if the listing missed it;
  each read set whose source is FINISHED is handed to the export then, so one job's exports
  run while the other activations go on.

How long an activation takes and how many may run at once are not published: nothing here
assumes either. A refusal by the quota holds starts back until one of ours ends or
``QUOTA_RETRY_SECONDS`` pass; the deploy, with ``wait_for_completion=True``, waits as long as
its timeout allows.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

try:  # imported as cdk_omics_export.handler.activation (tests, the construct)
    from . import observe, rules
    from . import state as st
    from .errors import ExportError, NotYetAuthorized, QuotaExceeded, ReadSetMissing
except ImportError:  # Lambda: the asset's root is on sys.path
    import observe  # type: ignore[import-not-found,no-redef]
    import rules  # type: ignore[import-not-found,no-redef]
    import state as st  # type: ignore[import-not-found,no-redef]
    from errors import (  # type: ignore[import-not-found,no-redef]
        ExportError,
        NotYetAuthorized,
        QuotaExceeded,
        ReadSetMissing,
    )

if TYPE_CHECKING:
    from .export import Budget, Export

LOG = logging.getLogger(__name__)

ACTIVATE = rules.ArchivedReadSets.ACTIVATE.value
# How long a refusal by the concurrent-activation quota holds before starting is tried again.
QUOTA_RETRY_SECONDS = 300.0
STARTED_JOB_LOOKBACK_SECONDS = 300.0

# What the pre-flight found of a read set this run exports, and what that asks of this run.
EXPORTABLE = "ACTIVE"
TO_ACTIVATE = "ARCHIVED"
TO_WATCH = "WATCH"


def activation_client_token(export_id: str, run: int, number: int) -> str:
    """The same activation record always sends the same token: a retried start makes no
    second job."""
    token = hashlib.sha256(f"{export_id}/{run}/activation/{number}".encode()).hexdigest()
    return token[: rules.CLIENT_TOKEN_MAX_LENGTH]


class Activations:
    """The activation side of one export's run."""

    def __init__(self, export: Export) -> None:
        self.export = export

    # What each read set needs

    def effective(self) -> dict[str, tuple[st.ActivationState | str, st.ActivationRecord | None]]:
        """For each read set this run exports: ACTIVE, ACTIVATING, FAILED (this run's
        activation failed), ARCHIVED (to activate) or WATCH (someone else activates it)."""
        export = self.export
        run = export.run["number"]
        selection = export.selection()
        if selection is None or "todo" not in selection:
            return {}
        archived = set(st.unpack_ids(selection.get("archived", st.pack_ids([]))))
        activating = set(st.unpack_ids(selection.get("activating", st.pack_ids([]))))
        states = export.snapshot.activation_states()
        result: dict[str, tuple[st.ActivationState | str, st.ActivationRecord | None]] = {}
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

    def awaited(self) -> int:
        """Read sets of this run still waiting to be active."""
        return sum(
            1
            for state, _ in self.effective().values()
            if state in ("ACTIVATING", TO_ACTIVATE, TO_WATCH)
        )

    # Planning

    def plan(self) -> None:
        """Records for this run's read sets that are archived (activated by us) or activated by
        someone else (watched). Idempotent: a read set already in a record is not planned
        again, so a retried step plans nothing twice."""
        export = self.export
        if export.record["cancelled"]:
            return
        effective = self.effective()
        to_activate = [r for r, (state, _) in effective.items() if state == TO_ACTIVATE]
        to_watch = [r for r, (state, _) in effective.items() if state == TO_WATCH]
        # A watched read set that went back to ARCHIVED is activated by us now.
        to_activate += [
            r
            for r, (state, record) in effective.items()
            if state == "ARCHIVED" and record is not None and record["status"] == st.WATCHING
        ]
        if not to_activate and not to_watch:
            return
        number = self._next_number()
        size = rules.MAX_READ_SETS_PER_ACTIVATION
        for ids, status in ((to_activate, st.PENDING), (to_watch, st.WATCHING)):
            for start in range(0, len(ids), size):
                chunk = ids[start : start + size]
                record: st.ActivationRecord = {
                    "key": st.activation_key(export.run["number"], number),
                    "run": export.run["number"],
                    "number": number,
                    "readSetIds": chunk,
                    "status": status,
                    "version": 0,
                }
                if status == st.WATCHING:
                    record["sources"] = [{"readSetId": r, "status": "IN_PROGRESS"} for r in chunk]
                export.store.save_activation(export.export_id, record)
                export.snapshot.activations[record["key"]] = record
                number += 1
        LOG.info(
            "export %s: %d read set(s) to activate, %d being activated by someone else",
            export.export_id,
            len(to_activate),
            len(to_watch),
        )

    def ready(self) -> list[str]:
        """This run's read sets that are active now (by the pre-flight, or activated since)."""
        return [r for r, (state, _) in self.effective().items() if state == "ACTIVE"]

    def _next_number(self) -> int:
        run = self.export.run["number"]
        numbers = [
            a["number"] for a in self.export.snapshot.activations.values() if a["run"] == run
        ]
        return max(numbers) + 1 if numbers else 0

    def run_records(self) -> list[st.ActivationRecord]:
        run = self.export.run["number"]
        return [a for a in self.export.snapshot.ordered_activations() if a["run"] == run]

    def nothing_left_to_start(self) -> bool:
        return not any(a["status"] in (st.PENDING, st.STARTING) for a in self.run_records())

    # Following

    def follow(self, budget: Budget) -> None:
        """Record the progress of every activation of the export that is still going: one
        listing shows our jobs, and only one that ended (or that the listing missed) is asked
        for with its own Get (``observe.py``)."""
        export = self.export
        self._resolve_starting(budget)
        for record in export.snapshot.ordered_activations():
            if record["status"] == st.WATCHING:
                self._watch(record, budget)
        running = [
            a
            for a in export.snapshot.ordered_activations()
            if a["status"] in st.RUNNING_JOB_STATUSES and "jobId" in a
        ]
        listed = observe.listed_statuses(
            export,
            operation="ListReadSetActivationJobs",
            method=export.omics.list_read_set_activation_jobs,
            items="activationJobs",
            running=[self._running_job(a) for a in running],
            budget=budget,
        )
        for record in running:
            seen = observe.decide(record["status"], listed.get(record["jobId"]))
            if seen is None:
                continue
            if seen != observe.GET:
                record["status"] = seen
                self._save(record)
                continue
            self._get(record, budget)

    def _running_job(self, record: st.ActivationRecord) -> observe.Running:
        return observe.Running(
            job_id=record["jobId"],
            status=record["status"],
            since=observe.since(
                record.get("creationTime"),
                record.get("claimedAt"),
                self.export.record["createdAt"],
            ),
        )

    def _get(self, record: st.ActivationRecord, budget: Budget) -> None:
        """The job's per-read-set outcome: once it ended, each read set is handed on."""
        export = self.export
        export.ensure_time(budget)
        detail = export.call(
            "GetReadSetActivationJob",
            export.omics.get_read_set_activation_job,
            sequenceStoreId=export.request.sequence_store_id,
            id=record["jobId"],
            job_id=record["jobId"],
        )
        sources: list[st.ActivationSource] = [
            {k: v for k, v in s.items() if k in ("readSetId", "status", "statusMessage")}  # type: ignore[misc]
            for s in detail.get("sources", [])
        ]
        if detail["status"] == record["status"] and sources == record.get("sources"):
            return
        record["status"] = detail["status"]
        record["sources"] = sources
        if detail.get("statusMessage"):
            record["statusMessage"] = detail["statusMessage"]
        if "completionTime" in detail:
            record["completionTime"] = _iso(detail["completionTime"])
        if detail["status"] in st.TERMINAL_JOB_STATUSES:
            LOG.info("activation job %s ended %s", record["jobId"], detail["status"])
        self._save(record)

    def _watch(self, record: st.ActivationRecord, budget: Budget) -> None:
        """Read sets someone else activates: looked at one by one until each is active."""
        export = self.export
        changed = False
        for source in record.get("sources", []):
            if source["status"] != "IN_PROGRESS":
                continue
            export.ensure_time(budget)
            try:
                metadata = export.call(
                    "GetReadSetMetadata",
                    export.omics.get_read_set_metadata,
                    sequenceStoreId=export.request.sequence_store_id,
                    id=source["readSetId"],
                    read_set_ids=[source["readSetId"]],
                    missing_ok=True,
                )
                status = metadata["status"]
            except ReadSetMissing:
                status = "DELETED"
            if status == "ACTIVATING":
                continue
            changed = True
            if status == "ACTIVE":
                source["status"] = "FINISHED"
            elif status == "ARCHIVED":
                source["status"] = "ARCHIVED"  # activated by us next
            else:
                source["status"] = "FAILED"
                source["statusMessage"] = f"read set became {status} while it was activated"
        if not changed:
            return
        if all(s["status"] != "IN_PROGRESS" for s in record.get("sources", [])):
            failed = any(s["status"] == "FAILED" for s in record.get("sources", []))
            record["status"] = "COMPLETED_WITH_FAILURES" if failed else "COMPLETED"
        self._save(record)

    def _resolve_starting(self, budget: Budget) -> None:
        """Records left STARTING by a step that died between the claim and recording the
        job: the job a lost start made is looked for, and adopted; otherwise the start is sent
        again with its client token."""
        export = self.export
        for record in export.snapshot.ordered_activations():
            if record["status"] != st.STARTING:
                continue
            export.ensure_time(budget)
            found = self._find_started_job(record, budget)
            if found is not None:
                job_id = found["id"]
                LOG.info("%s was started before as job %s: following it", record["key"], job_id)
                # Its creation time bounds the listings that follow it.
                self._record_started(
                    record,
                    {"id": job_id, "status": "SUBMITTED", "creationTime": found["creationTime"]},
                )
                continue
            if export.record["cancelled"] or record["run"] != export.run["number"]:
                # An earlier run's activation is not this run's to start (a rollback starts
                # nothing new); this run activates what it still needs itself.
                LOG.info("%s never started and is not this run's to start", record["key"])
                record["status"] = st.SUPERSEDED
                self._save(record)
                continue
            if not self._send_start(record, self._running(), release=False):
                return

    def _find_started_job(
        self, record: st.ActivationRecord, budget: Budget
    ) -> dict[str, Any] | None:
        export = self.export
        claimed = record.get("claimedAt", export.run["startedAt"])
        wanted = sorted(record["readSetIds"])
        request: dict[str, Any] = {
            "sequenceStoreId": export.request.sequence_store_id,
            "maxResults": 100,
            "filter": {"createdAfter": _as_datetime(claimed - STARTED_JOB_LOOKBACK_SECONDS)},
        }
        known = {a.get("jobId") for a in export.snapshot.activations.values()}
        while True:
            export.ensure_time(budget)
            page = export.call(
                "ListReadSetActivationJobs",
                export.omics.list_read_set_activation_jobs,
                **request,
            )
            for job in page.get("activationJobs", []):
                if job["id"] in known:
                    continue
                export.ensure_time(budget)
                detail = export.call(
                    "GetReadSetActivationJob",
                    export.omics.get_read_set_activation_job,
                    sequenceStoreId=export.request.sequence_store_id,
                    id=job["id"],
                    job_id=job["id"],
                )
                if sorted(s["readSetId"] for s in detail.get("sources", [])) == wanted:
                    return dict(job)
            if not page.get("nextToken"):
                return None
            request["nextToken"] = page["nextToken"]

    # Starting

    def start(self, budget: Budget) -> None:
        export = self.export
        export_id = export.export_id
        running = self._running()
        for record in self.run_records():
            if record["status"] != st.PENDING:
                continue
            if self._quota_still_full(running) or export.waiting_for_iam():
                return
            export.ensure_time(budget)
            try:
                record["claimedAt"] = export.now()
                export.store.claim_start(export.export_id, export.run["number"], record)
                running += 1
            except st.Cancelled:
                LOG.info("export %s was cancelled or superseded: activating nothing", export_id)
                return
            except st.Conflict:
                self._reload(record)
                continue
            if not self._send_start(record, running):
                return

    def _running(self) -> int:
        return sum(
            1
            for a in self.export.snapshot.activations.values()
            if a["status"] == st.STARTING or a["status"] in st.RUNNING_JOB_STATUSES
        )

    def _send_start(
        self, record: st.ActivationRecord, running: int, *, release: bool = True
    ) -> bool:
        export = self.export
        try:
            started = export.call(
                "StartReadSetActivationJob",
                export.omics.start_read_set_activation_job,
                sequenceStoreId=export.request.sequence_store_id,
                sources=[{"readSetId": r} for r in record["readSetIds"]],
                clientToken=activation_client_token(
                    export.export_id, record["run"], record["number"]
                ),
                read_set_ids=record["readSetIds"],
            )
        except QuotaExceeded:
            LOG.info("concurrent activation quota reached at %d running jobs", running - 1)
            export.run["activationQuotaWait"] = {"running": running - 1, "at": export.now()}
            if release:
                record["status"] = st.PENDING
                self._save(record)
            return False
        except NotYetAuthorized:
            export.run.setdefault("accessDeniedSince", export.now())
            if release:
                record["status"] = st.PENDING
                self._save(record)
            return False
        except ExportError as error:
            record["status"] = "FAILED"
            record["statusMessage"] = str(error)
            self._save(record)
            raise
        export.run.pop("activationQuotaWait", None)
        export.run.pop("accessDeniedSince", None)
        self._record_started(record, started)
        LOG.info("started activation job %s for %s", started["id"], record["key"])
        return True

    def _record_started(self, record: st.ActivationRecord, started: dict[str, Any]) -> None:
        record["jobId"] = started["id"]
        record["status"] = started["status"]
        if "creationTime" in started:
            record["creationTime"] = _iso(started["creationTime"])
        self._save(record)

    def _quota_still_full(self, running: int) -> bool:
        wait = self.export.run.get("activationQuotaWait")
        if wait is None or running < wait["running"]:
            return False
        return self.export.now() - wait["at"] < QUOTA_RETRY_SECONDS

    # Saving

    def _save(self, record: st.ActivationRecord) -> None:
        try:
            self.export.store.save_activation(self.export.export_id, record)
        except st.Conflict:
            self._reload(record)

    def _reload(self, record: st.ActivationRecord) -> None:
        export = self.export
        fresh = export.store.load(export.export_id).activations.get(record["key"])
        if fresh is not None:
            for key in list(record):
                del record[key]  # type: ignore[misc]
            record.update(fresh)

    # Reporting

    def failed_records(self) -> list[st.ActivationRecord]:
        """This run's activations that did not bring every read set back."""
        return [
            a
            for a in self.run_records()
            if a["status"] in st.TERMINAL_JOB_STATUSES
            and (
                a["status"] != "COMPLETED"
                or any(s["status"] == "FAILED" for s in a.get("sources", []))
            )
        ]


def failure_of(record: st.ActivationRecord, read_set_id: str) -> str:
    """What the service said of a read set that its activation did not bring back."""
    source = next((s for s in record.get("sources", []) if s["readSetId"] == read_set_id), None)
    said = (source.get("statusMessage") if source else None) or record.get(
        "statusMessage", record["status"]
    )
    job = record.get("jobId")
    where = f"activation job {job}" if job else "activation by someone else"
    return f"{where}: {' '.join(str(said).split())}"


def _iso(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _as_datetime(epoch: float) -> Any:
    return datetime.fromtimestamp(epoch, UTC)
