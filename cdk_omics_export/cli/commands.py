"""The ``cdk-omics-export`` command line: its arguments, the ``status`` command's two modes
(``--stack``, ``--job-id``), where each report goes (stdout, stderr, JSON) and the exit code."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import NoReturn

from rich.console import Console
from rich.markup import escape

from ..handler.pacing import LocalSlots, Pacer
from ..handler.rules import DEFAULT_MAX_REQUESTS_PER_SECOND
from .aws import Clients, StatusError
from .rendering import exports_json, jobs_json, reasons, render_exports_table, render_jobs_table
from .status import (
    EXIT_ACCESS,
    EXIT_COMPLETED,
    EXIT_COMPLETED_WITH_FAILURES,
    EXIT_FAILED,
    EXIT_MISMATCH,
    EXIT_MISSING_EXTRA,
    EXIT_RUNNING,
    EXIT_USAGE,
    job_code,
    overall,
)
from .verification import STATES_REQUESTS_PER_SECOND, collect_jobs, exports_of_stack, refresh
from .watching import watch_exports, watch_jobs

EXIT_CODES = f"""exit codes (with --stack, judged per export; with --job-id, for the job):
  {EXIT_COMPLETED}   every export COMPLETED (--job-id: the job COMPLETED)
  {EXIT_USAGE}   usage error
  {EXIT_ACCESS}   no credentials or region, stack not found, no export outputs, access denied
  {EXIT_MISSING_EXTRA}   the cli extra is not installed: pip install 'cdk-omics-export[cli]'
  {EXIT_RUNNING}  some export still active: its runner has not ended (--job-id: the job is
      SUBMITTED, IN_PROGRESS or CANCELLING)
  {EXIT_COMPLETED_WITH_FAILURES}  every export ended, some COMPLETED_WITH_FAILURES
  {EXIT_FAILED}  some export FAILED or CANCELLED, or its runner ended or stopped (stalled)
      before it did (--job-id: the job FAILED or was CANCELLED)
  {EXIT_MISMATCH}  some export's manifest disagrees with the export, stack, run, runner or
      state it was checked against: it is not reported
"""
# The status command's --help text (printed as it is: argparse does not re-wrap it).
STATUS_DESCRIPTION = """\
Print each export of a stack from its manifest (the <construct>ManifestUri<hash>
output): its status, read set counts (exported of selected, failed, in flight),
its jobs (running, ended, not started yet) and whether its runner, which carries
the export to its end after the deploy, is still active. For a runner the
manifest says is active, Step Functions is asked whether its execution still runs
(states:DescribeExecution); if it stopped, the export is stalled until a deploy
resumes it. --watch re-reads the manifests until every export's runner has ended
or stopped; no HealthOmics call is made. Each manifest is checked before it is
reported: its export, stack, run and runner execution against the stack's
outputs, the execution's input and the export's record in the state table; one
that disagrees is shown as MISMATCH, with what disagrees, and nothing it says is
reported. Needs cloudformation:DescribeStacks, s3:GetObject on the manifests and,
optionally, states:DescribeExecution and dynamodb:GetItem on the state table
(with kms:Decrypt on the service's key). With --job-id, ask HealthOmics about
one export job instead."""
MIN_WATCH_INTERVAL = 1.0  # manifests are S3 reads: no HealthOmics quota to stay under


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


def parsers() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """The command's parser and its ``status`` subcommand's."""
    parser = _Parser(
        prog="cdk-omics-export",
        description="Follow the read set exports of a cdk-omics-export stack, past the deploy.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    status = commands.add_parser(
        "status",
        help="print (or --watch) the status of a stack's exports",
        description=STATUS_DESCRIPTION,
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    status.add_argument("--stack", help="the CloudFormation stack with ReadSetExport constructs")
    status.add_argument(
        "--job-id", help="one export job, without a stack (asks HealthOmics directly)"
    )
    status.add_argument("--sequence-store-id", help="the sequence store of --job-id")
    status.add_argument("--region", help="the AWS Region (default: AWS_REGION or your profile's)")
    status.add_argument(
        "--jobs", action="store_true", help="with --stack: a row per job under each export"
    )
    status.add_argument(
        "--watch",
        action="store_true",
        help="re-read until every export's runner has ended or stopped (--job-id: until the "
        "job ends)",
    )
    status.add_argument(
        "--json",
        action="store_true",
        help='print JSON for scripts and CI, errors included: {"error": "...", "exitCode": N}',
    )
    status.add_argument(
        "--interval", type=float, default=30.0, help="seconds between polls with --watch (30)"
    )
    return parser, status


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    parser, status = parsers()
    # Arguments the status command does not know are its usage error, not the top level's.
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        status.error(f"unrecognized arguments: {' '.join(unknown)}")
    if bool(args.stack) == bool(args.job_id):
        status.error("give --stack, or --job-id with --sequence-store-id")
    if args.job_id and not args.sequence_store_id:
        status.error("--job-id needs --sequence-store-id")
    if args.jobs and not args.stack:
        status.error("--jobs goes with --stack")
    return args


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

    try:
        args = _parse(argv)
    except UsageError as error:
        return fail(error.message, EXIT_USAGE, usage=error.parser)
    json_output = args.json  # --js, say, is --json too once parsed
    # With --json, stdout carries only the JSON; the progress bar goes to stderr.
    progress_console = err if json_output else out

    clients = clients or Clients(region=args.region)
    stopped = (
        "stopped; the exports keep running"
        if args.stack
        else "stopped; the export job keeps running"
    )
    try:
        if args.stack:
            return _stack(clients, args, out, progress_console, sleep)
        return _job(clients, args, out, progress_console, sleep)
    except StatusError as error:
        return fail(str(error), EXIT_ACCESS)
    except KeyboardInterrupt:
        if json_output:
            return fail(stopped, EXIT_RUNNING)
        err.print(stopped)
        return EXIT_RUNNING


def _stack(
    clients: Clients,
    args: argparse.Namespace,
    out: Console,
    progress_console: Console,
    sleep: Callable[[float], None],
) -> int:
    exports = exports_of_stack(clients, args.stack)
    pacer = Pacer(STATES_REQUESTS_PER_SECOND, LocalSlots())  # for DescribeExecution
    if args.watch:
        interval = max(args.interval, MIN_WATCH_INTERVAL)
        watch_exports(
            clients,
            exports,
            pacer=pacer,
            console=progress_console,
            interval=interval,
            sleep=sleep,
        )
    else:
        refresh(clients, exports, watching=False, pacer=pacer)
    if args.json:
        report = exports_json(exports, jobs=args.jobs)
        out.print(report, markup=False, highlight=False, soft_wrap=True)
        if not args.watch:  # a watch has logged them already
            for export in exports:
                for note in export.notes:  # on stderr: stdout is the JSON alone
                    progress_console.print(escape(note), highlight=False, soft_wrap=True)
    else:
        out.print(render_exports_table(args.stack, exports, jobs=args.jobs))
        for line in reasons(exports, jobs=args.jobs):
            out.print(escape(line), highlight=False)
    return overall([export.exit_code() for export in exports])


def _job(
    clients: Clients,
    args: argparse.Namespace,
    out: Console,
    progress_console: Console,
    sleep: Callable[[float], None],
) -> int:
    pacer = Pacer(DEFAULT_MAX_REQUESTS_PER_SECOND, LocalSlots())
    targets = [("", args.sequence_store_id, args.job_id)]
    if args.watch:
        # Each round reads every job once; rounds never come faster than the quota allows.
        interval = max(args.interval, len(targets) / DEFAULT_MAX_REQUESTS_PER_SECOND)
        jobs = watch_jobs(
            clients, targets, pacer=pacer, console=progress_console, interval=interval, sleep=sleep
        )
    else:
        jobs = collect_jobs(clients, targets, pacer)
    if args.json:
        out.print(jobs_json(jobs), markup=False, highlight=False, soft_wrap=True)
    else:
        out.print(render_jobs_table(jobs))
    return overall([job_code(job) for job in jobs])


def run() -> None:
    """The command with the ``cli`` extra installed (``cdk_omics_export.cli.run`` checks)."""
    sys.exit(main())
