"""Deploy rehearsals under enforced IAM: the synthesized template, the real handler, a real
boto3 client, and stand-ins that answer as AWS does.

Every request the handler makes goes through the gateway (tests/standins/gateway.py), which
judges it by the policies the template grants its role (S3 and DynamoDB served by moto, the
HealthOmics endpoint by tests/omics_endpoint.py). CloudFormation's requests are played the
way CloudFormation plays them for a Lambda-backed custom resource (tests/cfn_rehearsal.py),
rollbacks and abandoned waiters included.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any
from unittest import mock

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Template
from botocore.exceptions import ClientError
from botocore.httpsession import URLLib3Session

from cdk_omics_export import ArchivedReadSets, ReadSetExport, ReadSetFilter, runner
from cdk_omics_export.handler import activation, batches, pacing, rules
from cdk_omics_export.handler import export as exports
from cdk_omics_export.handler import state as st
from cdk_omics_export.handler.step import Step

from .cfn_rehearsal import StackRehearsal
from .omics_endpoint import OmicsEndpoint, peak_per_second
from .standins import eventbridge
from .standins.gateway import Gateway

STORE = "1234567890"
READ_SETS = ["1111111111", "2222222222", "3333333333"]


def cohort(count: int, start: int = 4000000000) -> list[str]:
    return [str(start + n) for n in range(count)]


def synthesize(build: Callable[[Stack], None], name: str = "Rehearsal") -> dict[str, Any]:
    app = App()
    stack = Stack(app, name)
    build(stack)
    template: dict[str, Any] = Template.from_stack(stack).to_json()
    return template


def three_ids(stack: Stack) -> None:
    ReadSetExport(stack, "Export", sequence_store_id=STORE, read_set_ids=READ_SETS)


def listed(ids: list[str]) -> Callable[[Stack], None]:
    def build(stack: Stack) -> None:
        ReadSetExport(stack, "Export", sequence_store_id=STORE, read_set_ids=ids)

    return build


def listed_exports(stack: Stack, *, count: int, read_sets: int) -> None:
    """``count`` exports of their own ``read_sets`` listed ids each, in one stack."""
    for n in range(count):
        ReadSetExport(
            stack,
            f"Export{n}",
            sequence_store_id=STORE,
            read_set_ids=cohort(read_sets, 4100000000 + n * 100),
        )


def three_exports(stack: Stack) -> None:
    listed_exports(stack, count=3, read_sets=3)


def by_filter(stack: Stack) -> None:
    ReadSetExport(
        stack,
        "Export",
        sequence_store_id=STORE,
        read_set_filter=ReadSetFilter(sample_id="tumour-7"),
    )


def own_key(stack: Stack) -> None:
    ReadSetExport(
        stack,
        "Export",
        sequence_store_id=STORE,
        read_set_ids=READ_SETS,
        encryption_key=kms.Key(stack, "DataKey", enable_key_rotation=True),
    )


def long_without_waiting(stack: Stack) -> None:
    """250 listed read sets, the deploy not waiting, and a rule made before the export."""
    export = ReadSetExport(
        stack,
        "Export",
        sequence_store_id=STORE,
        read_set_ids=cohort(250),
        wait_for_completion=False,
    )
    export.on_status_change("Watch")


def failing_on_archived(stack: Stack) -> None:
    ReadSetExport(
        stack,
        "Export",
        sequence_store_id=STORE,
        read_set_ids=READ_SETS,
        archived_read_sets=ArchivedReadSets.FAIL,
    )


# Distinctive values of the identifying filter fields: no log, event, manifest, answer or
# history may hold them.
SAMPLE, SUBJECT, NAME = "phi-sample-qz81", "phi-subject-xk42", "phi-name-wv93"


def identifying_filter(stack: Stack) -> None:
    export = ReadSetExport(
        stack,
        "Export",
        sequence_store_id=STORE,
        read_set_filter=ReadSetFilter(sample_id=SAMPLE, subject_id=SUBJECT, name=NAME),
        notification_topic=sns.Topic(stack, "Topic"),
    )
    export.on_status_change("Watch")


TEMPLATES: dict[str, Callable[[Stack], None]] = {
    "identifying-filter": identifying_filter,
    "fail-on-archived": failing_on_archived,
    "long-without-waiting": long_without_waiting,
    "own-key": own_key,
    "three-ids": three_ids,
    "150-ids": listed(cohort(150)),
    "151-ids": listed(cohort(151)),
    "250-ids": listed(cohort(250)),
    "three-exports": three_exports,
    "filter": by_filter,
}


@pytest.fixture(scope="module")
def templates() -> Callable[[str], dict[str, Any]]:
    """Each stack synthesized once per module, whichever tests ask for it."""
    done: dict[str, dict[str, Any]] = {}

    def template(name: str) -> dict[str, Any]:
        if name not in done:
            done[name] = synthesize(TEMPLATES[name])
        return done[name]

    return template


@pytest.fixture
def omics_read_sets() -> dict[str, list[str]]:
    """The store's read sets (tests/conftest.py's ``omics``): the listed ones and the cohorts."""
    return {STORE: READ_SETS + cohort(300) + cohort(400, 4100000000)}


@pytest.fixture
def deploy(
    gateway: Gateway, omics: OmicsEndpoint, templates: Callable[[str], dict[str, Any]]
) -> Callable[..., StackRehearsal]:
    def deployed(name: str, *, rate: int = 100) -> StackRehearsal:
        rehearsal = StackRehearsal(gateway, templates(name))
        # Fast rehearsals; the budget test keeps the template's own rate.
        if rate:
            rehearsal.environment["MAX_REQUESTS_PER_SECOND"] = str(rate)
        return rehearsal

    return deployed


def manifest(gateway: Gateway, uri: str) -> dict[str, Any]:
    import json

    bucket, _, key = uri.removeprefix("s3://").partition("/")
    body = gateway.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    result: dict[str, Any] = json.loads(body)
    return result


def test_create_update_delete_under_enforced_iam(
    deploy: Callable[..., StackRehearsal], gateway: Gateway, omics: OmicsEndpoint
) -> None:
    cfn = deploy("three-ids")
    props = cfn.properties()
    created = cfn.request("Create", props)
    assert created.status == "SUCCESS", created.reason
    (job_id,) = omics.jobs
    assert created.data["JobId"] == job_id
    assert created.data["Status"] == "COMPLETED"
    assert (created.data["ReadSetCount"], created.data["ExportedReadSetCount"]) == ("3", "3")
    assert created.physical_id == created.data["ExportId"]
    assert gateway.denied() == []
    # HealthOmics wrote the files as the export role, under the prefix its policy allows.
    record = manifest(gateway, created.data["ManifestUri"])
    assert record["status"] == "COMPLETED"
    assert [r["status"] for r in record["jobs"][0]["readSets"]] == ["FINISHED"] * 3

    unchanged = cfn.request(
        "Update",
        cfn.properties(TimeoutSeconds="1200"),
        old_properties=props,
        physical_id=created.physical_id,
    )
    assert unchanged.status == "SUCCESS"
    assert unchanged.physical_id == created.physical_id
    assert unchanged.data["Status"] == "COMPLETED"
    assert unchanged.data["JobCount"] == "0"
    assert len(omics.jobs) == 1

    fewer = cfn.request(
        "Update",
        cfn.properties(ReadSetIds=READ_SETS[:2]),
        old_properties=props,
        physical_id=created.physical_id,
    )
    assert (fewer.status, fewer.physical_id) == ("SUCCESS", created.physical_id)
    assert fewer.data["ReadSetCount"] == "2"
    assert len(omics.jobs) == 1

    calls = len(omics.requests)
    deleted = cfn.request("Delete", props, physical_id=created.physical_id)
    assert deleted.status == "SUCCESS"
    assert len(omics.requests) == calls  # Delete calls no HealthOmics API
    assert manifest(gateway, created.data["ManifestUri"])["jobs"]  # exported data stays
    assert gateway.denied() == []


def test_a_failed_update_then_its_rollback_starts_nothing(
    deploy: Callable[..., StackRehearsal], omics: OmicsEndpoint
) -> None:
    cfn = deploy("three-ids")
    old = cfn.properties()
    created = cfn.request("Create", old)
    assert created.status == "SUCCESS", created.reason
    # The update asks for a read set that does not exist: the pre-flight fails it.
    new = cfn.properties(ReadSetIds=[*READ_SETS, "9999999999"])
    failed = cfn.request("Update", new, old_properties=old, physical_id=created.physical_id)
    assert failed.status == "FAILED"
    assert "9999999999 (not found)" in failed.reason
    # Meanwhile the first read sets were archived: a rollback that exported them again
    # would fail and leave the stack in UPDATE_ROLLBACK_FAILED.
    for read_set in omics.read_sets[STORE].values():
        if read_set["id"] in READ_SETS:
            read_set["status"] = "ARCHIVED"
    jobs = len(omics.jobs)
    rollback = cfn.request("Update", old, old_properties=new, physical_id=created.physical_id)
    assert rollback.status == "SUCCESS", rollback.reason
    assert rollback.physical_id == created.physical_id
    assert len(omics.jobs) == jobs == 1
    assert rollback.data["ExportedReadSetCount"] == "3"


def test_an_abandoned_update_and_its_rollback_start_nothing_more(
    deploy: Callable[..., StackRehearsal], omics: OmicsEndpoint
) -> None:
    """Another resource fails while this Update runs: CloudFormation abandons it and rolls
    back. The rollback's request supersedes the abandoned one, which is answered FAILED
    once (CloudFormation ignores it by then), and its runner starts nothing more."""
    omics.max_concurrent_jobs = 1
    cfn = deploy("three-ids")
    old = cfn.properties()
    created = cfn.request("Create", old)
    assert created.status == "SUCCESS", created.reason
    bigger = cfn.properties(ReadSetIds=cohort(100) + cohort(100, 4100000000))
    waiting = cfn.start("Update", bigger, old_properties=old, physical_id=created.physical_id)
    cfn.run_runner()
    assert len(omics.jobs) == 2  # the first of two batches; the quota holds the second
    rollback = cfn.request("Update", old, old_properties=bigger, physical_id=created.physical_id)
    assert rollback.status == "SUCCESS", rollback.reason
    jobs = len(omics.jobs)
    abandoned = cfn.answer(waiting)
    assert abandoned is not None and abandoned.status == "FAILED"
    assert "superseded by request" in abandoned.reason
    # The abandoned run's runner ends at its next step, starting nothing.
    assert cfn.finish()
    assert len(omics.jobs) == jobs == 2
    assert [r.status for r in cfn.runs()] == ["SUCCEEDED"] * 3


def test_a_replacement_then_a_rollback_makes_no_third_export(
    deploy: Callable[..., StackRehearsal], omics: OmicsEndpoint
) -> None:
    cfn = deploy("three-ids")
    first = cfn.properties()
    created = cfn.request("Create", first)
    assert created.status == "SUCCESS", created.reason
    second = cfn.properties(ExportGeneration="1")
    replaced = cfn.request("Update", second, old_properties=first, physical_id=created.physical_id)
    assert replaced.status == "SUCCESS", replaced.reason
    assert replaced.physical_id != created.physical_id
    assert len(omics.jobs) == 2  # a new generation exports everything again
    # Another resource fails: CloudFormation rolls this resource back to the first
    # properties, then deletes the physical id it abandons.
    rollback = cfn.request("Update", first, old_properties=second, physical_id=replaced.physical_id)
    assert rollback.status == "SUCCESS", rollback.reason
    assert rollback.physical_id == created.physical_id
    cleanup = cfn.request("Delete", second, physical_id=replaced.physical_id)
    assert cleanup.status == "SUCCESS"
    assert len(omics.jobs) == 2


def test_one_id_added_to_an_exported_long_list_exports_one_read_set(
    gateway: Gateway, deploy: Callable[..., StackRehearsal], omics: OmicsEndpoint
) -> None:
    before = deploy("150-ids")
    old = before.properties()
    before.upload_list(old["ReadSetList"], cohort(150))
    created = before.request("Create", old)
    assert created.status == "SUCCESS", created.reason
    assert len(omics.exported()) == 150
    after = deploy("151-ids")  # the next template version: a new asset, a new policy
    new = after.properties()
    assert new["ReadSetList"] != old["ReadSetList"]
    after.upload_list(new["ReadSetList"], list(reversed(cohort(151))))
    updated = after.request("Update", new, old_properties=old, physical_id=created.physical_id)
    assert updated.status == "SUCCESS", updated.reason
    assert omics.exported()[150:] == [cohort(151)[-1]]
    assert updated.data["JobCount"] == "1"
    assert (updated.data["ReadSetCount"], updated.data["ExportedReadSetCount"]) == ("151", "151")
    assert gateway.denied() == []


def wait_until(cfn: StackRehearsal, done: Callable[[], bool], limit: float = 6 * 3600) -> None:
    """Let simulated time pass until ``done()``; fail, rather than loop, past ``limit``."""
    deadline = cfn.clock.now() + limit
    while not done():
        assert cfn.clock.now() < deadline, f"not done after {limit} simulated seconds"
        cfn.wait(cfn.query_interval)


def deleted_manifest(cfn: StackRehearsal) -> str:
    (run,) = cfn.runs()
    return exports.manifest_uri(cfn.properties()["Destination"], run.name.rsplit("-", 2)[0])


def test_a_delete_mid_export_stops_new_starts(
    gateway: Gateway, deploy: Callable[..., StackRehearsal], omics: OmicsEndpoint
) -> None:
    cfn, props = one_job_at_a_time(deploy, omics, "250-ids")
    waiting = cfn.start("Create", props)
    while len(omics.jobs) < 2:  # the first job ends, the second starts
        assert cfn.answer(waiting) is None
        cfn.wait(cfn.query_interval)
    # The stack moves on (another resource failed): Delete arrives while the runner runs.
    physical_id = exports.export_id_of(
        cfn.stack_id, props["ConstructPath"], props["Destination"], 0
    )
    deleted = cfn.request("Delete", props, physical_id=physical_id)
    assert deleted.status == "SUCCESS"
    assert deleted.physical_id == physical_id
    abandoned = cfn.answer(waiting)  # answered once, FAILED, when the Delete cancelled it
    assert abandoned is not None and abandoned.status == "FAILED"
    assert "was cancelled" in abandoned.reason
    assert cfn.finish()
    assert len(omics.jobs) == 2
    # The running job's outcome was still recorded, then the runner ended.
    assert all(job.completion_time is not None for job in omics.jobs.values())
    record = manifest(gateway, deleted_manifest(cfn))
    assert record["status"] == "CANCELLED"
    assert record["runner"]["active"] is False
    assert [job["status"] for job in record["jobs"]] == ["COMPLETED", "COMPLETED"]


def test_a_stack_destroyed_mid_export_leaves_a_final_cancelled_manifest_and_state(
    gateway: Gateway, deploy: Callable[..., StackRehearsal], omics: OmicsEndpoint
) -> None:
    cfn, props = one_job_at_a_time(deploy, omics, "250-ids")
    cfn.start("Create", props)
    wait_until(cfn, lambda: len(omics.jobs) >= 2)
    physical_id = exports.export_id_of(
        cfn.stack_id, props["ConstructPath"], props["Destination"], 0
    )
    assert cfn.request("Delete", props, physical_id=physical_id).status == "SUCCESS"
    # cdk destroy: the service goes right after the resource. Deleting the state machine ends
    # its executions at their next transition; the watchdog's rule goes with them.
    for run in cfn.runs():
        if run.status == "RUNNING":
            cfn.stepfunctions.stop_execution(run.arn)
    running = [job.id for job in omics.jobs.values() if job.completion_time is None]
    assert len(running) == 1
    record = manifest(gateway, deleted_manifest(cfn))
    assert (record["status"], record["cancelled"]) == ("CANCELLED", True)
    assert (
        f"Jobs running then: {running[0]}. HealthOmics cannot cancel a job"
        in (record["statusReason"])
    )
    by_id = {job["id"]: job["status"] for job in record["jobs"]}
    assert by_id[running[0]] in st.RUNNING_JOB_STATUSES
    table = cfn.environment["STATE_TABLE_NAME"]
    state = st.StateStore(gateway.client("dynamodb"), table).load_record(physical_id)
    assert state is not None
    assert (state["status"], state["run"]["phase"]) == ("CANCELLED", "ENDED")
    assert state["statusReason"] == record["statusReason"]
    assert gateway.denied() == []


# Where the first of two overlapping steps is held, round after round: before its n-th AWS
# request. Its first requests read the export and take its lease; then it advances the export.
HOLD_AT = (5, 2, 13, 1, 3, 8, 21, 34)
# A guard against a hold that never ends: no turn of a rehearsal takes this long.
TURN_LIMIT_SECONDS = 300


def test_overlapping_steps_lose_no_job_record(
    gateway: Gateway, deploy: Callable[..., StackRehearsal], omics: OmicsEndpoint
) -> None:
    """Two invocations of the runner's step at once (a step whose execution was stopped by
    hand while its takeover runs, say): one advances, the other waits, and nothing either
    recorded is lost.

    Each round, the second step runs in full while the first is held before one of its
    requests (HOLD_AT): before it read the export, before it took the lease, holding the
    lease mid-advance. The two run in threads of their own, one at a time, on the simulated
    clock: the same interleavings on every run, whatever the machine's load.
    """
    cfn = deploy("250-ids")
    props = cfn.properties()
    cfn.upload_list(props["ReadSetList"], cohort(250))
    waiting = cfn.start("Create", props)
    (step,) = cfn.runner_steps().values()
    answers: list[Any] = []
    # The rounds whose second step waited for the first, calling no HealthOmics API.
    waited: list[int] = []
    for hold_at in HOLD_AT:
        first, second, second_calls = _overlapping_steps(cfn, step, hold_at)
        answers += [first, second]
        if isinstance(second, dict) and second["action"] == "WAIT" and not second_calls:
            waited.append(hold_at)
        if any(isinstance(a, dict) and a.get("action") == "END" for a in answers):
            break
    assert not [a for a in answers if isinstance(a, Exception)]
    assert any(a["action"] == "WAIT" and a["waitSeconds"] for a in answers)
    assert waited, "no second step waited for the first"
    final = cfn.request("Update", props, old_properties=props, physical_id=waiting["RequestId"])
    assert final.status == "SUCCESS", final.reason
    record = manifest(gateway, final.data["ManifestUri"])
    recorded = {job["id"] for job in record["jobs"]}
    assert recorded == set(omics.jobs)
    assert sorted(omics.exported()) == cohort(250)


def _overlapping_steps(
    cfn: StackRehearsal, event: dict[str, Any], hold_at: int
) -> tuple[Any, Any, int]:
    """Two calls of the runner's step with ``event``, each in a thread of its own (a context of
    its own, as in two Lambda invocations): the first is held just before its ``hold_at``-th
    AWS request while the second runs in full, then goes on (a first step with fewer requests
    ends before the second starts). Their answers (or exceptions), and how many HealthOmics
    requests the second made."""
    held, go_on = threading.Event(), threading.Event()
    first_requests = [0]
    answers: dict[str, Any] = {}
    send = URLLib3Session.send

    def holding(session: URLLib3Session, request: Any) -> Any:
        if threading.current_thread().name == "first step":
            first_requests[0] += 1
            if first_requests[0] == hold_at:
                held.set()
                if not go_on.wait(TURN_LIMIT_SECONDS):
                    raise TimeoutError("the first step was never let go on")
        return send(session, request)

    def run(name: str) -> None:
        try:
            answers[name] = cfn.step(event)
        except Exception as error:  # noqa: BLE001 (asserted by the test)
            answers[name] = error
        finally:
            held.set()  # a first step that ended before its hold lets the second start

    with mock.patch.object(URLLib3Session, "send", holding):
        first = threading.Thread(target=run, args=("first step",), name="first step")
        first.start()
        assert held.wait(TURN_LIMIT_SECONDS)
        calls = len(cfn.gateway.omics.requests)
        second = threading.Thread(target=run, args=("second step",), name="second step")
        second.start()
        second.join(TURN_LIMIT_SECONDS)
        second_calls = len(cfn.gateway.omics.requests) - calls
        go_on.set()
        first.join(TURN_LIMIT_SECONDS)
    assert not first.is_alive() and not second.is_alive()
    return answers["first step"], answers["second step"], second_calls


def test_three_exports_of_a_stack_share_one_request_budget(
    deploy: Callable[..., StackRehearsal], omics: OmicsEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runners of three exports step at the same moments of the simulated clock: their
    requests together stay within the service's budget.

    Counted by the slots the shared budget handed out (the slot each request left in), on the
    simulated clock, so the count is the design's and not the machine's; `make bench`
    (section 5) measures the same in real time and real threads, at the endpoint.
    """
    used: list[float] = []
    reserve, wait = st.StateStore.reserve_request_slot, pacing.Pacer.wait
    slot = [0.0]

    def reserved(store: st.StateStore, interval: float, now: float) -> float:
        slot[0] = reserve(store, interval, now)
        return slot[0]

    def counted(pacer: pacing.Pacer, **kwargs: Any) -> None:
        wait(pacer, **kwargs)
        used.append(slot[0])  # the slot it left in: the last one it reserved

    monkeypatch.setattr(st.StateStore, "reserve_request_slot", reserved)
    monkeypatch.setattr(pacing.Pacer, "wait", counted)
    cfn = deploy("three-exports", rate=0)  # the template's budget: 5 per second
    assert cfn.environment["MAX_REQUESTS_PER_SECOND"] == "5"
    waiting = [cfn.start("Create", cfn.properties(e), logical_id=e) for e in cfn.exports()]
    # The three executions start at the same moment, so their steps fall due together.
    assert len({run.start for run in cfn.runs()}) == 1
    answers = [cfn.await_answer(event) for event in waiting]
    assert [a.data["Status"] for a in answers] == ["COMPLETED"] * 3, [a.reason for a in answers]
    assert len(omics.jobs) == 3
    assert len(omics.calls()) >= 20  # pre-flights, starts and polls of three exports
    assert len(used) == len(omics.calls())
    assert peak_per_second(used) <= 5
    assert peak_per_second([t for t, _, _ in omics.calls()]) <= 5


def test_removed_state_fails_clearly_and_the_next_deploy_rebuilds(
    gateway: Gateway, deploy: Callable[..., StackRehearsal], omics: OmicsEndpoint
) -> None:
    cfn = deploy("three-ids")
    props = cfn.properties()
    waiting = cfn.start("Create", props)
    table = cfn.environment["STATE_TABLE_NAME"]
    dynamodb = gateway.client("dynamodb")
    for item in dynamodb.scan(TableName=table)["Items"]:
        dynamodb.delete_item(TableName=table, Key={"pk": item["pk"], "sk": item["sk"]})
    # The request's own record went with the rest: nothing knows where to answer, and
    # CloudFormation fails the resource at its ServiceTimeout, naming the request.
    lost = cfn.await_answer(waiting)
    assert lost.status == "FAILED"
    assert waiting["RequestId"] in lost.reason and "did not receive a response" in lost.reason
    assert lost.waited == cfn.service_timeout(cfn.exports()[0])
    # CloudFormation rolls back (Delete), and the next deploy creates the export again, from
    # nothing.
    rollback = cfn.request("Delete", props, physical_id=lost.physical_id)
    assert rollback.status == "SUCCESS"
    again = cfn.request("Create", props)
    assert again.status == "SUCCESS", again.reason
    assert again.data["ExportedReadSetCount"] == "3"


def test_access_denied_right_after_the_role_is_created_is_retried(
    deploy: Callable[..., StackRehearsal], omics: OmicsEndpoint
) -> None:
    omics.inject("StartReadSetExportJob", "AccessDeniedException", times=2)
    cfn = deploy("three-ids")
    created = cfn.request("Create", cfn.properties())
    assert created.status == "SUCCESS", created.reason
    assert len(omics.jobs) == 1


def test_a_permanent_fault_names_the_read_sets_and_the_log_group(
    deploy: Callable[..., StackRehearsal], omics: OmicsEndpoint
) -> None:
    omics.inject("StartReadSetExportJob", "ValidationException", message="Explained")
    cfn = deploy("three-ids")
    created = cfn.request("Create", cfn.properties())
    assert created.status == "FAILED"
    # The runner answered: a failed Create's marker, with the export's id, which the Delete
    # of the rollback recognizes.
    export_id = exports.export_id_of(
        cfn.stack_id, cfn.properties()["ConstructPath"], cfn.properties()["Destination"], 0
    )
    assert created.physical_id == f"CREATE_FAILED:{export_id}"
    assert (
        f"StartReadSetExportJob failed for sequence store {STORE} "
        f"(read sets {', '.join(READ_SETS)}): ValidationException: Explained"
    ) in created.reason
    assert f"Handler logs: {cfn.environment['LOG_GROUP_NAME']}." in created.reason
    rollback = cfn.request("Delete", cfn.properties(), physical_id=created.physical_id)
    assert rollback.status == "SUCCESS"


def test_a_filter_selects_at_deploy_time_and_picks_up_new_read_sets(
    deploy: Callable[..., StackRehearsal], omics: OmicsEndpoint
) -> None:
    omics.add_read_sets(STORE, cohort(5, 4200000000), sampleId="tumour-7")
    cfn = deploy("filter")
    props = cfn.properties()
    created = cfn.request("Create", props)
    assert created.status == "SUCCESS", created.reason
    assert sorted(omics.exported()) == cohort(5, 4200000000)
    omics.add_read_sets(STORE, cohort(2, 4300000000), sampleId="tumour-7")
    refreshed = cfn.properties(SelectionRefresh="2026-11-29")
    updated = cfn.request(
        "Update", refreshed, old_properties=props, physical_id=created.physical_id
    )
    assert updated.status == "SUCCESS", updated.reason
    assert sorted(omics.exported()) == sorted(cohort(5, 4200000000) + cohort(2, 4300000000))
    assert updated.data["ReadSetCount"] == "7"
    assert updated.data["JobCount"] == "1"  # the two new read sets, nothing again


def test_a_destination_with_a_key_of_yours_is_written_with_it(
    gateway: Gateway, deploy: Callable[..., StackRehearsal], omics: OmicsEndpoint
) -> None:
    """The export role's files and the handler's manifest both go through the key rule of
    the stand-in S3: each writer needs kms:GenerateDataKey on the bucket's key."""
    cfn = deploy("own-key")
    props = cfn.properties()
    assert props["Encryption"] == "aws:kms" and props["KmsKeyArn"].startswith("arn:aws:kms:")
    created = cfn.request("Create", props)
    assert created.status == "SUCCESS", created.reason
    assert gateway.denied() == []
    bucket, _, key = created.data["ManifestUri"].removeprefix("s3://").partition("/")
    head = gateway.client("s3").head_object(Bucket=bucket, Key=key)
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"] == props["KmsKeyArn"]


# The runner: exports that outlive the deploy


def one_job_at_a_time(
    deploy: Callable[..., StackRehearsal], omics: OmicsEndpoint, name: str
) -> tuple[StackRehearsal, dict[str, Any]]:
    """A 250-read-set stack, its list uploaded, and a quota of one concurrent job: three
    waves, so the runner has work for a while."""
    omics.max_concurrent_jobs = 1
    cfn = deploy(name)
    props = cfn.properties()
    cfn.upload_list(props["ReadSetList"], cohort(250))
    return cfn, props


def watch_rule(cfn: StackRehearsal) -> str:
    """The export's status-change rule (the service's own is its runner's watchdog)."""
    (rule,) = [r for r in cfn.deployed.resources("AWS::Events::Rule") if "Watchdog" not in r]
    return rule


def heard(gateway: Gateway, cfn: StackRehearsal) -> list[str]:
    """The statuses the stack's rule received, in order, consecutive repeats merged."""
    seen: list[str] = []
    for event in gateway.events.deliveries(watch_rule(cfn)):
        status = event["detail"]["status"]
        if not seen or seen[-1] != status:
            seen.append(status)
    return seen


def exported_once(omics: OmicsEndpoint, ids: list[str]) -> bool:
    exported = omics.exported()
    return sorted(exported) == sorted(ids) and len(set(exported)) == len(exported)


def test_without_waiting_the_deploy_returns_and_the_runner_exports_the_rest(
    gateway: Gateway, deploy: Callable[..., StackRehearsal], omics: OmicsEndpoint
) -> None:
    omics.max_concurrent_jobs = 1
    cfn = deploy("long-without-waiting")
    # The rule is created before the export (the resource depends on it).
    resource = cfn.deployed.resources("Custom::OmicsReadSetExport")[cfn.exports()[0]]
    assert watch_rule(cfn) in resource["DependsOn"]
    props = cfn.properties()
    cfn.upload_list(props["ReadSetList"], cohort(250))
    began = cfn.clock.now()
    created = cfn.request("Create", props)
    assert created.status == "SUCCESS", created.reason
    assert created.data["Status"] == "RUNNING"
    assert cfn.clock.now() - began < 300  # the deploy goes on within minutes
    assert len(omics.jobs) <= 1  # whatever the quota allowed so far
    assert cfn.finish()  # after the deploy, the runner carries the export to its end
    assert len(omics.jobs) == 3
    assert exported_once(omics, cohort(250))
    record = manifest(gateway, created.data["ManifestUri"])
    assert (record["status"], record["runner"]["active"]) == ("COMPLETED", False)
    assert heard(gateway, cfn) == ["SUBMITTED", "RUNNING", "COMPLETED"]
    last = gateway.events.deliveries(watch_rule(cfn))[-1]["detail"]
    assert last["counts"]["exported"] == 250 and len(last["jobIds"]) == 3
    assert last["manifestUri"] == created.data["ManifestUri"]
    assert [r.status for r in cfn.runs()] == ["SUCCEEDED"]
    assert gateway.denied() == []


def test_a_status_the_service_did_not_send_reaches_no_target(
    gateway: Gateway, deploy: Callable[..., StackRehearsal], omics: OmicsEndpoint
) -> None:
    """A principal of the account allowed events:PutEvents on everything forges the export's
    COMPLETED: refused on the service's bus, and on the default bus no rule of the export
    hears it. The service's own statuses still arrive."""
    cfn = deploy("identifying-filter")
    omics.add_read_sets(STORE, cohort(2, 4400000000), sampleId=SAMPLE, subjectId=SUBJECT, name=NAME)
    secret = gateway.add_principal(
        "AKIAFORGER",
        [
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "events:PutEvents", "Resource": "*"}],
            }
        ],
        name="forger",
    )
    forger = gateway.client("events", "AKIAFORGER", secret)
    props = cfn.properties()
    forged = {
        "Source": rules.EVENT_SOURCE,
        "DetailType": rules.EVENT_DETAIL_TYPE,
        "Detail": json.dumps(
            {
                "stackId": cfn.stack_id,
                "constructPath": props["ConstructPath"],
                "exportId": exports.export_id_of(
                    cfn.stack_id, props["ConstructPath"], props["Destination"], 0
                ),
                "status": "COMPLETED",
                "manifestUri": "s3://attacker/manifest.json",
            }
        ),
    }
    bus = cfn.environment[rules.EVENT_BUS_ENV]
    with pytest.raises(ClientError) as refused:
        forger.put_events(Entries=[{**forged, "EventBusName": bus}])
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "explicit deny in a resource-based policy" in str(refused.value)
    # Accepted on the default bus, where no rule of the export listens.
    assert forger.put_events(Entries=[forged])["FailedEntryCount"] == 0
    rules_of_export = [
        r for r in cfn.deployed.resources("AWS::Events::Rule") if "Watchdog" not in r
    ]
    assert len(rules_of_export) == 2  # the topic's and on_status_change's
    assert all(gateway.events.deliveries(rule) == [] for rule in rules_of_export)
    assert gateway.events.published_on(bus) == []
    # The service's own statuses reach both rules.
    created = cfn.request("Create", props)
    assert created.status == "SUCCESS", created.reason
    for rule in rules_of_export:
        statuses = [e["detail"]["status"] for e in gateway.events.deliveries(rule)]
        assert statuses[-1] == "COMPLETED"
        assert all(
            e["detail"]["manifestUri"] == created.data["ManifestUri"]
            for e in gateway.events.deliveries(rule)
        )
    assert [d.principal for d in gateway.denied()] == ["forger"]


def test_only_the_service_writes_manifests_and_no_one_writes_with_another_key(
    gateway: Gateway, deploy: Callable[..., StackRehearsal]
) -> None:
    """A principal allowed s3:PutObject on everything can neither put a manifest of its own
    in the export's manifest folder nor write into the bucket with a KMS key of its own."""
    cfn = deploy("own-key")
    bucket, _, prefix = cfn.properties()["Destination"].removeprefix("s3://").partition("/")
    secret = gateway.add_principal(
        "AKIAWRITER",
        [
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": ["s3:PutObject", "kms:*"], "Resource": "*"}
                ],
            }
        ],
        name="writer",
    )
    s3 = gateway.client("s3", "AKIAWRITER", secret)
    export = exports.export_id_of(
        cfn.stack_id, cfn.properties()["ConstructPath"], cfn.properties()["Destination"], 0
    )
    with pytest.raises(ClientError) as manifest_refused:
        s3.put_object(
            Bucket=bucket,
            Key=f"{prefix}cdk-omics-export/{export}.json",
            Body=b'{"status": "COMPLETED"}',
        )
    other_key = "arn:aws:kms:us-east-1:111122223333:key/00000000-0000-0000-0000-000000000000"
    with pytest.raises(ClientError) as key_refused:
        s3.put_object(
            Bucket=bucket,
            Key=f"{prefix}sample.cram",
            Body=b"x",
            ServerSideEncryption="aws:kms",
            SSEKMSKeyId=other_key,
        )
    for refused in (manifest_refused, key_refused):
        assert refused.value.response["Error"]["Code"] == "AccessDenied"
    denied = gateway.denied()
    assert len(denied) == 2
    assert all("explicit deny in a resource-based policy" in d.message for d in denied)
    # The service's own writes still land, and the export completes.
    created = cfn.request("Create", cfn.properties())
    assert created.status == "SUCCESS", created.reason
    assert manifest(gateway, created.data["ManifestUri"])["exportId"] == export
    assert [d.principal for d in gateway.denied()] == ["writer", "writer"]


def test_a_runner_step_that_fails_and_is_retried_starts_no_duplicate_job(
    deploy: Callable[..., StackRehearsal], omics: OmicsEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The step dies right after HealthOmics started a job, before the job was recorded:
    Step Functions retries it, and the retried start (same client token) finds that job."""
    failures: list[str] = []
    original = Step.save_batch

    def fail_once(self: Step, batch: st.BatchRecord) -> None:
        if "jobId" in batch and not failures:
            failures.append(batch["jobId"])
            raise RuntimeError("the step's container died")
        original(self, batch)

    monkeypatch.setattr(Step, "save_batch", fail_once)
    cfn = deploy("three-ids")
    created = cfn.request("Create", cfn.properties())
    assert created.status == "SUCCESS", created.reason
    assert len(failures) == 1
    assert list(omics.jobs) == failures  # one job: the retried start returned it
    assert exported_once(omics, READ_SETS)
    (run,) = cfn.runs()
    assert run.events("LambdaFunctionFailed")  # the failed attempt, retried


def test_a_runner_stopped_by_hand_while_the_deploy_waits_fails_it_saying_so(
    deploy: Callable[..., StackRehearsal], omics: OmicsEndpoint
) -> None:
    """Nothing else waits on CloudFormation's behalf: the watchdog hears the stop and answers
    FAILED at once, naming the execution; a person's stop stands, and the next deploy
    resumes the export."""
    cfn, props = one_job_at_a_time(deploy, omics, "250-ids")
    waiting = cfn.start("Create", props)
    cfn.wait(60)
    (first,) = cfn.runs()
    cfn.stepfunctions.stop_by_hand(first.name)
    stopped_at = cfn.clock.now()
    failed = cfn.await_answer(waiting)
    assert failed.status == "FAILED"
    assert cfn.clock.now() == stopped_at  # told at once, not at the ServiceTimeout
    assert f"Runner execution {first.name} of export" in failed.reason
    assert "was stopped (ABORTED" in failed.reason
    assert failed.physical_id.startswith("CREATE_FAILED:")
    assert [r.status for r in cfn.runs()] == ["ABORTED"]
    # The rollback's Delete names the marker: nothing is touched, and nothing restarts.
    rollback = cfn.request("Delete", props, physical_id=failed.physical_id)
    assert rollback.status == "SUCCESS"
    assert cfn.finish()
    assert [r.status for r in cfn.runs()] == ["ABORTED"]
    again = cfn.request("Create", props)
    assert again.status == "SUCCESS", again.reason
    assert exported_once(omics, cohort(250))


def test_a_runner_stopped_by_hand_after_the_deploy_is_taken_over_by_the_next_deploy(
    deploy: Callable[..., StackRehearsal], omics: OmicsEndpoint
) -> None:
    cfn, props = one_job_at_a_time(deploy, omics, "long-without-waiting")
    created = cfn.request("Create", props)
    assert created.status == "SUCCESS", created.reason
    (first,) = cfn.runs()
    cfn.stepfunctions.stop_by_hand(first.name)
    assert cfn.finish()
    assert len(omics.exported()) < 250  # stopped: nothing carries the export now
    refreshed = cfn.properties(SelectionRefresh="again")
    updated = cfn.request(
        "Update", refreshed, old_properties=props, physical_id=created.physical_id
    )
    assert updated.status == "SUCCESS", updated.reason
    assert cfn.finish()
    assert exported_once(omics, cohort(250))
    assert [r.status for r in cfn.runs()] == ["ABORTED", "SUCCEEDED"]


def test_the_runner_continues_in_new_executions_below_the_history_cap(
    deploy: Callable[..., StackRehearsal], omics: OmicsEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rules, "RUNNER_STEPS_PER_EXECUTION", 4)
    cfn, props = one_job_at_a_time(deploy, omics, "250-ids")
    created = cfn.request("Create", props)
    assert created.status == "SUCCESS", created.reason
    # The answer leaves within the last step; its execution ends once the step has returned.
    assert cfn.finish()
    runs = cfn.runs()
    assert len(runs) > 2
    assert [r.name.rsplit("-", 1)[1] for r in runs] == [str(n) for n in range(len(runs))]
    assert {r.status for r in runs} == {"SUCCEEDED"}
    # Each execution took at most 4 steps: 9 events each, and its start and end.
    assert max(r.history_events for r in runs) <= 4 * rules.RUNNER_HISTORY_EVENTS_PER_STEP + 4
    assert exported_once(omics, cohort(250))


def status_change(cfn: StackRehearsal, run: Any) -> dict[str, Any]:
    """Step Functions' own event for an execution that ended, as EventBridge delivers it (the
    stand-ins do not emit these; the shape is the documented one)."""
    return {
        "version": "0",
        "id": "6f2c1d70-0000-4000-8000-000000000000",
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": cfn.gateway.account,
        "time": "2026-11-29T12:00:00Z",
        "region": cfn.gateway.region,
        "resources": [run.arn],
        "detail": {
            "executionArn": run.arn,
            "stateMachineArn": run.machine.arn,
            "name": run.name,
            "status": run.status,
            "startDate": int(run.start * 1000),
            "stopDate": int((run.stop or run.start) * 1000),
            "input": run.input_text,
        },
    }


def test_a_runner_whose_retries_run_out_after_the_deploy_is_restarted_by_the_watchdog(
    gateway: Gateway,
    deploy: Callable[..., StackRehearsal],
    omics: OmicsEndpoint,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After the deploy nothing waits on the export: the watchdog rule hears Step Functions'
    FAILED event and the runner's function starts the next execution."""
    cfn, props = one_job_at_a_time(deploy, omics, "long-without-waiting")
    created = cfn.request("Create", props)
    assert created.status == "SUCCESS", created.reason
    # The state table is out of reach for a while: every step of the first execution fails
    # until its retries run out.
    original = exports.Export.advance
    outage = [runner.RUNNER_RETRY_ATTEMPTS + 1]

    def unreachable(self: exports.Export, budget: Any) -> None:
        if outage[0]:
            outage[0] -= 1
            raise RuntimeError("the state table is unreachable")
        original(self, budget)

    monkeypatch.setattr(exports.Export, "advance", unreachable)
    (rule,) = [r for r in cfn.deployed.resources("AWS::Events::Rule") if "Watchdog" in r]
    pattern = cfn.deployed.resolve(cfn.deployed.resources("AWS::Events::Rule")[rule]["Properties"])
    (target,) = pattern["Targets"]
    assert target["Arn"] == cfn.runner_function_arn
    assert cfn.finish()  # the rehearsal tells the watchdog of each execution that ended
    assert [r.status for r in cfn.runs()] == ["FAILED", "SUCCEEDED"]
    assert eventbridge.matches(pattern["EventPattern"], status_change(cfn, cfn.runs()[0]))
    assert exported_once(omics, cohort(250))
    assert gateway.denied() == []


# CloudFormation's side: every request answered exactly once, on every path


def test_a_redelivered_request_is_answered_once_and_starts_one_run(
    deploy: Callable[..., StackRehearsal], omics: OmicsEndpoint
) -> None:
    cfn = deploy("three-ids")
    created = cfn.request("Create", cfn.properties(), deliveries=3)  # at least once
    assert created.status == "SUCCESS", created.reason
    assert len(omics.jobs) == 1
    assert cfn.finish()  # the answering step ends its execution once its last request is sent
    assert [r.status for r in cfn.runs()] == ["SUCCEEDED"]
    # Delivered once more after its answer: nothing happens, and nothing is answered again.
    event = cfn.start("Create", cfn.properties(), request_id="again")
    first = cfn.await_answer(event)
    cfn.deliver(event)
    assert len(cfn.answers(event)) == 1 and first.status == "SUCCESS"


def test_the_deploy_ends_in_the_step_that_sees_the_last_job_end(
    deploy: Callable[..., StackRehearsal], omics: OmicsEndpoint
) -> None:
    omics.job_seconds = 600.0
    cfn = deploy("three-ids")
    omics.clock = cfn.clock.now
    created = cfn.request("Create", cfn.properties())
    assert created.status == "SUCCESS", created.reason
    (job,) = omics.jobs.values()
    ended = job.started_at + 600.0
    answered = cfn.clock.now()
    assert ended <= answered <= ended + cfn.query_interval


def test_at_the_deadline_the_runner_answers_the_timeout_before_the_service_timeout(
    deploy: Callable[..., StackRehearsal], omics: OmicsEndpoint
) -> None:
    # A job of ten minutes: running long past the 125 s deadline (an answer that waited for it
    # would come at its end, and the runner follows it to its end after the rollback).
    omics.job_seconds = 600.0
    cfn = deploy("three-ids")
    omics.clock = cfn.clock.now
    event = cfn.start("Create", cfn.properties(TimeoutSeconds="125"))
    timed_out = cfn.await_answer(event)
    assert timed_out.status == "FAILED"
    assert 125 <= timed_out.waited <= 126  # at the deadline, not a poll later
    assert "after the 125 s the deploy waits (timeout)" in timed_out.reason
    # The failed Create cancelled the export: its job runs on, nothing more starts.
    rollback = cfn.request("Delete", cfn.properties(), physical_id=timed_out.physical_id)
    assert rollback.status == "SUCCESS"
    assert cfn.finish()
    assert len(omics.jobs) == 1


def test_a_request_the_handler_cannot_serve_is_answered_failed_and_its_delete_skipped(
    deploy: Callable[..., StackRehearsal], omics: OmicsEndpoint
) -> None:
    cfn = deploy("three-ids")
    bad = cfn.properties(SequenceStoreId="not-a-store")
    created = cfn.request("Create", bad)
    assert created.status == "FAILED"
    assert "sequence_store_id: 'not-a-store' is not a sequence store id" in created.reason
    assert created.physical_id.startswith("CREATE_FAILED:rse-")
    assert cfn.runs() == [] and omics.jobs == {}
    deleted = cfn.request("Delete", bad, physical_id=created.physical_id)
    assert deleted.status == "SUCCESS"
    odd = cfn.request("Replace", cfn.properties())
    assert odd.status == "FAILED" and "is not one of Create, Update, Delete" in odd.reason
    assert cfn.runs() == []


def test_a_job_whose_start_was_lost_is_found_by_the_next_deploy_and_followed(
    gateway: Gateway,
    deploy: Callable[..., StackRehearsal],
    omics: OmicsEndpoint,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The step's function dies after HealthOmics accepted the start, before the job's id
    was recorded (the batch stays STARTING), and a new deploy begins before Step Functions
    retries the step. HealthOmics has forgotten the client token, so only finding the job
    keeps it from being started twice."""
    omics.remembers_client_tokens = False
    cfn = deploy("three-ids")
    props = cfn.properties(WaitForCompletion="false")
    original = batches.ExportJobs._record_started
    killed = [True]

    def dies(self: batches.ExportJobs, batch: Any, started: Any) -> None:
        if killed[0]:
            killed[0] = False
            raise RuntimeError("the function died")  # after HealthOmics accepted the start
        original(self, batch, started)

    monkeypatch.setattr(batches.ExportJobs, "_record_started", dies)
    created = cfn.start("Create", props)
    cfn.run_runner()
    assert len(omics.jobs) == 1 and not killed[0]
    first = cfn.answer(created)  # selected and checked before the step died
    assert first is not None and first.status == "SUCCESS", first
    updated = cfn.request(
        "Update",
        cfn.properties(SelectionRefresh="now"),
        old_properties=props,
        physical_id=first.physical_id,
    )
    assert updated.status == "SUCCESS", updated.reason
    assert cfn.finish()
    assert len(omics.jobs) == 1  # found, not started again
    (job,) = omics.jobs
    record = manifest(gateway, updated.data["ManifestUri"])
    assert record["status"] == "COMPLETED"
    assert record["counts"]["exported"] == record["counts"]["selected"] == 3
    assert [j["id"] for j in record["jobs"]] == [job]
    assert exported_once(omics, READ_SETS)
    assert gateway.denied() == []


def test_the_response_url_stays_in_the_state_table(
    gateway: Gateway,
    deploy: Callable[..., StackRehearsal],
    omics: OmicsEndpoint,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A pre-signed ResponseURL answers for the stack: never in Step Functions input or
    history, logs, events or the manifest; and gone from the table once answered."""
    import logging

    caplog.set_level(logging.INFO)  # the handler's level in Lambda
    cfn = deploy("long-without-waiting")
    props = cfn.properties()
    cfn.upload_list(props["ReadSetList"], cohort(250))
    event = cfn.start("Create", props)
    secret = cfn.endpoint.secret(event["RequestId"])
    answered = cfn.await_answer(event)
    assert answered.status == "SUCCESS", answered.reason
    assert cfn.finish()
    seen = [caplog.text]
    for run in cfn.runs():
        seen.append(run.input_text)
        seen.extend(json.dumps(e.details, default=str) for e in run.events())
    seen.extend(json.dumps(e, default=str) for e in gateway.events.published)
    seen.append(json.dumps(manifest(gateway, answered.data["ManifestUri"])))
    table = cfn.environment["STATE_TABLE_NAME"]
    seen.append(json.dumps(gateway.client("dynamodb").scan(TableName=table)["Items"]))
    assert [n for n, text in enumerate(seen) if secret in text] == []
    # The log names where the answer went, without the signature.
    assert "cloudformation-custom-resource-response/" in caplog.text
    where = "cloudformation-custom-resource-response"
    assert [n for n, text in enumerate(seen[1:]) if where in text] == []


# Identifying values


def _phi_exported(cfn: StackRehearsal, omics: OmicsEndpoint) -> None:
    omics.add_read_sets(STORE, cohort(3, 4400000000), sampleId=SAMPLE, subjectId=SUBJECT, name=NAME)
    created = cfn.request("Create", cfn.properties())
    assert created.status == "SUCCESS", created.reason
    deleted = cfn.request("Delete", cfn.properties(), physical_id=created.physical_id)
    assert deleted.status == "SUCCESS"


def _phi_nothing_matched(cfn: StackRehearsal, omics: OmicsEndpoint) -> None:
    omics.add_read_sets(STORE, cohort(2, 4400000000), sampleId=SAMPLE, subjectId="another")
    created = cfn.request("Create", cfn.properties())
    assert created.status == "FAILED"
    assert (
        f"selected no read set in sequence store {STORE} "
        "(the filter on name, sampleId and subjectId)"
    ) in created.reason


def _phi_failed(cfn: StackRehearsal, omics: OmicsEndpoint) -> None:
    ids = cohort(2, 4400000000)
    omics.add_read_sets(STORE, ids, sampleId=SAMPLE, subjectId=SUBJECT, name=NAME)
    omics.failing_read_sets = {ids[0]: "Write failed"}
    created = cfn.request("Create", cfn.properties())
    assert created.status == "FAILED"
    assert ids[0] in created.reason


def _phi_deleted_mid_export(cfn: StackRehearsal, omics: OmicsEndpoint) -> None:
    omics.add_read_sets(STORE, cohort(3, 4400000000), sampleId=SAMPLE, subjectId=SUBJECT, name=NAME)
    props = cfn.properties()
    waiting = cfn.start("Create", props)
    wait_until(cfn, lambda: bool(omics.jobs))
    physical_id = exports.export_id_of(
        cfn.stack_id, props["ConstructPath"], props["Destination"], 0
    )
    assert cfn.request("Delete", props, physical_id=physical_id).status == "SUCCESS"
    assert cfn.finish()
    assert cfn.answer(waiting) is not None


@pytest.mark.parametrize(
    "scenario", [_phi_exported, _phi_nothing_matched, _phi_failed, _phi_deleted_mid_export]
)
def test_no_identifying_filter_value_leaves_the_export(
    gateway: Gateway,
    deploy: Callable[..., StackRehearsal],
    omics: OmicsEndpoint,
    caplog: pytest.LogCaptureFixture,
    scenario: Callable[[StackRehearsal, OmicsEndpoint], None],
) -> None:
    """The filter's sample, subject and name values identify patients: every log line at the
    handler's most verbose level, runner input and history, event (the SNS topic's messages
    are the events), manifest and answer is searched for them. Only the state table holds
    them: it is the export's own record, encrypted with the service's key."""
    import logging

    caplog.set_level(logging.DEBUG, logger="cdk_omics_export")
    cfn = deploy("identifying-filter")
    scenario(cfn, omics)
    assert cfn.finish()
    seen: dict[str, str] = {"logs": caplog.text}
    for run in cfn.runs():
        seen[f"input of {run.name}"] = run.input_text
        seen[f"history of {run.name}"] = json.dumps([e.details for e in run.events()], default=str)
    seen["events"] = json.dumps(gateway.events.published, default=str)
    seen["answers"] = json.dumps(cfn.endpoint.answers, default=str)
    bucket, _, prefix = cfn.properties()["Destination"].removeprefix("s3://").partition("/")
    s3 = gateway.client("s3")
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}cdk-omics-export/")
    for item in listed.get("Contents", []):
        seen[item["Key"]] = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read().decode()
    assert any(key.endswith(".json") for key in seen), "no manifest was written"
    assert len(gateway.events.published) >= 2
    leaks = {
        where: [value for value in (SAMPLE, SUBJECT, NAME) if value in text]
        for where, text in seen.items()
    }
    assert {where: found for where, found in leaks.items() if found} == {}


# Archived read sets


def archive(omics: OmicsEndpoint, ids: list[str]) -> None:
    for read_set_id in ids:
        omics.read_sets[STORE][read_set_id]["status"] = "ARCHIVED"


def activated_once(omics: OmicsEndpoint, ids: list[str]) -> bool:
    activated = omics.activated()
    return sorted(activated) == sorted(ids) and len(set(activated)) == len(activated)


def test_a_half_archived_cohort_is_activated_once_and_exported_with_provenance(
    gateway: Gateway, deploy: Callable[..., StackRehearsal], omics: OmicsEndpoint
) -> None:
    cfn = deploy("150-ids")
    props = cfn.properties()
    ids = cohort(150)
    cfn.upload_list(props["ReadSetList"], ids)
    archived = ids[::2]
    archive(omics, archived)
    omics.read_sets[STORE][ids[1]]["sampleId"] = "patient-0042"
    created = cfn.request("Create", props)
    assert created.status == "SUCCESS", created.reason
    assert created.data["Status"] == "COMPLETED"
    assert created.data["ExportedReadSetCount"] == "150"
    assert activated_once(omics, archived)
    assert all(1 <= len(j.read_set_ids) <= 20 for j in omics.activations.values())
    assert exported_once(omics, ids)
    assert gateway.denied() == []
    record = manifest(gateway, created.data["ManifestUri"])
    assert record["counts"]["activating"] == 0
    assert {a["status"] for a in record["activations"]} == {"COMPLETED"}
    by_id = {r["id"]: r for r in record["readSets"]}
    assert {r["status"] for r in by_id.values()} == {"EXPORTED"}
    job_of = {r: j["id"] for j in record["jobs"] for r in j["readSetIds"]}
    for read_set_id in ids:
        read_set = by_id[read_set_id]
        assert read_set["jobId"] == job_of[read_set_id]
        assert read_set["fileType"] == "CRAM"
        assert read_set["etag"]["algorithm"] == "CRAM_MD5up"
        assert read_set["etag"]["source1"] == omics.read_sets[STORE][read_set_id]["etag"]["source1"]
        assert ("activationJobId" in read_set) == (read_set_id in archived)
    assert "patient-0042" not in json.dumps(record)  # no sample, subject or name


def test_archived_read_sets_fail_keeps_the_pre_flight_message(
    gateway: Gateway, deploy: Callable[..., StackRehearsal], omics: OmicsEndpoint
) -> None:
    cfn = deploy("fail-on-archived")
    archive(omics, READ_SETS[:1])
    created = cfn.request("Create", cfn.properties())
    assert created.status == "FAILED"
    assert f"{READ_SETS[0]} (ARCHIVED)" in created.reason
    assert "Archived read sets can be restored with StartReadSetActivationJob" in created.reason
    assert omics.activations == {} and omics.jobs == {}
    assert gateway.calls("omics:StartReadSetActivationJob") == []


def test_a_delete_mid_activation_starts_nothing_after(
    gateway: Gateway, deploy: Callable[..., StackRehearsal], omics: OmicsEndpoint
) -> None:
    omics.max_concurrent_activations = 1
    cfn = deploy("150-ids")
    props = cfn.properties()
    ids = cohort(150)
    cfn.upload_list(props["ReadSetList"], ids)
    archive(omics, ids[100:])  # two batches ready now, 50 read sets in three activations
    waiting = cfn.start("Create", props)
    while len(omics.activations) < 2:
        assert cfn.answer(waiting) is None
        cfn.wait(cfn.query_interval)
    physical_id = exports.export_id_of(
        cfn.stack_id, props["ConstructPath"], props["Destination"], 0
    )
    calls = {
        op: len(omics.calls(op)) for op in ("StartReadSetActivationJob", "StartReadSetExportJob")
    }
    deleted = cfn.request("Delete", props, physical_id=physical_id)
    assert deleted.status == "SUCCESS"
    abandoned = cfn.answer(waiting)
    assert abandoned is not None and abandoned.status == "FAILED"
    assert cfn.finish()
    for operation, before in calls.items():
        assert len(omics.calls(operation)) == before, operation
    assert len(omics.activations) == 2
    record = manifest(gateway, deleted_manifest(cfn))
    assert record["status"] == "CANCELLED"
    assert gateway.denied() == []


def test_a_rollback_during_activation_starts_nothing_new(
    gateway: Gateway, deploy: Callable[..., StackRehearsal], omics: OmicsEndpoint
) -> None:
    omics.max_concurrent_activations = 1
    cfn = deploy("three-ids")
    old = cfn.properties()
    created = cfn.request("Create", old)
    assert created.status == "SUCCESS", created.reason
    more = cohort(40)
    archive(omics, more)
    bigger = cfn.properties(ReadSetIds=READ_SETS + more)
    cfn.start("Update", bigger, old_properties=old, physical_id=created.physical_id)
    while not omics.activations:
        cfn.wait(cfn.query_interval)
    assert len(omics.activations) == 1  # the quota holds the second back
    # Another resource fails: CloudFormation rolls back to the old properties.
    rollback = cfn.request("Update", old, old_properties=bigger, physical_id=created.physical_id)
    assert rollback.status == "SUCCESS", rollback.reason
    assert rollback.data["ExportedReadSetCount"] == "3"
    assert cfn.finish()
    assert len(omics.activations) == 1
    assert exported_once(omics, READ_SETS)
    assert gateway.denied() == []


def test_a_step_retried_after_an_accepted_activation_starts_no_second_one(
    gateway: Gateway,
    deploy: Callable[..., StackRehearsal],
    omics: OmicsEndpoint,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The step dies after HealthOmics accepted StartReadSetActivationJob, before the job was
    recorded; HealthOmics has forgotten the token. The retried step finds the job."""
    omics.remembers_client_tokens = False
    archive(omics, READ_SETS)
    original = activation.Activations._record_started
    killed = [True]

    def dies(self: activation.Activations, record: Any, started: Any) -> None:
        if killed[0]:
            killed[0] = False
            raise RuntimeError("the step's container died")
        original(self, record, started)

    monkeypatch.setattr(activation.Activations, "_record_started", dies)
    cfn = deploy("three-ids")
    created = cfn.request("Create", cfn.properties())
    assert created.status == "SUCCESS", created.reason
    assert not killed[0]
    assert len(omics.activations) == 1
    assert activated_once(omics, READ_SETS)
    assert exported_once(omics, READ_SETS)
    assert gateway.calls("omics:ListReadSetActivationJobs")
    assert gateway.denied() == []


def test_a_read_set_that_fails_to_activate_is_named_and_fails_the_export(
    gateway: Gateway, deploy: Callable[..., StackRehearsal], omics: OmicsEndpoint
) -> None:
    archive(omics, READ_SETS[:2])
    omics.failing_activations = {READ_SETS[0]: "Restore failed: object unavailable"}
    cfn = deploy("three-ids")
    created = cfn.request("Create", cfn.properties())
    assert created.status == "FAILED"
    (job,) = omics.activations
    assert f"activation jobs in sequence store {STORE} did not activate every read set" in (
        created.reason
    )
    assert f"{READ_SETS[0]} (activation job {job}: Restore failed: object unavailable)" in (
        created.reason
    )
    assert exported_once(omics, READ_SETS[1:])
    assert gateway.denied() == []


def test_a_read_set_someone_else_activates_is_waited_for_not_activated_again(
    gateway: Gateway, deploy: Callable[..., StackRehearsal], omics: OmicsEndpoint
) -> None:
    omics.read_sets[STORE][READ_SETS[0]]["status"] = "ACTIVATING"
    cfn = deploy("three-ids")
    waiting = cfn.start("Create", cfn.properties())
    for _ in range(3):
        cfn.wait(cfn.query_interval)
    assert cfn.answer(waiting) is None
    assert READ_SETS[0] not in omics.exported()
    omics.read_sets[STORE][READ_SETS[0]]["status"] = "ACTIVE"  # their activation ended
    answered = cfn.await_answer(waiting)
    assert answered.status == "SUCCESS", answered.reason
    assert omics.activations == {}
    assert exported_once(omics, READ_SETS)
    assert gateway.denied() == []


def test_a_filter_selects_archived_read_sets_and_they_are_activated(
    gateway: Gateway, deploy: Callable[..., StackRehearsal], omics: OmicsEndpoint
) -> None:
    sample = cohort(6, 4200000000)
    omics.add_read_sets(STORE, sample[:3], sampleId="tumour-7")
    omics.add_read_sets(STORE, sample[3:5], status="ARCHIVED", sampleId="tumour-7")
    omics.add_read_sets(STORE, sample[5:], status="DELETING", sampleId="tumour-7")
    cfn = deploy("filter")
    created = cfn.request("Create", cfn.properties())
    assert created.status == "SUCCESS", created.reason
    assert created.data["ReadSetCount"] == "5"  # the one being deleted is not selected
    assert activated_once(omics, sample[3:5])
    assert exported_once(omics, sample[:5])
    assert gateway.denied() == []
