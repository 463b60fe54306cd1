"""The export's promises, held on schedules Hypothesis generates (stateful properties).

Each example is a schedule of what CloudFormation, Step Functions, Lambda, HealthOmics and
people do around the handler (tests/world.py): deploys (Create, Update with another selection,
filter or generation, the rollback of a failed one, the replacement's cleanup Delete), stack
deletions, requests delivered late, twice or into a crash, runner steps (crashing before any of
their AWS calls, or with another invocation inside one of them), the clock moving on, jobs and
activations moving and ending (per read set), someone else activating a read set, quota
refusals and throttling, a runner stopped by hand or out of retries, read sets added and
archived. After every rule, and after a final drain (every request delivered, every job ended,
every runner stepped to its end), ``World.check`` and ``World.check_final`` hold the promises:

1. every CloudFormation request is answered at most once, and exactly once after the drain;
2. a read set is exported at most once per run of an export, never again while a job of the
   export carries it or once one exported it, and activated at most once per run;
3. no run is COMPLETED (state record, manifest, status event or the answer's Status) while a
   read set it selected has no finished export;
4. a Delete is answered SUCCESS, and its export starts no job afterwards;
5. a rollback starts nothing the previous selection exported (promise 2 across runs), and the
   export of a failed Update that CloudFormation rolled back starts nothing afterwards;
6. every job HealthOmics accepted is in the state record (one whose batch is STARTING only
   until a step that holds the lease has run since; after the drain, none);

and, beside them: two steps of one export never both call HealthOmics at once (the lease),
HealthOmics never refuses what the handler asks for a reason the handler could know, and no log
record or event holds a sample, a subject or the ResponseURL's signature.

`make test` runs a fixed, derandomized set of examples (the ``make-test`` profile); `make
fuzz` runs many more (``HYPOTHESIS_PROFILE=fuzz``, ``FUZZ_EXAMPLES``). A schedule Hypothesis
shrank to a failure is kept below as a named regression test that replays it. Those that reach
a fault of the handler are strict xfails, and the world steers generated schedules around
those faults (``KNOWN_FAULTS`` in tests/world.py, each saying how), so that the properties
keep holding everything else.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import event as hypothesis_event
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule

from .fakes import Execution
from .omics_world import Job
from .world import (
    ADOPTED_JOB,
    CONSTRUCT_PATH,
    DESTINATION,
    KEY_ARN,
    LOST_ANSWER,
    ORPHANED_REPLACEMENT,
    POLL_SECONDS,
    ROLE_ARN,
    SERVICE_TOKEN,
    STOPPED_AFTER_THE_END,
    STORE,
    World,
)

SAMPLES = ("SAMPLE-A7", "SAMPLE-B3")
# Health checks that measure a slow or large example: these are slow by design.
SLOW = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
settings.register_profile(
    "make-test",
    max_examples=60,
    stateful_step_count=30,
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=False,
    suppress_health_check=SLOW,
)
settings.register_profile(
    "fuzz",
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "1000")),
    stateful_step_count=50,
    derandomize=False,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=SLOW,
)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "make-test")


def event(text: str) -> None:
    """A statistic for --hypothesis-show-statistics (nothing when a regression test replays a
    schedule outside Hypothesis)."""
    if currently_in_test_context():
        hypothesis_event(text)


T = TypeVar("T")


def pick(items: list[T], which: int) -> T | None:
    """The ``which``-th item, modulo their number (None when there is none): every rule
    applies in every state (a precondition would make Hypothesis filter and retry rules), and
    does nothing when there is nothing to do it to."""
    return items[which % len(items)] if items else None


# A deploy's properties, as the construct sends them (tests/world.py fills in the rest).
deploys = st.fixed_dictionaries(
    {
        "ids": st.lists(st.integers(0, 9), min_size=1, max_size=4),
        "by_filter": st.sampled_from([False, False, True]),
        "sample": st.sampled_from(SAMPLES),
        "generation": st.sampled_from([0, 0, 1]),
        "wait": st.sampled_from([True, True, False]),
        "partial": st.booleans(),
        "archived": st.sampled_from(["ACTIVATE", "ACTIVATE", "FAIL"]),
        "timeout": st.sampled_from([600, 1800]),
        "refresh": st.booleans(),
    }
)
# Indices into the world's current lists (executions, jobs, read sets, requests), taken
# modulo their length, so a printed schedule replays as it ran.
which = st.integers(0, 63)
INTRUDERS = ("same step", "another step", "next request", "redelivery")


class ExportSchedules(RuleBasedStateMachine):
    """One stack's export resource, its runner and HealthOmics, on a generated schedule."""

    def __init__(self) -> None:
        super().__init__()
        self.world = World().open()
        self.refreshes = 0
        # A rule that did not finish (its check failed, or it raised): the schedule's end is
        # not drained, so the failure Hypothesis shrinks is that rule's.
        self.unfinished = False

    def _do(self, action: Callable[[], Any]) -> None:
        """Do what a rule does; Lambda delivers what CloudFormation sent meanwhile; check."""
        self.unfinished = True
        action()
        self.world.deliver_all()
        self.world.check()
        self.unfinished = False

    def _props(self, deploy: dict[str, Any]) -> dict[str, Any]:
        known = sorted(self.world.omics.read_sets)
        destination = DESTINATION
        if ADOPTED_JOB in self.world.avoided:
            # ADOPTED_JOB: a destination of its own for each stack and generation.
            cfn = self.world.cfn
            stack = cfn.stacks + (cfn.resource is None)
            destination += f"stack-{stack}-generation-{deploy['generation']}/"
        props: dict[str, Any] = {
            "ServiceToken": SERVICE_TOKEN,
            "ConstructPath": CONSTRUCT_PATH,
            "ExportGeneration": str(deploy["generation"]),
            "SequenceStoreId": STORE,
            "Destination": destination,
            "RoleArn": ROLE_ARN,
            "Encryption": "aws:kms",
            "KmsKeyArn": KEY_ARN,
            "WaitForCompletion": str(deploy["wait"]).lower(),
            "TimeoutSeconds": str(deploy["timeout"]),
            "AllowPartialFailure": str(deploy["partial"]).lower(),
            "ArchivedReadSets": deploy["archived"],
        }
        if deploy["by_filter"]:
            self.refreshes += deploy["refresh"]
            props["ReadSetFilter"] = {"sampleId": deploy["sample"]}
            props["SelectionRefresh"] = str(self.refreshes)
        else:
            props["ReadSetIds"] = list(dict.fromkeys(known[i % len(known)] for i in deploy["ids"]))
        return props

    def _execution(self, which: int) -> Execution | None:
        return pick(sorted(self.world.running(), key=lambda e: e.name), which)

    @initialize(
        read_sets=st.lists(
            st.tuples(st.sampled_from(SAMPLES), st.sampled_from(["ACTIVE", "ACTIVE", "ARCHIVED"])),
            min_size=2,
            max_size=5,
        ),
        first=deploys,
    )
    def create(self, read_sets: list[tuple[str, str]], first: dict[str, Any]) -> None:
        """The store's read sets, and the stack's first deploy (a Create)."""
        for sample, status in read_sets:
            self.world.add_read_set(sample, status)
        self._do(lambda: self.world.cfn.deploy(self._props(first), fails_elsewhere=False))

    # CloudFormation (its requests are delivered at the end of every rule)

    @rule(deploy=deploys, fails_elsewhere=st.sampled_from([False, False, False, True]))
    def deploy(self, deploy: dict[str, Any], fails_elsewhere: bool) -> None:
        """A deploy once the stack is idle: Create (after a deleted or rolled-back stack) or
        Update (another selection, filter or generation: a new generation replaces the
        export); the stack may fail elsewhere and roll back."""
        cfn = self.world.cfn

        def deploy_now() -> None:
            if cfn.idle():
                sent = cfn.deploy(self._props(deploy), fails_elsewhere=fails_elsewhere)
                event(f"deploy sent a request: {sent}")

        self._do(deploy_now)

    @rule(what=st.sampled_from(["another resource fails", "the stack is deleted"]))
    def stack_fails_or_is_deleted(self, what: str) -> None:
        """Another resource of the stack fails while a deploy waits for this one's answer
        (CloudFormation abandons the request and rolls back: a Delete after a Create, an
        Update back to the old properties after an Update), or the idle stack is deleted."""
        cfn = self.world.cfn

        def act() -> None:
            if what == "another resource fails":
                event(f"a deploy abandoned: {cfn.fail_elsewhere_now()}")
            elif cfn.idle() and cfn.resource is not None:
                cfn.delete_stack()

        self._do(act)

    @rule(which=which, crash_at=st.none() | st.integers(1, 20))
    def redeliver(self, which: int, crash_at: int | None) -> None:
        """A request delivered once more (Lambda's at-least-once delivery); a crash in it is
        retried by Lambda."""
        request = pick(self.world.delivered(), which)
        if request is None:
            self._do(lambda: None)
            return
        self._do(lambda: self.world.deliver(request, crash_at=crash_at))

    # The runner

    @rule()
    def time_passes(self) -> None:
        """A poll interval passes: Step Functions runs the steps that come due. (Hypothesis
        tries rules without arguments first: this is the schedules' default move.)"""
        self._do(lambda: event(f"time passes: {self.world.run_due(POLL_SECONDS, most=4)} steps"))

    @rule(seconds=st.sampled_from([10, 60, 300, 900]))
    def time_jumps(self, seconds: int) -> None:
        """Time passes: Step Functions runs the steps that come due (a few; the rest run
        late), deadlines and CloudFormation's timeouts come."""
        self._do(lambda: event(f"time jumps: {self.world.run_due(seconds, most=4)} steps"))

    @rule(which=which, crash_at=st.none() | st.integers(1, 60))
    def step(self, which: int, crash_at: int | None) -> None:
        """A runner execution's next step, crashing before its Nth AWS call if asked."""
        execution = self._execution(which)
        if execution is None:
            self._do(lambda: None)
            return
        self._do(lambda: event(f"step {self.world.step(execution, crash_at=crash_at)}"))

    @rule(which=which, at=st.integers(1, 40), intruder=st.sampled_from(INTRUDERS))
    def step_with_intruder(self, which: int, at: int, intruder: str) -> None:
        """A step inside whose Nth AWS call something else runs: the same step again (its
        retry while it still runs), another execution's step, or a request."""
        execution = self._execution(which)
        world = self.world
        if execution is None:
            self._do(lambda: None)
            return

        def intrude() -> None:
            event(f"intruder: {intruder}")
            if intruder == "same step":
                world.step_again(execution)
            elif intruder == "another step":
                others = sorted((e for e in world.running() if e is not execution), key=_name)
                other = pick(others, which)
                if other is not None:
                    world.step(other)
            elif intruder == "next request":
                world.deliver_next()
            elif world.delivered():
                world.deliver(world.delivered()[-1])

        self._do(lambda: world.step(execution, intrude_at=at, intruder=intrude))

    @rule(which=which, how=st.sampled_from(["ABORTED", "ABORTED twice", "FAILED"]))
    def runner_ends_badly(self, which: int, how: str) -> None:
        """A person stops an execution (ABORTED; the watchdog may hear it twice), or a failing
        step's retries run out (FAILED: the watchdog starts a successor)."""
        world = self.world
        failing = sorted((e for e in world.running() if e.failed_attempts), key=_name)
        execution = pick(failing, which) if how == "FAILED" else self._execution(which)
        if execution is None or (
            STOPPED_AFTER_THE_END in world.avoided and world.ended_with_an_answer_owed(execution)
        ):
            # Nothing to stop; or STOPPED_AFTER_THE_END: its step is retried instead, and
            # answers.
            self._do(lambda: None)
            return
        status, told = how.split(maxsplit=1)[0], 2 if how.endswith("twice") else 1
        self._do(lambda: world.stop(execution, status, told=told))

    # HealthOmics

    @rule(
        which=which,
        outcome=st.sampled_from(["IN_PROGRESS", "COMPLETED", "COMPLETED", "FAILED", "PARTIAL"]),
        failing=st.integers(0, 255),
    )
    def job_moves(self, which: int, outcome: str, failing: int) -> None:
        """An export or activation job goes IN_PROGRESS or ends: every read set finished, every
        one failed, or (PARTIAL) those the bits of ``failing`` pick. A read set that failed to
        activate is ARCHIVED again."""
        omics = self.world.omics
        job = pick(sorted(omics.running() + omics.running(activation=True), key=_id), which)
        if job is None:
            self._do(lambda: None)
            return
        self._do(lambda: self._move(job, outcome, failing))

    @rule(failing=st.just(0) | st.integers(0, 255), rounds=st.integers(1, 3))
    def jobs_run_their_course(self, failing: int, rounds: int) -> None:
        """A while passes: every job ends (the read sets the bits of ``failing`` pick fail;
        mostly none) and the runners step as they come due, ``rounds`` times."""

        def run() -> None:
            omics = self.world.omics
            for _ in range(rounds):
                for job in sorted(omics.running(activation=True) + omics.running(), key=_id):
                    self._move(job, "PARTIAL", failing)
                self.world.run_due(POLL_SECONDS, most=3)

        self._do(run)

    def _move(self, job: Job, outcome: str, failing: int) -> None:
        omics = self.world.omics
        if outcome == "IN_PROGRESS":
            omics.progress(job)
            return
        ids = job.read_set_ids
        chosen = {
            "COMPLETED": set(),
            "FAILED": set(ids),
            "PARTIAL": {r for r in ids if failing >> (int(r) % 8) & 1},
        }[outcome]
        omics.end(job, chosen)
        event(f"{'activation' if job.activation else 'export'} job {job.status}")

    @rule(
        refusal=st.sampled_from(
            ["ThrottlingException", "ServiceQuotaExceededException", "concurrent jobs"]
        ),
        operation=st.sampled_from(
            [
                "StartReadSetExportJob",
                "StartReadSetActivationJob",
                "ListReadSetExportJobs",
                "GetReadSetExportJob",
                "GetReadSetMetadata",
                "ListReadSets",
                "ListReadSetActivationJobs",
            ]
        ),
        times=st.integers(1, 7),
    )
    def healthomics_refuses(self, refusal: str, operation: str, times: int) -> None:
        """The next requests of an operation are throttled (botocore retries 5 times), or
        starts are refused by the concurrent-job quota: the next few, or (concurrent jobs)
        every start while ``times - 4`` export jobs run (no limit below 0)."""
        omics = self.world.omics

        def refuse() -> None:
            if refusal == "concurrent jobs":
                omics.max_concurrent_jobs = times - 4 if times >= 4 else None
            elif refusal == "ServiceQuotaExceededException" and operation.startswith("Start"):
                omics.inject(operation, refusal, min(times, 3))
            else:
                omics.inject(operation, "ThrottlingException", times)

        self._do(refuse)

    # Read sets

    @rule(
        change=st.sampled_from(["added", "added archived", "archived", "activated by another"]),
        which=which,
        sample=st.sampled_from(SAMPLES),
    )
    def read_sets_change(self, change: str, which: int, sample: str) -> None:
        """A read set is added (ACTIVE or ARCHIVED), HealthOmics archives an ACTIVE one that
        no running job exports, or someone else starts activating an ARCHIVED one."""
        world = self.world
        if change.startswith("added"):
            status = "ARCHIVED" if change.endswith("archived") else "ACTIVE"
            self._do(lambda: world.add_read_set(sample, status))
            return
        exporting = {r for job in world.omics.running() for r in job.read_set_ids}
        wanted = "ACTIVE" if change == "archived" else "ARCHIVED"
        read_set_id = pick(
            sorted(
                r.id
                for r in world.omics.read_sets.values()
                if r.status == wanted and r.id not in exporting
            ),
            which,
        )

        def apply() -> None:
            if read_set_id is None:
                return
            if change == "archived":
                world.omics.read_sets[read_set_id].status = "ARCHIVED"
                world.read_set_changed(read_set_id)
            else:
                world.omics.activate_for_someone_else(read_set_id)

        self._do(apply)

    # The end of a schedule

    def teardown(self) -> None:
        try:
            if not self.unfinished:
                self.world.drain()
                self.world.check_final()
                self._statistics()
        finally:
            self.world.close()

    def _statistics(self) -> None:
        """What the schedule did, for --hypothesis-show-statistics."""
        world = self.world
        for role in sorted({f"{r.type} ({r.role})" for r in world.cfn.requests.values()}):
            event(f"CloudFormation sent {role}")
        event(f"export jobs accepted: {min(len(world.omics.jobs), 5)}+")
        for export_id in world.export_ids():
            record = world.export_record(export_id)
            if record is not None:
                event(f"an export ended {record['status']}")
        crashed = sum(r.crashed_deliveries for r in world.cfn.requests.values())
        event(f"deliveries crashed: {min(crashed, 3)}+")


def _name(execution: Execution) -> str:
    return execution.name


def _id(job: Job) -> str:
    return job.id


TestExportSchedules = ExportSchedules.TestCase
TestExportSchedules.settings = settings.get_profile(PROFILE)


# Regression tests: schedules Hypothesis found and shrank, replayed as it printed them. A
# schedule that reaches a handler fault replays with that fault no longer steered around
# (tests/world.py, KNOWN_FAULTS), and is expected to fail until the handler is fixed; the same
# schedule with the fault steered around passes, which shows that the steering is what keeps
# the properties passing.


def replay(schedule: Callable[[ExportSchedules], None], *, reaching: str | None = None) -> None:
    """Run a printed schedule on a fresh machine, then its end (drain and final checks)."""
    state = ExportSchedules()
    if reaching is not None:
        state.world.avoided.discard(reaching)
    try:
        schedule(state)
    finally:
        state.teardown()


def breaks(promise: str, schedule: Callable[[ExportSchedules], None], *, reaching: str) -> None:
    """Replay a schedule that reaches a known fault: it must break ``promise`` (an
    AssertionError naming it, which the test's strict xfail expects); anything else fails the
    test."""
    try:
        replay(schedule, reaching=reaching)
    except AssertionError as failure:
        if promise not in str(failure):
            raise RuntimeError(f"expected {promise} to break, not: {failure}") from failure
        raise


DEPLOY_0 = {
    "ids": [0],
    "by_filter": False,
    "sample": "SAMPLE-A7",
    "generation": 0,
    "wait": True,
    "partial": False,
    "archived": "ACTIVATE",
    "timeout": 600,
    "refresh": False,
}


def answer_lost_between_claim_and_put(state: ExportSchedules) -> None:
    """A Create's job completes; the step that ends the export claims the answer in the state
    table and dies before the PUT (its 17th AWS call)."""
    state.create(read_sets=[("SAMPLE-A7", "ACTIVE"), ("SAMPLE-A7", "ACTIVE")], first=DEPLOY_0)
    state.time_passes()
    state.job_moves(failing=0, outcome="COMPLETED", which=0)
    state.step(crash_at=17, which=0)


@pytest.mark.xfail(
    strict=True,
    reason="the answer is claimed in the state table before its PUT: a step that dies in "
    "between leaves the request unanswered for good (promise 1)",
    raises=AssertionError,
)
def test_an_answer_claimed_by_a_step_that_dies_is_still_sent() -> None:
    breaks("promise 1", answer_lost_between_claim_and_put, reaching=LOST_ANSWER)


def test_a_step_that_dies_just_after_its_answer_leaves_it_sent() -> None:
    replay(answer_lost_between_claim_and_put)


def rolled_back_replacement(state: ExportSchedules) -> None:
    """An export completed (the same properties deployed again send nothing); its
    generation bumped (a replacement, exporting everything again); another resource fails
    while that Update waits, and CloudFormation rolls back to generation 0."""
    state.create(read_sets=[("SAMPLE-A7", "ACTIVE"), ("SAMPLE-A7", "ACTIVE")], first=DEPLOY_0)
    state.jobs_run_their_course(failing=0, rounds=1)
    state.deploy(deploy=DEPLOY_0, fails_elsewhere=False)
    state.jobs_run_their_course(failing=0, rounds=1)
    state.deploy(deploy={**DEPLOY_0, "generation": 1}, fails_elsewhere=False)
    state.stack_fails_or_is_deleted(what="another resource fails")
    state.time_jumps(seconds=10)


@pytest.mark.xfail(
    strict=True,
    reason="the export of a replacement Update that CloudFormation rolled back is never "
    "cancelled: its runner starts its jobs after the rollback (promise 5)",
    raises=AssertionError,
)
def test_a_rolled_back_replacement_starts_nothing_after_the_rollback() -> None:
    breaks("promise 5", rolled_back_replacement, reaching=ORPHANED_REPLACEMENT)


def test_a_rolled_back_replacement_whose_runner_is_stopped_starts_nothing() -> None:
    replay(rolled_back_replacement)


def lost_start_beside_another_export(state: ExportSchedules) -> None:
    """A Create starts its job; another resource fails, CloudFormation rolls the stack back
    (its export cancelled, the job running on); the stack is created again (a new stack: a
    new export, the same destination and read set), and its first step dies between claiming
    its batch and sending the start."""
    state.create(read_sets=[("SAMPLE-A7", "ACTIVE"), ("SAMPLE-A7", "ACTIVE")], first=DEPLOY_0)
    state.jobs_run_their_course(failing=0, rounds=1)
    state.stack_fails_or_is_deleted(what="another resource fails")
    state.deploy(deploy=DEPLOY_0, fails_elsewhere=False)
    state.step(crash_at=15, which=0)


@pytest.mark.xfail(
    strict=True,
    reason="a batch whose start was lost adopts another export's job (the same destination "
    "and read sets, created before the claim): its run ends COMPLETED on a job it never "
    "started (promise 3)",
    raises=AssertionError,
)
def test_a_lost_start_adopts_no_job_of_another_export() -> None:
    breaks("promise 3", lost_start_beside_another_export, reaching=ADOPTED_JOB)


def test_a_lost_start_with_a_destination_of_its_own_starts_its_job() -> None:
    replay(lost_start_beside_another_export)


@pytest.mark.parametrize("profile", ["make-test"])
def test_the_profile_is_derandomized_and_keeps_no_database(profile: str) -> None:
    chosen = settings.get_profile(profile)
    assert chosen.derandomize and chosen.database is None and chosen.deadline is None
