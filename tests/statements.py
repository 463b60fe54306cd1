"""The cross-service statements of synthesized templates, in a form docs/compliance.md can
list: every statement of a resource policy (bucket, key, event bus, topic, queue, Lambda
permission), every trust statement, and every identity statement with a condition.

A statement's signature names where it is, who it lets in, which actions, and which condition
operators and keys it uses: not the values (ARNs, account ids), which differ from stack to stack.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

POLICY_KINDS = {
    "AWS::S3::BucketPolicy": ("bucket policy", "PolicyDocument"),
    "AWS::SNS::TopicPolicy": ("topic policy", "PolicyDocument"),
    "AWS::SQS::QueuePolicy": ("queue policy", "PolicyDocument"),
    "AWS::IAM::ManagedPolicy": ("identity policy", "PolicyDocument"),
    "AWS::IAM::Policy": ("identity policy", "PolicyDocument"),
}


class Signature(NamedTuple):
    policy: str
    effect: str
    principal: str
    actions: str
    conditions: str

    def row(self) -> str:
        return " | ".join(self)


def _text(value: Any) -> str:
    """A principal or value with CloudFormation's pseudo parameters named, not resolved."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(_text(part) for part in parts)
    if isinstance(value, dict) and "Ref" in value:
        return {"AWS::Region": "<region>", "AWS::URLSuffix": "amazonaws.com"}.get(
            value["Ref"], "<ref>"
        )
    return "<value>"


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _principal(statement: dict[str, Any]) -> str:
    principal = statement.get("Principal")
    if principal is None:
        return "-"
    if principal in ("*", {"AWS": "*"}):
        return "*"
    names = []
    for kind, values in sorted(principal.items()):
        for value in _listed(values):
            names.append(_text(value) if kind == "Service" else f"{kind} principal")
    return ", ".join(sorted(set(names)))


def _conditions(statement: dict[str, Any]) -> str:
    condition = statement.get("Condition") or {}
    parts = [f"{operator} {key}" for operator, keys in condition.items() for key in keys]
    return ", ".join(sorted(parts)) or "-"


def _signature(policy: str, statement: dict[str, Any]) -> Signature:
    actions = ", ".join(sorted(_listed(statement["Action"])))
    return Signature(
        policy, statement["Effect"], _principal(statement), actions, _conditions(statement)
    )


def _documents(resource: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    kind, properties = resource["Type"], resource.get("Properties", {})
    if kind in POLICY_KINDS:
        name, key = POLICY_KINDS[kind]
        yield name, properties[key]
    elif kind == "AWS::KMS::Key":
        yield "key policy", properties["KeyPolicy"]
    elif kind == "AWS::Events::EventBusPolicy" and "Statement" in properties:
        yield "event bus policy", {"Statement": [properties["Statement"]]}
    elif kind == "AWS::IAM::Role":
        yield "trust policy", properties["AssumeRolePolicyDocument"]
        for policy in properties.get("Policies", []):
            yield "identity policy", policy["PolicyDocument"]


def signatures(template: dict[str, Any]) -> set[Signature]:
    """Every resource-policy and trust statement, and every identity statement that carries a
    condition, of ``template``."""
    found: set[Signature] = set()
    for resource in template.get("Resources", {}).values():
        if resource["Type"] == "AWS::Lambda::Permission":
            properties = resource["Properties"]
            conditions = ", ".join(
                f"{key}" for key in ("SourceAccount", "SourceArn") if key in properties
            )
            found.add(
                Signature(
                    "Lambda permission",
                    "Allow",
                    _text(properties["Principal"]),
                    properties["Action"],
                    conditions or "-",
                )
            )
            continue
        for policy, document in _documents(resource):
            for statement in _listed(document["Statement"]):
                if policy == "identity policy" and "Condition" not in statement:
                    continue
                found.add(_signature(policy, statement))
    return found
