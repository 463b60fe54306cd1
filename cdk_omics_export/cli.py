"""`cdk-omics-export status`: watch the export jobs of a stack from a terminal.

Finds the jobs a stack's ReadSetExport constructs started (from the stack's ``ManifestUri``
outputs and the manifests they point to), or one job given by id, and prints each job's
status and read set counts; ``--watch`` follows them with a progress bar until every job has
ended. Installed with the ``cli`` extra: ``pip install 'cdk-omics-export[cli]'``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

import boto3
import boto3.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from .handler.pacing import LocalSlots, Pacer
from .handler.state import Manifest

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_omics import OmicsClient
    from mypy_boto3_s3 import S3Client
from .handler.rules import DEFAULT_MAX_REQUESTS_PER_SECOND

EXIT_COMPLETED = 0
EXIT_USAGE = 2  # argparse's own
EXIT_ACCESS = 3
EXIT_RUNNING = 10
EXIT_COMPLETED_WITH_FAILURES = 11
EXIT_FAILED = 12

EXIT_CODES = f"""exit codes:
  {EXIT_COMPLETED}   every job COMPLETED
  {EXIT_USAGE}   usage error
  {EXIT_ACCESS}   no credentials or region, stack not found, no export outputs, access denied
  {EXIT_RUNNING}  some job still running (SUBMITTED, IN_PROGRESS, CANCELLING)
  {EXIT_COMPLETED_WITH_FAILURES}  every job ended, some COMPLETED_WITH_FAILURES
  {EXIT_FAILED}  some job FAILED or CANCELLED
"""
CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 6})
RUNNING = frozenset({"SUBMITTED", "IN_PROGRESS", "CANCELLING"})
MANIFEST_OUTPUT = re.compile(r"^(?P<construct>.*)ManifestUri[0-9A-F]{8}$")
# The IAM action each call needs, for access-denied messages a user can act on.
ACTIONS = {
    "DescribeStacks": "cloudformation:DescribeStacks",
    "GetObject": "s3:GetObject",
    "GetReadSetExportJob": "omics:GetReadSetExportJob",
}


class StatusError(Exception):
    """A problem the user can act on; printed without a traceback."""


class UsageError(Exception):
    """A command line argparse refused, raised instead of exiting so that ``--json`` can
    report it as JSON."""

    def __init__(self, parser: argparse.ArgumentParser, message: str) -> None:
        super().__init__(message)
        self.parser = parser
        self.message = message


class _Parser(argparse.ArgumentParser):
    # Subparsers are made with the parent's class, so the status command raises too.
    def error(self, message: str) -> NoReturn:
        raise UsageError(self, message)


@dataclass
class JobStatus:
    id: str
    sequence_store_id: str
    status: str
    destination: str
    read_sets: int
    finished: int = 0
    failed: int = 0
    in_progress: int = 0
    status_message: str = ""
    construct: str = ""

    @property
    def done(self) -> bool:
        return self.status not in RUNNING


@dataclass
class Clients:
    """The AWS clients the command uses, made on first use; tests hand in stubbed ones."""

    region: str | None = None
    made: dict[str, Any] = field(default_factory=dict)
    # A session of its own: credentials are looked up afresh, not from boto3's default
    # session that other code in the process may have filled.
    session: boto3.session.Session = field(default_factory=boto3.session.Session)

    def cloudformation(self) -> CloudFormationClient:
        client: CloudFormationClient = self._client("cloudformation")
        return client

    def s3(self) -> S3Client:
        client: S3Client = self._client("s3")
        return client

    def omics(self) -> OmicsClient:
        client: OmicsClient = self._client("omics")
        return client

    def _client(self, service: str) -> Any:
        if service not in self.made:
            make: Callable[..., Any] = self.session.client
            self.made[service] = make(service, region_name=self.region, config=CONFIG)
        return self.made[service]


# Finding the jobs


def jobs_of_stack(clients: Clients, stack: str) -> list[tuple[str, str, str]]:
    """(construct, sequence store id, job id) for every job the stack's exports started."""
    stacks = _call(
        "DescribeStacks",
        stack,
        lambda: clients.cloudformation().describe_stacks(StackName=stack),
    )["Stacks"]
    outputs = {o["OutputKey"]: o.get("OutputValue", "") for o in stacks[0].get("Outputs", [])}
    manifests = {
        match["construct"]: value
        for key, value in outputs.items()
        if (match := MANIFEST_OUTPUT.match(key))
    }
    if not manifests:
        raise StatusError(
            f"Stack {stack} has no ReadSetExport outputs (no output named <construct>"
            "ManifestUri<hash>); is it a stack with a ReadSetExport construct?"
        )
    found: list[tuple[str, str, str]] = []
    for construct, uri in sorted(manifests.items()):
        manifest = read_manifest(clients, uri)
        for job in manifest["jobs"]:
            if job["id"] is not None:
                found.append((construct, manifest["sequenceStoreId"], job["id"]))
    return found


def read_manifest(clients: Clients, uri: str) -> Manifest:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    response = _call("GetObject", uri, lambda: clients.s3().get_object(Bucket=bucket, Key=key))
    manifest: Manifest = json.loads(response["Body"].read())
    return manifest


def job_status(clients: Clients, store: str, job_id: str, construct: str = "") -> JobStatus:
    detail = _call(
        "GetReadSetExportJob",
        f"export job {job_id} in sequence store {store}",
        lambda: clients.omics().get_read_set_export_job(sequenceStoreId=store, id=job_id),
    )
    read_sets = detail.get("readSets", [])
    counts = {"FINISHED": 0, "FAILED": 0, "IN_PROGRESS": 0}
    for item in read_sets:
        counts[item["status"]] = counts.get(item["status"], 0) + 1
    return JobStatus(
        id=detail["id"],
        sequence_store_id=detail["sequenceStoreId"],
        status=detail["status"],
        destination=detail["destination"],
        read_sets=len(read_sets),
        finished=counts["FINISHED"],
        failed=counts["FAILED"],
        in_progress=counts["IN_PROGRESS"],
        status_message=detail.get("statusMessage", ""),
        construct=construct,
    )


def _call(operation: str, subject: str, call: Callable[[], Any]) -> Any:
    try:
        return call()
    except NoCredentialsError as error:
        raise StatusError(
            "No AWS credentials found: set AWS_PROFILE, run `aws sso login`, or export "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY."
        ) from error
    except NoRegionError as error:
        raise StatusError("No AWS Region: pass --region or set AWS_REGION.") from error
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        message = error.response.get("Error", {}).get("Message", "")
        if code in ("AccessDenied", "AccessDeniedException"):
            action = ACTIONS.get(operation, operation)
            raise StatusError(f"Access denied: {operation} on {subject} needs {action}.") from error
        if operation == "DescribeStacks" and code == "ValidationError":
            raise StatusError(
                f"Stack {subject} not found in this Region ({message}); check --region."
            ) from error
        raise StatusError(f"{operation} failed for {subject}: {code}: {message}") from error
    except BotoCoreError as error:
        raise StatusError(f"{operation} failed for {subject}: {error}") from error


# Reporting


def overall(jobs: Sequence[JobStatus]) -> int:
    statuses = {job.status for job in jobs}
    if statuses & RUNNING:
        return EXIT_RUNNING
    if statuses & {"FAILED", "CANCELLED"}:
        return EXIT_FAILED
    if "COMPLETED_WITH_FAILURES" in statuses:
        return EXIT_COMPLETED_WITH_FAILURES
    return EXIT_COMPLETED


def render_table(jobs: Sequence[JobStatus]) -> Table:
    table = Table(title="HealthOmics read set export jobs")
    for column in ("job", "status", "finished", "failed", "in progress", "destination"):
        table.add_column(column, justify="right" if column in ("finished", "failed") else "left")
    for job in jobs:
        table.add_row(
            job.id,
            job.status,
            f"{job.finished}/{job.read_sets}",
            str(job.failed),
            str(job.in_progress),
            job.destination,
        )
    return table


def as_json(jobs: Sequence[JobStatus]) -> str:
    code = overall(jobs)
    names = {
        EXIT_COMPLETED: "COMPLETED",
        EXIT_RUNNING: "RUNNING",
        EXIT_FAILED: "FAILED",
        EXIT_COMPLETED_WITH_FAILURES: "COMPLETED_WITH_FAILURES",
    }
    return json.dumps(
        {"status": names[code], "exitCode": code, "jobs": [asdict(job) for job in jobs]},
        indent=2,
    )


# The command


def collect(
    clients: Clients, targets: Sequence[tuple[str, str, str]], pacer: Pacer
) -> list[JobStatus]:
    statuses = []
    for construct, store, job_id in targets:
        pacer.wait()
        statuses.append(job_status(clients, store, job_id, construct))
    return statuses


def watch(
    clients: Clients,
    targets: Sequence[tuple[str, str, str]],
    *,
    pacer: Pacer,
    console: Console,
    interval: float,
    sleep: Callable[[float], None] = time.sleep,
) -> list[JobStatus]:
    """Follow every job until it ends, with one progress bar over all read sets."""
    jobs = collect(clients, targets, pacer)
    total = sum(job.read_sets for job in jobs) or len(jobs)
    with Progress(
        TextColumn("[bold]read sets"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        console=console,
    ) as progress:
        task = progress.add_task("", total=total)
        while True:
            done = sum(job.finished + job.failed for job in jobs) or sum(j.done for j in jobs)
            running = sum(not job.done for job in jobs)
            progress.update(task, completed=done, description=f"{running} job(s) running")
            if running == 0:
                return jobs
            sleep(interval)
            jobs = collect(clients, targets, pacer)


def parsers() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """The command's parser and its ``status`` subcommand's."""
    parser = _Parser(
        prog="cdk-omics-export",
        description="Follow the HealthOmics read set export jobs of a cdk-omics-export stack.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    status = commands.add_parser(
        "status",
        help="print (or --watch) the status of export jobs",
        description="Print the status of a stack's export jobs, or of one job.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    status.add_argument("--stack", help="the CloudFormation stack with ReadSetExport constructs")
    status.add_argument("--job-id", help="one export job, without a stack")
    status.add_argument("--sequence-store-id", help="the sequence store of --job-id")
    status.add_argument("--region", help="the AWS Region (default: AWS_REGION or your profile's)")
    status.add_argument("--watch", action="store_true", help="follow the jobs until they end")
    status.add_argument(
        "--json",
        action="store_true",
        help='print JSON for scripts and CI, errors included: {"error": "...", "exitCode": N}',
    )
    status.add_argument(
        "--interval", type=float, default=30.0, help="seconds between polls with --watch (30)"
    )
    return parser, status


def main(
    argv: Sequence[str] | None = None,
    *,
    clients: Clients | None = None,
    console: Console | None = None,
    errors: Console | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    out = console or Console()
    err = errors or Console(stderr=True)
    # Looked for before parsing, so that a usage error is JSON too when --json was asked for.
    json_output = "--json" in argv

    def fail(message: str, code: int, usage: argparse.ArgumentParser | None = None) -> int:
        """Report an error: one JSON object on stdout with --json, else text on stderr."""
        if json_output:
            report = json.dumps({"error": message, "exitCode": code}, indent=2)
            out.print(report, markup=False, highlight=False, soft_wrap=True)
        elif usage is not None:
            text = f"{usage.format_usage()}{usage.prog}: error: {message}"
            err.print(text, markup=False, highlight=False, soft_wrap=True)
        else:
            err.print(f"[red]error:[/red] {escape(message)}", highlight=False)
        return code

    parser, status = parsers()
    try:
        # Arguments the status command does not know are its usage error, not the top level's.
        args, unknown = parser.parse_known_args(argv)
        if unknown:
            status.error(f"unrecognized arguments: {' '.join(unknown)}")
        if bool(args.stack) == bool(args.job_id):
            status.error("give --stack, or --job-id with --sequence-store-id")
        if args.job_id and not args.sequence_store_id:
            status.error("--job-id needs --sequence-store-id")
    except UsageError as error:
        return fail(error.message, EXIT_USAGE, usage=error.parser)
    json_output = args.json  # --js, say, is --json too once parsed

    clients = clients or Clients(region=args.region)
    pacer = Pacer(DEFAULT_MAX_REQUESTS_PER_SECOND, LocalSlots())
    try:
        targets = (
            jobs_of_stack(clients, args.stack)
            if args.stack
            else [("", args.sequence_store_id, args.job_id)]
        )
        if not targets:
            raise StatusError(f"Stack {args.stack}'s exports have not started any job yet.")
        if args.watch:
            # Each round reads every job once; rounds never come faster than the quota allows.
            interval = max(args.interval, len(targets) / DEFAULT_MAX_REQUESTS_PER_SECOND)
            # With --json, stdout carries only the JSON; the progress bar goes to stderr.
            jobs = watch(
                clients,
                targets,
                pacer=pacer,
                console=err if json_output else out,
                interval=interval,
                sleep=sleep,
            )
        else:
            jobs = collect(clients, targets, pacer)
    except StatusError as error:
        return fail(str(error), EXIT_ACCESS)
    except KeyboardInterrupt:
        if json_output:
            return fail("stopped; the export jobs keep running", EXIT_RUNNING)
        err.print("stopped; the export jobs keep running")
        return EXIT_RUNNING
    if json_output:
        out.print(as_json(jobs), markup=False, highlight=False, soft_wrap=True)
    else:
        out.print(render_table(jobs))
    return overall(jobs)


def run() -> None:
    """The console script's entry point."""
    sys.exit(main())
