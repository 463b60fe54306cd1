"""The export's records (core/records.py): the stored encodings and keys that deployed state
tables already hold, and what a snapshot says of each read set and activation."""

from __future__ import annotations

import base64
import zlib

import pytest

from cdk_omics_export.handler.core import records as st

from .core_builders import (
    activation,
    batch,
    facts,
    outcomes,
    record,
    rs,
    rss,
    snapshot,
    sources,
    unchanged,
)

# Encodings and keys: items written by earlier versions must read the same.


def test_ids_pack_as_compressed_base64_lines_and_back() -> None:
    packed = st.pack_ids(rss(2))
    assert packed == "eNozNIABLkMYyxAAKeMDzg=="
    assert zlib.decompress(base64.b64decode(packed)) == b"1000000000\n1000000001"
    assert st.unpack_ids(packed) == rss(2)
    assert st.unpack_ids(st.pack_ids(rss(250))) == rss(250)


def test_no_ids_pack_and_unpack_as_an_empty_list() -> None:
    assert st.pack_ids([]) == "eNoDAAAAAAE="
    assert st.unpack_ids(st.pack_ids([])) == []
    assert st.unpack_ids(st.pack_ids([rs(0)])) == [rs(0)]


def test_json_packs_as_compressed_base64_and_back() -> None:
    value = {rs(0): {"fileType": "BAM"}}
    packed = st.pack_json(value)
    assert packed == "eNqrVjI0gAElK4VqpbTMnNSQyoJUIEfJydFXqbYWAJwnCWQ="
    assert st.unpack_json(packed) == value


def test_item_keys_sort_by_run_then_number() -> None:
    assert st.request_key("7f3c") == "request#7f3c"
    assert st.batch_key(3, 12) == "batch#0003#0012"
    assert st.selection_key(3) == "run#0003#selection"
    assert st.activation_key(3, 12) == "activation#0003#0012"
    assert st.facts_key(3, 12) == "facts#0003#0012"
    assert sorted([st.batch_key(0, 10), st.batch_key(0, 9), st.batch_key(1, 0)]) == [
        "batch#0000#0009",
        "batch#0000#0010",
        "batch#0001#0000",
    ]


def test_statuses_are_the_words_the_manifest_and_events_carry() -> None:
    assert (st.SUBMITTED, st.ACTIVATING, st.RUNNING) == ("SUBMITTED", "ACTIVATING", "RUNNING")
    assert st.FINAL_STATUSES == {"COMPLETED", "COMPLETED_WITH_FAILURES", "FAILED", "CANCELLED"}
    assert st.RUNNING_JOB_STATUSES == {"SUBMITTED", "IN_PROGRESS", "CANCELLING"}
    assert st.TERMINAL_JOB_STATUSES == st.FINAL_STATUSES


# A read set's state in one batch


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("PENDING", "PENDING"),
        ("STARTING", "IN_FLIGHT"),
        ("SUBMITTED", "IN_FLIGHT"),
        ("IN_PROGRESS", "IN_FLIGHT"),
        ("CANCELLING", "IN_FLIGHT"),
        ("COMPLETED", "EXPORTED"),
        ("COMPLETED_WITH_FAILURES", "FAILED"),
        ("FAILED", "FAILED"),
        ("CANCELLED", "FAILED"),
        ("SUPERSEDED", "FAILED"),
    ],
)
def test_a_read_set_without_an_outcome_takes_its_batchs_state(status: str, state: str) -> None:
    assert st.read_set_state(batch(0, [rs(0)], status), None) == state


@pytest.mark.parametrize(
    ("job_status", "read_set_status", "state"),
    [
        ("COMPLETED", "FINISHED", "EXPORTED"),
        ("COMPLETED", "FAILED", "FAILED"),
        ("COMPLETED_WITH_FAILURES", "FINISHED", "EXPORTED"),
        ("COMPLETED_WITH_FAILURES", "FAILED", "FAILED"),
        ("FAILED", "NOT_STARTED", "FAILED"),
        ("CANCELLED", "IN_PROGRESS", "FAILED"),
        # A running job's read sets are in flight, whatever its outcomes say so far.
        ("IN_PROGRESS", "FINISHED", "IN_FLIGHT"),
        ("PENDING", "FINISHED", "PENDING"),
    ],
)
def test_a_read_set_with_an_outcome_is_exported_only_when_finished(
    job_status: str, read_set_status: str, state: str
) -> None:
    outcome: st.ReadSetOutcome = {"id": rs(0), "status": read_set_status}
    assert st.read_set_state(batch(0, [rs(0)], job_status), outcome) == state


# A read set's activation in one record


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("PENDING", "ACTIVATING"),
        ("STARTING", "ACTIVATING"),
        ("WATCHING", "ACTIVATING"),
        ("SUBMITTED", "ACTIVATING"),
        ("IN_PROGRESS", "ACTIVATING"),
        ("CANCELLING", "ACTIVATING"),
        ("COMPLETED", "ACTIVE"),
        ("COMPLETED_WITH_FAILURES", "FAILED"),
        ("FAILED", "FAILED"),
        ("CANCELLED", "FAILED"),
    ],
)
def test_an_activation_without_a_source_takes_its_jobs_state(status: str, state: str) -> None:
    assert st.activation_state(activation(0, [rs(0)], status), None) == state


@pytest.mark.parametrize(
    ("source_status", "job_status", "state"),
    [
        ("FINISHED", "IN_PROGRESS", "ACTIVE"),
        ("FINISHED", "FAILED", "ACTIVE"),
        ("FAILED", "COMPLETED", "FAILED"),
        ("FAILED", "IN_PROGRESS", "FAILED"),
        ("ARCHIVED", "WATCHING", "ARCHIVED"),
        ("ARCHIVED", "COMPLETED", "ARCHIVED"),
        # Not said yet: the job's status decides.
        ("IN_PROGRESS", "WATCHING", "ACTIVATING"),
        ("NOT_STARTED", "IN_PROGRESS", "ACTIVATING"),
        ("IN_PROGRESS", "COMPLETED", "ACTIVE"),
        ("NOT_STARTED", "FAILED", "FAILED"),
    ],
)
def test_an_activations_source_says_first(source_status: str, job_status: str, state: str) -> None:
    source: st.ActivationSource = {"readSetId": rs(0), "status": source_status}
    assert st.activation_state(activation(0, [rs(0)], job_status), source) == state


# What a snapshot says


def test_a_snapshot_without_activations_or_facts_holds_empty_ones() -> None:
    bare = st.Snapshot(None, {}, {})
    assert (bare.activations, bare.facts) == ({}, {})
    assert bare.activation_states() == {}
    assert bare.run_facts(0) == {}
    given = snapshot(None, activations=[activation(0, [rs(0)])], facts_=[facts(0, {})])
    assert list(given.activations) == ["activation#0000#0000"]
    assert list(given.facts) == ["facts#0000#0000"]


def test_each_read_set_takes_its_latest_batch_that_did_not_give_way() -> None:
    old = batch(0, rss(3), "COMPLETED", readSets=outcomes({rs(0): "FINISHED", rs(1): "FAILED"}))
    retried = batch(0, [rs(1)], "IN_PROGRESS", run=1, jobId="5000000001")
    superseded = batch(0, [rs(2)], st.SUPERSEDED, run=2)
    pending = batch(1, [rs(3)], run=1)
    later = snapshot(record(), [superseded, pending, retried, old])
    with unchanged(later):
        states = later.read_set_states()
    assert {r: (state, b["key"]) for r, (state, b) in states.items()} == {
        rs(0): ("EXPORTED", "batch#0000#0000"),
        rs(1): ("IN_FLIGHT", "batch#0001#0000"),
        # rs(2)'s batch of run 2 gave way: its run 0 batch stands. The job's outcomes name
        # rs(0) and rs(1) only: rs(2) takes the job's COMPLETED.
        rs(2): ("EXPORTED", "batch#0000#0000"),
        rs(3): ("PENDING", "batch#0001#0001"),
    }
    assert [b["key"] for b in later.ordered_batches()] == [
        "batch#0000#0000",
        "batch#0001#0000",
        "batch#0001#0001",
        "batch#0002#0000",
    ]


def test_each_read_set_takes_its_latest_activation_that_did_not_give_way() -> None:
    done = activation(0, rss(3), "COMPLETED", sources=sources({rs(0): "FINISHED", rs(1): "FAILED"}))
    watched = activation(0, [rs(1)], st.WATCHING, run=1, sources=sources({rs(1): "ARCHIVED"}))
    superseded = activation(1, [rs(0)], st.SUPERSEDED, run=1)
    later = snapshot(record(), activations=[superseded, watched, done])
    with unchanged(later):
        states = later.activation_states()
    assert {r: (state, a["key"]) for r, (state, a) in states.items()} == {
        rs(0): ("ACTIVE", "activation#0000#0000"),
        rs(1): ("ARCHIVED", "activation#0001#0000"),
        rs(2): ("ACTIVE", "activation#0000#0000"),
    }
    assert [a["key"] for a in later.ordered_activations()] == [
        "activation#0000#0000",
        "activation#0001#0000",
        "activation#0001#0001",
    ]


def test_a_runs_facts_merge_its_pages_in_order_and_leave_other_runs_out() -> None:
    pages = [
        facts(1, {rs(1): {"fileType": "CRAM"}, rs(2): {"fileType": "BAM"}}, run=1),
        facts(0, {rs(1): {"fileType": "FASTQ"}, rs(3): {"fileType": "BAM"}}, run=1),
        facts(0, {rs(9): {"fileType": "UBAM"}}, run=0),
    ]
    known = snapshot(record(), facts_=pages)
    with unchanged(known):
        merged = known.run_facts(1)
    assert merged == {
        rs(1): {"fileType": "CRAM"},
        rs(2): {"fileType": "BAM"},
        rs(3): {"fileType": "BAM"},
    }
    assert list(merged) == [rs(1), rs(3), rs(2)]
    assert known.run_facts(0) == {rs(9): {"fileType": "UBAM"}}
    assert known.run_facts(2) == {}


def test_errors_say_what_the_state_answered() -> None:
    assert issubclass(st.Conflict, st.StateError)
    assert issubclass(st.Cancelled, st.StateError)
