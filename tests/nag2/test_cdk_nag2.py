"""cdk-nag 2.x: its AwsSolutions, HIPAA Security and NIST 800-53 rev 5 packs run as Aspects.

The construct writes, for cdk-nag 2, the ``cdk_nag`` resource metadata that cdk-nag 2's
``NagSuppressions`` writes, with the rules and reasons it acknowledges for cdk-nag 3. These
tests apply the packs the cdk-nag 2 way (``Aspects.of(app).add(...)``) to the same apps as the
cdk-nag 3 audits of tests/test_compliance.py, including the two-stack app under both styles of
reference across stacks. cdk-nag 2 cannot be installed beside cdk-nag 3: `make test` runs this
module in a second virtualenv, .venv-nag2, with cdk-nag 2 pinned; elsewhere it is skipped.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from aws_cdk import App, Aspects, CfnResource, Stack, Validations, cx_api
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3

from cdk_omics_export import ReadSetExport, compliance

from ..test_compliance import AUDITS, FIXTURE_REASON

if not importlib.metadata.version("cdk-nag").startswith("2."):
    pytest.skip("needs cdk-nag 2.x: `make test` runs it in .venv-nag2", allow_module_level=True)

from cdk_nag import (  # noqa: E402
    AwsSolutionsChecks,
    HIPAASecurityChecks,
    NagPackSuppression,
    NagSuppressions,
    NIST80053R5Checks,
)

# "CdkNagSuppression[<finding>]: <rule id> was triggered but suppressed." (log_ignores)
SUPPRESSED = re.compile(r"^CdkNagSuppression(?:\[(?P<finding>.*)\])?: (?P<rule>\S+) was triggered")


def packs() -> list[Any]:
    options = {"verbose": True, "log_ignores": True, "reports": False}
    return [
        AwsSolutionsChecks(**options),
        HIPAASecurityChecks(**options),
        NIST80053R5Checks(**options),
    ]


def suppress_fixtures(app: App) -> None:
    """The test fixtures' own findings (VPC flow logs, data lake), acknowledged for cdk-nag 3
    with FIXTURE_REASON by the builders of tests/test_compliance.py: suppressed the cdk-nag 2
    way, on the same constructs and their children."""
    for construct in app.node.find_all():
        rules = [
            rule.split("::", 1)[1]
            for entry in construct.node.metadata
            if entry.type == Validations.ACKNOWLEDGED_RULES_METADATA_KEY
            for rule, reason in entry.data.items()
            if reason == FIXTURE_REASON
        ]
        if rules:
            NagSuppressions.add_resource_suppressions(
                construct, [NagPackSuppression(id=r, reason=FIXTURE_REASON) for r in rules], True
            )


class Message(NamedTuple):
    level: str
    path: str
    text: str


class Audit(NamedTuple):
    messages: list[Message]
    # The cdk_nag metadata of every resource that has it, by construct path.
    suppressions: dict[str, list[dict[str, Any]]]
    # The cdk-nag 3 acknowledgments of the same app: (path, rule id, reason).
    acknowledgments: set[tuple[str, str, str]]
    templates: dict[str, dict[str, Any]]


def audit(build: Callable[[App], Stack], context: dict[str, Any], outdir: Path) -> Audit:
    app = App(context=context, outdir=str(outdir))
    for pack in packs():
        Aspects.of(app).add(pack)
    build(app)
    suppress_fixtures(app)
    assembly = app.synth()
    messages = [
        Message(str(m.level.value), m.id.lstrip("/"), str(m.entry.data))
        for artifact in assembly.stacks
        for m in artifact.messages
    ]
    constructs = app.node.find_all()
    suppressions = {
        c.node.path: list(c.get_metadata(compliance.NAG2_METADATA)["rules_to_suppress"])
        for c in constructs
        if isinstance(c, CfnResource) and c.get_metadata(compliance.NAG2_METADATA)
    }
    acknowledgments = {
        (c.node.path, rule.split("::", 1)[1].split("[")[0], reason)
        for c in constructs
        for entry in c.node.metadata
        if entry.type == Validations.ACKNOWLEDGED_RULES_METADATA_KEY
        for rule, reason in entry.data.items()
        if rule.startswith(tuple(f"{pack}::" for pack in compliance.COMPLIANCE_PACKS))
        and reason != FIXTURE_REASON
    }
    templates = {
        stack.stack_name: json.loads((outdir / stack.template_file).read_text())
        for stack in app.node.children
        if isinstance(stack, Stack)
    }
    return Audit(messages, suppressions, acknowledgments, templates)


@pytest.fixture(scope="module")
def audits(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Audit]:
    done: dict[str, Audit] = {}

    def audited(name: str) -> Audit:
        if name not in done:
            done[name] = audit(*AUDITS[name], tmp_path_factory.mktemp(name.replace("/", "-")))
        return done[name]

    return audited


@pytest.fixture(params=list(AUDITS))
def audited(request: pytest.FixtureRequest, audits: Callable[[str], Audit]) -> Audit:
    return audits(request.param)


def test_no_errors(audited: Audit) -> None:
    errors = [m for m in audited.messages if m.level == cx_api.SynthesisMessageLevel.ERROR.value]
    assert errors == []


def test_no_warnings(audited: Audit) -> None:
    """Nor warnings: neither findings of warning level nor rules that failed to evaluate."""
    warnings = [
        m
        for m in audited.messages
        if m.level == cx_api.SynthesisMessageLevel.WARNING.value
        and m.text.startswith((*(f"{p}-" for p in compliance.COMPLIANCE_PACKS), "CdkNag"))
    ]
    assert warnings == []


def suppressed(audited: Audit) -> set[tuple[str, str, str]]:
    """What the packs reported and found suppressed: (path, rule id, finding id or '')."""
    found = set()
    for message in audited.messages:
        match = SUPPRESSED.match(message.text)
        if match:
            found.add((message.path, match["rule"], match["finding"] or ""))
    return found


def own(audited: Audit) -> dict[str, list[dict[str, Any]]]:
    """The construct's own suppressions (the fixtures' left out), by construct path."""
    return {
        path: [r for r in rules if r["reason"] != FIXTURE_REASON]
        for path, rules in audited.suppressions.items()
        if any(r["reason"] != FIXTURE_REASON for r in rules)
    }


def test_every_suppression_is_of_a_reported_finding(audited: Audit) -> None:
    """Nothing is suppressed that the packs do not report, on that very resource: each
    applies_to entry is a finding id cdk-nag 2 reported there."""
    written = {
        (path, rule["id"], finding)
        for path, rules in own(audited).items()
        for rule in rules
        for finding in rule.get("applies_to", [""])
    }
    assert written
    assert sorted(written - suppressed(audited)) == []


def test_same_rules_and_reasons_as_for_cdk_nag_3(audited: Audit) -> None:
    """cdk-nag 2 gets exactly the acknowledgments cdk-nag 3 gets: the same rules, on the same
    resources, for the same reasons."""
    written = {
        (path, rule["id"], rule["reason"]) for path, rules in own(audited).items() for rule in rules
    }
    assert written == audited.acknowledgments


def test_two_stacks_wildcards_name_the_other_stacks_resources(
    audits: Callable[[str], Audit],
) -> None:
    """cdk-nag 2 checks resources before references across stacks are resolved: a store or
    bucket of stack Data is named by its own logical id, and so the suppressions name it."""
    for style in ("default", "weak"):
        rules = own(audits(f"two-stacks/{style}"))
        handler = rules["Exports/ReadSetExportService/HandlerPolicy/Resource"]
        (wildcards,) = [r["applies_to"] for r in handler if r["id"] == "AwsSolutions-IAM5"]
        assert any(
            re.fullmatch(r"Resource::<Lake[0-9A-F]{8}\.Arn>/omics/cdk-omics-export/\*", w)
            for w in wildcards
        ), wildcards
        assert any("sequenceStore/<Store.SequenceStoreId>/readSet/*" in w for w in wildcards), (
            wildcards
        )


def test_suppressions_are_in_the_format_nag_suppressions_writes() -> None:
    """What the construct writes against what cdk-nag 2's own NagSuppressions writes for the
    same suppressions: plain rules, a rule with findings (applies_to), and a reason beyond
    Latin-1 (which cdk-nag 2 stores base64-encoded)."""
    stack = Stack(App(), "Format")
    plain = "A reason of more than ten characters."
    wide = "Reasons may hold any character \u2014 \u00e9t\u00e9 \u2192 ok"
    ours, theirs = s3.CfnBucket(stack, "Ours"), s3.CfnBucket(stack, "Theirs")
    rules = (
        "HIPAA.Security-LambdaDLQ",
        "AwsSolutions-IAM5[Resource::<B.Arn>/x/*]",
        "AwsSolutions-IAM5[Resource::*]",
        "NIST.800.53.R5-LambdaDLQ",
    )
    compliance._suppress_for_nag2(ours, compliance.Reason(rules, plain))
    compliance._suppress_for_nag2(ours, compliance.Reason(("AwsSolutions-S1",), wide))
    NagSuppressions.add_resource_suppressions(
        theirs,
        [
            NagPackSuppression(id="HIPAA.Security-LambdaDLQ", reason=plain),
            NagPackSuppression(
                id="AwsSolutions-IAM5",
                reason=plain,
                applies_to=["Resource::<B.Arn>/x/*", "Resource::*"],
            ),
            NagPackSuppression(id="NIST.800.53.R5-LambdaDLQ", reason=plain),
        ],
    )
    NagSuppressions.add_resource_suppressions(
        theirs, [NagPackSuppression(id="AwsSolutions-S1", reason=wide)]
    )
    written = ours.get_metadata("cdk_nag")
    assert written == theirs.get_metadata("cdk_nag")
    assert written["rules_to_suppress"][-1]["is_reason_encoded"] is True


def test_user_suppressions_survive(tmp_path: Path) -> None:
    """A user's own NagSuppressions on the construct's resources stay, before the construct's."""
    app = App(outdir=str(tmp_path))
    Aspects.of(app).add(AwsSolutionsChecks(reports=False))
    stack = Stack(app, "Users")
    export = ReadSetExport(
        stack, "Export", sequence_store_id="1234567890", read_set_ids=["1111111111"]
    )
    mine = NagPackSuppression(id="AwsSolutions-S10", reason="The user's own suppression, kept.")
    assert isinstance(export.bucket, s3.Bucket)
    NagSuppressions.add_resource_suppressions(export.bucket, [mine])
    policy = export.node.find_child("ExportPolicy")
    NagSuppressions.add_resource_suppressions(
        policy,
        [
            NagPackSuppression(
                id="AwsSolutions-IAM5",
                reason="The user's own suppression, kept.",
                applies_to=["Resource::arn:aws:s3:::other/*"],
            )
        ],
    )
    app.synth()
    bucket = export.bucket.node.default_child
    assert isinstance(bucket, CfnResource)
    rules = bucket.get_metadata("cdk_nag")["rules_to_suppress"]
    assert rules[0] == {"reason": mine.reason, "id": "AwsSolutions-S10"}
    assert {r["id"] for r in rules[1:]} == {
        "HIPAA.Security-S3BucketReplicationEnabled",
        "NIST.800.53.R5-S3BucketReplicationEnabled",
    }
    default = policy.node.default_child
    assert isinstance(default, iam.CfnManagedPolicy)
    (first, second) = default.get_metadata("cdk_nag")["rules_to_suppress"]
    assert first["applies_to"] == ["Resource::arn:aws:s3:::other/*"]
    assert second["reason"] == compliance.EXPORTED_OBJECTS


def test_no_metadata_without_cdk_nag_2(tmp_path: Path) -> None:
    """Without a cdk-nag 2 pack among the Aspects, templates carry no cdk_nag metadata."""
    build, context = AUDITS["three-exports/example-flags"]
    app = App(context=context, outdir=str(tmp_path))
    stack = build(app)
    app.synth()
    template = (tmp_path / stack.template_file).read_text()
    assert '"cdk_nag"' not in template
