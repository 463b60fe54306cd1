"""Synthesis helpers shared by the template tests."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import CfnElement, Stack
from aws_cdk.assertions import Template
from cfnlint.api import ManualArgs, lint

# W3005 (a DependsOn already implied by a GetAtt) is how CDK itself wires every function to
# its role; nothing else may be switched off.
CFN_LINT_IGNORED = ["W3005"]
CFN_LINT_REGIONS = ["us-east-1", "eu-west-2", "ap-southeast-1"]

# Template -> {logical id: construct path}; path metadata is off without context.
_PATHS: dict[Template, dict[str, str]] = {}


def cfn_lint(template: dict[str, Any]) -> list[str]:
    """Every cfn-lint error and warning for a template, as readable lines."""
    matches = lint(
        json.dumps(template),
        config=ManualArgs(ignore_checks=CFN_LINT_IGNORED, regions=CFN_LINT_REGIONS),
    )
    return [f"{m.rule.id} {m.message} ({'/'.join(map(str, m.path))})" for m in matches]


def synth(stack: Stack) -> Template:
    """Synthesize a stack, hold its template to CloudFormation's schemas, index its paths."""
    template = Template.from_stack(stack)
    assert cfn_lint(template.to_json()) == []
    _PATHS[template] = {
        stack.resolve(c.logical_id): "/" + c.node.path + "/"
        for c in stack.node.find_all()
        if isinstance(c, CfnElement)
    }
    return template


def logical_id(template: Template, type_: str, path_part: str) -> str:
    """The logical id of the one resource of a type whose construct path contains path_part."""
    found = [key for key in template.find_resources(type_) if path_part in _PATHS[template][key]]
    assert len(found) == 1, found
    return found[0]


def resource_of(template: Template, type_: str, path_part: str) -> dict[str, Any]:
    """The one resource of a type whose construct path contains path_part."""
    resource: dict[str, Any] = template.to_json()["Resources"][
        logical_id(template, type_, path_part)
    ]
    return resource


def statements(template: Template, path_part: str) -> list[dict[str, Any]]:
    """The statements of the managed policy whose construct path contains path_part."""
    policy = resource_of(template, "AWS::IAM::ManagedPolicy", path_part)
    found: list[dict[str, Any]] = policy["Properties"]["PolicyDocument"]["Statement"]
    return found


def arn(logical: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [logical, "Arn"]}
