"""How a run turned out, in words (core/outcome.py): each read set's outcome as the manifest
lists it, the counts, and the messages CloudFormation shows as the resource's status reason
when an export fails or the deploy's wait runs out."""

from __future__ import annotations

from typing import Any

from cdk_omics_export.handler.core import outcome
from cdk_omics_export.handler.core import records as st
from cdk_omics_export.handler.core.model import Counts

from .core_builders import (
    DESTINATION,
    MANIFEST_URI,
    STORE,
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
    unchanged,
)

J0, J1, J2, J3 = job(0), job(1), job(2), job(3)

# What the service said of one read set


def test_a_read_sets_failure_is_what_the_job_said_of_it_or_of_itself() -> None:
    a, b, c, d = rss(4)
    failed = batch(
        0,
        [a, b, c, d],
        "COMPLETED_WITH_FAILURES",
        jobId=J0,
        statusMessage="Some read sets\nfailed",
        readSets=[
            {"id": a, "status": "FAILED", "statusMessage": "Checksum\tmismatch"},
            {"id": b, "status": "FAILED", "statusMessage": ""},
            {"id": c, "status": "FAILED"},
        ],
    )
    assert outcome.job_failure(failed, a) == "Checksum mismatch"
    assert outcome.job_failure(failed, b) == "Some read sets failed"
    assert outcome.job_failure(failed, c) == "Some read sets failed"
    assert outcome.job_failure(failed, d) == "Some read sets failed"
    assert outcome.job_failure(batch(0, [a], "CANCELLED", jobId=J0), a) == "CANCELLED"


def test_an_activations_failure_says_which_job_or_that_someone_else_activated() -> None:
    a, b, c = rss(3)
    ours = activation(
        0,
        [a, b, c],
        "COMPLETED_WITH_FAILURES",
        jobId=J1,
        statusMessage="One\n failed",
        sources=[
            {"readSetId": a, "status": "FAILED", "statusMessage": "Read set\n is deleted"},
            {"readSetId": b, "status": "FAILED"},
        ],
    )
    assert outcome.activation_failure(ours, a) == f"activation job {J1}: Read set is deleted"
    assert outcome.activation_failure(ours, b) == f"activation job {J1}: One failed"
    assert outcome.activation_failure(ours, c) == f"activation job {J1}: One failed"
    theirs = activation(
        1,
        [a, b],
        "COMPLETED_WITH_FAILURES",
        sources=[
            {
                "readSetId": a,
                "status": "FAILED",
                "statusMessage": "read set became DELETED while it was activated",
            },
            {"readSetId": b, "status": "FAILED"},
        ],
    )
    assert outcome.activation_failure(theirs, a) == (
        "activation by someone else: read set became DELETED while it was activated"
    )
    assert outcome.activation_failure(theirs, b) == (
        "activation by someone else: COMPLETED_WITH_FAILURES"
    )


# Each read set's outcome


def mixed() -> tuple[st.Snapshot, dict[str, str]]:
    """Run 1 exporting read sets in every state there is, named by what they show."""
    names = [
        "exported_before",
        "followed",
        "failed",
        "archived",
        "archived_after_failing",
        "activation_failed",
        "activation_failed_after_failing",
        "activated",
        "activated_and_exporting",
        "watched_by_preflight",
        "watched",
        "not_to_do",
        "active",
        "planned",
        "failed_before",
    ]
    ids = dict(zip(names, rss(len(names)), strict=True))
    todo = [ids[n] for n in names if n not in ("exported_before", "followed", "not_to_do")]
    stored = snapshot(
        record(run(number=1, followed=["batch#0000#0001"])),
        [
            batch(0, [ids["exported_before"]], "COMPLETED", jobId=job(10)),
            batch(1, [ids["followed"]], "IN_PROGRESS", jobId=job(11)),
            batch(
                2,
                [
                    ids["archived_after_failing"],
                    ids["activation_failed_after_failing"],
                    ids["failed_before"],
                ],
                "FAILED",
                jobId=job(12),
                statusMessage="Internal error",
            ),
            batch(0, [ids["failed"]], "FAILED", run=1, jobId=job(13), statusMessage="Denied"),
            batch(1, [ids["activated_and_exporting"]], "IN_PROGRESS", run=1, jobId=job(14)),
            batch(2, [ids["planned"]], st.PENDING, run=1),
        ],
        [
            selection(
                list(ids.values()),
                run=1,
                todo=todo,
                archived=[ids["archived"], ids["archived_after_failing"]],
                activating=[ids["watched_by_preflight"]],
            )
        ],
        [
            activation(
                0,
                [ids["activation_failed"], ids["activation_failed_after_failing"]],
                "FAILED",
                run=1,
                jobId=job(20),
                statusMessage="Read set is deleted",
            ),
            activation(
                1,
                [ids["activated"], ids["activated_and_exporting"]],
                "COMPLETED",
                run=1,
                jobId=job(21),
            ),
            activation(2, [ids["watched"]], st.WATCHING, run=1),
        ],
    )
    return stored, ids


def by_id(listed: list[st.ManifestReadSet], ids: dict[str, str]) -> dict[str, dict[str, Any]]:
    names = {v: k for k, v in ids.items()}
    return {names[o["id"]]: {k: v for k, v in o.items() if k != "id"} for o in listed}


def test_each_selected_read_set_shows_how_it_stands_while_exporting() -> None:
    stored, ids = mixed()
    with unchanged(stored):
        listed = outcome.read_set_outcomes(stored)
    assert [o["id"] for o in listed] == list(ids.values())
    deleted = f"activation job {job(20)}: Read set is deleted"
    assert by_id(listed, ids) == {
        "exported_before": {"status": "EXPORTED", "jobId": job(10)},
        "followed": {"status": "EXPORTING", "jobId": job(11)},
        "failed": {"status": "FAILED", "jobId": job(13), "statusMessage": "Denied"},
        "archived": {"status": "ACTIVATING"},
        "archived_after_failing": {"status": "ACTIVATING", "statusMessage": "Internal error"},
        "activation_failed": {
            "status": "FAILED",
            "activationJobId": job(20),
            "statusMessage": deleted,
        },
        "activation_failed_after_failing": {
            "status": "FAILED",
            "activationJobId": job(20),
            "statusMessage": deleted,
        },
        "activated": {"status": "EXPORTING", "activationJobId": job(21)},
        "activated_and_exporting": {
            "status": "EXPORTING",
            "jobId": job(14),
            "activationJobId": job(21),
        },
        "watched_by_preflight": {"status": "ACTIVATING"},
        "watched": {"status": "ACTIVATING"},
        "not_to_do": {"status": "PENDING"},
        "active": {"status": "EXPORTING"},
        "planned": {"status": "PENDING"},
        # An earlier run's failure, active now: a batch of this step takes it.
        "failed_before": {
            "status": "EXPORTING",
            "jobId": job(12),
            "statusMessage": "Internal error",
        },
    }


def test_a_read_set_an_earlier_runs_job_exported_or_carries_shows_that_job() -> None:
    done, carried = rss(2)
    stored = snapshot(
        record(run(number=1)),
        [
            batch(0, [done], "COMPLETED", jobId=J0),
            batch(1, [carried], "IN_PROGRESS", jobId=J1),
        ],
        [selection([done, carried], run=1, todo=[done, carried])],
    )
    assert outcome.read_set_outcomes(stored) == [
        {"id": done, "status": "EXPORTED", "jobId": J0},
        {"id": carried, "status": "EXPORTING", "jobId": J1},
    ]


def test_once_the_run_ended_only_failed_activations_change_what_batches_say() -> None:
    stored, ids = mixed()
    ended = snapshot(
        record(run(number=1, phase="ENDED", followed=["batch#0000#0001"])),
        stored.ordered_batches(),
        list(stored.selections.values()),
        stored.ordered_activations(),
    )
    shown = by_id(outcome.read_set_outcomes(ended), ids)
    assert shown["archived"] == {"status": "PENDING"}
    assert shown["archived_after_failing"] == {
        "status": "FAILED",
        "jobId": job(12),
        "statusMessage": "Internal error",
    }
    assert shown["activation_failed"]["status"] == "FAILED"
    assert shown["activation_failed_after_failing"] == {
        "status": "FAILED",
        "activationJobId": job(20),
        "statusMessage": f"activation job {job(20)}: Read set is deleted",
    }
    assert shown["activated"] == {"status": "PENDING", "activationJobId": job(21)}
    assert shown["active"] == {"status": "PENDING"}
    assert shown["watched"] == {"status": "PENDING"}


def test_while_selecting_activations_count_for_nothing() -> None:
    stored, ids = mixed()
    selecting = snapshot(
        record(run(number=1, phase="SELECTING", followed=["batch#0000#0001"])),
        stored.ordered_batches(),
        list(stored.selections.values()),
        stored.ordered_activations(),
    )
    shown = by_id(outcome.read_set_outcomes(selecting), ids)
    assert shown["archived"] == {"status": "PENDING"}
    assert shown["activation_failed"] == {"status": "PENDING"}
    assert shown["activated"] == {"status": "PENDING"}
    assert shown["failed"] == {"status": "FAILED", "jobId": job(13), "statusMessage": "Denied"}


def test_the_counts_name_the_first_ten_failures() -> None:
    failing = rss(12)
    stored = exporting(
        [
            batch(0, failing, "FAILED", jobId=J0, statusMessage="Internal\nerror"),
            batch(1, rss(2, 20), "COMPLETED", jobId=J1),
            batch(2, [rs(30)], "IN_PROGRESS", jobId=J2),
            batch(3, [rs(31)], st.PENDING),
        ],
        selected=[*failing, *rss(2, 20), rs(30), rs(31), rs(40), rs(41)],
    )
    stored.selections[0]["archived"] = st.pack_ids([rs(40)])
    with unchanged(stored):
        tally = outcome.counts(stored)
    assert tally == Counts(
        selected=18,
        exported=2,
        failed=12,
        in_flight=3,
        activating=1,
        failures=[f"{r} (Internal error)" for r in failing[:10]],
    )
    assert outcome.counts(snapshot(record(), [], [selection([])])) == Counts()


# The failure message


def test_one_failed_job_is_named_with_what_it_said_and_each_read_set() -> None:
    a, b, c = rss(3)
    stored = exporting(
        [
            batch(
                0,
                [a, b, c],
                "FAILED",
                jobId=J0,
                statusMessage="Access denied\n to the destination",
                readSets=[
                    {"id": a, "status": "FAILED", "statusMessage": "Access denied"},
                    {"id": b, "status": "FAILED"},
                    {"id": c, "status": "NOT_STARTED"},
                ],
            )
        ]
    )
    with unchanged(stored):
        message = outcome.failure_message(stored, request())
    assert message == (
        f"HealthOmics export job {J0} in sequence store {STORE} ended FAILED: Access denied to "
        f"the destination. 3 read set(s) failed: {a} (Access denied); {b} (Access denied to "
        f"the destination); {c} (Access denied to the destination)."
    )


def test_one_job_with_failures_and_nothing_said_is_named_with_its_status() -> None:
    a, b = rss(2)
    stored = exporting(
        [
            batch(
                0,
                [a, b],
                "COMPLETED_WITH_FAILURES",
                jobId=J0,
                readSets=[
                    {"id": a, "status": "FINISHED"},
                    {"id": b, "status": "FAILED", "statusMessage": "Bad\nfile"},
                ],
            )
        ]
    )
    assert outcome.failure_message(stored, request()) == (
        f"HealthOmics export job {J0} in sequence store {STORE} ended COMPLETED_WITH_FAILURES. "
        f"1 read set(s) failed: {b} (Bad file)."
    )


def test_several_jobs_name_only_those_that_did_not_complete_and_link_the_manifest() -> None:
    stored = exporting(
        [
            batch(0, rss(2), "COMPLETED", jobId=J0, statusMessage="Done"),
            batch(1, [rs(2)], "FAILED", jobId=J1, statusMessage="Internal error"),
            batch(
                2,
                [rs(3), rs(4)],
                "COMPLETED_WITH_FAILURES",
                jobId=J2,
                readSets=[
                    {"id": rs(3), "status": "FINISHED"},
                    {"id": rs(4), "status": "FAILED", "statusMessage": "Bad file"},
                ],
            ),
            batch(3, [rs(5)], st.SUPERSEDED),
        ],
        selected=rss(5),
    )
    message = outcome.failure_message(stored, request())
    assert message == (
        f"2 of 3 HealthOmics export jobs in sequence store {STORE} did not complete: "
        f"{J1} (FAILED: Internal error), {J2} (COMPLETED_WITH_FAILURES). Every job and read "
        f"set: {MANIFEST_URI}. Jobs: {J0}, {J1}, {J2}. 2 read set(s) failed: "
        f"{rs(2)} (Internal error); {rs(4)} (Bad file)."
    )
    assert f"{J0} (" not in message


def test_an_earlier_runs_job_this_run_follows_is_named_too() -> None:
    stored = snapshot(
        record(run(number=1, followed=["batch#0000#0000"])),
        [
            batch(0, [rs(0)], "FAILED", jobId=J0, statusMessage="Internal error"),
            batch(0, [rs(1)], "COMPLETED", run=1, jobId=J1),
        ],
        [selection(rss(2), run=1, todo=[rs(1)])],
    )
    assert outcome.failure_message(stored, request()) == (
        f"1 of 2 HealthOmics export jobs in sequence store {STORE} did not complete: "
        f"{J0} (FAILED: Internal error). Every job and read set: {MANIFEST_URI}. "
        f"Jobs: {J1}, {J0}. 1 read set(s) failed: {rs(0)} (Internal error)."
    )


def test_many_failures_are_counted_beyond_those_named() -> None:
    batches = [
        batch(n, [rs(n)], "FAILED" if n < 5 else "COMPLETED", jobId=job(n)) for n in range(25)
    ]
    batches += [batch(25, rss(8, 100), "FAILED", jobId=job(25))]
    stored = exporting(batches)
    message = outcome.failure_message(stored, request())
    named = ", ".join(f"{job(n)} (FAILED)" for n in range(3))
    jobs = ", ".join(job(n) for n in range(20))
    failures = "; ".join(f"{rs(n)} (FAILED)" for n in range(5))
    failures += "; " + "; ".join(f"{r} (FAILED)" for r in rss(5, 100))
    assert message == (
        f"6 of 26 HealthOmics export jobs in sequence store {STORE} did not complete: "
        f"{named} and 3 more. Every job and read set: {MANIFEST_URI}. Jobs: {jobs} and 6 "
        f"more. 13 read set(s) failed: {failures} and 3 more."
    )


def test_a_batch_that_never_started_is_named_by_its_key() -> None:
    said = "StartReadSetExportJob failed for sequence store 1234567890: Invalid"
    stored = exporting([batch(0, [rs(0)], "FAILED", statusMessage=said)])
    assert outcome.failure_message(stored, request()) == (
        f"1 of 1 HealthOmics export jobs in sequence store {STORE} did not complete: "
        f"batch#0000#0000 (FAILED: {said}). 1 read set(s) failed: {rs(0)} ({said})."
    )


def test_a_job_that_failed_no_read_set_is_named_alone() -> None:
    stored = exporting(
        [batch(0, [rs(0)], "CANCELLED", jobId=J0, readSets=outcomes({rs(0): "FINISHED"}))]
    )
    assert outcome.failure_message(stored, request()) == (
        f"HealthOmics export job {J0} in sequence store {STORE} ended CANCELLED."
    )


def test_a_long_failure_message_is_clipped() -> None:
    stored = exporting([batch(0, [rs(0)], "FAILED", jobId=J0, statusMessage="x" * 2000)])
    message = outcome.failure_message(stored, request())
    assert len(message) == 1000
    assert message.startswith(f"HealthOmics export job {J0} in sequence store {STORE} ended")
    assert message.endswith("xxx...")


def activation_failed(*batches: st.BatchRecord) -> st.Snapshot:
    a, b = rss(2)
    return exporting(
        batches,
        selected=[a, b],
        activations=[
            activation(0, [a], "COMPLETED", jobId=J2),
            activation(
                1,
                [b],
                "FAILED",
                jobId=J3,
                statusMessage="Internal\nerror",
                sources=[{"readSetId": b, "status": "FAILED", "statusMessage": "Deleted"}],
            ),
            activation(2, [rs(9)], st.SUPERSEDED),
        ],
    )


def test_a_failed_activation_is_the_reason_when_every_job_completed() -> None:
    stored = activation_failed(batch(0, [rs(0)], "COMPLETED", jobId=J0))
    assert outcome.failure_message(stored, request()) == (
        f"1 of 2 HealthOmics activation jobs in sequence store {STORE} did not activate every "
        f"read set: {J3} (FAILED: Internal error). 1 read set(s) failed: {rs(1)} (activation "
        f"job {J3}: Deleted)."
    )


def test_a_failed_activation_follows_the_failed_jobs() -> None:
    stored = activation_failed(batch(0, [rs(0)], "FAILED", jobId=J0, statusMessage="Denied"))
    assert outcome.failure_message(stored, request()) == (
        f"HealthOmics export job {J0} in sequence store {STORE} ended FAILED: Denied. 1 of 2 "
        f"HealthOmics activation jobs in sequence store {STORE} did not activate every read "
        f"set: {J3} (FAILED: Internal error). 2 read set(s) failed: {rs(0)} (Denied); "
        f"{rs(1)} (activation job {J3}: Deleted)."
    )


def test_an_activation_by_someone_else_is_named_by_its_key() -> None:
    stored = exporting(
        [],
        selected=[rs(0)],
        activations=[
            activation(
                0,
                [rs(0)],
                "COMPLETED_WITH_FAILURES",
                sources=[{"readSetId": rs(0), "status": "FAILED", "statusMessage": "gone"}],
            )
        ],
    )
    assert outcome.activation_failures(stored, request()) == (
        f"1 of 1 HealthOmics activation jobs in sequence store {STORE} did not activate every "
        "read set: activation#0000#0000 (COMPLETED_WITH_FAILURES)"
    )
    assert outcome.activation_failures(exporting([]), request()) == ""


def test_at_most_three_failed_activations_are_named() -> None:
    failed = [activation(n, [rs(n)], "FAILED", jobId=job(n)) for n in range(5)]
    stored = exporting([], selected=rss(5), activations=failed)
    named = ", ".join(f"{job(n)} (FAILED)" for n in range(3))
    assert outcome.activation_failures(stored, request()) == (
        f"5 of 5 HealthOmics activation jobs in sequence store {STORE} did not activate every "
        f"read set: {named} and 2 more"
    )


# The timeout message


TAIL = (
    "Use a longer timeout, or wait_for_completion=False (the export then carries on after the "
    "deploy)."
)


def test_one_running_job_at_the_deadline_is_named_and_keeps_running() -> None:
    stored = exporting([batch(0, rss(2), "IN_PROGRESS", jobId=J0)])
    with unchanged(stored):
        message = outcome.timeout_message(stored, request(timeout_seconds=1200))
    assert message == (
        f"HealthOmics export job {J0} in sequence store {STORE} is still IN_PROGRESS after the "
        "1200 s the deploy waits (timeout). The job keeps running and cannot be cancelled; its "
        f"files will still arrive at {DESTINATION}, and the next deploy resumes the export "
        f"without exporting them again. {TAIL}"
    )


def test_several_batches_at_the_deadline_say_what_runs_and_what_did_not_start() -> None:
    stored = exporting(
        [
            batch(0, [rs(0)], "IN_PROGRESS", jobId=J0),
            batch(1, [rs(1)], "SUBMITTED", jobId=J1),
            batch(2, [rs(2)], "COMPLETED", jobId=J2),
            batch(3, [rs(3)], st.PENDING),
            batch(4, [rs(4)], st.STARTING),
            batch(5, [rs(5)], st.SUPERSEDED),
        ]
    )
    assert outcome.timeout_message(stored, request()) == (
        f"The export from sequence store {STORE} had 2 export job(s) running ({J0}, {J1}) and "
        "2 of 5 batch(es) not yet started after the 3000 s the deploy waits (timeout). Started "
        "jobs keep running and cannot be cancelled; the next deploy resumes the export and "
        f"skips what completed. Every job so far: {MANIFEST_URI}. {TAIL}"
    )


def test_at_most_ten_running_jobs_are_named_at_the_deadline() -> None:
    stored = exporting([batch(n, [rs(n)], "IN_PROGRESS", jobId=job(n)) for n in range(12)])
    running = ", ".join(job(n) for n in range(10))
    assert (
        f"had 12 export job(s) running ({running} and 2 more) and 0 of 12 batch(es) not yet "
        "started after" in outcome.timeout_message(stored, request())
    )


def test_an_export_still_selecting_at_the_deadline_says_so() -> None:
    stored = snapshot(
        record(run(phase="SELECTING", planned=False, batches=0)),
        [],
        [selection(rss(3), complete=False, archived=[rs(0)], todo=rss(3))],
    )
    assert outcome.timeout_message(stored, request()) == (
        f"The export from sequence store {STORE} was still selecting read sets after the 3000 s "
        "the deploy waits (timeout). Started jobs keep running and cannot be cancelled; the "
        "next deploy resumes the export and skips what completed. Every job so far: "
        f"{MANIFEST_URI}. {TAIL}"
    )


def test_read_sets_still_activating_at_the_deadline_are_counted() -> None:
    a, b, c = rss(3)
    stored = snapshot(
        record(),
        [batch(0, [a], "IN_PROGRESS", jobId=J0)],
        [selection([a, b, c], todo=[a, b, c], archived=[b], activating=[c])],
    )
    assert outcome.timeout_message(stored, request()) == (
        f"The export from sequence store {STORE} had 1 export job(s) running ({J0}) and 0 of 1 "
        "batch(es) not yet started, and 2 archived read set(s) still being activated "
        "(activation can take hours; it goes on, and the next deploy exports what it "
        "activated) after the 3000 s the deploy waits (timeout). Started jobs keep running and "
        "cannot be cancelled; the next deploy resumes the export and skips what completed. "
        f"Every job so far: {MANIFEST_URI}. {TAIL}"
    )


def test_a_single_batch_not_started_at_the_deadline_is_counted_not_named() -> None:
    stored = exporting([batch(0, rss(2), st.PENDING)])
    assert outcome.timeout_message(stored, request()).startswith(
        f"The export from sequence store {STORE} had 0 export job(s) running () and 1 of 1 "
        "batch(es) not yet started after the 3000 s"
    )
