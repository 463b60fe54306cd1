"""Where a run stands and what it plans (core/progress.py): its batches and activations, what
it follows of earlier runs, the batches of 100 and activations of 20 it adds, and a new run's
record. A retried step must plan nothing twice; an earlier run's work must count."""

from __future__ import annotations

import pytest

from cdk_omics_export.handler.core import progress
from cdk_omics_export.handler.core import records as st

from .core_builders import (
    CONSTRUCT_PATH,
    DESTINATION,
    EXPORT_ID,
    ROLE_ARN,
    STACK_ID,
    STORE,
    T0,
    activation,
    batch,
    exporting,
    job,
    outcomes,
    record,
    request,
    rs,
    rss,
    run,
    selection,
    snapshot,
    sources,
    unchanged,
)

# The record and its run


def test_a_missing_record_is_a_state_error() -> None:
    with pytest.raises(st.StateError, match="^the export's record is missing$"):
        progress.record_of(snapshot(None))
    with pytest.raises(st.StateError):
        progress.run_of(snapshot(None))
    kept = record()
    assert progress.record_of(snapshot(kept)) is kept
    assert progress.run_of(snapshot(kept)) is kept["run"]


@pytest.mark.parametrize(
    ("status", "flying"),
    [
        ("STARTING", True),
        ("SUBMITTED", True),
        ("IN_PROGRESS", True),
        ("CANCELLING", True),
        ("PENDING", False),
        ("WATCHING", False),
        ("SUPERSEDED", False),
        ("COMPLETED", False),
        ("COMPLETED_WITH_FAILURES", False),
        ("FAILED", False),
        ("CANCELLED", False),
    ],
)
def test_a_job_is_in_flight_from_its_claimed_start_to_its_end(status: str, flying: bool) -> None:
    assert progress.in_flight(batch(0, [rs(0)], status)) is flying
    assert progress.in_flight(activation(0, [rs(0)], status)) is flying


# Batches


def later_run() -> st.Snapshot:
    """Run 1 following run 0's running batch; its own batches include one that gave way."""
    return snapshot(
        record(run(number=1, followed=["batch#0000#0001", "batch#0000#0009"]), runs=2),
        [
            batch(0, [rs(0)], "COMPLETED", jobId=job(0)),
            batch(1, [rs(1)], "IN_PROGRESS", jobId=job(1)),
            batch(2, [rs(2)], st.PENDING),
            batch(1, [rs(3)], "STARTING", run=1),
            batch(0, [rs(4)], st.SUPERSEDED, run=1),
            batch(2, [rs(5)], "FAILED", run=1, jobId=job(2)),
        ],
    )


def test_a_run_watches_its_own_batches_and_the_earlier_ones_it_follows() -> None:
    later = later_run()
    with unchanged(later):
        own = progress.run_batches(later)
        watched = progress.watched(later)
    assert [b["key"] for b in own] == ["batch#0001#0001", "batch#0001#0002"]
    # A followed batch that is no longer stored is left out.
    assert [b["key"] for b in watched] == [
        "batch#0001#0001",
        "batch#0001#0002",
        "batch#0000#0001",
    ]


def test_running_jobs_count_across_runs() -> None:
    later = later_run()
    assert progress.running_batches(later) == 2
    assert progress.running_batches(snapshot(record())) == 0


def test_a_job_was_started_once_any_batch_or_activation_has_a_job_id() -> None:
    assert progress.any_job_started(later_run())
    assert not progress.any_job_started(exporting([batch(0, [rs(0)], "STARTING")]))
    activated = exporting([], [rs(0)], [activation(0, [rs(0)], "IN_PROGRESS", jobId=job(1))])
    assert progress.any_job_started(activated)


def test_batches_are_left_to_start_while_one_of_this_run_is_pending_or_starting() -> None:
    assert progress.batches_left_to_start(later_run())
    assert progress.batches_left_to_start(exporting([batch(0, [rs(0)], st.PENDING)]))
    assert not progress.batches_left_to_start(exporting([batch(0, [rs(0)], "IN_PROGRESS")]))
    # An earlier run's pending batch is not this run's to start.
    earlier = snapshot(record(run(number=1)), [batch(0, [rs(0)], st.PENDING)])
    assert not progress.batches_left_to_start(earlier)


def test_the_runner_is_done_once_the_run_ended_and_no_export_job_runs() -> None:
    running = [batch(0, [rs(0)], "IN_PROGRESS", run=0)]
    ended = run(number=1, phase="ENDED")
    assert not progress.runner_done(snapshot(record(ended), running))
    assert progress.runner_done(snapshot(record(ended), [batch(0, [rs(0)], "FAILED")]))
    assert not progress.runner_done(snapshot(record(run(number=1)), []))
    # An activation still running does not keep an ended run's runner.
    activating = [activation(0, [rs(0)], "IN_PROGRESS")]
    assert progress.runner_done(snapshot(record(ended), activations=activating))


# The selection and the plan


def test_the_selected_ids_and_todo_are_this_runs() -> None:
    chosen = snapshot(
        record(run(number=1)),
        [batch(0, [rs(7)], run=1), batch(1, [rs(8)], run=1)],
        [selection(rss(3), run=1, todo=[rs(2)]), selection([rs(9)], run=0)],
    )
    assert progress.selected_ids(chosen) == rss(3)
    assert progress.todo(chosen) == [rs(2)]
    assert progress.selection_of(chosen) == selection(rss(3), run=1, todo=[rs(2)])
    # Planned before the plan recorded them: the batches hold them.
    older = snapshot(record(run(number=1)), chosen.ordered_batches(), [selection(rss(3), run=1)])
    assert progress.todo(older) == [rs(7), rs(8)]
    nothing = snapshot(record(run(number=1)), [], [selection([rs(9)], run=0)])
    assert progress.selection_of(nothing) is None
    assert progress.selected_ids(nothing) == []
    assert progress.todo(nothing) == []


def test_a_run_activates_only_when_it_says_activate() -> None:
    assert progress.activates(run(archivedReadSets="ACTIVATE"))
    assert not progress.activates(run(archivedReadSets="FAIL"))
    old = run()
    del old["archivedReadSets"]
    assert not progress.activates(old)


def test_the_plan_exports_what_is_neither_exported_nor_in_flight_and_follows_the_rest() -> None:
    earlier = snapshot(
        record(run(number=2)),
        [
            batch(
                0,
                rss(3),
                "COMPLETED_WITH_FAILURES",
                jobId=job(0),
                readSets=outcomes({rs(0): "FINISHED", rs(1): "FAILED", rs(2): "FINISHED"}),
            ),
            batch(0, [rs(3), rs(4)], "IN_PROGRESS", run=1, jobId=job(1)),
            batch(1, [rs(5)], "STARTING", run=1),
            batch(2, [rs(6)], st.PENDING, run=1),
        ],
    )
    selected = [rs(6), rs(4), rs(0), rs(1), rs(5), rs(3), rs(9)]
    with unchanged(earlier, selected):
        to_do, followed = progress.plan(earlier, selected)
    assert to_do == [rs(6), rs(1), rs(9)]
    assert followed == ["batch#0001#0000", "batch#0001#0001"]


def test_new_batches_hold_100_read_sets_each_numbered_after_the_runs_own() -> None:
    planned = snapshot(
        record(run(number=1)),
        [
            batch(0, [rs(900)], "COMPLETED", jobId=job(0)),
            batch(4, [rs(901)], "FAILED", jobId=job(4)),
            batch(3, [rs(902)], st.SUPERSEDED, run=1),
        ],
    )
    ready = rss(250)
    with unchanged(planned, ready):
        new = progress.new_batches(planned, ready)
    assert [(b["key"], b["number"], len(b["readSetIds"])) for b in new] == [
        ("batch#0001#0004", 4, 100),
        ("batch#0001#0005", 5, 100),
        ("batch#0001#0006", 6, 50),
    ]
    assert [r for b in new for r in b["readSetIds"]] == ready
    assert new[2] == {
        "key": "batch#0001#0006",
        "run": 1,
        "number": 6,
        "readSetIds": rss(50, 200),
        "status": "PENDING",
        "version": 0,
    }


def test_new_batches_leave_out_what_this_run_holds_or_another_exported_or_carries() -> None:
    held = snapshot(
        record(run(number=1)),
        [
            batch(0, [rs(0)], "COMPLETED", jobId=job(0)),
            batch(1, [rs(1)], "IN_PROGRESS", jobId=job(1)),
            batch(2, [rs(2)], "FAILED", jobId=job(2)),
            batch(3, [rs(3)], st.PENDING),
            batch(0, [rs(4)], st.PENDING, run=1),
            batch(1, [rs(5)], "FAILED", run=1, jobId=job(3)),
        ],
    )
    new = progress.new_batches(held, rss(7))
    # A retried step finds this run's batches (rs(4), rs(5)) and plans them no second time.
    assert [b["readSetIds"] for b in new] == [[rs(2), rs(3), rs(6)]]
    assert new[0]["number"] == 2
    assert progress.new_batches(held, []) == []
    first = progress.new_batches(snapshot(record()), [rs(0)])
    assert [(b["key"], b["number"]) for b in first] == [("batch#0000#0000", 0)]


def test_the_first_run_of_an_export_is_registered_submitted() -> None:
    asked = request(
        timeout_seconds=1200, wait=False, allow_partial_failure=True, archived_read_sets="FAIL"
    )
    fresh = progress.new_run(None, asked, "request-9", "Create", T0 + 50)
    assert fresh == {
        "schema": 1,
        "exportId": EXPORT_ID,
        "stackId": STACK_ID,
        "constructPath": CONSTRUCT_PATH,
        "destination": DESTINATION,
        "generation": 0,
        "sequenceStoreId": STORE,
        "roleArn": ROLE_ARN,
        "encryption": {"mode": "AES256"},
        "status": "SUBMITTED",
        "cancelled": False,
        "createdAt": T0 + 50,
        "updatedAt": T0 + 50,
        "runs": 1,
        "run": {
            "number": 0,
            "requestId": "request-9",
            "requestType": "Create",
            "startedAt": T0 + 50,
            "deadline": T0 + 1250,
            "wait": False,
            "allowPartialFailure": True,
            "archivedReadSets": "FAIL",
            "selection": {"readSetIds": rss(2), "allowEmpty": False},
            "phase": "SELECTING",
            "preflight": {"checked": 0, "problems": [], "problemCount": 0, "archived": False},
            "planned": False,
            "batches": 0,
            "followed": [],
            "jobIds": [],
        },
        "version": 0,
    }


def test_a_later_run_keeps_the_exports_creation_version_and_digests_only() -> None:
    before = record(
        run(number=2, phase="ENDED", answered=True, jobIds=[job(1)]),
        status="CANCELLED",
        statusReason="Export was cancelled",
        cancelled=True,
        createdAt=T0 - 7200,
        runs=3,
        version=11,
        runner={"name": f"{EXPORT_ID}-2-0", "segment": 0, "startedAt": T0},
        manifestDigest="0123456789abcdef",
        eventDigest="fedcba9876543210",
    )
    with unchanged(before):
        fresh = progress.new_run(before, request(), "request-3", "Update", T0 + 10)
    assert fresh["run"]["number"] == 3
    assert fresh["runs"] == 4
    assert (fresh["createdAt"], fresh["updatedAt"], fresh["version"]) == (T0 - 7200, T0 + 10, 11)
    assert (fresh["status"], fresh["cancelled"]) == ("SUBMITTED", False)
    assert fresh["run"]["requestType"] == "Update"
    assert fresh["run"]["deadline"] == T0 + 10 + 3000
    assert fresh["run"]["archivedReadSets"] == "ACTIVATE"
    assert (fresh["manifestDigest"], fresh["eventDigest"]) == (
        "0123456789abcdef",
        "fedcba9876543210",
    )
    assert "statusReason" not in fresh and "runner" not in fresh
    assert "answered" not in fresh["run"]
    without = progress.new_run(record(), request(), "request-1", "Update", T0)
    assert "manifestDigest" not in without and "eventDigest" not in without


def test_a_new_run_supersedes_what_was_planned_or_watched_and_never_started() -> None:
    stored = snapshot(
        record(run(number=1)),
        [
            batch(1, [rs(1)], st.PENDING, run=1),
            batch(0, [rs(0)], st.PENDING),
            batch(2, [rs(2)], "STARTING"),
            batch(3, [rs(3)], "IN_PROGRESS", jobId=job(3)),
        ],
        activations=[
            activation(2, [rs(6)], "IN_PROGRESS", jobId=job(6)),
            activation(1, [rs(5)], st.WATCHING),
            activation(0, [rs(4)], st.PENDING),
            activation(3, [rs(7)], "STARTING"),
        ],
    )
    with unchanged(stored):
        batches, activations = progress.given_way(stored)
    assert [b["key"] for b in batches] == ["batch#0000#0000", "batch#0001#0001"]
    assert [a["key"] for a in activations] == ["activation#0000#0000", "activation#0000#0001"]


# Activations


def activating_run() -> st.Snapshot:
    """Run 1 exporting seven read sets: a activated by this run, b and e archived (e's
    activation by run 0 failed), c activating by someone else, d activated by run 0 still,
    f active, g failed to activate in this run."""
    a, b, c, d, e, f, g = rss(7)
    return snapshot(
        record(run(number=1)),
        [],
        [selection(rss(7), run=1, todo=rss(7), archived=[b, e], activating=[c])],
        [
            activation(0, [d], "IN_PROGRESS", jobId=job(0)),
            activation(1, [e], "FAILED", jobId=job(1)),
            activation(0, [a], "COMPLETED", run=1, jobId=job(2), sources=sources({a: "FINISHED"})),
            activation(1, [g], "FAILED", run=1, jobId=job(3), statusMessage="Internal error"),
        ],
    )


def test_each_read_set_to_export_is_active_activating_archived_watched_or_failed() -> None:
    a, b, c, d, e, f, g = rss(7)
    stored = activating_run()
    with unchanged(stored):
        found = progress.effective(stored)
    assert {r: (state, held and held["key"]) for r, (state, held) in found.items()} == {
        a: ("ACTIVE", "activation#0001#0000"),
        b: ("ARCHIVED", None),
        c: ("WATCH", None),
        d: ("ACTIVATING", "activation#0000#0000"),
        # Run 0's activation ended: run 1's pre-flight found it archived.
        e: ("ARCHIVED", None),
        f: ("ACTIVE", None),
        g: ("FAILED", "activation#0001#0001"),
    }
    assert list(found) == rss(7)
    assert progress.awaited(stored) == 4
    assert progress.ready(stored) == [a, f]


def test_nothing_is_effective_before_the_plan_records_what_to_export() -> None:
    unplanned = snapshot(record(), [], [selection(rss(2))])
    assert progress.effective(unplanned) == {}
    assert progress.effective(snapshot(record())) == {}
    plain = snapshot(record(), [], [selection(rss(2), todo=rss(2))])
    assert progress.effective(plain) == {rs(0): ("ACTIVE", None), rs(1): ("ACTIVE", None)}
    assert progress.awaited(plain) == 0


def test_activations_left_running_and_failed_are_counted_for_this_run() -> None:
    stored = snapshot(
        record(run(number=1)),
        activations=[
            activation(0, [rs(0)], "IN_PROGRESS", jobId=job(0)),
            activation(1, [rs(1)], "FAILED", jobId=job(1)),
            activation(0, [rs(2)], "COMPLETED", run=1, sources=sources({rs(2): "FINISHED"})),
            activation(1, [rs(3)], "COMPLETED", run=1, sources=sources({rs(3): "FAILED"})),
            activation(2, [rs(4)], "COMPLETED_WITH_FAILURES", run=1),
            activation(3, [rs(5)], "CANCELLED", run=1),
            activation(4, [rs(6)], "IN_PROGRESS", run=1, sources=sources({rs(6): "FAILED"})),
            activation(5, [rs(7)], "FAILED", run=1),
            activation(6, [rs(8)], st.WATCHING, run=1),
        ],
    )
    with unchanged(stored):
        assert [a["key"] for a in progress.activation_records(stored)] == [
            f"activation#0001#000{n}" for n in range(7)
        ]
        assert [a["key"] for a in progress.failed_activations(stored)] == [
            "activation#0001#0001",
            "activation#0001#0002",
            "activation#0001#0003",
            "activation#0001#0005",
        ]
        assert progress.running_activations(stored) == 2
        assert not progress.activations_left_to_start(stored)
    for status in (st.PENDING, st.STARTING):
        left = snapshot(record(run(number=1)), activations=[activation(0, [rs(0)], status, run=1)])
        assert progress.activations_left_to_start(left)
    earlier = snapshot(record(run(number=1)), activations=[activation(0, [rs(0)], st.PENDING)])
    assert not progress.activations_left_to_start(earlier)


def test_archived_read_sets_are_activated_20_a_job_and_others_activations_watched() -> None:
    archived = rss(45)
    watching = rss(3, 100)
    x, y, z = rss(3, 200)
    todo = [*archived, *watching, x, y, z, rs(300)]
    stored = snapshot(
        record(run(number=1)),
        [],
        [selection(todo, run=1, todo=todo, archived=archived, activating=[*watching, x, y, z])],
        [
            # Someone else's activation left x archived while y still activates: x is
            # activated by us now, once.
            activation(
                0, [x, y], st.WATCHING, run=1, sources=sources({x: "ARCHIVED", y: "IN_PROGRESS"})
            ),
            # Their activation of z ended with z archived: activated by us too.
            activation(1, [z], "COMPLETED", run=1, sources=sources({z: "ARCHIVED"})),
            activation(7, [rs(400)], st.SUPERSEDED, run=1),
        ],
    )
    with unchanged(stored):
        planned, activated, watched = progress.new_activations(stored)
    assert (activated, watched) == (47, 3)
    assert [(a["key"], a["status"], len(a["readSetIds"])) for a in planned] == [
        ("activation#0001#0008", "PENDING", 20),
        ("activation#0001#0009", "PENDING", 20),
        ("activation#0001#0010", "PENDING", 7),
        ("activation#0001#0011", "WATCHING", 3),
    ]
    held = [r for a in planned for r in a["readSetIds"]]
    assert sorted(held) == sorted([*archived, x, z, *watching])
    assert planned[2] == {
        "key": "activation#0001#0010",
        "run": 1,
        "number": 10,
        "readSetIds": [*rss(5, 40), x, z],
        "status": "PENDING",
        "version": 0,
    }
    assert planned[3] == {
        "key": "activation#0001#0011",
        "run": 1,
        "number": 11,
        "readSetIds": watching,
        "status": "WATCHING",
        "version": 0,
        "sources": [{"readSetId": r, "status": "IN_PROGRESS"} for r in watching],
    }
    # A retried step finds them planned and plans nothing twice.
    again = snapshot(
        stored.record,
        [],
        list(stored.selections.values()),
        [*stored.activations.values(), *planned],
    )
    assert progress.new_activations(again) == ([], 0, 0)


def test_a_first_activation_is_number_0_and_a_cancelled_export_plans_none() -> None:
    todo = [rs(0)]
    stored = snapshot(record(), [], [selection(todo, todo=todo, archived=todo)])
    planned, activated, watched = progress.new_activations(stored)
    assert [(a["key"], a["number"]) for a in planned] == [("activation#0000#0000", 0)]
    assert (activated, watched) == (1, 0)
    cancelled = snapshot(record(cancelled=True), [], [selection(todo, todo=todo, archived=todo)])
    assert progress.new_activations(cancelled) == ([], 0, 0)
    assert progress.new_activations(snapshot(record(), [], [selection(todo, todo=todo)])) == (
        [],
        0,
        0,
    )
