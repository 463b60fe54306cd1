"""What the export tells people (core/report.py): the manifest in the destination (every job,
activation and read set, with each read set's provenance), the status-change events, and the
digest that says whether either changed since it was last told."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from cdk_omics_export.handler import rules
from cdk_omics_export.handler.core import records as st
from cdk_omics_export.handler.core import report

from .core_builders import (
    CONSTRUCT_PATH,
    DESTINATION,
    EXPORT_ID,
    MANIFEST_URI,
    STACK_ID,
    STATE_MACHINE_ARN,
    STORE,
    T0,
    activation,
    batch,
    exporting,
    facts,
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
RUNNER = f"{EXPORT_ID}-1-0"
EXECUTION_ARN = f"arn:aws:states:us-east-1:111122223333:execution:Runner:{RUNNER}"
ETAG: st.ETag = {"algorithm": "BAM_MD5up", "source1": "d41d8cd98f00b204", "source2": "e3b0c442"}


def exported() -> st.Snapshot:
    """Run 1 of an export: a job that completed with a failure, one running, activations."""
    a, b, c, d = rss(4)
    return snapshot(
        record(
            run(number=1, jobIds=[J1, J2], requestType="Update", startedAt=T0 + 60),
            runs=2,
            runner={"name": RUNNER, "segment": 0, "startedAt": T0 + 60},
            updatedAt=T0 + 90,
        ),
        [
            batch(0, [rs(9)], st.SUPERSEDED),
            batch(
                0,
                [a, b],
                "COMPLETED_WITH_FAILURES",
                run=1,
                jobId=J1,
                statusMessage="1 read set failed",
                creationTime="2027-01-15T08:01:00Z",
                completionTime="2027-01-15T08:30:00Z",
                readSets=[
                    {"id": a, "status": "FINISHED"},
                    {"id": b, "status": "FAILED", "statusMessage": "Bad file"},
                ],
            ),
            batch(1, [c], "IN_PROGRESS", run=1, jobId=J2, creationTime="2027-01-15T08:31:00Z"),
        ],
        [selection([a, b, c, d], run=1, todo=[a, b, c, d], activating=[d])],
        [
            activation(
                0,
                [c],
                "COMPLETED",
                run=1,
                jobId=J0,
                statusMessage="done",
                creationTime="2027-01-15T08:00:30Z",
                completionTime="2027-01-15T08:20:00Z",
                sources=sources({c: "FINISHED"}),
            ),
            activation(1, [d], st.WATCHING, run=1, sources=sources({d: "IN_PROGRESS"})),
            activation(2, [rs(9)], st.SUPERSEDED, run=1),
            # Planned, not started: no sources yet (its read set was not selected).
            activation(3, [rs(8)], st.PENDING, run=1),
        ],
        [
            facts(0, {a: {"fileType": "BAM", "etag": ETAG}, rs(9): {"fileType": "CRAM"}}, run=1),
            facts(1, {c: {"fileType": "FASTQ"}}, run=1),
            facts(0, {b: {"fileType": "UBAM"}}, run=0),
        ],
    )


def test_the_manifest_lists_the_export_its_run_jobs_activations_and_read_sets() -> None:
    a, b, c, d = rss(4)
    stored = exported()
    with unchanged(stored):
        written = report.manifest(stored, request(), STATE_MACHINE_ARN, T0 + 120)
    assert written == {
        "schema": 1,
        "exportId": EXPORT_ID,
        "stackId": STACK_ID,
        "constructPath": CONSTRUCT_PATH,
        "sequenceStoreId": STORE,
        "destination": DESTINATION,
        "generation": 0,
        "status": "RUNNING",
        "statusReason": "",
        "cancelled": False,
        "createdAt": "2027-01-15T08:00:00Z",
        "updatedAt": "2027-01-15T08:02:00Z",
        "run": {
            "number": 1,
            "requestType": "Update",
            "startedAt": "2027-01-15T08:01:00Z",
            "jobIds": [J1, J2],
        },
        "counts": {"selected": 4, "exported": 1, "failed": 1, "inFlight": 2, "activating": 1},
        "runner": {"execution": RUNNER, "executionArn": EXECUTION_ARN, "active": True},
        "jobs": [
            {
                "batch": "batch#0001#0000",
                "id": J1,
                "status": "COMPLETED_WITH_FAILURES",
                "readSetIds": [a, b],
                "readSets": [
                    {"id": a, "status": "FINISHED"},
                    {"id": b, "status": "FAILED", "statusMessage": "Bad file"},
                ],
                "statusMessage": "1 read set failed",
                "creationTime": "2027-01-15T08:01:00Z",
                "completionTime": "2027-01-15T08:30:00Z",
            },
            {
                "batch": "batch#0001#0001",
                "id": J2,
                "status": "IN_PROGRESS",
                "readSetIds": [c],
                "readSets": [],
                "creationTime": "2027-01-15T08:31:00Z",
            },
        ],
        "activations": [
            {
                "key": "activation#0001#0000",
                "id": J0,
                "status": "COMPLETED",
                "readSetIds": [c],
                "sources": [{"readSetId": c, "status": "FINISHED"}],
                "statusMessage": "done",
                "creationTime": "2027-01-15T08:00:30Z",
                "completionTime": "2027-01-15T08:20:00Z",
            },
            {
                "key": "activation#0001#0001",
                "id": None,
                "status": "WATCHING",
                "readSetIds": [d],
                "sources": [{"readSetId": d, "status": "IN_PROGRESS"}],
            },
            {
                "key": "activation#0001#0003",
                "id": None,
                "status": "PENDING",
                "readSetIds": [rs(8)],
                "sources": [],
            },
        ],
        "readSets": [
            {"id": a, "status": "EXPORTED", "jobId": J1, "fileType": "BAM", "etag": ETAG},
            {"id": b, "status": "FAILED", "jobId": J1, "statusMessage": "Bad file"},
            {
                "id": c,
                "status": "EXPORTING",
                "jobId": J2,
                "activationJobId": J0,
                "fileType": "FASTQ",
            },
            {"id": d, "status": "ACTIVATING"},
        ],
    }


def test_the_manifest_carries_each_read_sets_etag_for_checking_its_files() -> None:
    written = report.manifest(exported(), request(), STATE_MACHINE_ARN, T0)
    first = written["readSets"][0]
    assert first["etag"] == {
        "algorithm": "BAM_MD5up",
        "source1": "d41d8cd98f00b204",
        "source2": "e3b0c442",
    }
    assert "etag" not in written["readSets"][2]
    # A read set not selected by this run, or a fact of another run, adds nothing.
    assert [r["id"] for r in written["readSets"]] == rss(4)
    assert "fileType" not in written["readSets"][1]


def test_the_manifest_of_an_ended_export_says_why_and_that_its_runner_ended() -> None:
    ended = snapshot(
        record(
            run(phase="ENDED"),
            status="FAILED",
            statusReason="1 of 1 jobs failed",
            cancelled=True,
        ),
        [batch(0, rss(2), "FAILED", jobId=J0)],
        [selection(rss(2), todo=rss(2))],
    )
    written = report.manifest(ended, request(), "", T0)
    assert (written["status"], written["statusReason"], written["cancelled"]) == (
        "FAILED",
        "1 of 1 jobs failed",
        True,
    )
    assert written["runner"] == {"execution": "", "executionArn": "", "active": False}
    assert written["counts"] == {
        "selected": 2,
        "exported": 0,
        "failed": 2,
        "inFlight": 0,
        "activating": 0,
    }


def test_the_runner_view_names_its_execution_while_it_is_active() -> None:
    named = snapshot(record(runner={"name": RUNNER, "segment": 0, "startedAt": T0}))
    assert report.runner_view(named, STATE_MACHINE_ARN) == {
        "execution": RUNNER,
        "executionArn": EXECUTION_ARN,
        "active": True,
    }
    assert report.runner_view(named, "") == {
        "execution": RUNNER,
        "executionArn": "",
        "active": True,
    }
    assert report.runner_view(snapshot(record()), STATE_MACHINE_ARN) == {
        "execution": "",
        "executionArn": "",
        "active": True,
    }


# The digest


def digested() -> st.Snapshot:
    return exporting(
        [batch(0, [rs(0)], "IN_PROGRESS", jobId=J0)],
        activations=[activation(0, [rs(1)], "IN_PROGRESS", jobId=J1)],
        selected=rss(2),
    )


def test_the_digest_is_the_one_earlier_versions_stored() -> None:
    # A change here rewrites every manifest and republishes every export's last event once.
    stored = digested()
    seen = [
        "RUNNING",  # the export's status
        "False",  # cancelled
        "0",  # the run
        "",  # the runner execution's name
        "False",  # the runner done
        "batch#0000#0000=IN_PROGRESS",
        "activation#0000#0000=IN_PROGRESS",
    ]
    expected = hashlib.sha256("\n".join(seen).encode()).hexdigest()[:16]
    with unchanged(stored):
        assert report.status_digest(stored) == expected == "86cc10cd8c0c61e4"


def test_the_digest_changes_with_every_status_it_covers_and_nothing_else() -> None:
    base = report.status_digest(digested())

    def changed(**of: Any) -> str:
        stored = digested()
        assert stored.record is not None
        for name, value in of.items():
            if name == "batch":
                stored.batches["batch#0000#0000"]["status"] = value
            elif name == "activation":
                stored.activations["activation#0000#0000"]["status"] = value
            elif name == "phase":
                stored.record["run"]["phase"] = value
            elif name == "number":
                stored.record["run"]["number"] = value
            else:
                stored.record[name] = value  # type: ignore[literal-required]
        return report.status_digest(stored)

    variants = [
        changed(status="COMPLETED"),
        changed(cancelled=True),
        changed(number=1),
        changed(runner={"name": RUNNER, "segment": 0, "startedAt": T0}),
        changed(batch="COMPLETED"),
        changed(activation="COMPLETED"),
        changed(batch="COMPLETED", phase="ENDED"),
    ]
    assert len({base, *variants}) == len(variants) + 1
    assert all(len(d) == 16 and int(d, 16) >= 0 for d in variants)
    assert changed(updatedAt=T0 + 999, statusReason="x", version=99) == base


# Events


def test_one_event_per_status_passed_the_current_one_last() -> None:
    current = record(status="RUNNING")
    assert report.statuses_to_publish(current, []) == ["RUNNING"]
    assert report.statuses_to_publish(current, ["ACTIVATING", "RUNNING"]) == [
        "ACTIVATING",
        "RUNNING",
    ]
    assert report.statuses_to_publish(current, ["RUNNING", "ACTIVATING", "RUNNING"]) == [
        "ACTIVATING",
        "RUNNING",
    ]
    assert report.statuses_to_publish(record(status="COMPLETED"), ["RUNNING"]) == [
        "RUNNING",
        "COMPLETED",
    ]


def test_an_event_says_enough_to_act_on() -> None:
    stored = exported()
    with unchanged(stored):
        detail = report.event_detail(stored, request(), STATE_MACHINE_ARN, "RUNNING")
    assert detail == {
        "stackId": STACK_ID,
        "constructPath": CONSTRUCT_PATH,
        "exportId": EXPORT_ID,
        "run": 1,
        "status": "RUNNING",
        "counts": {"selected": 4, "exported": 1, "failed": 1, "inFlight": 2, "activating": 1},
        "jobIds": [J1, J2],
        "jobs": [
            {"id": J1, "status": "COMPLETED_WITH_FAILURES"},
            {"id": J2, "status": "IN_PROGRESS"},
        ],
        "manifestUri": MANIFEST_URI,
        "runner": {"execution": RUNNER, "executionArn": EXECUTION_ARN, "active": True},
        "sequenceStoreId": STORE,
        "destination": DESTINATION,
    }


def test_an_event_of_the_current_status_carries_its_reason() -> None:
    failed = snapshot(
        record(run(phase="ENDED"), status="FAILED", statusReason="1 of 1 jobs failed"),
        [batch(0, rss(2), "FAILED", jobId=J0)],
        [selection(rss(2), todo=rss(2))],
    )
    assert report.event_detail(failed, request(), "", "FAILED")["statusReason"] == (
        "1 of 1 jobs failed"
    )
    assert "statusReason" not in report.event_detail(failed, request(), "", "RUNNING")
    quiet = snapshot(record(status="COMPLETED", statusReason=""))
    assert "statusReason" not in report.event_detail(quiet, request(), "", "COMPLETED")


def test_an_event_names_at_most_200_jobs_this_run_watches() -> None:
    started = [batch(n + 2, [rs(n)], "COMPLETED", run=1, jobId=job(n)) for n in range(205)]
    stored = snapshot(
        record(run(number=1, followed=["batch#0000#0000"])),
        [
            batch(0, [rs(900)], "IN_PROGRESS", jobId=job(900)),
            batch(1, [rs(901)], "COMPLETED", jobId=job(901)),
            *started,
            batch(300, [rs(902)], st.STARTING, run=1),
        ],
        [selection(rss(2), run=1, todo=rss(2))],
    )
    detail = report.event_detail(stored, request(), STATE_MACHINE_ARN, "RUNNING")
    assert len(detail["jobs"]) == 200
    assert detail["jobIds"] == [job(n) for n in range(200)]
    assert detail["jobs"][0] == {"id": job(0), "status": "COMPLETED"}
    few = snapshot(
        record(run(number=1, followed=["batch#0000#0000"])),
        [batch(0, [rs(900)], "IN_PROGRESS", jobId=job(900)), batch(0, [rs(0)], st.PENDING, run=1)],
        [selection(rss(2), run=1, todo=rss(2))],
    )
    assert report.event_detail(few, request(), "", "RUNNING")["jobs"] == [
        {"id": job(900), "status": "IN_PROGRESS"}
    ]


def test_an_event_goes_to_the_services_bus_as_compact_json() -> None:
    stored = exported()
    event = report.status_event(stored, request(), STATE_MACHINE_ARN, "ACTIVATING", "the-bus")
    assert {k: v for k, v in event.items() if k != "Detail"} == {
        "EventBusName": "the-bus",
        "Source": "cdk-omics-export",
        "DetailType": "Read Set Export Status Change",
    }
    assert (rules.EVENT_SOURCE, rules.EVENT_DETAIL_TYPE) == (event["Source"], event["DetailType"])
    assert json.loads(event["Detail"]) == report.event_detail(
        stored, request(), STATE_MACHINE_ARN, "ACTIVATING"
    )
    assert event["Detail"] == json.dumps(json.loads(event["Detail"]), separators=(",", ":"))
    assert ", " not in event["Detail"] and '": ' not in event["Detail"]
