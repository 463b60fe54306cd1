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
STATE_TABLE_BACKUP = Reason(
    ("HIPAA.Security-DynamoDBInBackupPlan", "NIST.800.53.R5-DynamoDBInBackupPlan"),
    "The state table holds the progress of running exports, kept with point-in-time recovery "
    "and retained on delete; the exported data itself lives in S3. Backup plans are the "
    "account's choice: add the table to yours with aws_backup if your policy requires it.",
)


def acknowledge_service(service: Construct, provider: Construct, *, in_vpc: bool) -> None:
    """Record the acknowledged findings of the shared service on the exact constructs."""
    for construct in provider.node.find_all():
        if isinstance(construct, lambda_.CfnFunction):
            _acknowledge(construct, FRAMEWORK_FUNCTION)
            if not in_vpc:
                _acknowledge(construct, FRAMEWORK_FUNCTION_OUTSIDE_VPC)
        elif isinstance(construct, iam.CfnRole):
            _acknowledge(construct, FRAMEWORK_ROLE)
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
    for construct in service.node.children:
        if construct.node.id.startswith("HandlerPolicy"):
            policy = construct.node.default_child
            assert isinstance(policy, CfnElement)
            _acknowledge_wildcards(policy, HANDLER_WILDCARDS, everything=VPC_NETWORKING)


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
class _WildcardAcknowledgment:
    """Acknowledges a policy's AwsSolutions-IAM5 findings from its final document.

    Runs as a validation, after statements from every export were added and once references
    across stacks are resolved (``Fn::ImportValue``), so the finding ids are the ones cdk-nag
    computes from the final template.
    """

    def __init__(self, policy: CfnElement, reason: str, everything: str | None) -> None:
        self._policy = policy
        self._reason = reason
        self._everything = everything

    def validate(self) -> list[str]:
        stack = Stack.of(self._policy)
        document = stack.resolve(self._policy.policy_document)  # type: ignore[attr-defined]
        wildcards = _wildcard_findings(document)
        everything = "AwsSolutions-IAM5[Resource::*]"
        if self._everything is not None and everything in wildcards:
            _acknowledge(self._policy, Reason((everything,), self._everything))
            wildcards = tuple(w for w in wildcards if w != everything)
        _acknowledge(self._policy, Reason(wildcards, self._reason))
        return []


def _acknowledge_wildcards(
    policy: CfnElement, reason: str, *, everything: str | None = None
) -> None:
    policy.node.add_validation(_WildcardAcknowledgment(policy, reason, everything))


def _wildcard_findings(document: Any) -> tuple[str, ...]:
    """cdk-nag's AwsSolutions-IAM5 finding ids for the wildcard resources of a policy."""
    findings: list[str] = []
    for statement in document["Statement"]:
        resources = statement.get("Resource", [])
        for value in resources if isinstance(resources, list) else [resources]:
            text = _as_nag_text(value)
            if "*" in text:
                findings.append(f"AwsSolutions-IAM5[Resource::{text}]")
    return tuple(dict.fromkeys(findings))


def _as_nag_text(value: Any) -> str:
    """A resource as cdk-nag writes it in finding ids: intrinsics become <Name> or <Name.Attr>."""
    if isinstance(value, str):
        return value
    if "Ref" in value:
        return f"<{value['Ref']}>"
    if "Fn::GetAtt" in value:
        name, attribute = value["Fn::GetAtt"]
        return f"<{name}.{attribute}>"
    if "Fn::ImportValue" in value:
        return f"<{_as_nag_text(value['Fn::ImportValue'])}>"
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(_as_nag_text(part) for part in parts)
    return json.dumps(value, sort_keys=True)


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
