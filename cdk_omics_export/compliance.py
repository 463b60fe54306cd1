"""Acknowledged compliance findings, shipped with the construct.

cdk-nag 3.x reads acknowledgments from construct metadata (``Validations.acknowledge``), so
teams that run the AwsSolutions, HIPAA Security or NIST 800-53 rev 5 packs on their own apps
get the same result as this project's tests. Each acknowledgment names one finding on one
construct. Only two kinds are acknowledged: findings on resources that CDK's Provider
framework owns (its code, runtime and policies are CDK's) and findings this construct cannot
fix by itself; every other finding is fixed in the construct.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import jsii
from aws_cdk import Acknowledgment, CfnElement, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct, IConstruct, IValidation

COMPLIANCE_PACKS = ("AwsSolutions", "HIPAA.Security", "NIST.800.53.R5")


class Reason(NamedTuple):
    rules: tuple[str, ...]
    reason: str


FRAMEWORK = "Owned by CDK's custom_resources.Provider framework, which this construct uses as it is"
FRAMEWORK_FUNCTION = Reason(
    (
        "HIPAA.Security-LambdaConcurrency",
        "NIST.800.53.R5-LambdaConcurrency",
        "HIPAA.Security-LambdaDLQ",
        "NIST.800.53.R5-LambdaDLQ",
    ),
    f"{FRAMEWORK}: its Node.js function is invoked once per CloudFormation request or poll, "
    "synchronously or by CloudFormation itself (which retries), and calls only Lambda, Step "
    "Functions and the CloudFormation response URL.",
)
OUTSIDE_VPC = ("HIPAA.Security-LambdaInsideVPC", "NIST.800.53.R5-LambdaInsideVPC")
FRAMEWORK_FUNCTION_OUTSIDE_VPC = Reason(
    OUTSIDE_VPC,
    f"{FRAMEWORK}: without the construct's vpc prop its functions run outside a VPC, like the "
    "handler's; give vpc to place them in one.",
)
MANAGED_POLICY = "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/{}]"
FRAMEWORK_ROLE = Reason(
    (
        MANAGED_POLICY.format("AWSLambdaBasicExecutionRole"),
        MANAGED_POLICY.format("AWSLambdaVPCAccessExecutionRole"),
    ),
    f"{FRAMEWORK}: the framework's functions log through AWSLambdaBasicExecutionRole and, in "
    "a VPC, attach through AWSLambdaVPCAccessExecutionRole.",
)
FRAMEWORK_POLICY = Reason(
    ("HIPAA.Security-IAMNoInlinePolicy", "NIST.800.53.R5-IAMNoInlinePolicy"),
    f"{FRAMEWORK}: the framework grants itself lambda:InvokeFunction and states:StartExecution "
    "on its own functions and state machine in a policy CDK creates.",
)
FRAMEWORK_INVOKE = (
    f"{FRAMEWORK}: lambda:InvokeFunction on '<function ARN>:*' covers the versions and aliases "
    "of one function of this construct, nothing else."
)
FRAMEWORK_STATE_MACHINE = Reason(
    ("AwsSolutions-SF1", "AwsSolutions-SF2"),
    f"{FRAMEWORK}: the waiter state machine only retries the is_complete function; every "
    "poll is logged by that function in the construct's encrypted log group.",
)
HANDLER_OUTSIDE_VPC = Reason(
    OUTSIDE_VPC,
    "Without the vpc prop the handler runs outside a VPC: it reaches only the HealthOmics "
    "control plane, S3, CloudWatch Logs and SQS over TLS with IAM authentication, and inside "
    "a VPC it needs interface endpoints that only the account's network design can provide. "
    "Give vpc to place it in one.",
)
BUCKET_REPLICATION = Reason(
    ("HIPAA.Security-S3BucketReplicationEnabled", "NIST.800.53.R5-S3BucketReplicationEnabled"),
    "Replication needs a second bucket, ideally in another Region and account, which itself "
    "would need replication; exported read sets are copies of data kept in the HealthOmics "
    "sequence store and can be exported again. Versioning and retention protect them here.",
)
EXPORTED_OBJECTS = (
    "HealthOmics names the files it writes (the naming scheme is not documented), so the "
    "export role may put objects under the destination prefix, in the one bucket, and nowhere "
    "else; it cannot read, list or delete them."
)
HANDLER_WILDCARDS = (
    "The shared handler writes one manifest per export (named by the export id) in the "
    "cdk-omics-export/ folder of each export's destination, and its pre-flight reads the "
    "metadata of the read sets it was asked to export, in each export's sequence store; their "
    "ids are too many for a policy's size limit."
)
VPC_NETWORKING = (
    "Lambda functions in a VPC describe network interfaces and subnets with EC2 actions that "
    "support no resource-level permissions; creating, deleting and addressing interfaces is "
    "scoped to this stack's Region and account."
)
# The finding of a statement on every resource (only the VPC's EC2 describe actions).
EVERYTHING = "AwsSolutions-IAM5[Resource::*]"
STATE_TABLE_BACKUP = Reason(
    ("HIPAA.Security-DynamoDBInBackupPlan", "NIST.800.53.R5-DynamoDBInBackupPlan"),
    "The rule looks for an AWS Backup selection of the table in the same stack, and a backup "
    "plan's vault, schedule and retention are the account's to choose, not a library's. The "
    "table holds only the bookkeeping of this stack's exports (the read set ids each export "
    "selected, its jobs and their outcomes; no sequence data), encrypted with the service's "
    "key, with point-in-time recovery on and retained on delete unless removal_policy says "
    "otherwise; every job and read set is also recorded in each export's manifest in S3. Add "
    "the table to your backup plan with aws_backup if your policy requires it.",
)


def acknowledge_service(service: Construct, provider: Construct, *, in_vpc: bool) -> None:
    """Record the acknowledged findings of the shared service on the exact constructs."""
    for construct in provider.node.find_all():
        if isinstance(construct, lambda_.CfnFunction):
            _acknowledge(construct, FRAMEWORK_FUNCTION)
            if not in_vpc:
                _acknowledge(construct, FRAMEWORK_FUNCTION_OUTSIDE_VPC)
        elif isinstance(construct, iam.CfnRole):
            # Only the managed policies the role has: the waiter's role has none, and
            # AWSLambdaVPCAccessExecutionRole only with a VPC.
            _at_validation(construct, partial(_acknowledge_managed_policies, construct))
        elif isinstance(construct, iam.CfnPolicy):
            _acknowledge(construct, FRAMEWORK_POLICY)
            _acknowledge_wildcards(construct, FRAMEWORK_INVOKE)
        elif isinstance(construct, sfn.CfnStateMachine):
            _acknowledge(construct, FRAMEWORK_STATE_MACHINE)
    for child in ("OnEventHandler", "IsCompleteHandler"):
        function = _resource(service, child)
        if function is not None and not in_vpc:
            _acknowledge(function, HANDLER_OUTSIDE_VPC)
    table = _resource(service, "State")
    if table is not None:
        _acknowledge(table, STATE_TABLE_BACKUP)
    # Exports declared after the service was built (after its functions were first used)
    # may still open new HandlerPolicy chunks: they are looked up when the app is validated.
    _at_validation(service, lambda: _acknowledge_handler_policies(service))


def _acknowledge_handler_policies(service: Construct) -> None:
    for construct in service.node.children:
        if construct.node.id.startswith("HandlerPolicy"):
            policy = construct.node.default_child
            assert isinstance(policy, CfnElement)
            _acknowledge_final_wildcards(policy, HANDLER_WILDCARDS, everything=VPC_NETWORKING)


def acknowledge_bucket(bucket: IConstruct) -> None:
    default = bucket.node.default_child
    assert isinstance(default, CfnElement)
    _acknowledge(default, BUCKET_REPLICATION)


def acknowledge_export(export: Construct) -> None:
    """Record the acknowledged findings of one export's own resources."""
    bucket = export.node.try_find_child("Bucket")
    if bucket is not None:  # only when the export created it
        acknowledge_bucket(bucket)
    export_policy = _resource(export, "ExportPolicy")
    assert export_policy is not None
    _acknowledge_wildcards(export_policy, EXPORTED_OBJECTS)


def _resource(parent: Construct, child: str) -> CfnElement | None:
    found = parent.node.try_find_child(child)
    default = found.node.default_child if found is not None else None
    return default if isinstance(default, CfnElement) else None


@jsii.implements(IValidation)
class _AtValidation:
    """Runs an acknowledgment when the app is validated.

    By then every export has added its statements to the shared policies and references
    across stacks are resolved (``Fn::ImportValue``, ``Fn::GetStackOutput``), so the finding
    ids computed from a resource's final properties are the ones cdk-nag computes from the
    final template. (An acknowledgment whose id is a ``Lazy`` string is not honoured.)
    """

    def __init__(self, acknowledge: Callable[[], None]) -> None:
        self._acknowledge = acknowledge

    def validate(self) -> list[str]:
        self._acknowledge()
        return []


def _at_validation(construct: IConstruct, acknowledge: Callable[[], None]) -> None:
    construct.node.add_validation(_AtValidation(acknowledge))


def _acknowledge_wildcards(
    policy: CfnElement, reason: str, *, everything: str | None = None
) -> None:
    """Acknowledge a policy's AwsSolutions-IAM5 findings from its final document."""
    _at_validation(
        policy, lambda: _acknowledge_final_wildcards(policy, reason, everything=everything)
    )


def _acknowledge_final_wildcards(
    policy: CfnElement, reason: str, *, everything: str | None = None
) -> None:
    document = Stack.of(policy).resolve(policy.policy_document)  # type: ignore[attr-defined]
    wildcards = _wildcard_findings(document)
    if everything is not None and EVERYTHING in wildcards:
        _acknowledge(policy, Reason((EVERYTHING,), everything))
        wildcards = tuple(w for w in wildcards if w != EVERYTHING)
    _acknowledge(policy, Reason(wildcards, reason))


def _acknowledge_managed_policies(role: iam.CfnRole) -> None:
    stack = Stack.of(role)
    arns = stack.resolve(role.managed_policy_arns) or []
    findings = {f"AwsSolutions-IAM4[Policy::{_as_nag_text(arn)}]" for arn in arns}
    _acknowledge(
        role,
        Reason(tuple(r for r in FRAMEWORK_ROLE.rules if r in findings), FRAMEWORK_ROLE.reason),
    )


def _wildcard_findings(document: Any) -> tuple[str, ...]:
    """cdk-nag's AwsSolutions-IAM5 finding ids for the wildcard resources of a policy.

    Like cdk-nag, only Allow statements count. Wildcard actions (``Action::...``) are never
    acknowledged: none of the construct's statements has one, and one that appeared would
    need a reason of its own.
    """
    findings: list[str] = []
    for statement in document.get("Statement", []):
        if statement.get("Effect") != "Allow":
            continue
        resources = statement.get("Resource")
        for value in resources if isinstance(resources, list) else [resources]:
            text = _as_nag_text(value)
            if "*" in text:
                findings.append(f"AwsSolutions-IAM5[Resource::{text}]")
    return tuple(dict.fromkeys(findings))


def _as_nag_text(value: Any) -> str:
    """A resolved value as cdk-nag 3's ``flattenCfnReference`` writes it in finding ids.

    ``Ref`` becomes ``<Name>``, ``Fn::GetAtt`` ``<Name.Attr>``, ``Fn::Join`` joins its parts,
    ``Fn::Sub`` and ``Fn::ImportValue`` become their (flattened) argument, the export name
    without brackets; ``${`` and ``}`` in strings become ``<`` and ``>``; anything else
    (``Fn::GetStackOutput``, ``Fn::Select``...) is compact JSON, keys in their order.
    """
    if value is None:
        return ""
    if isinstance(value, str):
        return value.replace("${", "<").replace("}", ">")
    for name, flatten in _FLATTENED.items():  # in cdk-nag's order
        if isinstance(value, dict) and value.get(name):
            return flatten(value[name])
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


_FLATTENED: dict[str, Callable[[Any], str]] = {
    "Fn::Join": lambda join: str(join[0]).join(_as_nag_text(part) for part in join[1]),
    "Fn::Sub": _as_nag_text,
    "Fn::GetAtt": lambda get: f"<{_as_nag_text(get[0])}.{_as_nag_text(get[1])}>",
    "Fn::ImportValue": _as_nag_text,  # the export's name, without brackets
    "Ref": lambda ref: f"<{_as_nag_text(ref)}>",
}


def _acknowledge(construct: IConstruct, reason: Reason) -> None:
    if reason.rules:
        Validations.of(construct).acknowledge(
            *(
                Acknowledgment(id=f"{_pack(rule)}::{rule}", reason=reason.reason)
                for rule in reason.rules
            )
        )


def _pack(rule: str) -> str:
    return rule.split("-", 1)[0] if not rule.startswith("NIST") else "NIST.800.53.R5"
