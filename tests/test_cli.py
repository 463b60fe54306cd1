"""`cdk-omics-export status`, with CloudFormation, S3 and HealthOmics stubbed (no network)."""

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
JOBS = ["5000000001", "5000000002"]
MANIFEST = "s3://export-bucket/exports/cdk-omics-export/4caa514f962e52cf26decdf9b917a601.json"
DESTINATION = "s3://export-bucket/exports/"


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
                for name in ("cloudformation", "s3", "omics")
            }
        )
        self.cloudformation = Stubber(self.clients.made["cloudformation"])
        self.s3 = Stubber(self.clients.made["s3"])
        self.omics = Stubber(self.clients.made["omics"])

    def stack(self, outputs: dict[str, str] | None = None) -> None:
        outputs = (
            {"ExportManifestUriA51BFD51": MANIFEST, "ExportJobId5605F428": JOBS[0]}
            if (outputs is None)
            else outputs
        )
        self.cloudformation.add_response(
            "describe_stacks",
            {
                "Stacks": [
                    {
                        "StackName": STACK,
                        "CreationTime": datetime(2026, 11, 29, tzinfo=UTC),
                        "StackStatus": "CREATE_COMPLETE",
                        "Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in outputs.items()],
                    }
                ]
            },
            {"StackName": STACK},
        )

    def manifest(self, jobs: list[str]) -> None:
        body = json.dumps(
            {
                "sequenceStoreId": STORE,
                "jobs": [{"batch": n, "id": j, "status": "SUBMITTED"} for n, j in enumerate(jobs)],
            }
        ).encode()
        self.s3.add_response(
            "get_object",
            {"Body": StreamingBody(io.BytesIO(body), len(body))},
            {"Bucket": "export-bucket", "Key": MANIFEST.split("export-bucket/")[1]},
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
    with made.cloudformation, made.s3, made.omics:
        yield made
        made.cloudformation.assert_no_pending_responses()
        made.s3.assert_no_pending_responses()
        made.omics.assert_no_pending_responses()


def run(stubs: Stubs, *argv: str, sleep: Any = None) -> tuple[int, str, str]:
    out = Console(record=True, width=140, force_terminal=False)
    err = Console(record=True, width=140, force_terminal=False, stderr=True)
    code = cli.main(
        ["status", *argv],
        clients=stubs.clients,
        console=out,
        errors=err,
        sleep=sleep or (lambda _: None),
    )
    return code, out.export_text(), err.export_text()


@pytest.mark.parametrize(
    ("statuses", "code"),
    [
        (("COMPLETED", "COMPLETED"), cli.EXIT_COMPLETED),
        (("COMPLETED", "COMPLETED_WITH_FAILURES"), cli.EXIT_COMPLETED_WITH_FAILURES),
        (("FAILED", "COMPLETED"), cli.EXIT_FAILED),
        (("CANCELLED", "COMPLETED_WITH_FAILURES"), cli.EXIT_FAILED),
        (("IN_PROGRESS", "FAILED"), cli.EXIT_RUNNING),
    ],
)
def test_stack_status_exit_codes(stubs: Stubs, statuses: tuple[str, str], code: int) -> None:
    stubs.stack()
    stubs.manifest(JOBS)
    for job_id, status in zip(JOBS, statuses, strict=True):
        stubs.job(job_id, status, {"FINISHED": 2})
    assert run(stubs, "--stack", STACK)[0] == code


def test_table_shows_each_job(stubs: Stubs) -> None:
    stubs.stack()
    stubs.manifest(JOBS)
    stubs.job(JOBS[0], "COMPLETED", {"FINISHED": 100})
    stubs.job(JOBS[1], "IN_PROGRESS", {"FINISHED": 40, "FAILED": 2, "IN_PROGRESS": 58})
    code, out, _ = run(stubs, "--stack", STACK)
    assert code == cli.EXIT_RUNNING
    lines = [
        " ".join(line.replace("│", " ").replace("┃", " ").split()) for line in out.splitlines()
    ]
    assert "job status finished failed in progress destination" in lines
    assert f"{JOBS[0]} COMPLETED 100/100 0 0 {DESTINATION}" in lines
    assert f"{JOBS[1]} IN_PROGRESS 40/100 2 58 {DESTINATION}" in lines


def test_json_output_for_scripts(stubs: Stubs) -> None:
    stubs.stack()
    stubs.manifest(JOBS[:1])
    stubs.job(JOBS[0], "COMPLETED_WITH_FAILURES", {"FINISHED": 3, "FAILED": 1})
    code, out, _ = run(stubs, "--stack", STACK, "--json")
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
                "construct": "Export",
            }
        ],
    }


def test_one_job_without_a_stack(stubs: Stubs) -> None:
    stubs.job(JOBS[0], "COMPLETED", {"FINISHED": 1})
    code, out, _ = run(stubs, "--job-id", JOBS[0], "--sequence-store-id", STORE)
    assert code == cli.EXIT_COMPLETED
    assert JOBS[0] in out


def test_watch_ends_when_every_job_has_ended(stubs: Stubs) -> None:
    stubs.stack()
    stubs.manifest(JOBS[:1])
    stubs.job(JOBS[0], "SUBMITTED", {"NOT_STARTED": 4})
    stubs.job(JOBS[0], "IN_PROGRESS", {"FINISHED": 2, "IN_PROGRESS": 2})
    stubs.job(JOBS[0], "COMPLETED", {"FINISHED": 4})
    slept: list[float] = []
    code, out, _ = run(stubs, "--stack", STACK, "--watch", "--interval", "30", sleep=slept.append)
    assert code == cli.EXIT_COMPLETED
    assert slept == [30.0, 30.0]
    assert "4/4" in out


def test_watch_never_polls_faster_than_the_quota(stubs: Stubs) -> None:
    many = [str(5000000001 + n) for n in range(20)]
    stubs.stack()
    stubs.manifest(many)
    for job_id in many:
        stubs.job(job_id, "IN_PROGRESS", {"IN_PROGRESS": 1})
    for job_id in many:
        stubs.job(job_id, "COMPLETED", {"FINISHED": 1})
    slept: list[float] = []
    assert run(stubs, "--stack", STACK, "--watch", "--interval", "1", sleep=slept.append)[0] == 0
    assert slept == [4.0]  # 20 requests a round at 5 a second


def test_ctrl_c_leaves_cleanly(stubs: Stubs) -> None:
    stubs.job(JOBS[0], "IN_PROGRESS", {"IN_PROGRESS": 1})

    def interrupt(_: float) -> None:
        raise KeyboardInterrupt

    code, _, err = run(
        stubs, "--job-id", JOBS[0], "--sequence-store-id", STORE, "--watch", sleep=interrupt
    )
    assert code == cli.EXIT_RUNNING
    assert "stopped; the export jobs keep running" in err


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


@pytest.mark.parametrize(
    ("stubber", "operation", "action"),
    [
        ("cloudformation", "describe_stacks", "cloudformation:DescribeStacks"),
        ("s3", "get_object", "s3:GetObject"),
        ("omics", "get_read_set_export_job", "omics:GetReadSetExportJob"),
    ],
)
def test_access_denied_names_the_missing_action(
    stubs: Stubs, stubber: str, operation: str, action: str
) -> None:
    if stubber != "cloudformation":
        stubs.stack()
    if stubber == "omics":
        stubs.manifest(JOBS[:1])
    code_name = "AccessDeniedException" if stubber == "omics" else "AccessDenied"
    getattr(stubs, stubber).add_client_error(
        operation, service_error_code=code_name, http_status_code=403
    )
    code, _, err = run(stubs, "--stack", STACK)
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
    stubs.job(JOBS[0], "IN_PROGRESS", {"IN_PROGRESS": 1})

    def interrupt(_: float) -> None:
        raise KeyboardInterrupt

    code, out, _ = run(
        stubs,
        *("--job-id", JOBS[0], "--sequence-store-id", STORE, "--watch", "--json"),
        sleep=interrupt,
    )
    assert code == cli.EXIT_RUNNING
    assert json.loads(out) == {
        "error": "stopped; the export jobs keep running",
        "exitCode": cli.EXIT_RUNNING,
    }


def test_help_documents_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["status", "--help"])
    text = capsys.readouterr().out
    for code in (0, 2, 3, 10, 11, 12):
        assert f"\n  {code} " in text
