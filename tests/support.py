"""Synthesis helpers shared by the template tests."""

from __future__ import annotations

import json
import re
from typing import Any

from aws_cdk import CfnElement, Stack
from aws_cdk.assertions import Template
from cfnlint.api import ManualArgs
from cfnlint.config import ConfigMixIn
from cfnlint.decode.decode import decode_str
from cfnlint.runner import Runner

# W3005 (a DependsOn already implied by a GetAtt) is how CDK itself wires every function to
# its role; nothing else may be switched off.
CFN_LINT_IGNORED = ["W3005"]
CFN_LINT_REGIONS = ["us-east-1", "eu-west-2", "ap-southeast-1"]

# Template -> {logical id: construct path}; path metadata is off without context.
_PATHS: dict[Template, dict[str, str]] = {}
# Template -> its JSON: each to_json() or find_resources() is a round trip through jsii that
# takes most of a second for a stack of 50 exports.
_JSON: dict[Template, dict[str, Any]] = {}
# cfn-lint's runner (its rules take about a second to load, as long as a small template takes
# to lint), made at the first template and kept; and what it found in each template seen, by
# the template's text: several test files synthesize the same template.
_LINTER: list[Runner] = []
_LINTED: dict[str, list[str]] = {}


def cfn_lint(template: dict[str, Any]) -> list[str]:
    """Every cfn-lint error and warning for a template, as readable lines.

    What ``cfnlint.api.lint`` does, with one runner for every template, as the cfn-lint
    command runs one for all the templates it is given.
    """
    key = json.dumps(template, sort_keys=True)
    if key not in _LINTED:
        if not _LINTER:
            config = ManualArgs(ignore_checks=CFN_LINT_IGNORED, regions=CFN_LINT_REGIONS)
            _LINTER.append(Runner(ConfigMixIn(**config)))
        decoded, errors = decode_str(json.dumps(template))
        if errors or decoded is None:
            matches = errors
        else:
            matches = list(_LINTER[0].validate_template(decoded))
        _LINTED[key] = [f"{m.rule.id} {m.message} ({'/'.join(map(str, m.path))})" for m in matches]
    return list(_LINTED[key])


def synth(stack: Stack, *, lint: bool = True) -> Template:
    """Synthesize a stack, hold its template to CloudFormation's schemas, index its paths.

    ``lint=False`` only for a stack that repeats resources another linted stack already has
    (cfn-lint takes about 40 ms a resource).
    """
    template = Template.from_stack(stack)
    _JSON[template] = template.to_json()
    if lint:
        assert cfn_lint(_JSON[template]) == []
    _PATHS[template] = {
        stack.resolve(c.logical_id): "/" + c.node.path + "/"
        for c in stack.node.find_all()
        if isinstance(c, CfnElement)
    }
    return template


def template_json(template: Template) -> dict[str, Any]:
    """The synthesized template as JSON (shared: do not modify it)."""
    return _JSON[template]


def find(template: Template, type_: str) -> dict[str, dict[str, Any]]:
    """The resources of one type, by logical id."""
    return {
        key: resource
        for key, resource in _JSON[template]["Resources"].items()
        if resource["Type"] == type_
    }


def logical_id(template: Template, type_: str, path_part: str) -> str:
    """The logical id of the one resource of a type whose construct path contains path_part."""
    found = [key for key in find(template, type_) if path_part in _PATHS[template][key]]
    assert len(found) == 1, found
    return found[0]


def resource_of(template: Template, type_: str, path_part: str) -> dict[str, Any]:
    """The one resource of a type whose construct path contains path_part."""
    resource: dict[str, Any] = _JSON[template]["Resources"][logical_id(template, type_, path_part)]
    return resource


def statements(template: Template, path_part: str) -> list[dict[str, Any]]:
    """The statements of the managed policy whose construct path contains path_part."""
    policy = resource_of(template, "AWS::IAM::ManagedPolicy", path_part)
    found: list[dict[str, Any]] = policy["Properties"]["PolicyDocument"]["Statement"]
    return found


def arn(logical: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [logical, "Arn"]}


def python_functions(template: Template) -> dict[str, dict[str, Any]]:
    """The stack's Lambda functions that run our Python handler (not the framework's Node.js)."""
    return {
        key: function
        for key, function in find(template, "AWS::Lambda::Function").items()
        if function["Properties"].get("Runtime", "").startswith("python")
    }


def handler_policies(template: Template) -> list[str]:
    """The logical ids of the service's handler policy chunks, in construct order."""
    paths = _PATHS[template]
    found = [
        key for key in find(template, "AWS::IAM::ManagedPolicy") if "/HandlerPolicy" in paths[key]
    ]

    def number(key: str) -> int:
        name = paths[key].rstrip("/").split("/")[-2]  # .../HandlerPolicyN/Resource/
        return int(name.removeprefix("HandlerPolicy") or 1)

    return sorted(found, key=number)


def handler_statements(template: Template) -> list[dict[str, Any]]:
    """Every statement of the handler policy chunks, in order."""
    resources = _JSON[template]["Resources"]
    return [
        statement
        for key in handler_policies(template)
        for statement in resources[key]["Properties"]["PolicyDocument"]["Statement"]
    ]


def state_machine_definition(definition: Any) -> dict[str, Any]:
    """A state machine's resolved ``DefinitionString`` as JSON, each token in it (a string,
    or an ``Fn::Join`` of strings and intrinsic functions) put back as its intrinsic function.
    """
    if isinstance(definition, str):
        parsed: dict[str, Any] = json.loads(definition)
        return parsed
    separator, parts = definition["Fn::Join"]
    assert separator == ""
    tokens = {f"<token-{n}>": part for n, part in enumerate(parts) if not isinstance(part, str)}
    placeholders = iter(tokens)
    text = "".join(part if isinstance(part, str) else next(placeholders) for part in parts)

    def restore(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: restore(item) for key, item in value.items()}
        if isinstance(value, list):
            return [restore(item) for item in value]
        if isinstance(value, str) and value in tokens:
            return tokens[value]
        assert not (isinstance(value, str) and "<token-" in value), value
        return value

    restored: dict[str, Any] = restore(json.loads(text))
    return restored


def _references(value: Any) -> set[str]:
    """The logical ids a property value refers to (Ref, Fn::GetAtt, Fn::Sub)."""
    found: set[str] = set()
    if isinstance(value, list):
        for item in value:
            found |= _references(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key == "Ref" and isinstance(item, str) and not item.startswith("AWS::"):
                found.add(item)
            elif key == "Fn::GetAtt":
                target = item[0] if isinstance(item, list) else item.split(".")[0]
                found.add(target)
            elif key == "Fn::Sub":
                text = item[0] if isinstance(item, list) else item
                found |= {
                    name.split(".")[0]
                    for name in re.findall(r"\$\{([^}!]+)\}", text)
                    if not name.startswith("AWS::")
                }
                if isinstance(item, list):
                    found |= _references(item[1])
            else:
                found |= _references(item)
    return found


def depends_on(template: Template, dependent: str, dependency: str) -> bool:
    """Whether CloudFormation creates ``dependency`` before ``dependent`` (DependsOn and
    references, followed transitively)."""
    resources = _JSON[template]["Resources"]

    def direct(key: str) -> set[str]:
        resource = resources[key]
        depends = resource.get("DependsOn", [])
        named = {depends} if isinstance(depends, str) else set(depends)
        return (named | _references(resource.get("Properties", {}))) & resources.keys()

    seen: set[str] = set()
    pending = [dependent]
    while pending:
        for key in direct(pending.pop()):
            if key == dependency:
                return True
            if key not in seen:
                seen.add(key)
                pending.append(key)
    return False


# The longest value each token of a handler policy can take in any partition and Region: what
# IAM measures against its 6,144-character limit once CloudFormation has resolved the template.
LONGEST_PARTITION = "aws-us-gov"
LONGEST_REGION = "ap-southeast-1"
ACCOUNT = "123456789012"
LONGEST_PSEUDO = {
    "AWS::Partition": LONGEST_PARTITION,
    "AWS::Region": LONGEST_REGION,
    "AWS::AccountId": ACCOUNT,
    "AWS::URLSuffix": "amazonaws.com.cn",
}
_REGIONAL = f"{LONGEST_PARTITION}:{{}}:{LONGEST_REGION}:{ACCOUNT}"
LONGEST_ATTRIBUTES = {
    # Bucket names: at most 63 characters.
    ("AWS::S3::Bucket", "Ref"): "b" * 63,
    ("AWS::S3::Bucket", "Arn"): f"arn:{LONGEST_PARTITION}:s3:::{'b' * 63}",
    # Role names: at most 64 characters (CDK's roles have the default path /).
    ("AWS::IAM::Role", "Arn"): f"arn:{LONGEST_PARTITION}:iam::{ACCOUNT}:role/{'r' * 64}",
    ("AWS::KMS::Key", "Arn"): f"arn:{_REGIONAL.format('kms')}:key/{'k' * 36}",
    # Table names: at most 255 characters.
    ("AWS::DynamoDB::Table", "Arn"): f"arn:{_REGIONAL.format('dynamodb')}:table/{'t' * 255}",
    # Queue names: at most 80 characters.
    ("AWS::SQS::Queue", "Arn"): f"arn:{_REGIONAL.format('sqs')}:{'q' * 80}",
    # Log group names: at most 512 characters.
    ("AWS::Logs::LogGroup", "Arn"): f"arn:{_REGIONAL.format('logs')}:log-group:{'l' * 512}:*",
    # Event bus names: at most 256 characters.
    ("AWS::Events::EventBus", "Arn"): f"arn:{_REGIONAL.format('events')}:event-bus/{'e' * 256}",
    # Function names: at most 64 characters.
    ("AWS::Lambda::Function", "Arn"): f"arn:{_REGIONAL.format('lambda')}:function:{'f' * 64}",
    # State machine names: at most 80 characters.
    ("AWS::StepFunctions::StateMachine", "Ref"): (
        f"arn:{_REGIONAL.format('states')}:stateMachine:{'m' * 80}"
    ),
    ("AWS::StepFunctions::StateMachine", "Name"): "m" * 80,
}


def resolve_longest(template: Template, value: Any) -> Any:
    """``value`` with every intrinsic function resolved to its longest plausible result.

    Raises KeyError for a reference this helper does not know, so a new kind of token in a
    policy is noticed rather than under-counted.
    """
    resources = _JSON[template]["Resources"]

    def ref(name: str) -> str:
        if name.startswith("AWS::"):
            return LONGEST_PSEUDO[name]
        return LONGEST_ATTRIBUTES[(resources[name]["Type"], "Ref")]

    def get_att(target: list[str]) -> str:
        logical, name = target
        return LONGEST_ATTRIBUTES[(resources[logical]["Type"], name)]

    def join(arguments: list[Any]) -> str:
        separator, parts = arguments
        return str(separator).join(walk(part) for part in parts)

    def sub(text: str) -> str:
        return re.sub(r"\$\{([^}]+)\}", lambda m: ref(m.group(1)), text)

    functions = {"Ref": ref, "Fn::GetAtt": get_att, "Fn::Join": join, "Fn::Sub": sub}

    def walk(item: Any) -> Any:
        if isinstance(item, list):
            return [walk(v) for v in item]
        if not isinstance(item, dict):
            return item
        if len(item) == 1 and next(iter(item)) in functions:
            ((name, arguments),) = item.items()
            return functions[name](arguments)
        if any(key.startswith("Fn::") for key in item):
            raise KeyError(f"no longest value for {item}")
        return {key: walk(v) for key, v in item.items()}

    return walk(value)


def iam_length(document: Any) -> int:
    """A policy document's size as IAM counts it: JSON without whitespace."""
    return len(json.dumps(document, separators=(",", ":")))
