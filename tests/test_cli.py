"""`cdk-omics-export status`, with CloudFormation, S3, Step Functions and HealthOmics stubbed
(no network).

With ``--stack`` the command reads only DescribeStacks, the manifests and, for a runner a
manifest says is active, DescribeExecution: the omics stubber is given no response in those
tests, so any HealthOmics call would fail them."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber
from rich.console import Console

from cdk_omics_export import cli

STACK = "OmicsReadSetExportExample"
STORE = "1234567890"
JOBS = ["5000000001", "5000000002", "5000000003"]
MANIFEST = "s3://export-bucket/exports/cdk-omics-export/rse-4caa514f962e52cf26decdf9b917.json"
OTHER = "s3://export-bucket/cohort/cdk-omics-export/rse-0d1e2f3a4b5c6d7e8f9a0b1c2d3e.json"
DESTINATION = "s3://export-bucket/exports/"
OUTPUTS = {"ExportManifestUriA51BFD51": MANIFEST, "ExportJobId5605F428": JOBS[0]}
STATE_TABLE = "OmicsReadSetExportExample-ReadSetExportServiceState-1"
RUNNER_ARN = "arn:aws:states:us-east-1:111111111111:stateMachine:Runner1A2B3C4D"
SERVICE_OUTPUTS = {
    "ReadSetExportServiceStateTableName1A2B3C4D": STATE_TABLE,
    "ReadSetExportServiceRunnerStateMachineArn5E6F7A8B": RUNNER_ARN,
}
TWO_OUTPUTS = {**OUTPUTS, "CohortManifestUri0B1C2D3E": OTHER}
EXPORT_ID = "rse-4caa514f962e52cf26decdf9b917"
STACK_ID = f"arn:aws:cloudformation:us-east-1:111111111111:stack/{STACK}/1"
EXECUTION = f"{EXPORT_ID}-1-0"  # the runner execution's name
EXECUTION_ARN = f"arn:aws:states:us-east-1:111111111111:execution:Runner1A2B3C4D:{EXECUTION}"
UPDATED = "2026-11-29T10:42:07Z"
SHOWN = "2026-11-29 10:42:07Z"  # UPDATED as the table shows it


def export_of(uri: str) -> str:
    return uri.rsplit("/", 1)[-1].removesuffix(".json")


def job(
    number: int, status: str, outcomes: dict[str, int] | None = None, size: int = 0
) -> dict[str, Any]:
    """A manifest job: ``outcomes`` counts read sets by outcome (FINISHED, FAILED, ...)."""
    outcomes = outcomes or {}
    read_sets = [state for state, count in outcomes.items() for _ in range(count)]
    ids = [f"{4000000000 + 1000 * number + n}" for n in range(size or len(read_sets))]
    started = status not in ("PENDING", "STARTING", "SUPERSEDED")
    return {
        "batch": f"batch#0000#{number:04d}",
        "id": JOBS[number] if started and number < len(JOBS) else None,
        "status": status,
        "readSetIds": ids,
        "readSets": [
            {"id": read_set_id, "status": state}
            for read_set_id, state in zip(ids, read_sets, strict=False)
        ],
    }


def manifest(
    status: str,
    *,
    active: bool | None,
    jobs: list[dict[str, Any]] | None = None,
    counts: tuple[int, int, int, int] = (0, 0, 0, 0),
    reason: str = "",
    arn: str | None = "",
) -> dict[str, Any]:
    """A manifest; ``active=None`` is an older one, written before exports had a runner, and
    ``arn=None`` one written before the runner's ARN was in it. With ``arn=""`` (the
    default) the runner is not checked in Step Functions."""
    selected, exported, failed, in_flight = counts
    body: dict[str, Any] = {
        "schema": 1,
        "exportId": EXPORT_ID,
        "stackId": STACK_ID,
        "constructPath": f"{STACK}/Export",
        "sequenceStoreId": STORE,
        "destination": DESTINATION,
        "generation": 0,
        "status": status,
        "statusReason": reason,
        "cancelled": False,
        "createdAt": "2026-11-29T09:00:00Z",
        "updatedAt": UPDATED,
        "run": {
            "number": 1,
            "requestType": "Create",
            "startedAt": "2026-11-29T09:00:00Z",
            "jobIds": [],
        },
        "counts": {
            "selected": selected,
            "exported": exported,
            "failed": failed,
            "inFlight": in_flight,
        },
        "jobs": jobs or [],
    }
    if active is not None:
        body["runner"] = {"execution": EXECUTION, "active": active}
        if arn is not None:
            body["runner"]["executionArn"] = arn
    return body


class Stubs:
    def __init__(self) -> None:
        credentials = {
            "region_name": "us-east-1",
            "aws_access_key_id": "test",
            "aws_secret_access_key": "test",
        }
        self.clients = cli.Clients(
            made={
                name: boto3.client(name, **credentials)  # type: ignore[call-overload]
                for name in ("cloudformation", "s3", "stepfunctions", "omics", "dynamodb")
            }
        )
        self.cloudformation = Stubber(self.clients.made["cloudformation"])
        self.s3 = Stubber(self.clients.made["s3"])
        self.stepfunctions = Stubber(self.clients.made["stepfunctions"])
        self.omics = Stubber(self.clients.made["omics"])
        self.dynamodb = Stubber(self.clients.made["dynamodb"])
        # Every DescribeExecution sent, stubbed or not (an unstubbed one would be a note).
        self.described: list[str] = []
        self.clients.made["stepfunctions"].meta.events.register(
            "before-parameter-build.sfn.DescribeExecution",
            lambda params, **_: self.described.append(params["executionArn"]),
        )

    def stack(self, outputs: dict[str, str] | None = None, status: str = "CREATE_COMPLETE") -> None:
        outputs = OUTPUTS if outputs is None else outputs
        self.cloudformation.add_response(
            "describe_stacks",
            {
                "Stacks": [
                    {
                        "StackName": STACK,
                        "StackId": STACK_ID,
                        "CreationTime": datetime(2026, 11, 29, tzinfo=UTC),
                        "StackStatus": status,
                        "Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in outputs.items()],
                    }
                ]
            },
            {"StackName": STACK},
        )

    def manifest(self, body: dict[str, Any], uri: str = MANIFEST, *, as_is: bool = False) -> None:
        """The manifest at ``uri``, as the service writes it: naming that export (and its
        runner's executions), unless ``as_is``."""
        if not as_is:
            body = json.loads(json.dumps(body).replace(EXPORT_ID, export_of(uri)))
        data = json.dumps(body).encode()
        self.s3.add_response(
            "get_object",
            {"Body": StreamingBody(io.BytesIO(data), len(data))},
            self._where(uri),
        )

    def manifest_error(self, code: str, status: int, uri: str = MANIFEST) -> None:
        self.s3.add_client_error(
            "get_object",
            service_error_code=code,
            http_status_code=status,
            expected_params=self._where(uri),
        )

    @staticmethod
    def _where(uri: str) -> dict[str, str]:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        return {"Bucket": bucket, "Key": key}

    def execution(self, status: str, arn: str = EXECUTION_ARN, export: str = EXPORT_ID) -> None:
        self.stepfunctions.add_response(
            "describe_execution",
            {
                "executionArn": arn,
                "stateMachineArn": arn.replace(":execution:", ":stateMachine:").rsplit(":", 1)[0],
                "name": arn.rsplit(":", 1)[1],
                "status": status,
                "startDate": datetime(2026, 11, 29, 9, tzinfo=UTC),
                "input": json.dumps({"exportId": export, "steps": 0}),
            },
            {"executionArn": arn},
        )

    def state(self, record: dict[str, Any] | None, export: str = EXPORT_ID) -> None:
        """The export's record in the state table (GetItem), or none."""
        item = (
            {}
            if record is None
            else {
                "Item": {
                    "pk": {"S": export},
                    "sk": {"S": "export"},
                    "body": {"S": json.dumps(record)},
                    "version": {"N": "3"},
                    "cancelled": {"BOOL": False},
                }
            }
        )
        self.dynamodb.add_response(
            "get_item",
            item,
            {
                "TableName": STATE_TABLE,
                "Key": {"pk": {"S": export}, "sk": {"S": "export"}},
                "ConsistentRead": True,
            },
        )

    def execution_error(self, code: str, status: int, message: str = "") -> None:
        self.stepfunctions.add_client_error(
            "describe_execution",
            service_error_code=code,
            service_message=message,
            http_status_code=status,
            expected_params={"executionArn": EXECUTION_ARN},
        )

    def job(self, job_id: str, status: str, read_sets: dict[str, int]) -> None:
        items = [
            {"id": f"{4000000000 + n}", "status": state}
            for state, count in read_sets.items()
            for n in range(count)
        ]
        self.omics.add_response(
            "get_read_set_export_job",
            {
                "id": job_id,
                "sequenceStoreId": STORE,
                "destination": DESTINATION,
                "status": status,
                "creationTime": datetime(2026, 11, 29, tzinfo=UTC),
                "readSets": items,
            },
            {"sequenceStoreId": STORE, "id": job_id},
        )


@pytest.fixture
def stubs() -> Iterator[Stubs]:
    made = Stubs()
    with made.cloudformation, made.s3, made.stepfunctions, made.omics, made.dynamodb:
        yield made
        made.dynamodb.assert_no_pending_responses()
        made.cloudformation.assert_no_pending_responses()
        made.s3.assert_no_pending_responses()
        made.stepfunctions.assert_no_pending_responses()
        made.omics.assert_no_pending_responses()


def run(stubs: Stubs, *argv: str, sleep: Any = None) -> tuple[int, str, str]:
    out = Console(record=True, width=200, force_terminal=False)
    err = Console(record=True, width=200, force_terminal=False, stderr=True)
    code = cli.main(
        ["status", *argv],
        clients=stubs.clients,
        console=out,
        errors=err,
        sleep=sleep or (lambda _: None),
    )
    return code, out.export_text(), err.export_text()


def rows(text: str) -> list[str]:
    """A rich table's lines with the borders gone and the spaces squeezed."""
    return [
        " ".join(line.replace("│", " ").replace("┃", " ").split()) for line in text.splitlines()
    ]


# One status


@pytest.mark.parametrize(
    ("exports", "code"),
    [
        ([("COMPLETED", False), ("COMPLETED", False)], cli.EXIT_COMPLETED),
        (
            [("COMPLETED", False), ("COMPLETED_WITH_FAILURES", False)],
            cli.EXIT_COMPLETED_WITH_FAILURES,
        ),
        ([("FAILED", False), ("COMPLETED", False)], cli.EXIT_FAILED),
        ([("CANCELLED", False), ("COMPLETED_WITH_FAILURES", False)], cli.EXIT_FAILED),
        ([("FAILED", False), ("RUNNING", True)], cli.EXIT_RUNNING),
        ([("SUBMITTED", True), ("COMPLETED", False)], cli.EXIT_RUNNING),
        # The runner writes its last manifest, still active, before it ends.
        ([("COMPLETED", True), ("COMPLETED", False)], cli.EXIT_RUNNING),
        # A runner that ended before its export did: nothing will carry it on before a deploy.
        ([("RUNNING", False), ("COMPLETED", False)], cli.EXIT_FAILED),
    ],
)
def test_exit_code_is_judged_per_export(
    stubs: Stubs, exports: list[tuple[str, bool]], code: int
) -> None:
    stubs.stack(TWO_OUTPUTS)
    # Listed by construct: Cohort, then Export.
    for (status, active), uri in zip(exports, (OTHER, MANIFEST), strict=True):
        stubs.manifest(manifest(status, active=active), uri)
    assert run(stubs, "--stack", STACK)[0] == code


def test_table_shows_each_export_with_its_counts_jobs_and_runner(stubs: Stubs) -> None:
    stubs.stack(TWO_OUTPUTS)
    running = manifest(
        "RUNNING",
        active=True,
        counts=(500, 140, 2, 58),
        jobs=[
            job(0, "COMPLETED", {"FINISHED": 100}),
            job(1, "IN_PROGRESS", {"FINISHED": 40, "FAILED": 2, "IN_PROGRESS": 58}),
            job(2, "PENDING", size=100),
            job(3, "PENDING", size=100),
            job(4, "STARTING", size=100),
            job(5, "SUPERSEDED", size=100),
        ],
    )
    failed = manifest(
        "FAILED",
        active=False,
        counts=(10, 0, 0, 0),
        reason="Read sets 4000000007 (ARCHIVED) cannot be exported.",
    )
    stubs.manifest(failed, OTHER)
    stubs.manifest(running, MANIFEST)
    code, out, _ = run(stubs, "--stack", STACK)
    assert code == cli.EXIT_RUNNING
    lines = rows(out)
    assert "export status exported failed in flight jobs runner updated" in lines
    assert f"Cohort FAILED 0/10 0 0 0/0/0 ended {SHOWN}" in lines
    assert f"Export RUNNING 140/500 2 58 1/1/3 active {SHOWN}" in lines
    assert "jobs: running/ended/not started yet" in lines
    assert "Cohort: Read sets 4000000007 (ARCHIVED) cannot be exported." in lines
    assert not any(JOBS[0] in line for line in lines)  # no job rows without --jobs


def test_jobs_adds_a_row_per_job_under_its_export(stubs: Stubs) -> None:
    stubs.stack()
    failing = job(1, "COMPLETED_WITH_FAILURES", {"FINISHED": 98, "FAILED": 2})
    failing["statusMessage"] = "2 read sets failed"
    stubs.manifest(
        manifest(
            "RUNNING",
            active=True,
            counts=(300, 198, 2, 0),
            jobs=[
                job(0, "COMPLETED", {"FINISHED": 100}),
                failing,
                job(2, "PENDING", size=100),
                job(3, "SUPERSEDED", size=100),
            ],
        )
    )
    code, out, _ = run(stubs, "--stack", STACK, "--jobs")
    assert code == cli.EXIT_RUNNING
    lines = rows(out)
    assert f"Export RUNNING 198/300 2 0 0/2/1 active {SHOWN}" in lines
    assert f"{JOBS[0]} COMPLETED 100/100 0 0" in lines
    assert f"{JOBS[1]} COMPLETED_WITH_FAILURES 98/100 2 0" in lines
    assert "(not started) PENDING 0/100 0 0" in lines
    assert not any("SUPERSEDED" in line for line in lines)
    assert f"Export job {JOBS[1]}: 2 read sets failed" in lines


# Longer than the console is wide: JSON is never wrapped.
REASON = "1 of 4 read sets failed: " + ", ".join(
    f"400000000{n} (FAILED: no access)" for n in range(9)
)


def test_json_output_for_scripts(stubs: Stubs) -> None:
    stubs.stack()
    stubs.manifest(
        manifest(
            "COMPLETED_WITH_FAILURES",
            active=False,
            counts=(4, 3, 1, 0),
            jobs=[job(0, "COMPLETED_WITH_FAILURES", {"FINISHED": 3, "FAILED": 1})],
            reason=REASON,
        )
    )
    code, out, _ = run(stubs, "--stack", STACK, "--json")
    assert code == cli.EXIT_COMPLETED_WITH_FAILURES
    assert json.loads(out) == {
        "status": "COMPLETED_WITH_FAILURES",
        "exitCode": cli.EXIT_COMPLETED_WITH_FAILURES,
        "exports": [
            {
                "construct": "Export",
                "exportId": "rse-4caa514f962e52cf26decdf9b917",
                "status": "COMPLETED_WITH_FAILURES",
                "statusReason": REASON,
                "cancelled": False,
                "counts": {
                    "activating": 0,
                    "selected": 4,
                    "exported": 3,
                    "failed": 1,
                    "inFlight": 0,
                },
                "runner": {"execution": EXECUTION, "active": False, "executionStatus": None},
                "stalled": False,
                "jobs": {"running": 0, "ended": 1, "pending": 0, "total": 1},
                "manifestUri": MANIFEST,
                "updatedAt": UPDATED,
                "sequenceStoreId": STORE,
                "destination": DESTINATION,
                "run": {"number": 1, "requestType": "Create", "startedAt": "2026-11-29T09:00:00Z"},
                "exitCode": cli.EXIT_COMPLETED_WITH_FAILURES,
            }
        ],
    }


def test_json_with_jobs_lists_each_job(stubs: Stubs) -> None:
    stubs.stack()
    stubs.manifest(
        manifest(
            "RUNNING",
            active=True,
            counts=(200, 40, 0, 60),
            jobs=[
                job(0, "IN_PROGRESS", {"FINISHED": 40, "IN_PROGRESS": 60}),
                job(1, "PENDING", size=100),
            ],
        )
    )
    code, out, _ = run(stubs, "--stack", STACK, "--json", "--jobs")
    assert code == cli.EXIT_RUNNING
    report = json.loads(out)
    assert report["status"] == "RUNNING"
    assert report["exports"][0]["jobs"] == {"running": 1, "ended": 0, "pending": 1, "total": 2}
    assert report["exports"][0]["jobList"] == [
        {
            "batch": "batch#0000#0000",
            "id": JOBS[0],
            "status": "IN_PROGRESS",
            "statusMessage": "",
            "readSets": {"total": 100, "exported": 40, "failed": 0, "inFlight": 60},
            "creationTime": None,
            "completionTime": None,
        },
        {
            "batch": "batch#0000#0001",
            "id": None,
            "status": "PENDING",
            "statusMessage": "",
            "readSets": {"total": 100, "exported": 0, "failed": 0, "inFlight": 0},
            "creationTime": None,
            "completionTime": None,
        },
    ]


def test_a_runner_that_ended_before_its_export_is_reported(stubs: Stubs) -> None:
    stubs.stack()
    stubs.manifest(manifest("RUNNING", active=False, counts=(200, 100, 0, 0)))
    code, out, _ = run(stubs, "--stack", STACK)
    assert code == cli.EXIT_FAILED
    assert f"Export RUNNING 100/200 0 0 0/0/0 ended {SHOWN}" in rows(out)
    assert "Export: its runner ended while the export was RUNNING" in out


@pytest.mark.parametrize(
    ("status", "jobs", "code"),
    [
        ("COMPLETED", [job(0, "COMPLETED", {"FINISHED": 2})], cli.EXIT_COMPLETED),
        ("FAILED", [job(0, "FAILED", {"FAILED": 2})], cli.EXIT_FAILED),
        # Older status names are still under way.
        ("IN_PROGRESS", [job(0, "COMPLETED", {"FINISHED": 2})], cli.EXIT_RUNNING),
        ("SELECTING", [], cli.EXIT_RUNNING),
        # A final status with a job still running: the job can still change.
        ("COMPLETED", [job(0, "IN_PROGRESS", {"IN_PROGRESS": 2})], cli.EXIT_RUNNING),
    ],
)
def test_older_manifest_without_a_runner(
    stubs: Stubs, status: str, jobs: list[dict[str, Any]], code: int
) -> None:
    stubs.stack()
    stubs.manifest(manifest(status, active=None, jobs=jobs, counts=(2, 0, 0, 0)))
    code_seen, out, _ = run(stubs, "--stack", STACK)
    assert code_seen == code
    runner = "active" if code == cli.EXIT_RUNNING else "ended"
    assert any(line.startswith(f"Export {status} ") and runner in line for line in rows(out))


# Watching


def test_watch_follows_the_runner_not_the_jobs(stubs: Stubs) -> None:
    """Between waves every started job has ended but batches wait: the export goes on."""
    stubs.stack()
    wave = [job(0, "IN_PROGRESS", {"IN_PROGRESS": 100}), job(1, "PENDING", size=100)]
    between = [job(0, "COMPLETED", {"FINISHED": 100}), job(1, "PENDING", size=100)]
    second = [job(0, "COMPLETED", {"FINISHED": 100}), job(1, "IN_PROGRESS", {"FINISHED": 50})]
    done = [job(0, "COMPLETED", {"FINISHED": 100}), job(1, "COMPLETED", {"FINISHED": 100})]
    stubs.manifest(manifest("RUNNING", active=True, jobs=wave, counts=(200, 0, 0, 100)))
    stubs.manifest(manifest("RUNNING", active=True, jobs=between, counts=(200, 100, 0, 0)))
    stubs.manifest(manifest("RUNNING", active=True, jobs=second, counts=(200, 150, 0, 50)))
    # The export is done but its runner has not ended yet: one more round.
    stubs.manifest(manifest("COMPLETED", active=True, jobs=done, counts=(200, 200, 0, 0)))
    stubs.manifest(manifest("COMPLETED", active=False, jobs=done, counts=(200, 200, 0, 0)))
    slept: list[float] = []
    code, out, _ = run(stubs, "--stack", STACK, "--watch", "--interval", "30", sleep=slept.append)
    assert code == cli.EXIT_COMPLETED
    assert slept == [30.0, 30.0, 30.0, 30.0]
    assert "200/200" in out
    assert "0 export(s) running, 0 job(s) running" in out
    lines = rows(out)
    assert (
        "Export: RUNNING, 0/200 read sets exported, 0 failed, 1 job(s) running, runner active"
        in lines
    )
    assert (
        "Export: COMPLETED, 200/200 read sets exported, 0 failed, 0 job(s) running, runner ended"
        in lines
    )
    # Between the waves: every started job had ended, the runner carried on.
    assert (
        "Export: RUNNING, 100/200 read sets exported, 0 failed, 0 job(s) running, runner active"
        in lines
    )
    assert f"Export COMPLETED 200/200 0 0 0/2/0 ended {SHOWN}" in lines


def test_watch_waits_for_a_manifest_not_written_yet(stubs: Stubs) -> None:
    stubs.stack(TWO_OUTPUTS)
    ended = manifest("COMPLETED", active=False, counts=(10, 10, 0, 0))
    stubs.manifest(ended, OTHER)
    stubs.manifest_error("AccessDenied", 403)  # no s3:ListBucket: S3 says 403 for no key
    stubs.manifest(ended, OTHER)
    stubs.manifest_error("NoSuchKey", 404)
    stubs.manifest(ended, OTHER)
    stubs.manifest(manifest("SUBMITTED", active=True))
    stubs.manifest(ended, OTHER)
    stubs.manifest(manifest("COMPLETED", active=False, counts=(5, 5, 0, 0)))
    slept: list[float] = []
    code, out, _ = run(stubs, "--stack", STACK, "--watch", sleep=slept.append)
    assert code == cli.EXIT_COMPLETED
    assert slept == [30.0, 30.0, 30.0]
    assert f"Export: {cli.WAITING}" in rows(out)
    assert (
        "Export: SUBMITTED, 0/0 read sets exported, 0 failed, 0 job(s) running, runner active"
        in rows(out)
    )
    assert "15/15" in out


def test_watch_fails_when_a_manifest_read_before_is_denied(stubs: Stubs) -> None:
    stubs.stack()
    stubs.manifest(manifest("RUNNING", active=True))
    stubs.manifest_error("AccessDenied", 403)
    code, _, err = run(stubs, "--stack", STACK, "--watch")
    assert code == cli.EXIT_ACCESS
    assert "needs s3:GetObject." in err


def test_watch_with_json_keeps_stdout_for_the_json(stubs: Stubs) -> None:
    stubs.stack()
    stubs.manifest(manifest("RUNNING", active=True, counts=(2, 1, 0, 1)))
    stubs.manifest(manifest("FAILED", active=False, counts=(2, 1, 1, 0), reason="boom"))
    code, out, err = run(stubs, "--stack", STACK, "--watch", "--json")
    assert code == cli.EXIT_FAILED
    assert json.loads(out)["exports"][0]["statusReason"] == "boom"
    assert "2/2" in err


def test_ctrl_c_leaves_the_exports_running(stubs: Stubs) -> None:
    stubs.stack()
    stubs.manifest(manifest("RUNNING", active=True))

    def interrupt(_: float) -> None:
        raise KeyboardInterrupt

    code, _, err = run(stubs, "--stack", STACK, "--watch", sleep=interrupt)
    assert code == cli.EXIT_RUNNING
    assert "stopped; the exports keep running" in err


# The runner's execution, from Step Functions


def test_a_stopped_runner_ends_the_watch_and_the_export_is_stalled(stubs: Stubs) -> None:
    """Stopped by hand: its last manifest says active for ever; Step Functions says ABORTED."""
    stubs.stack()
    running = manifest("RUNNING", active=True, counts=(200, 100, 0, 100), arn=EXECUTION_ARN)
    stubs.manifest(running)
    stubs.execution("RUNNING")
    stubs.manifest(running)
    stubs.execution("ABORTED")
    slept: list[float] = []
    code, out, _ = run(stubs, "--stack", STACK, "--watch", sleep=slept.append)
    assert code == cli.EXIT_FAILED
    assert slept == [30.0]  # it stopped waiting at once
    lines = rows(out)
    assert (
        "Export: RUNNING, 100/200 read sets exported, 0 failed, 0 job(s) running, runner active"
        in lines
    )
    assert (
        "Export: RUNNING, 100/200 read sets exported, 0 failed, 0 job(s) running, "
        "runner stopped (ABORTED)" in lines
    )
    assert "0 export(s) running" in out
    assert f"Export RUNNING 100/200 0 100 0/0/0 stopped (ABORTED) {SHOWN}" in lines
    note = (
        f"Export: its runner execution {EXECUTION} is ABORTED; nothing carries the export now. "
        "The next deploy that changes its properties, or a deploy in progress, resumes it and "
        "skips what completed."
    )
    assert note in " ".join(out.split())
    assert "its runner ended while" not in out  # the stalled note says it instead
    assert stubs.described == [EXECUTION_ARN, EXECUTION_ARN]


def test_a_stalled_export_in_json(stubs: Stubs) -> None:
    stubs.stack()
    stubs.manifest(manifest("RUNNING", active=True, arn=EXECUTION_ARN))
    stubs.execution("FAILED")
    code, out, err = run(stubs, "--stack", STACK, "--json")
    assert code == cli.EXIT_FAILED
    report = json.loads(out)
    assert report["status"] == "FAILED"
    export = report["exports"][0]
    assert export["runner"] == {
        "execution": EXECUTION,
        "active": False,
        "executionStatus": "FAILED",
    }
    assert export["stalled"] is True
    assert export["exitCode"] == cli.EXIT_FAILED
    assert err == ""


@pytest.mark.parametrize(
    ("status", "execution", "code"),
    [
        # Its status is final: it keeps its exit code.
        ("COMPLETED", "SUCCEEDED", cli.EXIT_COMPLETED),
        ("COMPLETED_WITH_FAILURES", "ABORTED", cli.EXIT_COMPLETED_WITH_FAILURES),
        ("SUBMITTED", "TIMED_OUT", cli.EXIT_FAILED),
    ],
)
def test_a_stalled_export_keeps_a_final_status_exit_code(
    stubs: Stubs, status: str, execution: str, code: int
) -> None:
    stubs.stack()
    stubs.manifest(manifest(status, active=True, arn=EXECUTION_ARN))
    stubs.execution(execution)
    code_seen, out, _ = run(stubs, "--stack", STACK)
    assert code_seen == code
    assert f"stopped ({execution})" in out
    assert f"Export: its runner execution {EXECUTION} is {execution}" in out


def test_a_running_runner_keeps_the_watch_going(stubs: Stubs) -> None:
    stubs.stack()
    running = manifest("RUNNING", active=True, counts=(2, 1, 0, 1), arn=EXECUTION_ARN)
    stubs.manifest(running)
    stubs.execution("RUNNING")
    stubs.manifest(running)
    stubs.execution("PENDING_REDRIVE")  # being redriven by hand: it carries on
    stubs.manifest(manifest("COMPLETED", active=False, counts=(2, 2, 0, 0), arn=EXECUTION_ARN))
    slept: list[float] = []
    code, out, _ = run(stubs, "--stack", STACK, "--watch", sleep=slept.append)
    assert code == cli.EXIT_COMPLETED
    assert slept == [30.0, 30.0]
    assert "stopped" not in out
    assert f"Export COMPLETED 2/2 0 0 0/0/0 ended {SHOWN}" in rows(out)
    # Checked once a round while active; not once the manifest says it ended.
    assert stubs.described == [EXECUTION_ARN, EXECUTION_ARN]


def test_a_denied_check_is_a_note_not_an_error(stubs: Stubs) -> None:
    stubs.stack()
    stubs.manifest(manifest("RUNNING", active=True, counts=(2, 1, 0, 1), arn=EXECUTION_ARN))
    stubs.execution_error("AccessDeniedException", 400, "not authorized")
    code, out, err = run(stubs, "--stack", STACK)
    assert code == cli.EXIT_RUNNING  # the manifest's view
    assert f"Export RUNNING 1/2 0 1 0/0/0 active {SHOWN}" in rows(out)
    assert (
        f"Export: could not check runner execution {EXECUTION}: AccessDeniedException: "
        "not authorized; needs states:DescribeExecution" in " ".join(out.split())
    )
    assert err == ""


def test_a_denied_check_is_noted_once_and_not_asked_again_while_watching(stubs: Stubs) -> None:
    stubs.stack()
    running = manifest("RUNNING", active=True, counts=(2, 1, 0, 1), arn=EXECUTION_ARN)
    stubs.manifest(running)
    stubs.execution_error("AccessDeniedException", 400)
    stubs.manifest(running)
    stubs.manifest(manifest("COMPLETED", active=False, counts=(2, 2, 0, 0), arn=EXECUTION_ARN))
    code, out, err = run(stubs, "--stack", STACK, "--watch", "--json")
    assert code == cli.EXIT_COMPLETED
    assert json.loads(out)["exports"][0]["runner"]["executionStatus"] is None
    note = "could not check runner execution"
    assert err.count(note) == 1  # in the watch's log, on stderr
    assert "needs states:DescribeExecution" in err
    assert stubs.described == [EXECUTION_ARN]


def test_a_failed_check_keeps_the_manifests_view_and_is_tried_again(stubs: Stubs) -> None:
    stubs.stack()
    running = manifest("RUNNING", active=True, counts=(2, 1, 0, 1), arn=EXECUTION_ARN)
    stubs.manifest(running)
    stubs.execution_error("ExecutionDoesNotExist", 400, "gone")
    stubs.manifest(running)
    stubs.execution_error("ExecutionDoesNotExist", 400, "gone")
    stubs.manifest(running)
    stubs.execution("ABORTED")
    slept: list[float] = []
    code, out, _ = run(stubs, "--stack", STACK, "--watch", sleep=slept.append)
    assert code == cli.EXIT_FAILED
    assert slept == [30.0, 30.0]
    text = " ".join(out.split())
    note = f"Export: could not check runner execution {EXECUTION}: ExecutionDoesNotExist: gone"
    assert text.count(note) == 2  # once in the log, once under the table
    assert "needs states:DescribeExecution" not in text
    assert "stopped (ABORTED)" in text


def test_a_check_failure_with_json_goes_to_stderr(stubs: Stubs) -> None:
    stubs.stack()
    stubs.manifest(manifest("RUNNING", active=True, arn=EXECUTION_ARN))
    stubs.execution_error("ThrottlingException", 400, "Rate exceeded")
    code, out, err = run(stubs, "--stack", STACK, "--json")
    assert code == cli.EXIT_RUNNING
    report = json.loads(out)
    assert report["exports"][0]["runner"] == {
        "execution": EXECUTION,
        "active": True,
        "executionStatus": None,
    }
    assert report["exports"][0]["stalled"] is False
    assert "ThrottlingException: Rate exceeded" in err


@pytest.mark.parametrize(
    "body",
    [
        manifest("RUNNING", active=False, arn=EXECUTION_ARN),  # ended: nothing to check
        manifest("RUNNING", active=True, arn=""),  # no execution started yet
        manifest("RUNNING", active=True, arn=None),  # an older manifest, without the ARN
        manifest("RUNNING", active=None),  # older still, without a runner
    ],
)
def test_no_check_without_an_active_runner_and_its_arn(stubs: Stubs, body: dict[str, Any]) -> None:
    stubs.stack()
    stubs.manifest(body)
    code, out, _ = run(stubs, "--stack", STACK, "--json")
    assert stubs.described == []
    export = json.loads(out)["exports"][0]
    assert export["stalled"] is False
    assert export["runner"]["executionStatus"] is None
    assert code == (
        cli.EXIT_FAILED if body.get("runner", {}).get("active") is False else cli.EXIT_RUNNING
    )


# One job, from HealthOmics


def test_one_job_without_a_stack(stubs: Stubs) -> None:
    stubs.job(JOBS[0], "COMPLETED", {"FINISHED": 1})
    code, out, _ = run(stubs, "--job-id", JOBS[0], "--sequence-store-id", STORE)
    assert code == cli.EXIT_COMPLETED
    assert f"{JOBS[0]} COMPLETED 1/1 0 0 {DESTINATION}" in rows(out)


@pytest.mark.parametrize(
    ("status", "code"),
    [
        ("COMPLETED_WITH_FAILURES", cli.EXIT_COMPLETED_WITH_FAILURES),
        ("CANCELLED", cli.EXIT_FAILED),
        ("CANCELLING", cli.EXIT_RUNNING),
    ],
)
def test_one_job_exit_codes(stubs: Stubs, status: str, code: int) -> None:
    stubs.job(JOBS[0], status, {"FINISHED": 1})
    assert run(stubs, "--job-id", JOBS[0], "--sequence-store-id", STORE)[0] == code


def test_one_job_json(stubs: Stubs) -> None:
    stubs.job(JOBS[0], "COMPLETED_WITH_FAILURES", {"FINISHED": 3, "FAILED": 1})
    code, out, _ = run(stubs, "--job-id", JOBS[0], "--sequence-store-id", STORE, "--json")
    assert code == cli.EXIT_COMPLETED_WITH_FAILURES
    assert json.loads(out) == {
        "status": "COMPLETED_WITH_FAILURES",
        "exitCode": cli.EXIT_COMPLETED_WITH_FAILURES,
        "jobs": [
            {
                "id": JOBS[0],
                "sequence_store_id": STORE,
                "status": "COMPLETED_WITH_FAILURES",
                "destination": DESTINATION,
                "read_sets": 4,
                "finished": 3,
                "failed": 1,
                "in_progress": 0,
                "status_message": "",
                "construct": "",
            }
        ],
    }


def test_watch_one_job_until_it_ends(stubs: Stubs) -> None:
    stubs.job(JOBS[0], "SUBMITTED", {"NOT_STARTED": 4})
    stubs.job(JOBS[0], "IN_PROGRESS", {"FINISHED": 2, "IN_PROGRESS": 2})
    stubs.job(JOBS[0], "COMPLETED", {"FINISHED": 4})
    slept: list[float] = []
    code, out, _ = run(
        stubs,
        *("--job-id", JOBS[0], "--sequence-store-id", STORE, "--watch", "--interval", "30"),
        sleep=slept.append,
    )
    assert code == cli.EXIT_COMPLETED
    assert slept == [30.0, 30.0]
    assert "4/4" in out


def test_ctrl_c_leaves_the_job_running(stubs: Stubs) -> None:
    stubs.job(JOBS[0], "IN_PROGRESS", {"IN_PROGRESS": 1})

    def interrupt(_: float) -> None:
        raise KeyboardInterrupt

    code, _, err = run(
        stubs, "--job-id", JOBS[0], "--sequence-store-id", STORE, "--watch", sleep=interrupt
    )
    assert code == cli.EXIT_RUNNING
    assert "stopped; the export job keeps running" in err


# Errors


def test_stack_not_found(stubs: Stubs) -> None:
    stubs.cloudformation.add_client_error(
        "describe_stacks",
        service_error_code="ValidationError",
        service_message=f"Stack with id {STACK} does not exist",
        http_status_code=400,
    )
    code, _, err = run(stubs, "--stack", STACK)
    assert code == cli.EXIT_ACCESS
    assert f"Stack {STACK} not found in this Region" in err
    assert "check --region" in err


def test_stack_without_export_outputs(stubs: Stubs) -> None:
    stubs.stack({"BucketName": "something"})
    code, _, err = run(stubs, "--stack", STACK)
    assert code == cli.EXIT_ACCESS
    assert f"Stack {STACK} has no ReadSetExport outputs" in err
    assert "outputs appear" not in err


def test_stack_being_created_has_no_outputs_yet(stubs: Stubs) -> None:
    stubs.stack({}, status="CREATE_IN_PROGRESS")
    code, _, err = run(stubs, "--stack", STACK)
    assert code == cli.EXIT_ACCESS
    message = " ".join(err.split())  # the console wraps long lines
    assert "It is CREATE_IN_PROGRESS: outputs appear when the deploy has finished." in message


def test_manifest_not_written_yet_without_watch(stubs: Stubs) -> None:
    stubs.stack()
    stubs.manifest_error("NoSuchKey", 404)
    code, _, err = run(stubs, "--stack", STACK)
    assert code == cli.EXIT_ACCESS
    assert f"The manifest {MANIFEST} does not exist yet" in " ".join(err.split())


@pytest.mark.parametrize(
    ("stubber", "operation", "action", "argv"),
    [
        ("cloudformation", "describe_stacks", "cloudformation:DescribeStacks", ["--stack", STACK]),
        ("s3", "get_object", "s3:GetObject", ["--stack", STACK]),
        (
            "omics",
            "get_read_set_export_job",
            "omics:GetReadSetExportJob",
            ["--job-id", JOBS[0], "--sequence-store-id", STORE],
        ),
    ],
)
def test_access_denied_names_the_missing_action(
    stubs: Stubs, stubber: str, operation: str, action: str, argv: list[str]
) -> None:
    if stubber == "s3":
        stubs.stack()
    code_name = "AccessDeniedException" if stubber == "omics" else "AccessDenied"
    getattr(stubs, stubber).add_client_error(
        operation, service_error_code=code_name, http_status_code=403
    )
    code, _, err = run(stubs, *argv)
    assert code == cli.EXIT_ACCESS
    assert f"needs {action}." in err


def test_no_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    err = Console(record=True, width=200, stderr=True)
    code = cli.main(
        ["status", "--stack", STACK, "--region", "us-east-1"], console=Console(), errors=err
    )
    assert code == cli.EXIT_ACCESS
    assert "No AWS credentials found" in err.export_text()


def run_offline(*argv: str) -> tuple[int, str, str]:
    """The command with no AWS client at all: for errors found before any call."""
    out = Console(record=True, width=140, force_terminal=False)
    err = Console(record=True, width=140, force_terminal=False, stderr=True)
    code = cli.main(["status", *argv], console=out, errors=err)
    return code, out.export_text(), err.export_text()


USAGE_ERRORS = [
    ([], "give --stack, or --job-id with --sequence-store-id"),
    (["--stack", STACK, "--job-id", JOBS[0]], "give --stack, or --job-id with --sequence-store-id"),
    (["--job-id", JOBS[0]], "--job-id needs --sequence-store-id"),
    (["--job-id", JOBS[0], "--sequence-store-id", STORE, "--jobs"], "--jobs goes with --stack"),
    (["--stak", STACK], f"unrecognized arguments: --stak {STACK}"),
    (["--stack", STACK, "--interval", "soon"], "argument --interval: invalid float value: 'soon'"),
]


@pytest.mark.parametrize(("argv", "message"), USAGE_ERRORS)
def test_usage_errors_show_the_status_usage(argv: list[str], message: str) -> None:
    code, out, err = run_offline(*argv)
    assert code == cli.EXIT_USAGE
    assert out == ""
    assert err.startswith("usage: cdk-omics-export status ")
    assert err.rstrip().endswith(f"cdk-omics-export status: error: {message}")


def test_no_command_shows_the_top_level_usage() -> None:
    err = Console(record=True, width=140, force_terminal=False, stderr=True)
    assert cli.main([], console=Console(), errors=err) == cli.EXIT_USAGE
    text = err.export_text()
    assert text.startswith("usage: cdk-omics-export [-h] {status} ...")
    assert "the following arguments are required: command" in text


@pytest.mark.parametrize(("argv", "message"), USAGE_ERRORS)
def test_json_usage_errors_are_one_json_object_on_stdout(argv: list[str], message: str) -> None:
    code, out, err = run_offline(*argv, "--json")
    assert code == cli.EXIT_USAGE
    assert json.loads(out) == {"error": message, "exitCode": cli.EXIT_USAGE}
    assert err == ""


def test_json_errors_keep_the_exit_code(stubs: Stubs) -> None:
    stubs.stack({"BucketName": "something"})
    code, out, err = run(stubs, "--stack", STACK, "--json")
    assert code == cli.EXIT_ACCESS
    assert json.loads(out) == {
        "error": f"Stack {STACK} has no ReadSetExport outputs (no output named <construct>"
        "ManifestUri<hash>); is it a stack with a ReadSetExport construct?",
        "exitCode": cli.EXIT_ACCESS,
    }
    assert err == ""


def test_json_ctrl_c_is_reported_as_json(stubs: Stubs) -> None:
    stubs.stack()
    stubs.manifest(manifest("RUNNING", active=True))

    def interrupt(_: float) -> None:
        raise KeyboardInterrupt

    code, out, _ = run(stubs, "--stack", STACK, "--watch", "--json", sleep=interrupt)
    assert code == cli.EXIT_RUNNING
    assert json.loads(out) == {
        "error": "stopped; the exports keep running",
        "exitCode": cli.EXIT_RUNNING,
    }


def test_help_describes_the_exports_and_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["status", "--help"])
    text = capsys.readouterr().out
    for code in (0, 2, 3, 10, 11, 12):
        assert f"\n  {code} " in text
    assert "runner" in text
    assert "--jobs" in text


def test_an_export_activating_archived_read_sets_says_how_many_and_lists_activations(
    stubs: Stubs,
) -> None:
    stubs.stack()
    body = manifest("ACTIVATING", active=True, counts=(40, 0, 0, 40))
    body["counts"]["activating"] = 20
    body["activations"] = [
        {
            "key": "activation#0001#0000",
            "id": "7000000001",
            "status": "IN_PROGRESS",
            "readSetIds": [str(4000000000 + n) for n in range(20)],
            "sources": [
                {"readSetId": str(4000000000 + n), "status": "FINISHED" if n < 5 else "IN_PROGRESS"}
                for n in range(20)
            ],
        }
    ]
    stubs.manifest(body)
    code, out, _ = run(stubs, "--stack", STACK, "--jobs")
    assert code == cli.EXIT_RUNNING
    lines = rows(out)
    assert f"Export ACTIVATING 0/40 0 40 (20 activating) 0/0/0 active {SHOWN}" in lines
    assert "7000000001 (activation) IN_PROGRESS 5/20 active 0 15" in lines
    stubs.stack()
    stubs.manifest(body)
    code, out, _ = run(stubs, "--stack", STACK, "--json", "--jobs")
    (listed,) = json.loads(out)["exports"][0]["activationList"]
    assert (listed["id"], listed["status"], len(listed["sources"])) == (
        "7000000001",
        "IN_PROGRESS",
        20,
    )


# Verifying the manifest


def record(status: str, run: int = 1, stack_id: str = STACK_ID) -> dict[str, Any]:
    """The export's record in the state table, as far as the command reads it."""
    return {"exportId": EXPORT_ID, "stackId": stack_id, "status": status, "run": {"number": run}}


def mismatch(stubs: Stubs, body: dict[str, Any], **outputs: str) -> tuple[int, str, str]:
    stubs.stack({**OUTPUTS, **outputs})
    stubs.manifest(body, as_is=True)
    return run(stubs, "--stack", STACK)


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (
            {"exportId": "rse-0d1e2f3a4b5c6d7e8f9a0b1c2d3e"},
            f"its exportId 'rse-0d1e2f3a4b5c6d7e8f9a0b1c2d3e' is not '{EXPORT_ID}', the export "
            "the stack's output names",
        ),
        ({"stackId": STACK_ID + "0"}, f"its stackId '{STACK_ID}0' is not '{STACK_ID}'"),
        ({"exportId": None}, f"its exportId None is not '{EXPORT_ID}'"),
        (
            {"run": {"number": 2}},
            f"its runner execution '{EXECUTION}' is not one of run 2 of {EXPORT_ID}",
        ),
    ],
)
def test_a_manifest_that_is_not_the_exports_is_not_reported(
    stubs: Stubs, change: dict[str, Any], said: str
) -> None:
    body = {**manifest("COMPLETED", active=False, counts=(2, 2, 0, 0)), **change}
    code, out, _ = mismatch(stubs, body)
    assert code == cli.EXIT_MISMATCH
    assert "Export MISMATCH" in rows(out)
    assert "2/2" not in out  # nothing the manifest says
    assert said in " ".join(out.split())
    assert "It is not the service's record of this export, and nothing it says is reported." in (
        " ".join(out.split())
    )


def test_a_manifest_naming_another_runner_is_not_reported(stubs: Stubs) -> None:
    other = f"arn:aws:states:us-east-1:111111111111:execution:Elsewhere:{EXECUTION}"
    code, out, _ = mismatch(stubs, manifest("RUNNING", active=True, arn=other), **SERVICE_OUTPUTS)
    assert code == cli.EXIT_MISMATCH
    assert f"its runner execution ARN '{other}' is not an execution of the stack's runner " in (
        " ".join(out.split())
    )
    assert stubs.described == []  # not asked about: it is not the stack's


def test_a_runner_execution_of_another_export_is_a_mismatch(stubs: Stubs) -> None:
    stubs.stack(OUTPUTS)
    stubs.manifest(manifest("RUNNING", active=True, arn=EXECUTION_ARN))
    stubs.execution("RUNNING", export="rse-0d1e2f3a4b5c6d7e8f9a0b1c2d3e")
    code, out, _ = run(stubs, "--stack", STACK, "--json")
    assert code == cli.EXIT_MISMATCH
    report = json.loads(out)
    assert report["status"] == "MISMATCH"
    (export,) = report["exports"]
    assert export["mismatches"] == [
        f"its runner execution {EXECUTION} carries export 'rse-0d1e2f3a4b5c6d7e8f9a0b1c2d3e', "
        f"not '{EXPORT_ID}'"
    ]
    assert "counts" not in export


def test_the_manifest_is_checked_against_the_state_table(stubs: Stubs) -> None:
    stubs.stack({**OUTPUTS, **SERVICE_OUTPUTS})
    stubs.manifest(manifest("COMPLETED", active=False, counts=(2, 2, 0, 0)))
    stubs.state(record("COMPLETED"))
    code, out, _ = run(stubs, "--stack", STACK)
    assert code == cli.EXIT_COMPLETED
    assert "Export COMPLETED 2/2 0 0 0/0/0 ended" in " ".join(rows(out))


@pytest.mark.parametrize(
    ("manifest_status", "manifest_run", "state", "said"),
    [
        # The manifest is written after the record: it never leads it.
        ("COMPLETED", 1, record("RUNNING"), "it says COMPLETED; the state table "),
        ("COMPLETED", 2, record("COMPLETED"), "it claims run 2; the state table "),
        ("COMPLETED", 1, None, f"the state table {STATE_TABLE} has no record of export"),
        ("RUNNING", 1, record("RUNNING", stack_id=STACK_ID + "0"), "its stackId is not the one"),
    ],
)
def test_a_manifest_the_state_table_contradicts_is_not_reported(
    stubs: Stubs,
    manifest_status: str,
    manifest_run: int,
    state: dict[str, Any] | None,
    said: str,
) -> None:
    body = manifest(manifest_status, active=False)
    body["run"]["number"] = manifest_run
    body["runner"]["execution"] = f"{EXPORT_ID}-{manifest_run}-0"
    stubs.stack({**OUTPUTS, **SERVICE_OUTPUTS})
    stubs.manifest(body)
    stubs.state(state)
    code, out, _ = run(stubs, "--stack", STACK)
    assert code == cli.EXIT_MISMATCH
    assert said in " ".join(out.split())


def test_a_manifest_behind_the_state_is_reported_with_a_note(stubs: Stubs) -> None:
    """A running export's manifest lags its record (a later deploy's run began): no mismatch."""
    stubs.stack({**OUTPUTS, **SERVICE_OUTPUTS})
    stubs.manifest(manifest("RUNNING", active=False))
    stubs.state(record("COMPLETED", run=2))
    code, out, _ = run(stubs, "--stack", STACK)
    assert code == cli.EXIT_FAILED  # its runner ended while it was RUNNING
    assert "its manifest is of run 1; the state is at run 2 (a later deploy)" in (
        " ".join(out.split())
    )


def test_a_state_table_the_caller_cannot_read_is_a_note_and_not_asked_again(
    stubs: Stubs,
) -> None:
    stubs.stack({**OUTPUTS, **SERVICE_OUTPUTS})
    stubs.manifest(manifest("COMPLETED", active=False, counts=(2, 2, 0, 0)))
    stubs.dynamodb.add_client_error(
        "get_item", service_error_code="AccessDeniedException", http_status_code=400
    )
    code, out, _ = run(stubs, "--stack", STACK)
    assert code == cli.EXIT_COMPLETED  # the manifest's own checks passed; its view stands
    assert (
        f"Export: could not check the manifest against the state table {STATE_TABLE}: "
        "AccessDeniedException; needs dynamodb:GetItem (and kms:Decrypt on the service's key)"
    ) in " ".join(out.split())


@pytest.mark.parametrize("package", ["boto3", "botocore", "rich"])
@pytest.mark.parametrize("json_output", [False, True])
def test_without_the_cli_extra_the_command_says_what_to_install(
    package: str, json_output: bool
) -> None:
    """The console script in a Python without boto3, botocore or rich (as after `pip install
    cdk-omics-export`, without `[cli]`): a message naming the extra, and its exit code."""
    import subprocess
    import sys

    argv = ["cdk-omics-export", "status", "--stack", "Exports", *(["--json"] * json_output)]
    script = (
        f"import sys; sys.modules[{package!r}] = None; sys.argv = {argv!r}\n"
        "from cdk_omics_export.cli import run\nrun()"
    )
    ran = subprocess.run(
        [sys.executable, "-c", script], check=False, capture_output=True, text=True
    )
    assert ran.returncode == cli.EXIT_MISSING_EXTRA == 4, ran.stderr
    message = (
        f"cdk-omics-export needs the cli extra, and {package} is not installed: "
        "pip install 'cdk-omics-export[cli]'"
    )
    if json_output:
        assert json.loads(ran.stdout) == {"error": message, "exitCode": 4}
        assert ran.stderr == ""
    else:
        assert ran.stderr == f"error: {message}\n"
        assert ran.stdout == ""


def test_the_exit_codes_in_help_name_the_missing_extra() -> None:
    assert "4   the cli extra is not installed: pip install 'cdk-omics-export[cli]'" in (
        cli.commands.EXIT_CODES
    )
