"""`cdk-omics-export status`: follow a stack's exports from a terminal, past the deploy.

An export of a ``ReadSetExport`` construct is carried to its end by the stack's runner (a
Step Functions execution), which can keep going for hours after ``cdk deploy`` has returned.
The runner writes the export's **manifest** (the stack output ``<construct>ManifestUri<hash>``)
at every status change of the export or of one of its jobs. This command reads those manifests
and reports each export of a stack: its status, its read set counts, its jobs (running, ended,
not yet started) and whether its runner is still active; ``--jobs`` adds a row per job, and
``--watch`` re-reads the manifests until every export's runner has ended.

A manifest is only as current as its runner: an execution stopped by hand (or whose retries ran
out) writes no more, and its last manifest says the runner is active for ever. So for each
export whose manifest says its runner is active, the command asks Step Functions about that
execution (``DescribeExecution``, once per read of the manifests). One that is no longer
RUNNING (nor PENDING_REDRIVE) makes the export **stalled**: nothing carries it until a deploy
resumes it, ``--watch`` stops waiting for it, and it counts as ended early (exit 12) unless its
status is final. When Step Functions cannot be asked (``states:DescribeExecution`` denied, say),
a note says so and the manifest's view stands.

A manifest is an object in the destination bucket, and anyone who may write there could write
one. So before it reports one, the command checks it: its export id against the stack output
that named it, its stack id against the stack, its runner execution against the export's run and
the stack's runner (``RunnerStateMachineArn`` output), the execution's input (when Step
Functions is asked) and the export's record in the state table (``StateTableName`` output), when
the caller may read it. A manifest may lag behind the record, never lead it. One that disagrees
is reported as ``MISMATCH`` with what disagrees (exit 13), and nothing it says is shown.

It makes no HealthOmics call for a stack (the runner shares the account's request quota): only
``--job-id`` asks HealthOmics about one job directly. Installed with the ``cli`` extra:
``pip install 'cdk-omics-export[cli]'``.
"""

from __future__ import annotations

import json
import sys

from .status import (
    EXIT_ACCESS,
    EXIT_COMPLETED,
    EXIT_COMPLETED_WITH_FAILURES,
    EXIT_FAILED,
    EXIT_MISMATCH,
    EXIT_MISSING_EXTRA,
    EXIT_RUNNING,
    EXIT_USAGE,
    WAITING,
    ExportStatus,
    JobStatus,
)

INSTALL_EXTRA = "pip install 'cdk-omics-export[cli]'"

# boto3 and rich come with the `cli` extra, not with the construct: without them the command
# says what to install instead of ending in a traceback (the status module needs neither).
_missing: ModuleNotFoundError | None = None
try:
    from .aws import Clients, StatusError
    from .commands import main
except ModuleNotFoundError as missing:
    if (missing.name or "").split(".")[0] == __name__.split(".")[0]:
        raise
    _missing = missing


def run() -> None:
    """The console script's entry point (``cdk-omics-export``)."""
    if _missing is not None:
        sys.exit(_report_missing_extra(_missing, sys.argv[1:]))
    sys.exit(main())


def _report_missing_extra(missing: ModuleNotFoundError, argv: list[str]) -> int:
    package = (missing.name or "a package").split(".")[0]
    message = (
        f"cdk-omics-export needs the cli extra, and {package} is not installed: {INSTALL_EXTRA}"
    )
    if "--json" in argv:
        print(json.dumps({"error": message, "exitCode": EXIT_MISSING_EXTRA}, indent=2))
    else:
        print(f"error: {message}", file=sys.stderr)
    return EXIT_MISSING_EXTRA


__all__ = [
    "EXIT_ACCESS",
    "EXIT_COMPLETED",
    "EXIT_COMPLETED_WITH_FAILURES",
    "EXIT_FAILED",
    "EXIT_MISMATCH",
    "EXIT_MISSING_EXTRA",
    "EXIT_RUNNING",
    "EXIT_USAGE",
    "INSTALL_EXTRA",
    "WAITING",
    "Clients",
    "ExportStatus",
    "JobStatus",
    "StatusError",
    "main",
    "run",
]
