"""What the command reports: an export as its manifest says (once checked), a job as
HealthOmics says, and the exit code each comes to."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ..handler.state import Manifest, ManifestCounts, ManifestJob

# The exit code each export and job comes to (commands.EXIT_CODES words them for --help).
EXIT_COMPLETED = 0
EXIT_USAGE = 2  # argparse's own
EXIT_ACCESS = 3
# The command cannot run: the `cli` extra (boto3, rich) is not installed (cli.run says so).
EXIT_MISSING_EXTRA = 4
EXIT_RUNNING = 10
EXIT_COMPLETED_WITH_FAILURES = 11
EXIT_FAILED = 12
EXIT_MISMATCH = 13

# Job statuses: HealthOmics' own, and the batch statuses of the runner's.
RUNNING = frozenset({"SUBMITTED", "IN_PROGRESS", "CANCELLING"})
NOT_STARTED = frozenset({"PENDING", "STARTING"})
SUPERSEDED = "SUPERSEDED"  # never started; not shown
# An export's final statuses; any other (SUBMITTED, RUNNING, or an older manifest's SELECTING
# and IN_PROGRESS) means it is still under way.
FINAL = frozenset({"COMPLETED", "COMPLETED_WITH_FAILURES", "FAILED", "CANCELLED"})
WAITING = "waiting for its first manifest"
# The runner execution's statuses in which it still carries its export: someone may redrive a
# stopped one by hand (PENDING_REDRIVE), and the deploy's waiter counts that as running too.
EXECUTION_RUNNING = frozenset({"RUNNING", "PENDING_REDRIVE"})
MISMATCH = "MISMATCH"
STATUS_NAMES = {
    EXIT_MISMATCH: "MISMATCH",
    EXIT_COMPLETED: "COMPLETED",
    EXIT_RUNNING: "RUNNING",
    EXIT_FAILED: "FAILED",
    EXIT_COMPLETED_WITH_FAILURES: "COMPLETED_WITH_FAILURES",
}


@dataclass
class JobStatus:
    """One job as HealthOmics reports it (``--job-id``)."""

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
class ReadSetCounts:
    exported: int = 0
    failed: int = 0
    in_flight: int = 0
    total: int = 0


def job_read_sets(job: ManifestJob) -> ReadSetCounts:
    """A job's read sets from the manifest: each one's outcome, else the job's status."""
    outcomes = {o["id"]: o["status"] for o in job.get("readSets", [])}
    status = job["status"]
    counts = ReadSetCounts(total=len(job.get("readSetIds", [])))
    for read_set_id in job.get("readSetIds", []):
        outcome = outcomes.get(read_set_id)
        if outcome == "FINISHED" or (outcome is None and status == "COMPLETED"):
            counts.exported += 1
        elif outcome == "FAILED" or (outcome is None and status in FINAL):
            counts.failed += 1
        elif status != "PENDING":  # STARTING, or a running job: in flight
            counts.in_flight += 1
    return counts


@dataclass
class JobTally:
    running: int = 0
    ended: int = 0
    pending: int = 0  # not started yet (PENDING, STARTING)

    @property
    def total(self) -> int:
        return self.running + self.ended + self.pending


@dataclass
class StackFacts:
    """What CloudFormation says of the stack, against which each manifest is checked."""

    stack_id: str = ""
    state_table: str = ""
    runner_arn: str = ""
    state_denied: bool = False  # the state table could not be read: not asked again


@dataclass
class ExportStatus:
    """One export of a stack, as its manifest says; no manifest while it cannot be read yet.
    A manifest that disagrees with what it was checked against (``mismatches``) is not
    reported: anyone who could write to the bucket could have written it."""

    construct: str
    manifest_uri: str
    manifest: Manifest | None = None
    stack: StackFacts = field(default_factory=StackFacts)
    mismatches: list[str] = field(default_factory=list)
    # The runner execution's status as Step Functions gave it for the manifest last read; None
    # when it was not asked (runner not active, no ARN) or could not say.
    execution_status: str | None = None
    check_denied: bool = False  # states:DescribeExecution denied: not asked again
    notes: list[str] = field(default_factory=list)  # each said once

    def note(self, line: str) -> None:
        if line not in self.notes:
            self.notes.append(line)

    @property
    def waiting(self) -> bool:
        return self.manifest is None

    @property
    def export_id(self) -> str:
        """The export the stack's output names: its manifest's file name."""
        return self.manifest_uri.rsplit("/", 1)[-1].removesuffix(".json")

    @property
    def status(self) -> str:
        if self.mismatches:
            return MISMATCH
        return WAITING if self.manifest is None else self.manifest["status"]

    @property
    def status_reason(self) -> str:
        return "" if self.manifest is None else self.manifest.get("statusReason", "")

    def jobs(self) -> list[ManifestJob]:
        if self.manifest is None:
            return []
        return [job for job in self.manifest.get("jobs", []) if job["status"] != SUPERSEDED]

    def tally(self) -> JobTally:
        tally = JobTally()
        for job in self.jobs():
            if job["status"] in FINAL:
                tally.ended += 1
            elif job["status"] in NOT_STARTED:
                tally.pending += 1
            else:  # SUBMITTED, IN_PROGRESS, CANCELLING, or a status this version does not know
                tally.running += 1
        return tally

    def counts(self) -> ManifestCounts:
        if self.manifest is not None and "counts" in self.manifest:
            # A manifest from before activation has no "activating": none were.
            return {"activating": 0, **self.manifest["counts"]}
        # An older manifest without counts: what its jobs hold.
        jobs = [job_read_sets(job) for job in self.jobs()]
        return {
            "selected": sum(j.total for j in jobs),
            "exported": sum(j.exported for j in jobs),
            "failed": sum(j.failed for j in jobs),
            "inFlight": sum(j.in_flight for j in jobs),
            "activating": 0,
        }

    @property
    def execution(self) -> str:
        runner = None if self.manifest is None else self.manifest.get("runner")
        return "" if runner is None else runner.get("execution", "")

    @property
    def execution_arn(self) -> str:
        runner = None if self.manifest is None else self.manifest.get("runner")
        return "" if runner is None else runner.get("executionArn", "")

    @property
    def stalled(self) -> bool:
        """The manifest says its runner is active, but Step Functions says the execution ended
        (stopped by hand, its retries ran out): nothing carries the export any more."""
        return (
            self.manifest_active
            and self.execution_status is not None
            and self.execution_status not in EXECUTION_RUNNING
        )

    @property
    def active(self) -> bool:
        """Whether the export can still change: its runner has not ended, nor stopped."""
        return self.manifest_active and not self.stalled and not self.mismatches

    @property
    def runner_state(self) -> str:
        if self.stalled:
            return f"stopped ({self.execution_status})"
        return "active" if self.active else "ended"

    @property
    def manifest_active(self) -> bool:
        """Whether the manifest says the export's runner has not ended."""
        if self.manifest is None:
            return True  # not written yet: its runner is starting
        runner = self.manifest.get("runner")
        if runner is None:
            # An older manifest, from before the runner: ended once the export's status is
            # final and no job runs.
            statuses = {job["status"] for job in self.jobs()}
            return self.status not in FINAL or bool(statuses & RUNNING)
        return bool(runner.get("active", False))

    @property
    def stopped_early(self) -> bool:
        """The runner ended, and the export's status is not a final one."""
        return not self.active and self.status not in FINAL

    def exit_code(self) -> int:
        if self.mismatches:
            return EXIT_MISMATCH
        # A stalled export, its status not final, ended early: EXIT_FAILED.
        if self.active:
            return EXIT_RUNNING
        if self.status in ("FAILED", "CANCELLED") or self.stopped_early:
            return EXIT_FAILED
        if self.status == "COMPLETED_WITH_FAILURES":
            return EXIT_COMPLETED_WITH_FAILURES
        return EXIT_COMPLETED

    def progress(self) -> tuple[int, int]:
        """Read sets ended (exported or failed), and selected."""
        counts = self.counts()
        return counts["exported"] + counts["failed"], counts["selected"]

    def summary(self) -> str:
        """One line for the watch log: what changed."""
        if self.manifest is None:
            return f"{self.construct}: {WAITING}"
        if self.mismatches:
            return f"{self.construct}: {MISMATCH}: its manifest is not reported"
        counts, tally = self.counts(), self.tally()
        runner = f"runner {self.runner_state}"
        return (
            f"{self.construct}: {self.status}, {counts['exported']}/{counts['selected']} read sets "
            f"exported, {counts['failed']} failed, {tally.running} job(s) running, {runner}"
        )


def overall(codes: Sequence[int]) -> int:
    """The command's exit code from those of the exports (or jobs)."""
    for code in (EXIT_MISMATCH, EXIT_RUNNING, EXIT_FAILED, EXIT_COMPLETED_WITH_FAILURES):
        if code in codes:
            return code
    return EXIT_COMPLETED


def job_code(job: JobStatus) -> int:
    if job.status in RUNNING:
        return EXIT_RUNNING
    if job.status in ("FAILED", "CANCELLED"):
        return EXIT_FAILED
    if job.status == "COMPLETED_WITH_FAILURES":
        return EXIT_COMPLETED_WITH_FAILURES
    return EXIT_COMPLETED
