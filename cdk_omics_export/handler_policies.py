"""The shared handler role's permissions: managed policies filled in chunks under IAM's limit.

Every export adds statements scoped to its store, bucket, prefix and role; at hundreds of
exports a stack's statements outgrow one managed policy (6,144 characters without
whitespace), so a new ``HandlerPolicy<n>`` opens when the current one is full. Sizes are
estimated from the resolved statements, each token counted at the longest it can resolve to.
"""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

# IAM's limit for one managed policy is 6,144 characters without whitespace; chunks are
# filled to an estimate that leaves room for the longest names CloudFormation may generate.
POLICY_CHARACTER_LIMIT = 6144
POLICY_CHUNK_TARGET = 5200
# The most characters a token can resolve to, for the policy size estimate.
TOKEN_LENGTHS = {
    "AWS::Partition": 10,
    "AWS::Region": 14,
    "AWS::AccountId": 12,
    "AWS::URLSuffix": 14,
    "AWS::StackName": 128,
}
UNKNOWN_TOKEN_LENGTH = 128


class HandlerPolicies:
    """The managed policies of the handler role, created as children of ``scope``."""

    def __init__(self, scope: Construct, role: iam.Role) -> None:
        self._scope = scope
        self._role = role
        self._chunks: list[tuple[iam.ManagedPolicy, int]] = []
        self._statement_keys: set[str] = set()

    @property
    def policies(self) -> list[iam.ManagedPolicy]:
        return [policy for policy, _ in self._chunks]

    def add(self, *statements: iam.PolicyStatement) -> None:
        """Add statements once each, opening a new policy when the current one is full."""
        stack = Stack.of(self._scope)
        for statement in statements:
            unresolved = statement.to_statement_json()
            # Keyed by the statement with its tokens unresolved: a token is one string per
            # referenced attribute, so a reference to another stack's bucket stays apart from
            # one of the same logical id elsewhere (resolved here, both would be a bare Ref).
            key = json.dumps(unresolved, sort_keys=True)
            if key in self._statement_keys:
                continue
            self._statement_keys.add(key)
            size = _estimated_length(stack.resolve(unresolved))
            if not self._chunks or self._chunks[-1][1] + size > POLICY_CHUNK_TARGET:
                number = len(self._chunks)
                policy = iam.ManagedPolicy(
                    self._scope,
                    "HandlerPolicy" if number == 0 else f"HandlerPolicy{number + 1}",
                    description="cdk-omics-export: what the stack's export handler may do",
                )
                # Through the role's ManagedPolicyArns, not the policy's Roles: the role, so
                # the functions and every export resource, then depend on the policy, and
                # CloudFormation grants an export's statements before its resource runs.
                self._role.add_managed_policy(policy)
                self._chunks.append((policy, 0))
            policy, used = self._chunks[-1]
            policy.add_statements(statement)
            self._chunks[-1] = (policy, used + size)


def vpc_statements(stack: Stack) -> list[iam.PolicyStatement]:
    """What Lambda needs to attach functions to a VPC, scoped as far as EC2 allows."""

    def arn(resource: str) -> str:
        return stack.format_arn(service="ec2", resource=resource, resource_name="*")

    return [
        iam.PolicyStatement(
            actions=["ec2:CreateNetworkInterface"],
            resources=[arn("network-interface"), arn("subnet"), arn("security-group")],
        ),
        iam.PolicyStatement(
            actions=[
                "ec2:DeleteNetworkInterface",
                "ec2:AssignPrivateIpAddresses",
                "ec2:UnassignPrivateIpAddresses",
            ],
            resources=[arn("network-interface")],
        ),
        # Describe actions support no resource-level permissions.
        iam.PolicyStatement(
            actions=["ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"],
            resources=["*"],
        ),
    ]


def _estimated_length(value: Any) -> int:
    """Characters a resolved policy value takes in IAM, tokens counted at their longest."""
    if isinstance(value, list):
        return sum(_estimated_length(v) for v in value) + 2
    if not isinstance(value, dict):
        return len(str(value)) + 3
    if "Ref" in value:
        return TOKEN_LENGTHS.get(value["Ref"], UNKNOWN_TOKEN_LENGTH)
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return sum(_estimated_length(p) for p in parts) + len(separator) * len(parts)
    if any(key.startswith("Fn::") for key in value):
        return UNKNOWN_TOKEN_LENGTH  # GetAtt, ImportValue, GetStackOutput, Sub...
    return sum(len(str(k)) + 3 + _estimated_length(v) for k, v in value.items()) + 2
