"""What a runner step does next (core/decide.py): the order of its work, what a listing or a
Get means for a job's record, when a start may go and what a refusal means, when and how the
run ends and what CloudFormation is told, how long the runner waits, and how a record someone
else saved meanwhile is merged."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from cdk_omics_export.handler.core import decide
from cdk_omics_export.handler.core import records as st
from cdk_omics_export.handler.core.model import IAM_PROPAGATION_SECONDS, QUOTA_RETRY_SECONDS

from .core_builders import (
    DESTINATION,
    EXPORT_ID,
    MANIFEST_URI,
    STORE,
    T0,
    activation,
    batch,
    exporting,
    job,
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

J0, J1, J2 = job(0), job(1), job(2)

# The step's work


def works(stored: st.Snapshot) -> list[decide.Work]:
    """The step's work in the order next_work hands it out."""
    done: set[decide.Work] = set()
    order: list[decide.Work] = []
    with unchanged(stored):
        while (work := decide.next_work(stored, frozenset(done))) is not None:
            assert work not in done
            order.append(work)
            done.add(work)
    return order


@pytest.mark.parametrize(
    ("phase", "archived", "cancelled", "order"),
    [
        ("SELECTING", "ACTIVATE", False, ["SELECT", "FOLLOW_EXPORTS"]),
        ("SELECTING", "ACTIVATE", True, ["FOLLOW_EXPORTS"]),
        (
            "EXPORTING",
            "ACTIVATE",
            False,
            [
                "FOLLOW_EXPORTS",
                "FOLLOW_ACTIVATIONS",
                "PLAN_ACTIVATIONS",
                "PLAN_BATCHES",
                "START_ACTIVATIONS",
                "START_EXPORTS",
            ],
        ),
        ("EXPORTING", "ACTIVATE", True, ["FOLLOW_EXPORTS", "FOLLOW_ACTIVATIONS"]),
        ("EXPORTING", "FAIL", False, ["FOLLOW_EXPORTS", "START_EXPORTS"]),
        ("EXPORTING", "FAIL", True, ["FOLLOW_EXPORTS"]),
        ("ENDED", "ACTIVATE", False, ["FOLLOW_EXPORTS"]),
        ("ENDED", "ACTIVATE", True, ["FOLLOW_EXPORTS"]),
    ],
)
def test_the_steps_work_comes_in_order_and_a_cancelled_export_only_follows(
    phase: str, archived: str, cancelled: bool, order: list[str]
) -> None:
    stored = snapshot(record(run(phase=phase, archivedReadSets=archived), cancelled=cancelled))
    assert works(stored) == order


def test_work_already_done_is_skipped_whatever_else_was_done() -> None:
    stored = snapshot(record())
    assert decide.next_work(stored, frozenset({"FOLLOW_ACTIVATIONS"})) == "FOLLOW_EXPORTS"
    assert decide.next_work(stored, frozenset({"FOLLOW_EXPORTS", "PLAN_BATCHES"})) == (
        "FOLLOW_ACTIVATIONS"
    )
    everything = frozenset(works(stored)) - {"START_EXPORTS"}
    assert decide.next_work(stored, everything) == "START_EXPORTS"


# Observing jobs


RUNNING = ["SUBMITTED", "IN_PROGRESS", "CANCELLING"]
ENDED = ["COMPLETED", "COMPLETED_WITH_FAILURES", "FAILED", "CANCELLED"]


@pytest.mark.parametrize(
    ("recorded", "listed", "then"),
    [
        ("SUBMITTED", "SUBMITTED", None),
        ("SUBMITTED", "IN_PROGRESS", "IN_PROGRESS"),
        ("SUBMITTED", "CANCELLING", "CANCELLING"),
        ("IN_PROGRESS", "SUBMITTED", None),
        ("IN_PROGRESS", "IN_PROGRESS", None),
        ("IN_PROGRESS", "CANCELLING", "CANCELLING"),
        ("CANCELLING", "SUBMITTED", None),
        ("CANCELLING", "IN_PROGRESS", None),
        ("CANCELLING", "CANCELLING", None),
        # A record not yet at a running status takes whichever the listing shows.
        ("STARTING", "SUBMITTED", "SUBMITTED"),
        ("STARTING", "IN_PROGRESS", "IN_PROGRESS"),
        ("STARTING", "CANCELLING", "CANCELLING"),
    ]
    + [(r, listed, "GET") for r in [*RUNNING, "STARTING"] for listed in [None, *ENDED]],
)
def test_a_listing_moves_a_running_job_forward_only_and_an_end_or_absence_asks_a_get(
    recorded: str, listed: str | None, then: str | None
) -> None:
    assert decide.seen_in_listing(recorded, listed) == then


def test_a_get_of_a_running_export_job_records_its_new_status_only() -> None:
    running = batch(0, rss(2), "SUBMITTED", jobId=J0, statusMessage="queued")
    with unchanged(running):
        assert decide.with_export_detail(running, {"status": "SUBMITTED"}) is None
        moved = decide.with_export_detail(
            running,
            {
                "status": "IN_PROGRESS",
                "statusMessage": "",
                "readSets": [{"id": rs(0), "status": "IN_PROGRESS"}],
                "completionTime": T0,
            },
        )
    assert moved == {**running, "status": "IN_PROGRESS"}
    said = decide.with_export_detail(running, {"status": "IN_PROGRESS", "statusMessage": "go"})
    assert said == {**running, "status": "IN_PROGRESS", "statusMessage": "go"}


@pytest.mark.parametrize(
    ("completion", "recorded"),
    [
        (datetime(2027, 1, 15, 9, 0, tzinfo=UTC), "2027-01-15T09:00:00+00:00"),
        (T0 + 3600, "2027-01-15T09:00:00Z"),
        ("2027-01-15T09:00:00Z", "2027-01-15T09:00:00Z"),
    ],
)
def test_a_get_of_an_ended_export_job_records_each_read_sets_outcome(
    completion: object, recorded: str
) -> None:
    running = batch(0, rss(2), "IN_PROGRESS", jobId=J0)
    detail: dict[str, Any] = {
        "status": "COMPLETED_WITH_FAILURES",
        "statusMessage": "1 read set failed",
        "completionTime": completion,
        "readSets": [
            {"id": rs(0), "status": "FINISHED", "etag": "x"},
            {"id": rs(1), "status": "FAILED", "statusMessage": "Bad file", "extra": 1},
        ],
    }
    with unchanged(running, detail):
        ended = decide.with_export_detail(running, detail)
    assert ended == {
        **running,
        "status": "COMPLETED_WITH_FAILURES",
        "statusMessage": "1 read set failed",
        "completionTime": recorded,
        "readSets": [
            {"id": rs(0), "status": "FINISHED"},
            {"id": rs(1), "status": "FAILED", "statusMessage": "Bad file"},
        ],
    }


def test_an_ended_export_job_without_details_records_its_status() -> None:
    running = batch(0, rss(2), "IN_PROGRESS", jobId=J0)
    assert decide.with_export_detail(running, {"status": "FAILED"}) == {
        **running,
        "status": "FAILED",
        "readSets": [],
    }


def test_a_get_of_an_activation_job_records_its_status_and_sources() -> None:
    running = activation(
        0, rss(2), "IN_PROGRESS", jobId=J1, sources=sources({rs(0): "IN_PROGRESS"})
    )
    same = {"status": "IN_PROGRESS", "sources": [{"readSetId": rs(0), "status": "IN_PROGRESS"}]}
    assert decide.with_activation_detail(running, same) is None
    progressed = {
        "status": "IN_PROGRESS",
        "sources": [{"readSetId": rs(0), "status": "FINISHED", "other": "x"}],
    }
    with unchanged(running, progressed):
        moved = decide.with_activation_detail(running, progressed)
    assert moved == {**running, "sources": [{"readSetId": rs(0), "status": "FINISHED"}]}
    detail: dict[str, Any] = {
        "status": "COMPLETED_WITH_FAILURES",
        "statusMessage": "1 failed",
        "completionTime": datetime(2027, 1, 15, 9, 0, tzinfo=UTC),
        "sources": [
            {"readSetId": rs(0), "status": "FINISHED"},
            {"readSetId": rs(1), "status": "FAILED", "statusMessage": "Deleted"},
        ],
    }
    assert decide.with_activation_detail(running, detail) == {
        **running,
        "status": "COMPLETED_WITH_FAILURES",
        "statusMessage": "1 failed",
        "completionTime": "2027-01-15T09:00:00+00:00",
        "sources": detail["sources"],
    }
    quiet = decide.with_activation_detail(
        running, {"status": "COMPLETED", "statusMessage": "", "completionTime": "2027-01-15"}
    )
    assert quiet == {
        **running,
        "status": "COMPLETED",
        "sources": [],
        "completionTime": "2027-01-15",
    }


def test_a_watched_read_set_ends_active_archived_or_failed() -> None:
    a, b, c, d, e, f = rss(6)
    watched = activation(
        0,
        [a, b, c, d, e, f],
        st.WATCHING,
        sources=sources(
            {
                a: "IN_PROGRESS",
                b: "IN_PROGRESS",
                c: "IN_PROGRESS",
                d: "IN_PROGRESS",
                e: "IN_PROGRESS",
                f: "FINISHED",
            }
        ),
    )
    statuses = {a: "ACTIVE", b: "ARCHIVED", c: "DELETED", e: "ACTIVATING", f: "DELETED"}
    with unchanged(watched, statuses):
        seen = decide.with_watched_statuses(watched, statuses)
    assert seen == {
        **watched,
        "sources": [
            {"readSetId": a, "status": "FINISHED"},
            {"readSetId": b, "status": "ARCHIVED"},
            {
                "readSetId": c,
                "status": "FAILED",
                "statusMessage": "read set became DELETED while it was activated",
            },
            {"readSetId": d, "status": "IN_PROGRESS"},
            {"readSetId": e, "status": "IN_PROGRESS"},
            {"readSetId": f, "status": "FINISHED"},
        ],
    }
    assert decide.with_watched_statuses(watched, {d: "ACTIVATING"}) is None
    assert decide.with_watched_statuses(watched, {}) is None
    assert decide.with_watched_statuses(activation(1, [a], st.WATCHING), {a: "ACTIVE"}) is None


@pytest.mark.parametrize(
    ("last", "status"),
    [
        ("ACTIVE", "COMPLETED"),
        ("ARCHIVED", "COMPLETED"),
        ("UPLOAD_FAILED", "COMPLETED_WITH_FAILURES"),
    ],
)
def test_a_watched_activation_ends_when_no_read_set_is_still_activating(
    last: str, status: str
) -> None:
    watched = activation(
        0, rss(2), st.WATCHING, sources=sources({rs(0): "FINISHED", rs(1): "IN_PROGRESS"})
    )
    seen = decide.with_watched_statuses(watched, {rs(1): last})
    assert seen is not None
    assert seen["status"] == status


def test_a_lost_start_is_an_unknown_job_for_exactly_the_same_read_sets() -> None:
    wanted = rss(3)
    assert decide.is_lost_start(list(reversed(wanted)), wanted, J2, {J0, None})
    assert not decide.is_lost_start(wanted, wanted, J0, {J0, None})
    assert not decide.is_lost_start(wanted[:2], wanted, J2, set())
    assert not decide.is_lost_start([*wanted, rs(9)], wanted, J2, set())


# Starting


def test_a_quota_refusal_holds_off_until_a_job_ends_or_300_seconds_pass() -> None:
    assert QUOTA_RETRY_SECONDS == 300.0
    refused: st.QuotaWait = {"running": 4, "at": T0}
    assert decide.quota_still_full(refused, 4, T0)
    assert decide.quota_still_full(refused, 4, T0 + 299.9)
    assert not decide.quota_still_full(refused, 4, T0 + 300)
    assert decide.quota_still_full(refused, 5, T0 + 10)
    assert not decide.quota_still_full(refused, 3, T0 + 10)
    assert not decide.quota_still_full(None, 4, T0)


def test_an_access_denied_start_is_tried_again_on_the_next_poll_not_the_same_one() -> None:
    denied = run(accessDeniedSince=T0)
    assert decide.waiting_for_iam(denied, T0)
    assert decide.waiting_for_iam(denied, T0 + 0.9)
    assert not decide.waiting_for_iam(denied, T0 + 1.0)
    assert not decide.waiting_for_iam(run(), T0)


START = "StartReadSetExportJob"


@pytest.mark.parametrize(
    ("operation", "code", "missing_ok", "meaning"),
    [
        ("StartReadSetExportJob", "ServiceQuotaExceededException", False, "QUOTA"),
        ("StartReadSetActivationJob", "ServiceQuotaExceededException", False, "QUOTA"),
        ("GetReadSetMetadata", "ServiceQuotaExceededException", False, None),
        ("GetReadSetMetadata", "ResourceNotFoundException", True, "MISSING"),
        ("GetReadSetMetadata", "ResourceNotFoundException", False, None),
        ("StartReadSetExportJob", "AccessDeniedException", False, "NOT_YET_AUTHORIZED"),
        ("StartReadSetActivationJob", "AccessDeniedException", False, "NOT_YET_AUTHORIZED"),
        ("GetReadSetMetadata", "AccessDeniedException", True, None),
        ("StartReadSetExportJob", "ValidationException", True, None),
        ("StartReadSetExportJob", None, True, None),
    ],
)
def test_what_a_refused_call_means(
    operation: str, code: str | None, missing_ok: bool, meaning: str | None
) -> None:
    fresh = snapshot(record(createdAt=T0))
    with unchanged(fresh):
        assert decide.refusal(operation, code, fresh, T0 + 10, missing_ok=missing_ok) == meaning


def test_access_denied_is_iams_propagation_only_within_300_seconds_of_creation() -> None:
    assert IAM_PROPAGATION_SECONDS == 300.0
    code = "AccessDeniedException"

    def meaning(stored: st.Snapshot, now: float) -> str | None:
        return decide.refusal(START, code, stored, now, missing_ok=False)

    fresh = snapshot(record(createdAt=T0))
    assert meaning(fresh, T0 + 299.9) == "NOT_YET_AUTHORIZED"
    assert meaning(fresh, T0 + 300) is None
    # Denied since 300 s: IAM has caught up, the role really lacks the permission.
    denied = snapshot(record(run(accessDeniedSince=T0 + 100), createdAt=T0 + 150))
    assert meaning(denied, T0 + 399.9) == "NOT_YET_AUTHORIZED"
    assert meaning(denied, T0 + 400) is None
    # A job already started as this role: the denial is real.
    started = snapshot(record(createdAt=T0), [batch(0, [rs(0)], "IN_PROGRESS", jobId=J0)])
    assert meaning(started, T0 + 10) is None
    activated = snapshot(
        record(createdAt=T0), activations=[activation(0, [rs(0)], "IN_PROGRESS", jobId=J0)]
    )
    assert meaning(activated, T0 + 10) is None


def test_a_failed_call_names_the_call_job_and_read_sets_and_what_the_service_said() -> None:
    stored = exporting([batch(0, rss(2), "STARTING")])
    with unchanged(stored):
        said = decide.service_failure(
            "GetReadSetExportJob",
            "Internal\nerror",
            stored,
            request(),
            job_id=J0,
            read_set_ids=rss(2),
        )
    assert said == (
        f"GetReadSetExportJob failed for export job {J0} in sequence store {STORE} (read sets "
        f"{rs(0)}, {rs(1)}): Internal\nerror"
    )
    activating = decide.service_failure(
        "GetReadSetActivationJob", "Denied", stored, request(), job_id=J1, read_set_ids=[]
    )
    assert activating == (
        f"GetReadSetActivationJob failed for activation job {J1} in sequence store {STORE}: Denied"
    )
    listing = decide.service_failure(
        "ListReadSets", "Throttled", stored, request(), job_id=None, read_set_ids=[]
    )
    assert listing == f"ListReadSets failed for sequence store {STORE}: Throttled"


def test_a_failed_call_names_the_jobs_already_started_and_the_manifest() -> None:
    stored = exporting(
        [batch(n, [rs(n)], "IN_PROGRESS", jobId=job(n)) for n in range(12)]
        + [batch(12, rss(12, 100), "STARTING")]
    )
    said = decide.service_failure(
        START, "Rate exceeded", stored, request(), job_id=None, read_set_ids=rss(12, 100)
    )
    jobs = ", ".join(job(n) for n in range(10))
    ids = ", ".join(rss(10, 100))
    assert said == (
        f"{START} failed for sequence store {STORE} (read sets {ids} and 2 more): Rate "
        f"exceeded. Export jobs already started: {jobs} and 2 more (manifest {MANIFEST_URI})."
    )


def test_a_failed_calls_message_hides_the_filters_values_and_is_clipped() -> None:
    filtered = run(
        selection={"filter": {"subjectId": "P-0042", "status": "ACTIVE"}, "allowEmpty": False}
    )
    stored = snapshot(record(filtered))
    said = decide.service_failure(
        "ListReadSets",
        "No ACTIVE read set of P-0042",
        stored,
        request(),
        job_id=None,
        read_set_ids=[],
    )
    assert (
        said == f"ListReadSets failed for sequence store {STORE}: No ACTIVE read set of <subjectId>"
    )
    long = decide.service_failure(
        "ListReadSets", "x" * 2000, stored, request(), job_id=None, read_set_ids=[]
    )
    assert len(long) == 1000 and long.endswith("x...")


# Ending


def test_a_delete_cancels_a_run_that_has_not_ended() -> None:
    assert decide.verdict(snapshot(record(cancelled=True))) == "CANCEL"
    assert decide.verdict(snapshot(record(run(phase="SELECTING"), cancelled=True))) == "CANCEL"
    assert decide.verdict(snapshot(record(run(phase="ENDED"), cancelled=True))) == "GO_ON"
    assert decide.verdict(snapshot(record(run(phase="ENDED")))) == "GO_ON"


def test_a_run_concludes_once_nothing_is_left_to_start_follow_or_activate() -> None:
    done = exporting([batch(0, [rs(0)], "COMPLETED", jobId=J0), batch(1, [rs(1)], "FAILED")])
    with unchanged(done):
        assert decide.verdict(done) == "CONCLUDE"
    assert decide.verdict(snapshot(record(run(phase="SELECTING")))) == "GO_ON"
    for status in (st.PENDING, st.STARTING, "SUBMITTED", "IN_PROGRESS", "CANCELLING"):
        going = exporting([batch(0, [rs(0)], "COMPLETED", jobId=J0), batch(1, [rs(1)], status)])
        assert decide.verdict(going) == "GO_ON", status
    for status in (st.PENDING, st.STARTING):
        left = exporting([], [rs(0)], [activation(0, [rs(0)], status)])
        assert decide.verdict(left) == "GO_ON", status
    followed = snapshot(
        record(run(number=1, followed=["batch#0000#0000"])),
        [batch(0, [rs(0)], "IN_PROGRESS", jobId=J0)],
        [selection([rs(1)], run=1, todo=[rs(1)])],
    )
    assert decide.verdict(followed) == "GO_ON"
    # An earlier run's batch carries a read set this run selected, without being followed.
    carried = snapshot(
        record(run(number=1)),
        [batch(0, [rs(0)], "IN_PROGRESS", jobId=J0)],
        [selection([rs(0)], run=1, todo=[])],
    )
    assert decide.verdict(carried) == "GO_ON"
    archived = snapshot(record(), [], [selection([rs(0)], todo=[rs(0)], archived=[rs(0)])])
    assert decide.verdict(archived) == "GO_ON"


def partly(allow: bool, exported: bool = True) -> st.Snapshot:
    return exporting(
        [
            batch(0, [rs(0)], "COMPLETED" if exported else "FAILED", jobId=J0),
            batch(1, [rs(1)], "FAILED", jobId=J1, statusMessage="Denied"),
        ],
        allowPartialFailure=allow,
    )


def test_a_run_completes_completes_with_failures_or_fails() -> None:
    ok = exporting([batch(0, [rs(0)], "COMPLETED", jobId=J0)])
    assert decide.conclusion(ok, request()) == ("COMPLETED", None)
    reason = (
        f"1 of 2 HealthOmics export jobs in sequence store {STORE} did not complete: {J1} "
        f"(FAILED: Denied). Every job and read set: {MANIFEST_URI}. Jobs: {J0}, {J1}. "
        f"1 read set(s) failed: {rs(1)} (Denied)."
    )
    with unchanged(partly(False)):
        assert decide.conclusion(partly(False), request()) == ("COMPLETED_WITH_FAILURES", reason)
    # An allowed partial failure shows no reason (it is logged).
    assert decide.conclusion(partly(True), request()) == ("COMPLETED_WITH_FAILURES", None)
    # Nothing exported is a failure, allowed partial failures or not.
    for allow in (False, True):
        status, said = decide.conclusion(partly(allow, exported=False), request())
        assert status == "FAILED"
        assert said is not None and said.startswith("2 of 2 HealthOmics export jobs")


def test_a_cancellation_names_the_jobs_still_running_then() -> None:
    stored = exporting(
        [
            batch(0, [rs(0)], "IN_PROGRESS", jobId=J0),
            batch(1, [rs(1)], st.STARTING),
            batch(2, [rs(2)], "COMPLETED", jobId=J2),
            batch(3, [rs(3)], st.PENDING),
        ]
    )
    with unchanged(stored):
        assert decide.cancellation(stored, request()) == (
            f"Export {EXPORT_ID} was cancelled (its resource was deleted). Jobs running then: "
            f"{J0}, batch#0000#0001. HealthOmics cannot cancel a job: their files may still "
            f"arrive at {DESTINATION}; the manifest's jobs show their last known status."
        )
    idle = exporting([batch(0, [rs(0)], "COMPLETED", jobId=J0)])
    assert decide.cancellation(idle, request()) == (
        f"Export {EXPORT_ID} was cancelled (its resource was deleted)."
    )


def test_an_ended_run_keeps_its_reason_without_the_filters_values() -> None:
    filtered = run(
        selection={"filter": {"sampleId": "S-7", "status": "ACTIVE"}, "allowEmpty": False}
    )
    going = record(filtered, statusReason="earlier")
    with unchanged(going):
        new, passed = decide.ended(going, "FAILED", "No ACTIVE read set of S-7")
    assert new == {
        **going,
        "status": "FAILED",
        "statusReason": "No ACTIVE read set of <sampleId>",
        "run": {**filtered, "phase": "ENDED"},
    }
    assert passed == ["FAILED"]
    done, passed = decide.ended(going, "COMPLETED", None)
    assert "statusReason" not in done
    assert (done["status"], done["run"]["phase"], passed) == ("COMPLETED", "ENDED", ["COMPLETED"])
    again, passed = decide.ended(record(status="COMPLETED"), "COMPLETED", "")
    assert (again["status"], passed) == ("COMPLETED", [])
    assert "statusReason" not in again


def test_a_status_is_passed_only_when_it_changes() -> None:
    running = record()
    with unchanged(running):
        assert decide.moved_to(running, "RUNNING") == (running, [])
        moved, passed = decide.moved_to(running, "ACTIVATING")
    assert moved == {**running, "status": "ACTIVATING"}
    assert passed == ["ACTIVATING"]


def test_an_activating_export_that_no_read_set_waits_on_is_running() -> None:
    def activating(
        status: str = st.ACTIVATING, phase: str = "EXPORTING", **sel: Any
    ) -> st.Snapshot:
        return snapshot(
            record(run(phase=phase), status=status),
            [],
            [selection(rss(2), todo=rss(2), **sel)],
        )

    assert decide.activations_done(activating())
    assert not decide.activations_done(activating(archived=[rs(0)]))
    assert not decide.activations_done(activating(activating=[rs(1)]))
    assert not decide.activations_done(activating(status=st.RUNNING))
    assert not decide.activations_done(activating(phase="SELECTING"))


# Answering CloudFormation and waiting


def test_an_ended_run_is_answered_with_its_outcome() -> None:
    ended = run(phase="ENDED")
    assert decide.due_answer(snapshot(record(ended, status="COMPLETED")), request(), T0) == (
        "SUCCESS",
        "",
    )
    failed = record(ended, status="FAILED", statusReason="1 of 1 jobs failed")
    assert decide.due_answer(snapshot(failed), request(), T0) == ("FAILED", "1 of 1 jobs failed")
    cancelled = record(ended, status="CANCELLED", cancelled=True, statusReason="Export was...")
    assert decide.due_answer(snapshot(cancelled), request(), T0) == (
        "FAILED",
        f"Export {EXPORT_ID} was cancelled (its resource was deleted).",
    )
    # Deleted after it completed: the outcome stands.
    late = record(ended, status="COMPLETED", cancelled=True)
    assert decide.due_answer(snapshot(late), request(), T0) == ("SUCCESS", "")
    answered = record(run(phase="ENDED", answered=True), status="FAILED", statusReason="x")
    assert decide.due_answer(snapshot(answered), request(), T0 + 10_000) is None


def test_without_waiting_the_deploy_is_answered_once_the_read_sets_are_checked() -> None:
    checked = snapshot(record(run(wait=False)))
    assert decide.due_answer(checked, request(), T0) == ("SUCCESS", "")
    selecting = snapshot(record(run(wait=False, phase="SELECTING")), [], [selection(rss(2))])
    assert decide.due_answer(selecting, request(), T0) is None
    assert decide.due_answer(selecting, request(), T0 + 3000) == (
        "FAILED",
        f"The export from sequence store {STORE} was still selecting read sets after the 3000 "
        "s the deploy waits (timeout). Started jobs keep running and cannot be cancelled; the "
        "next deploy resumes the export and skips what completed. Every job so far: "
        f"{MANIFEST_URI}. Use a longer timeout, or wait_for_completion=False (the export then "
        "carries on after the deploy).",
    )


def test_the_timeout_is_answered_at_the_deadline_and_not_before() -> None:
    stored = exporting([batch(0, rss(2), "IN_PROGRESS", jobId=J0)])
    with unchanged(stored):
        assert decide.due_answer(stored, request(), T0 + 2999.9) is None
        answer = decide.due_answer(stored, request(), T0 + 3000)
    assert answer is not None
    assert answer[0] == "FAILED"
    assert answer[1].startswith(f"HealthOmics export job {J0} in sequence store {STORE} is still")
    no_deadline = run()
    del no_deadline["deadline"]
    assert decide.due_answer(snapshot(record(no_deadline)), request(), T0 + 99_999) is None


def test_the_runner_waits_the_poll_interval() -> None:
    stored = exporting([batch(0, [rs(0)], "IN_PROGRESS", jobId=J0)])
    with unchanged(stored):
        assert decide.next_wait(stored, 30, T0) == 30


def test_batches_waiting_for_the_quota_are_looked_at_every_10_seconds() -> None:
    waiting: dict[str, Any] = {"quotaWait": {"running": 2, "at": T0}}
    pending = [batch(0, [rs(0)], st.PENDING)]
    assert decide.next_wait(exporting(pending, **waiting), 30, T0) == 10
    assert decide.next_wait(exporting(pending, **waiting), 7, T0) == 7
    assert decide.next_wait(exporting([batch(0, [rs(0)], st.STARTING)], **waiting), 30, T0) == 10
    # Nothing left to start, or still selecting, or only activations waiting: the poll interval.
    running = [batch(0, [rs(0)], "IN_PROGRESS", jobId=J0)]
    assert decide.next_wait(exporting(running, **waiting), 30, T0) == 30
    assert decide.next_wait(exporting(pending, phase="SELECTING", **waiting), 30, T0) == 30
    activations: dict[str, Any] = {"activationQuotaWait": {"running": 2, "at": T0}}
    assert decide.next_wait(exporting(pending, **activations), 30, T0) == 30


@pytest.mark.parametrize(
    ("left", "wait"),
    [(3000, 30), (30, 30), (29.5, 30), (29, 29), (12.2, 13), (1, 1), (0.2, 1), (0, 1), (-50, 1)],
)
def test_the_runner_never_waits_past_the_deadline_of_an_answer_still_owed(
    left: float, wait: int
) -> None:
    deadline = T0 + 3000
    stored = exporting([batch(0, [rs(0)], "IN_PROGRESS", jobId=J0)], deadline=deadline)
    assert decide.next_wait(stored, 30, deadline - left) == wait
    answered = exporting([batch(0, [rs(0)], "IN_PROGRESS", jobId=J0)], answered=True)
    assert decide.next_wait(answered, 30, deadline - left) == 30


def test_a_quota_wait_near_the_deadline_takes_the_shorter() -> None:
    stored = exporting([batch(0, [rs(0)], st.PENDING)], quotaWait={"running": 1, "at": T0})
    assert decide.next_wait(stored, 30, T0 + 2996) == 4


# Saving


def test_a_record_saved_meanwhile_keeps_its_version_and_runner() -> None:
    runner: st.Runner = {"name": f"{EXPORT_ID}-0-1", "segment": 1, "startedAt": T0 + 60}
    mine = record(status=st.RUNNING, version=3)
    theirs = record(status=st.ACTIVATING, version=5, runner=runner)
    with unchanged(mine, theirs):
        new = decide.merged(mine, theirs, f"{EXPORT_ID}-0-1")
    assert new == {**mine, "version": 5, "runner": runner}
    assert decide.merged(mine, theirs, None) == {**mine, "version": 5, "runner": runner}
    ours: st.Runner = {"name": f"{EXPORT_ID}-0-0", "segment": 0, "startedAt": T0}
    without = record(version=4)
    assert decide.merged(record(runner=ours), without, f"{EXPORT_ID}-0-0") == record(
        runner=ours, version=4
    )


def test_a_record_cancelled_meanwhile_stays_cancelled() -> None:
    theirs = record(cancelled=True, version=6)
    new = decide.merged(record(status=st.RUNNING), theirs, None)
    assert (new["cancelled"], new["status"], new["version"]) == (True, "CANCELLED", 6)
    for final in ("COMPLETED", "COMPLETED_WITH_FAILURES", "FAILED", "CANCELLED"):
        kept = decide.merged(record(status=final), theirs, None)
        assert (kept["cancelled"], kept["status"]) == (True, final)
    mine = decide.merged(record(cancelled=True), record(), None)
    assert (mine["cancelled"], mine["status"]) == (True, st.RUNNING)


def test_a_newer_run_or_another_runner_takes_the_export_from_this_step() -> None:
    mine = record()
    with pytest.raises(
        st.Cancelled, match=f"^export {EXPORT_ID} was taken over by a newer request$"
    ):
        decide.merged(mine, None, None)
    newer = record(run(number=1), runs=2)
    with pytest.raises(
        st.Cancelled, match=f"^export {EXPORT_ID} was taken over by a newer request$"
    ):
        decide.merged(mine, newer, None)
    runner: st.Runner = {"name": f"{EXPORT_ID}-0-2", "segment": 2, "startedAt": T0}
    other = record(runner=runner)
    with pytest.raises(
        st.Cancelled,
        match=f"^export {EXPORT_ID} is carried by runner execution {EXPORT_ID}-0-2 now$",
    ):
        decide.merged(mine, other, f"{EXPORT_ID}-0-1")
    cancelled_other = record(runner=runner, cancelled=True)
    with pytest.raises(st.Cancelled):
        decide.merged(mine, cancelled_other, f"{EXPORT_ID}-0-1")
