"""Compliance gates: cdk-nag's AwsSolutions, HIPAA Security and NIST 800-53 rev 5 packs.

Applied through ``aws_cdk.Validations`` to the example stack and to a stack with every option
turned on, each under the example app's feature flags and under none at all. The tests add no
acknowledgments of their own: the construct ships them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import Acknowledgment, App, Duration, RemovalPolicy, Stack, Validations
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_omics as omics
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from cdk_nag import AwsSolutionsChecks, HIPAASecurityChecks, NIST80053R5Checks

import app as example
from cdk_omics_export import ReadSetExport, ReadSetFilter, compliance

from .support import cfn_lint

ROOT = Path(__file__).parent.parent
FLAGS: dict[str, Any] = json.loads((ROOT / "cdk.json").read_text())["context"]


FIXTURE_REASON = "Test fixture standing in for the user's VPC; not part of the construct."


def compliant_vpc(stack: Stack) -> ec2.Vpc:
    """A fixture VPC: isolated subnets, closed default group, flow logs."""
    vpc = ec2.Vpc(
        stack,
        "Vpc",
        max_azs=2,
        nat_gateways=0,
        restrict_default_security_group=True,
        subnet_configuration=[
            ec2.SubnetConfiguration(name="app", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
        ],
    )
    flow_logs = vpc.add_flow_log("FlowLogs")
    # The fixture's own findings (CDK's default flow-log role and log group), not the
    # construct's: acknowledged here, in the test, on the fixture alone.
    Validations.of(flow_logs).acknowledge(
        *(
            Acknowledgment(id=f"{pack}::{pack}-{rule}", reason=FIXTURE_REASON)
            for pack in ("HIPAA.Security", "NIST.800.53.R5")
            for rule in ("IAMNoInlinePolicy", "CloudWatchLogGroupEncrypted")
        )
    )
    return vpc


def every_option(app: App) -> Stack:
    stack = Stack(app, "EveryOption")
    store = omics.CfnSequenceStore(stack, "Store", name="cohort")
    key = kms.Key(stack, "DataKey", enable_key_rotation=True)
    topic = sns.Topic(stack, "OnCall", master_key=key, enforce_ssl=True)
    iam.PermissionsBoundary.of(stack).apply(
        iam.ManagedPolicy.from_managed_policy_name(stack, "Boundary", "platform-boundary")
    )
    ReadSetExport(
        stack,
        "Export",
        sequence_store_id=store.attr_sequence_store_id,
        # More than 100: the ids travel in an S3 asset the handler reads.
        read_set_ids=[str(4000000000 + n) for n in range(150)],
        destination_prefix="cohort/exports/",
        encryption_key=key,
        removal_policy=RemovalPolicy.DESTROY,
        auto_delete_objects=True,
        wait_for_completion=False,
        allow_partial_failure=True,
        timeout=Duration.minutes(20),
        poll_interval=Duration.seconds(60),
        max_requests_per_second=3,
        notification_topic=topic,
        vpc=compliant_vpc(stack),
        log_retention=logs.RetentionDays.TEN_YEARS,
    )
    return stack


def own_bucket(app: App) -> Stack:
    stack = Stack(app, "OwnBucket")
    key = kms.Key.from_key_arn(
        stack,
        "LakeKey",
        "arn:aws:kms:us-east-1:111122223333:key/0f4b6d43-2a11-4c4e-9f6b-6f1f1d0c1a2b",
    )
    ReadSetExport(
        stack,
        "Export",
        sequence_store_id="1234567890",
        read_set_ids=["1111111111"],
        destination_bucket=s3.Bucket.from_bucket_name(stack, "Lake", "genomics-data-lake"),
        encryption_key=key,
        destination_prefix="omics/",
    )
    return stack


def by_filter(app: App) -> Stack:
    stack = Stack(app, "ByFilter")
    ReadSetExport(
        stack,
        "Export",
        sequence_store_id="1234567890",
        read_set_filter=ReadSetFilter(sample_id="tumour-7", creation_type="IMPORT"),
        allow_empty_selection=True,
        max_requests_per_second=2,
    )
    return stack


STACKS: dict[str, Callable[[App], Stack]] = {
    "example": example.build,
    "every-option": every_option,
    "own-bucket": own_bucket,
    "by-filter": by_filter,
}
CONTEXTS: dict[str, dict[str, Any]] = {"example-flags": FLAGS, "no-flags": {}}

# Our own constructs whose findings are acknowledged, and which findings (the rest of the
# acknowledgments must be on the Provider framework's constructs).
OWN_ACKNOWLEDGED = {
    "Export/OnEventHandler/Resource": {
        "HIPAA.Security-LambdaInsideVPC",
        "NIST.800.53.R5-LambdaInsideVPC",
    },
    "Export/IsCompleteHandler/Resource": {
        "HIPAA.Security-LambdaInsideVPC",
        "NIST.800.53.R5-LambdaInsideVPC",
    },
    "Export/Bucket/Resource": {
        "HIPAA.Security-S3BucketReplicationEnabled",
        "NIST.800.53.R5-S3BucketReplicationEnabled",
    },
    "Export/AccessLogs/Resource": {
        "HIPAA.Security-S3BucketReplicationEnabled",
        "NIST.800.53.R5-S3BucketReplicationEnabled",
    },
    "Export/ExportPolicy/Resource": {"AwsSolutions-IAM5"},
    "Export/HandlerPolicy/Resource": {"AwsSolutions-IAM5"},
}


def audit(build: Callable[[App], Stack], context: dict[str, Any], outdir: Path) -> Any:
    app = App(context=context, outdir=str(outdir))
    Validations.of(app).add_plugins(
        AwsSolutionsChecks(app), HIPAASecurityChecks(app), NIST80053R5Checks(app)
    )
    stack = build(app)
    try:
        app.synth()
    except RuntimeError:
        pass  # the report says which findings; the tests below show them
    report = json.loads((outdir / "validation-report.json").read_text())
    template = json.loads((outdir / f"{stack.artifact_id}.template.json").read_text())
    return report, template


@pytest.fixture(scope="module")
def audits(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, str], Any]:
    """Each stack and context audited once per module, whichever tests ask for it."""
    done: dict[tuple[str, str], Any] = {}

    def audited(stack_name: str, context_name: str) -> Any:
        if (stack_name, context_name) not in done:
            outdir = tmp_path_factory.mktemp(f"{stack_name}-{context_name}")
            done[stack_name, context_name] = audit(
                STACKS[stack_name], CONTEXTS[context_name], outdir
            )
        return done[stack_name, context_name]

    return audited


@pytest.fixture(params=[(s, c) for s in STACKS for c in CONTEXTS], ids=str)
def audited(request: pytest.FixtureRequest, audits: Callable[[str, str], Any]) -> Any:
    return audits(*request.param)


def test_no_unacknowledged_findings(audited: Any) -> None:
    report, _ = audited
    plugins = {p["pluginName"]: p for p in report["pluginReports"]}
    assert set(plugins) == set(compliance.COMPLIANCE_PACKS)
    findings = {
        name: [
            (v["ruleName"], c["constructPath"])
            for v in plugin["violations"]
            for c in v["violatingConstructs"]
        ]
        for name, plugin in plugins.items()
    }
    assert findings == {name: [] for name in compliance.COMPLIANCE_PACKS}
    assert all(p["conclusion"] == "success" for p in plugins.values())


def test_acknowledged_only_framework_or_listed_findings(audited: Any) -> None:
    report, _ = audited
    for plugin in report["pluginReports"]:
        for violation in plugin["suppressedViolations"]:
            assert len(violation["reason"]) > 40, violation
            rule = violation["ruleName"].split("[")[0]
            for construct in violation["violatingConstructs"]:
                path = construct["constructPath"].split("/", 1)[1]
                if path.startswith("Export/Provider/"):
                    continue
                if violation["reason"] == FIXTURE_REASON:
                    assert path.startswith("Vpc/FlowLogs/"), path
                    continue
                assert rule in OWN_ACKNOWLEDGED.get(path, set()), (rule, path)
                assert violation["acknowledgedAt"] == construct["constructPath"]


def test_templates_pass_cfn_lint(audited: Any) -> None:
    _, template = audited
    assert cfn_lint(template) == []


def test_readme_lists_every_acknowledgment() -> None:
    readme = (ROOT / "README.md").read_text()
    reasons = [value for value in vars(compliance).values() if isinstance(value, compliance.Reason)]
    assert reasons
    for reason in reasons:
        for rule in reason.rules:
            assert rule.split("[")[0] in readme, rule
    assert "AwsSolutions-IAM5" in readme


def test_in_a_vpc_lambda_findings_go_away_rather_than_being_acknowledged(
    audits: Callable[[str, str], Any],
) -> None:
    report, _ = audits("every-option", "no-flags")
    suppressed = {
        v["ruleName"] for plugin in report["pluginReports"] for v in plugin["suppressedViolations"]
    }
    assert not {rule for rule in suppressed if "LambdaInsideVPC" in rule}
