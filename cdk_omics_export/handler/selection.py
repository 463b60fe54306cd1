"""Which read sets a run exports, and whether they can be: the selection (ids as given, a
list in S3, or ListReadSets with a filter, page by page across steps), the plan (what is
neither exported nor in flight), the pre-flight (each read set exists and is ACTIVE, or,
with activation, archived; what it learns of each read set's file type and ETag is kept for
the manifest), and the export batches of at most 100, planned as read sets become active."""

from __future__ import annotations

import logging
from typing import Any

try:  # imported as cdk_omics_export.handler.selection (tests, the construct)
    from . import activation, rules
    from . import state as st
    from .core import preflight, progress
    from .errors import ExportError, OutOfTime, ReadSetMissing
    from .step import Budget, Step
except ImportError:  # Lambda: the asset's root is on sys.path
    import activation  # type: ignore[import-not-found,no-redef]
    import rules  # type: ignore[import-not-found,no-redef]
    import state as st  # type: ignore[import-not-found,no-redef]
    from core import preflight, progress  # type: ignore[import-not-found,no-redef]
    from errors import (  # type: ignore[import-not-found,no-redef]
        ExportError,
        OutOfTime,
        ReadSetMissing,
    )
    from step import Budget, Step  # type: ignore[import-not-found,no-redef]

LOG = logging.getLogger("cdk_omics_export.handler.export")


class Selection:
    """The selection, plan and pre-flight of one export's current run."""

    def __init__(self, step: Step) -> None:
        self.step = step
        # Facts the pre-flight learned in this invocation, saved with its progress.
        self._facts: dict[str, st.ReadSetFacts] = {}
        self._classification: tuple[set[str], set[str]] | None = None
        self._classification_changed = False

    def activates(self) -> bool:
        return progress.activates(self.step.run)

    def selection(self) -> st.SelectionRecord | None:
        return progress.selection_of(self.step.snapshot)

    def select(self, budget: Budget) -> None:
        run = self.step.run
        selection = self.selection()
        try:
            if selection is None or not selection["complete"]:
                selection = self._read_selection(selection, budget)
                if not selection["complete"]:
                    return
            if not run["planned"]:
                self._plan(selection)
            if run["phase"] == "SELECTING":
                self._preflight(selection, budget)
        finally:
            self._save_facts()

    def _read_selection(
        self, selection: st.SelectionRecord | None, budget: Budget
    ) -> st.SelectionRecord:
        spec = self.step.run["selection"]
        record = selection or {
            "run": self.step.run["number"],
            "count": 0,
            "ids": st.pack_ids([]),
            "complete": False,
            "version": 0,
        }
        if "filter" not in spec:
            ids = list(spec.get("readSetIds", []))
            if "readSetList" in spec:
                ids = self.step.load_list(spec["readSetList"])
                problems = rules.check_read_set_ids(ids)
                if problems:
                    raise ExportError("; ".join(problems))
            record["ids"], record["count"], record["complete"] = st.pack_ids(ids), len(ids), True
        else:
            self._scan_filter(record, spec["filter"], budget)
        self.step.store.save_selection(self.step.export_id, record)
        self.step.snapshot.selections[record["run"]] = record
        return record

    def _scan_filter(
        self, record: st.SelectionRecord, read_set_filter: dict[str, str], budget: Budget
    ) -> None:
        """Resolve a filter through ListReadSets, page by page across invocations."""
        ids = st.unpack_ids(record["ids"])
        try:
            while True:
                self.step.ensure_time(budget)
                request: dict[str, Any] = {
                    "sequenceStoreId": self.step.request.sequence_store_id,
                    "maxResults": 100,
                    "filter": preflight.filter_asked(read_set_filter, self.activates()),
                }
                if record.get("cursor"):
                    request["nextToken"] = record["cursor"]
                page = self.step.call("ListReadSets", self.step.omics.list_read_sets, **request)
                for item in page.get("readSets", []):
                    if not preflight.selects(read_set_filter, item["status"]):
                        continue
                    ids.append(item["id"])
                    self._check_status(item["id"], item["status"], record)
                    self._learn(item)
                if len(ids) > rules.MAX_READ_SETS:
                    raise ExportError(preflight.too_many(read_set_filter, self.store))
                cursor = page.get("nextToken")
                if cursor:
                    record["cursor"] = cursor
                else:
                    record.pop("cursor", None)
                    record["complete"] = True
                    break
        finally:
            record["ids"], record["count"] = st.pack_ids(ids), len(ids)
        self.step.run["preflight"]["checked"] = len(ids)
        if not ids and not self.step.run["selection"]["allowEmpty"]:
            raise ExportError(preflight.none_selected(read_set_filter, self.store))

    def _plan(self, selection: st.SelectionRecord) -> None:
        """The read sets this run exports: those selected that are neither exported nor in
        flight (an earlier run's batch in flight is followed instead)."""
        run = self.step.run
        selected = st.unpack_ids(selection["ids"])
        todo, followed = progress.plan(self.step.snapshot, selected)
        selection["todo"] = st.pack_ids(todo)
        self.step.store.save_selection(self.step.export_id, selection)
        run["followed"] = followed
        run["planned"] = True
        LOG.info(
            "selected %d read set(s): %d to export, %d already exported or in flight",
            len(selected),
            len(todo),
            len(selected) - len(todo),
        )
        self.step.save_record()

    def plan_batches(self, ready: list[str]) -> None:
        """Batches of at most 100 for the read sets of ``ready`` that no batch of this run
        holds yet (``core/progress.py``), saved before any of them starts."""
        batches = progress.new_batches(self.step.snapshot, ready)
        if not batches:
            return
        self.step.add_batches(batches)
        self.step.run["batches"] = len(progress.run_batches(self.step.snapshot))
        LOG.info(
            "%d read set(s) to export in %d new batch(es)",
            sum(len(b["readSetIds"]) for b in batches),
            len(batches),
        )

    def todo(self) -> list[str]:
        """The read sets this run exports, as its plan recorded them."""
        return progress.todo(self.step.snapshot)

    def _preflight(self, selection: st.SelectionRecord, budget: Budget) -> None:
        """Every read set to export must exist and be ACTIVE (or, with activation, archived)
        before any job starts."""
        todo = self.todo()
        if "filter" in self.step.run["selection"]:
            pass  # ListReadSets reported each selected read set's status already
        elif len(todo) <= rules.MAX_READ_SETS_PER_JOB:
            self._check_each(todo, selection, budget)
        else:
            self._scan_store(todo, selection, budget)
        checked = self.step.run["preflight"]
        refusal = preflight.refused(checked, len(todo), self.store)
        if refusal is not None:
            raise ExportError(refusal)
        # Saved before anything is planned from it: a retried step plans the same.
        self._pack_classified(selection)
        self.step.store.save_selection(self.step.export_id, selection)
        archived, activating = self._classified(selection)
        todo_set = set(todo)
        archived &= todo_set
        activating &= todo_set
        checked["archivedCount"] = len(archived) + len(activating)
        if checked["archivedCount"]:
            LOG.warning("%s", self.activation_notice())
            activation.Activations(self.step).plan()
        self.plan_batches(progress.ready(self.step.snapshot) if self.activates() else todo)
        self.step.run["phase"] = "EXPORTING"
        self.step.set_status(st.ACTIVATING if checked["archivedCount"] else st.RUNNING)
        self.step.save_record()

    def activation_notice(self) -> str:
        """What the pre-flight tells of archived read sets, in the log and the reasons."""
        return preflight.activation_notice(
            self.step.run["preflight"].get("archivedCount", 0),
            len(self.todo()),
            self.store,
            self.step.run["wait"],
        )

    def _check_each(self, todo: list[str], selection: st.SelectionRecord, budget: Budget) -> None:
        while (checked := self.step.run["preflight"]["checked"]) < len(todo):
            self.step.ensure_time(budget)
            read_set_id = todo[checked]
            try:
                metadata = self.step.call(
                    "GetReadSetMetadata",
                    self.step.omics.get_read_set_metadata,
                    sequenceStoreId=self.step.request.sequence_store_id,
                    id=read_set_id,
                    read_set_ids=[read_set_id],
                    missing_ok=True,
                )
                self._check_status(read_set_id, metadata["status"], selection)
                self._learn(metadata)
            except ReadSetMissing:
                self._problem(f"{read_set_id} (not found)", "")
            self.step.run["preflight"]["checked"] += 1

    def _scan_store(self, todo: list[str], selection: st.SelectionRecord, budget: Budget) -> None:
        """Pre-flight for many read sets: one ListReadSets scan of the store, not a call each."""
        wanted = set(todo)
        found = set(st.unpack_ids(selection.get("found", st.pack_ids([]))))
        try:
            while len(found) < len(wanted):
                self.step.ensure_time(budget)
                request: dict[str, Any] = {
                    "sequenceStoreId": self.step.request.sequence_store_id,
                    "maxResults": 100,
                }
                if selection.get("cursor"):
                    request["nextToken"] = selection["cursor"]
                page = self.step.call("ListReadSets", self.step.omics.list_read_sets, **request)
                for item in page.get("readSets", []):
                    if item["id"] in wanted and item["id"] not in found:
                        found.add(item["id"])
                        self._check_status(item["id"], item["status"], selection)
                        self._learn(item)
                cursor = page.get("nextToken")
                if not cursor:
                    selection.pop("cursor", None)
                    break
                selection["cursor"] = cursor
            else:
                selection.pop("cursor", None)
        except OutOfTime:
            selection["found"] = st.pack_ids(sorted(found))
            self._pack_classified(selection)
            self.step.store.save_selection(self.step.export_id, selection)
            raise
        for read_set_id in todo:
            if read_set_id not in found:
                self._problem(f"{read_set_id} (not found)", "")
        selection["found"] = st.pack_ids([])
        self._pack_classified(selection)
        self.step.store.save_selection(self.step.export_id, selection)

    def _check_status(self, read_set_id: str, status: str, selection: st.SelectionRecord) -> None:
        standing = preflight.standing(status, self.activates())
        if standing == "EXPORTABLE":
            return
        if standing == "PROBLEM":
            self._problem(f"{read_set_id} ({status})", status)
            return
        archived, activating = self._classified(selection)
        (archived if standing == "ARCHIVED" else activating).add(read_set_id)
        self._classification_changed = True

    def _classified(self, selection: st.SelectionRecord) -> tuple[set[str], set[str]]:
        """The read sets the pre-flight found ARCHIVED and ACTIVATING (kept in memory while it
        runs, packed into the selection when it is saved)."""
        if self._classification is None:
            empty = st.pack_ids([])
            self._classification = (
                set(st.unpack_ids(selection.get("archived", empty))),
                set(st.unpack_ids(selection.get("activating", empty))),
            )
        return self._classification

    def _pack_classified(self, selection: st.SelectionRecord) -> None:
        if self._classification is not None:
            selection["archived"] = st.pack_ids(sorted(self._classification[0]))
            selection["activating"] = st.pack_ids(sorted(self._classification[1]))
            self._classification_changed = False

    def _learn(self, item: dict[str, Any]) -> None:
        self._facts[str(item["id"])] = preflight.facts_of(item)

    def _save_facts(self) -> None:
        """Save what the pre-flight learned since the last save, and its classification."""
        selection = self.selection()
        if selection is not None and self._classification_changed:
            self._pack_classified(selection)
            self.step.store.save_selection(self.step.export_id, selection)
        if not self._facts:
            return
        run = self.step.run["number"]
        numbers = [f["key"] for f in self.step.snapshot.facts.values() if f["run"] == run]
        for number in range(len(numbers), len(numbers) + 5):
            record: st.FactsRecord = {
                "key": st.facts_key(run, number),
                "run": run,
                "facts": st.pack_json(self._facts),
                "version": 0,
            }
            try:
                self.step.store.save_facts(self.step.export_id, record)
            except st.Conflict:
                continue  # saved by a step this one did not see: the next number
            self.step.snapshot.facts[record["key"]] = record
            break
        self._facts = {}

    def _problem(self, text: str, status: str) -> None:
        run = self.step.run
        run["preflight"] = preflight.with_problem(run["preflight"], text, status)

    @property
    def store(self) -> str:
        return self.step.request.sequence_store_id
