"""Every row of `cdk_omics_export.aws_calls` judged by a third-party IAM evaluator.

Two synthesized stacks, "deployed" by `DeployedStack` (physical names, intrinsics resolved):
the example app's and one with every option that adds a policy (an export key, a notification
topic with its own key, a read set filter). Each row becomes one request with the principal's
identity policies (inline and managed) and the resource's policy (bucket, key, bus, topic,
function or trust policy); @cloud-copilot/iam-simulate decides them all in one process per
stack, and each decision must be the table's.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Template

import app as example
from cdk_omics_export import ReadSetExport, ReadSetFilter
from cdk_omics_export import aws_calls as calls
from cdk_omics_export.aws_calls import Call, Needs, Policy
from cdk_omics_export.handler import rules

from . import iam_evaluator, support
from .standins.deployed import DeployedStack

ACCOUNT = "111122223333"
OTHER_ACCOUNT = "444455556666"
REGION = "us-east-1"
STORE = "1234567890"
EXPORT_ID = "0123456789abcdef"


@dataclass
class Deployed:
    """A stack as deployed: its template's names, and the options its export has."""

    stack: DeployedStack
    template: Template
    names: dict[str, str]
    has: frozenset[Needs]

    def logical(self, type_: str, path_part: str) -> str:
        return support.logical_id(self.template, type_, path_part)


def _example() -> Stack:
    return example.build(App())


def _every_option() -> Stack:
    app = App()
    stack = Stack(app, "IamOptions")
    topic_key = kms.Key(stack, "TopicKey", enable_key_rotation=True)
    ReadSetExport(
        stack,
        "Export",
        sequence_store_id=STORE,
        read_set_filter=ReadSetFilter(sample_id="tumour-7"),
        destination_prefix="data/",
        encryption_key=kms.Key(stack, "DataKey", enable_key_rotation=True),
        notification_topic=sns.Topic(stack, "Topic", master_key=topic_key),
    )
    return stack


def _listed() -> Stack:
    app = App()
    stack = Stack(app, "IamListed")
    ids = [str(4000000000 + n) for n in range(rules.INLINE_READ_SET_LIMIT + 1)]
    ReadSetExport(stack, "Export", sequence_store_id=STORE, read_set_ids=ids)
    return stack


def _deploy(stack: Stack, has: frozenset[Needs]) -> Deployed:
    template = support.synth(stack, lint=False)
    deployed = DeployedStack(
        support.template_json(template),
        stack_name=stack.stack_name,
        account=ACCOUNT,
        region=REGION,
    )
    found = Deployed(deployed, template, {}, has)
    found.names = _names(found)
    return found


def _arn(deployed: Deployed, type_: str, path_part: str) -> str:
    return str(deployed.stack.get_att(deployed.logical(type_, path_part), "Arn"))


def _log_group_arn(deployed: Deployed, path_part: str) -> str:
    # The ARN CloudWatch Logs puts in the encryption context: without the ":*" of GetAtt Arn.
    name = deployed.stack.physical_name(deployed.logical("AWS::Logs::LogGroup", path_part))
    return f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}"


def _names(deployed: Deployed) -> dict[str, str]:
    stack = deployed.stack
    machine = deployed.logical("AWS::StepFunctions::StateMachine", "/Runner/")
    machine_name = stack.physical_name(machine)
    store_arn = f"arn:aws:omics:{REGION}:{ACCOUNT}:sequenceStore/{STORE}"
    names = {
        "partition": "aws",
        "region": REGION,
        "account": ACCOUNT,
        "other_account": OTHER_ACCOUNT,
        "store_arn": store_arn,
        "other_store_arn": f"arn:aws:omics:{REGION}:{ACCOUNT}:sequenceStore/9876543210",
        "read_set_arn": f"{store_arn}/readSet/1111111111",
        "bucket_arn": _arn(deployed, "AWS::S3::Bucket", "/Export/Bucket/"),
        "other_bucket_arn": "arn:aws:s3:::someone-elses-bucket",
        "prefix": str(stack.resolve(_export_property(deployed, "DestinationPrefix"))),
        "export_id": EXPORT_ID,
        "table_arn": _arn(deployed, "AWS::DynamoDB::Table", "/State/"),
        "service_key_arn": _arn(deployed, "AWS::KMS::Key", "/ReadSetExportService/Key/"),
        "other_key_arn": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/00000000-0000-0000-0000-000000000000",
        "bus_arn": _arn(deployed, "AWS::Events::EventBus", "/Events/"),
        "queue_arn": _arn(deployed, "AWS::SQS::Queue", "/DeadLetters/"),
        "handler_log_group_arn": _log_group_arn(deployed, "/HandlerLogs/"),
        "runner_log_group_arn": _log_group_arn(deployed, "/RunnerLogs/"),
        "other_log_group_arn": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/other",
        "state_machine_arn": str(stack.ref(machine)),
        "execution_arn": f"arn:aws:states:{REGION}:{ACCOUNT}:execution:{machine_name}:run-1",
        "step_function_arn": _arn(deployed, "AWS::Lambda::Function", "/RunnerHandler/"),
        "on_event_function_arn": _arn(deployed, "AWS::Lambda::Function", "/OnEventHandler/"),
        "watchdog_rule_arn": _arn(deployed, "AWS::Events::Rule", "/RunnerWatchdog/"),
        "other_rule_arn": f"arn:aws:events:{REGION}:{ACCOUNT}:rule/someone-elses-rule",
        "handler_role_arn": stack.role_arn(_role(deployed, calls.HANDLER_ROLE)),
        "runner_role_arn": stack.role_arn(_role(deployed, calls.RUNNER_ROLE)),
        "export_role_arn": stack.role_arn(_role(deployed, calls.EXPORT_ROLE)),
        "access_logs_bucket_arn": _arn(deployed, "AWS::S3::Bucket", "/AccessLogs/"),
        "access_logs_prefix": _access_logs_prefix(deployed),
    }
    if Needs.READ_SET_LIST in deployed.has:
        listed = str(stack.resolve(_export_property(deployed, "ReadSetList")))
        names["read_set_list_arn"] = "arn:aws:s3:::" + listed.removeprefix("s3://")
    if Needs.DESTINATION_KEY in deployed.has:
        names["destination_key_arn"] = _arn(deployed, "AWS::KMS::Key", "/DataKey/")
    if Needs.TOPIC in deployed.has:
        names["topic_arn"] = str(stack.ref(deployed.logical("AWS::SNS::Topic", "/Topic/")))
    if Needs.TOPIC_KEY in deployed.has:
        names["topic_key_arn"] = _arn(deployed, "AWS::KMS::Key", "/TopicKey/")
    return names


def _access_logs_prefix(deployed: Deployed) -> str:
    bucket = support.resource_of(deployed.template, "AWS::S3::Bucket", "/Export/Bucket/")
    return str(
        deployed.stack.resolve(bucket["Properties"]["LoggingConfiguration"]["LogFilePrefix"])
    )


def _export_property(deployed: Deployed, name: str) -> Any:
    resource = support.resource_of(deployed.template, "Custom::OmicsReadSetExport", "/Export/")
    destination = str(deployed.stack.resolve(resource["Properties"]["Destination"]))
    if name == "DestinationPrefix":
        return destination.removeprefix("s3://").partition("/")[2]
    return resource["Properties"][name]


_ROLE_PATHS = {
    calls.HANDLER_ROLE: "/ReadSetExportService/HandlerRole/",
    calls.RUNNER_ROLE: "/ReadSetExportService/RunnerRole/",
    calls.EXPORT_ROLE: "/Export/ExportRole/",
}


def _role(deployed: Deployed, principal: str) -> str:
    return deployed.logical("AWS::IAM::Role", _ROLE_PATHS[principal])


def _resource_policy(deployed: Deployed, call: Call) -> Mapping[str, Any] | None:
    stack = deployed.stack
    policies: dict[Policy, Callable[[], Mapping[str, Any] | None]] = {
        Policy.NONE: lambda: None,
        Policy.DESTINATION_BUCKET: lambda: stack.bucket_policy(
            deployed.logical("AWS::S3::Bucket", "/Export/Bucket/")
        ),
        Policy.ACCESS_LOGS_BUCKET: lambda: stack.bucket_policy(
            deployed.logical("AWS::S3::Bucket", "/AccessLogs/")
        ),
        Policy.SERVICE_KEY: lambda: stack.key_policy(
            deployed.logical("AWS::KMS::Key", "/ReadSetExportService/Key/")
        ),
        Policy.DESTINATION_KEY: lambda: stack.key_policy(
            deployed.logical("AWS::KMS::Key", "/DataKey/")
        ),
        Policy.TOPIC_KEY: lambda: stack.key_policy(deployed.logical("AWS::KMS::Key", "/TopicKey/")),
        Policy.BUS: lambda: stack.bus_policy(deployed.logical("AWS::Events::EventBus", "/Events/")),
        Policy.TOPIC: lambda: stack.topic_policy(deployed.logical("AWS::SNS::Topic", "/Topic/")),
        Policy.STEP_FUNCTION: lambda: stack.function_policy(
            deployed.logical("AWS::Lambda::Function", "/RunnerHandler/")
        ),
        Policy.TRUST: lambda: stack.trust_policy(stack.role_by_arn(_fill(call.resource, deployed))),
    }
    return policies[call.policy]()


def _fill(template: str, deployed: Deployed) -> str:
    return template.format(**deployed.names)


def _principal(deployed: Deployed, call: Call) -> tuple[str, list[Mapping[str, Any]]]:
    """The request's principal and its identity policies."""
    if call.principal == calls.ANOTHER_ROLE:
        # Any other principal of the account, even one allowed the action everywhere.
        everything = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": call.action, "Resource": "*"}],
        }
        return f"arn:aws:iam::{ACCOUNT}:role/another-role", [everything]
    if call.principal in calls.ROLES:
        logical = _role(deployed, call.principal)
        return deployed.stack.role_arn(logical), list(deployed.stack.role_policies(logical))
    return _fill(call.principal, deployed), []


def _context(deployed: Deployed, call: Call, principal: str) -> dict[str, str | list[str]]:
    # What every request carries (the endpoints are HTTPS); IAM fills these in, the evaluator
    # leaves them to the caller.
    if call.principal in calls.ROLES:
        context: dict[str, str | list[str]] = {
            "aws:PrincipalArn": principal,
            "aws:PrincipalAccount": ACCOUNT,
            "aws:PrincipalType": "AssumedRole",
            "aws:PrincipalIsAWSService": "false",
        }
    else:
        context = {"aws:PrincipalServiceName": principal, "aws:PrincipalIsAWSService": "true"}
    context["aws:SecureTransport"] = "true"
    for key, value in call.context:
        context[key] = (
            _fill(value, deployed)
            if isinstance(value, str)
            else [_fill(v, deployed) for v in value]
        )
    return context


def request_of(deployed: Deployed, call: Call) -> iam_evaluator.Request:
    principal, identity = _principal(deployed, call)
    resource = _fill(call.resource, deployed)
    account = ACCOUNT if resource.split(":")[4:5] in ([""], []) else resource.split(":")[4]
    return iam_evaluator.Request(
        id=call.name,
        principal=principal,
        action=call.action,
        resource=resource,
        resource_account=account or ACCOUNT,
        identity_policies=identity,
        resource_policy=_resource_policy(deployed, call),
        context=_context(deployed, call, principal),
    )


EXAMPLE = frozenset({Needs.BUCKET_DEFAULT_KEY, Needs.ACTIVATION, Needs.PREFIX})
EVERY_OPTION = frozenset(
    {Needs.DESTINATION_KEY, Needs.TOPIC, Needs.TOPIC_KEY, Needs.ACTIVATION, Needs.PREFIX}
)
LISTED = frozenset({Needs.BUCKET_DEFAULT_KEY, Needs.ACTIVATION, Needs.READ_SET_LIST})
STACKS = {
    "example": (_example, EXAMPLE),
    "every option": (_every_option, EVERY_OPTION),
    "a long list": (_listed, LISTED),
}


@pytest.fixture(scope="module")
def deployed() -> Callable[[str], Deployed]:
    done: dict[str, Deployed] = {}

    def get(name: str) -> Deployed:
        if name not in done:
            build, has = STACKS[name]
            done[name] = _deploy(build(), has)
        return done[name]

    return get


def test_the_table_names_each_call_once() -> None:
    names = [call.name for call in calls.CALLS]
    assert len(names) == len(set(names))
    for call in calls.CALLS:
        assert call.why and call.action.count(":") == 1


@pytest.mark.parametrize("name", list(STACKS))
def test_every_call_is_decided_as_the_table_says(
    name: str, deployed: Callable[[str], Deployed], capsys: pytest.CaptureFixture[str]
) -> None:
    stack = deployed(name)
    rows = [call for call in calls.CALLS if call.needs <= stack.has]
    requests = [request_of(stack, call) for call in rows]
    answers = iam_evaluator.evaluate(requests)
    wrong = [
        f"{call.name}: {answer.decision} ({answer.explanation}), the table says {call.expected}"
        for call, answer in zip(rows, answers, strict=True)
        if answer.decision.value != call.expected.value
    ]
    # A key the evaluator does not know for the action would be judged as absent: never let a
    # row pass that way.
    ignored = [
        f"{call.name}: ignored {', '.join(answer.ignored_context_keys)}"
        for call, answer in zip(rows, answers, strict=True)
        if set(answer.ignored_context_keys) & {key for key, _ in call.context}
    ]
    with capsys.disabled():
        print(f"\n{name}: {len(rows) - len(wrong)} of {len(rows)} calls decided as the table says")
    assert wrong == [], "\n".join(wrong)
    assert ignored == [], "\n".join(ignored)


def test_every_row_is_judged_by_some_stack() -> None:
    judged = {call.name for call in calls.CALLS for _, has in STACKS.values() if call.needs <= has}
    assert judged == {call.name for call in calls.CALLS}


def test_requests_carry_only_resolved_values(deployed: Callable[[str], Deployed]) -> None:
    stack = deployed("every option")
    for call in calls.CALLS:
        if call.needs <= stack.has:
            assert "{" not in json.dumps(request_of(stack, call).as_json()["resource"])
