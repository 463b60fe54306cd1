"""Compliance gates: cdk-nag's AwsSolutions, HIPAA Security and NIST 800-53 rev 5 packs.

Applied through ``aws_cdk.Validations`` to the example stack, a stack with every option turned
on, a bring-your-own-bucket stack, a filter stack and three exports sharing one service, each
under the example app's feature flags and under none at all; to twenty exports (several
handler policy chunks, one opened after the service was built) under the example app's flags;
and to an app of two stacks whose exports use a sequence store, a key and a data lake bucket of
the other stack, with CDK's default references across stacks and with weak ones. The tests
acknowledge only their own fixtures' findings (FIXTURE_REASON): the construct ships the rest.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tarfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import cdk_nag
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
from constructs import IConstruct

import app as example
from cdk_omics_export import ReadSetExport, ReadSetExportService, ReadSetFilter, compliance
from cdk_omics_export.service import SERVICE_ID

from .statements import Signature, signatures
from .support import cfn_lint

ROOT = Path(__file__).parent.parent
FLAGS: dict[str, Any] = json.loads((ROOT / "cdk.json").read_text())["context"]
# aws-cdk-lib's feature flag (read from the consuming stack's context) choosing how a
# reference to another stack renders: "strong" is Fn::ImportValue of an Export, "weak" is
# Fn::GetStackOutput; left unset, 2.275 behaves like "strong" (and warns), while `cdk init`
# writes "weak" into new projects' cdk.json.
CROSS_STACK_REFERENCES = "@aws-cdk/core:defaultCrossStackReferences"


FIXTURE_REASON = (
    "Test fixture standing in for the user's own resources (VPC, data lake); not part of the "
    "construct."
)
# Where fixture acknowledgments may be, below a stack.
FIXTURE_PATHS = ("Vpc/FlowLogs/", "Lake/")


def acknowledge_fixture(construct: IConstruct, *rules: str) -> None:
    """The fixture's own findings, not the construct's: acknowledged here, on the fixture."""
    Validations.of(construct).acknowledge(
        *(
            Acknowledgment(id=f"{pack}::{pack}-{rule}", reason=FIXTURE_REASON)
            for rule in rules
            for pack in ("HIPAA.Security", "NIST.800.53.R5")
        )
    )


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
    # CDK's default flow-log role and log group.
    acknowledge_fixture(flow_logs, "IAMNoInlinePolicy", "CloudWatchLogGroupEncrypted")
    return vpc


def data_lake(stack: Stack, key: kms.IKey) -> s3.Bucket:
    """A fixture data lake: SSE-KMS with the user's key, TLS only, versioned, private."""
    lake = s3.Bucket(
        stack,
        "Lake",
        encryption=s3.BucketEncryption.KMS,
        encryption_key=key,
        bucket_key_enabled=True,
        enforce_ssl=True,
        versioned=True,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
    )
    # Its access logs and replication are the data lake owner's design.
    acknowledge_fixture(lake, "S3BucketLoggingEnabled", "S3BucketReplicationEnabled")
    Validations.of(lake).acknowledge(
        Acknowledgment(id="AwsSolutions::AwsSolutions-S1", reason=FIXTURE_REASON)
    )
    return lake


def every_option(app: App) -> Stack:
    stack = Stack(app, "EveryOption")
    store = omics.CfnSequenceStore(stack, "Store", name="cohort")
    key = kms.Key(stack, "DataKey", enable_key_rotation=True)
    topic = sns.Topic(stack, "OnCall", master_key=key, enforce_ssl=True)
    iam.PermissionsBoundary.of(stack).apply(
        iam.ManagedPolicy.from_managed_policy_name(stack, "Boundary", "platform-boundary")
    )
    # The options only the service has; the shared ones below travel through the export.
    service = ReadSetExportService(
        stack, SERVICE_ID, removal_policy=RemovalPolicy.DESTROY, auto_delete_objects=True
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
        selection_refresh="2026-11",
        wait_for_completion=False,
        allow_partial_failure=True,
        timeout=Duration.minutes(20),
        service=service,
        poll_interval=Duration.seconds(60),
        max_requests_per_second=3,
        notification_topic=topic,
        vpc=compliant_vpc(stack),
        log_retention=logs.RetentionDays.TEN_YEARS,
        reserved_concurrency=2,
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


def three_exports(app: App) -> Stack:
    """Three exports of one store sharing the stack's service: by ids, by filter, and into a
    data lake bucket of the same stack, encrypted with a key of the user's (taken from the
    bucket)."""
    stack = Stack(app, "ThreeExports")
    store = omics.CfnSequenceStore(stack, "Store", name="cohort")
    lake = data_lake(stack, kms.Key(stack, "LakeKey", enable_key_rotation=True))
    ReadSetExport(
        stack,
        "ByIds",
        sequence_store_id=store.attr_sequence_store_id,
        read_set_ids=["1111111111", "2222222222"],
        destination_prefix="ids/",
    )
    ReadSetExport(
        stack,
        "ByFilter",
        sequence_store_id=store.attr_sequence_store_id,
        read_set_filter=ReadSetFilter(subject_id="patient-12"),
    )
    ReadSetExport(
        stack,
        "IntoLake",
        sequence_store_id=store.attr_sequence_store_id,
        read_set_ids=["3333333333"],
        destination_bucket=lake,
        destination_prefix="omics/cohort/",
    )
    return stack


TWENTY = 20


def twenty_exports(app: App) -> Stack:
    """Twenty exports from ten stores, every other one into the same existing bucket: the
    handler's statements fill several managed policies. The service is built (its log group
    used) after the first five, so later exports open a policy chunk the service did not have
    when it was built."""
    stack = Stack(app, "TwentyExports")
    service = ReadSetExportService.of(stack)
    lake = s3.Bucket.from_bucket_name(stack, "Lake", "genomics-data-lake")
    built_with = 0
    for n in range(TWENTY):
        if n == TWENTY // 4:
            assert service.log_group is not None  # builds the functions and the Provider
            built_with = len(service.handler_policies)
        ReadSetExport(
            stack,
            f"Export{n:02}",
            sequence_store_id=str(5000000000 + n % 10),
            read_set_ids=[str(6000000000 + n)],
            destination_prefix=f"batch-{n:02}/",
            destination_bucket=lake if n % 2 else None,
        )
    assert len(service.handler_policies) > built_with >= 1, (built_with, service.handler_policies)
    return stack


def two_stacks(app: App) -> Stack:
    """Stack Data: a sequence store, a key and the data lake bucket encrypted with it. Stack
    Exports: three exports using them across stacks."""
    data = Stack(app, "Data")
    store = omics.CfnSequenceStore(data, "Store", name="cohort")
    key = kms.Key(data, "LakeKey", enable_key_rotation=True)
    lake = data_lake(data, key)
    exports = Stack(app, "Exports")
    ReadSetExport(
        exports,
        "ByIds",
        sequence_store_id=store.attr_sequence_store_id,
        read_set_ids=["1111111111", "2222222222"],
    )
    ReadSetExport(
        exports,
        "ByFilter",
        sequence_store_id=store.attr_sequence_store_id,
        read_set_filter=ReadSetFilter(sample_id="tumour-7"),
    )
    ReadSetExport(
        exports,
        "IntoLake",
        sequence_store_id=store.attr_sequence_store_id,
        read_set_ids=["3333333333"],
        destination_bucket=lake,
        encryption_key=key,
        destination_prefix="omics/",
    )
    return exports


STACKS: dict[str, Callable[[App], Stack]] = {
    "example": example.build,
    "every-option": every_option,
    "own-bucket": own_bucket,
    "by-filter": by_filter,
    "three-exports": three_exports,
}
CONTEXTS: dict[str, dict[str, Any]] = {"example-flags": FLAGS, "no-flags": {}}
# The two-stack app under the example app's flags, which leave the reference style to CDK's
# default (strong in aws-cdk-lib 2.275: Fn::ImportValue), and with weak references
# (Fn::GetStackOutput, what `cdk init` sets for new projects).
REFERENCE_STYLES: dict[str, dict[str, Any]] = {
    "default": FLAGS,
    "weak": {**FLAGS, CROSS_STACK_REFERENCES: "weak"},
}
AUDITS: dict[str, tuple[Callable[[App], Stack], dict[str, Any]]] = {
    **{f"{s}/{c}": (STACKS[s], CONTEXTS[c]) for s in STACKS for c in CONTEXTS},
    # The largest template takes seconds to lint: under the example app's flags only.
    "twenty-exports/example-flags": (twenty_exports, FLAGS),
    **{f"two-stacks/{r}": (two_stacks, REFERENCE_STYLES[r]) for r in REFERENCE_STYLES},
}


class Acknowledged(NamedTuple):
    """A row of docs/compliance.md's table of the construct's acknowledgments."""

    rules: frozenset[str]
    resources: frozenset[str]  # paths below the stack, as own_key writes them
    reason: str


def fold(text: str) -> str:
    return " ".join(text.split())


def documented_acknowledgments() -> list[Acknowledged]:
    """The table of docs/compliance.md that lists every acknowledgment the construct adds."""
    page = (ROOT / "docs" / "compliance.md").read_text()
    header = "| rule | resource | when | reason (as the construct writes it) |"
    table = page.split(header, 1)[1].split("\n\n", 1)[0]
    rows = []
    for line in table.strip().splitlines()[1:]:
        rules, resources, _when, reason = (cell.strip() for cell in line[1:-1].split(" | "))
        rows.append(
            Acknowledged(
                frozenset(re.findall(r"`([^`]+)`", rules)),
                frozenset(re.findall(r"`([^`]+)`", resources)),
                fold(reason),
            )
        )
    return rows


class Audit(NamedTuple):
    report: dict[str, Any]
    templates: dict[str, dict[str, Any]]  # by stack name
    # Every cdk-nag acknowledgment in the app: (qualified rule id, construct path, reason).
    acknowledgments: set[tuple[str, str, str]]
    exports: set[str]  # paths of the ReadSetExport constructs
    paths: set[str]  # every construct path


def audit(build: Callable[[App], Stack], context: dict[str, Any], outdir: Path) -> Audit:
    app = App(context=context, outdir=str(outdir))
    Validations.of(app).add_plugins(
        AwsSolutionsChecks(app), HIPAASecurityChecks(app), NIST80053R5Checks(app)
    )
    build(app)
    try:
        app.synth()
    except RuntimeError:
        pass  # the report says which findings; the tests below show them
    report = json.loads((outdir / "validation-report.json").read_text())
    stacks = [c for c in app.node.children if isinstance(c, Stack)]
    templates = {
        stack.stack_name: json.loads((outdir / stack.template_file).read_text()) for stack in stacks
    }
    constructs = app.node.find_all()
    namespaces = tuple(f"{pack}::" for pack in compliance.COMPLIANCE_PACKS)
    acknowledgments = {
        (rule, construct.node.path, reason)
        for construct in constructs
        for entry in construct.node.metadata
        if entry.type == Validations.ACKNOWLEDGED_RULES_METADATA_KEY
        for rule, reason in entry.data.items()
        if rule.startswith(namespaces)
    }
    exports = {c.node.path for c in constructs if isinstance(c, ReadSetExport)}
    return Audit(report, templates, acknowledgments, exports, {c.node.path for c in constructs})


@pytest.fixture(scope="module")
def audits(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Audit]:
    """Each app audited once per module, whichever tests ask for it."""
    done: dict[str, Audit] = {}

    def audited(name: str) -> Audit:
        if name not in done:
            outdir = tmp_path_factory.mktemp(name.replace("/", "-"))
            done[name] = audit(*AUDITS[name], outdir)
        return done[name]

    return audited


@pytest.fixture(params=list(AUDITS))
def audited(request: pytest.FixtureRequest, audits: Callable[[str], Audit]) -> Audit:
    return audits(request.param)


def findings(report: dict[str, Any], kind: str = "violations") -> list[tuple[str, str]]:
    return [
        (v["ruleName"], c["constructPath"])
        for plugin in report["pluginReports"]
        for v in plugin[kind]
        for c in v["violatingConstructs"]
    ]


def test_no_unacknowledged_findings(audited: Audit) -> None:
    plugins = {p["pluginName"]: p for p in audited.report["pluginReports"]}
    assert set(plugins) == set(compliance.COMPLIANCE_PACKS)
    assert findings(audited.report) == []
    assert all(p["conclusion"] == "success" for p in plugins.values())


def own_key(path: str, exports: set[str]) -> str:
    """A construct path (with its stack) as docs/compliance.md's table names resources."""
    stack, rest = path.split("/", 1)
    export = rest.split("/", 1)[0]
    if f"{stack}/{export}" in exports:
        return "<export>" + rest[len(export) :]
    return re.sub(rf"^{SERVICE_ID}/HandlerPolicy\d*/", f"{SERVICE_ID}/HandlerPolicy<n>/", rest)


def own_acknowledgments(audited: Audit) -> set[tuple[str, str, str]]:
    """The construct's acknowledgments the packs used: (rule, own_key of the resource, reason);
    the fixtures' are checked to be on the fixtures."""
    found = set()
    for plugin in audited.report["pluginReports"]:
        # A report leaves the key out when nothing is acknowledged.
        for violation in plugin.get("suppressedViolations", []):
            assert len(violation["reason"]) > 40, violation
            rule = violation["ruleName"].split("[")[0]
            for construct in violation["violatingConstructs"]:
                path = construct["constructPath"].split("/", 1)[1]
                if violation["reason"] == FIXTURE_REASON:
                    assert path.startswith(FIXTURE_PATHS), path
                    continue
                # The construct's own acknowledgments name the very resource.
                assert violation["acknowledgedAt"] == construct["constructPath"]
                key = own_key(construct["constructPath"], audited.exports)
                found.add((rule, key, fold(violation["reason"])))
    return found


def listed(acknowledgment: tuple[str, str, str], rows: list[Acknowledged]) -> bool:
    rule, resource, reason = acknowledgment
    return any(
        rule in row.rules and resource in row.resources and reason == row.reason for row in rows
    )


def test_acknowledged_only_listed_findings(audited: Audit) -> None:
    """Each acknowledgment in the template is a row of docs/compliance.md: its rule, its
    resource and its very reason."""
    rows = documented_acknowledgments()
    unlisted = sorted(a for a in own_acknowledgments(audited) if not listed(a, rows))
    assert unlisted == [], "acknowledged, but not so in docs/compliance.md's table"


def test_every_listed_acknowledgment_is_in_a_template(audits: Callable[[str], Audit]) -> None:
    """Each row of docs/compliance.md's table, each of its rules and resources, is an
    acknowledgment of some audited template."""
    found = {a for name in AUDITS for a in own_acknowledgments(audits(name))}
    rows = documented_acknowledgments()
    unused = sorted(
        (rule, resource, row.reason[:60])
        for row in rows
        for rule in row.rules
        for resource in row.resources
        if (rule, resource, row.reason) not in found
    )
    assert unused == [], "listed in docs/compliance.md, acknowledged in no audited template"


def test_every_acknowledgment_is_of_a_reported_finding(audited: Audit) -> None:
    """Nothing is acknowledged that the packs do not report, on that very construct."""
    used = {
        (v["acknowledgedId"], v["acknowledgedAt"], v["reason"])
        for plugin in audited.report["pluginReports"]
        for v in plugin["suppressedViolations"]
    }
    assert sorted(audited.acknowledgments - used) == []


def left_open(rules: Sequence[str] | None) -> Callable[[App], Stack]:
    """One export, its service declared with ``unacknowledged_rules=rules``."""

    def build(app: App) -> Stack:
        stack = Stack(app, "LeftOpen")
        service = ReadSetExportService(stack, SERVICE_ID, unacknowledged_rules=rules)
        ReadSetExport(
            stack,
            "Export",
            service=service,
            sequence_store_id="1234567890",
            read_set_ids=["1111111111", "2222222222"],
            destination_prefix="exports/",
        )
        return stack

    return build


# A compliance reviewer's own decisions: replication and backup plans.
REVIEWERS_RULES = (
    "HIPAA.Security-S3BucketReplicationEnabled",
    "NIST.800.53.R5-S3BucketReplicationEnabled",
    "HIPAA.Security-DynamoDBInBackupPlan",
    "NIST.800.53.R5-DynamoDBInBackupPlan",
)


@pytest.fixture(scope="module")
def decisions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Audit]:
    choices: dict[str, Sequence[str] | None] = {
        "none": None,
        "reviewers": REVIEWERS_RULES,
        "all": compliance.ACKNOWLEDGED_RULES,
    }
    return {
        name: audit(left_open(rules), FLAGS, tmp_path_factory.mktemp(f"left-open-{name}"))
        for name, rules in choices.items()
    }


def open_findings(audited: Audit) -> set[tuple[str, str]]:
    return {
        (rule.split("[")[0], own_key(path, audited.exports))
        for rule, path in findings(audited.report)
    }


def test_rules_left_open_are_findings_in_the_teams_report(decisions: dict[str, Audit]) -> None:
    """With unacknowledged_rules, the construct acknowledges none of those rules' findings:
    they are violations in the team's cdk-nag report, and the rest stay acknowledged."""
    acknowledged = {(rule, key) for rule, key, _ in own_acknowledgments(decisions["none"])}
    assert open_findings(decisions["none"]) == set()
    # With the default options, every rule of the table has findings to acknowledge.
    assert {rule for rule, _ in acknowledged} == set(compliance.ACKNOWLEDGED_RULES)
    reviewers = decisions["reviewers"]
    chosen = {(rule, key) for rule, key in acknowledged if rule in REVIEWERS_RULES}
    assert {key for _, key in chosen} == {
        f"{SERVICE_ID}/State/Resource",
        f"{SERVICE_ID}/AccessLogs/Resource",
        "<export>/Bucket/Resource",
    }
    assert open_findings(reviewers) == chosen
    assert {(r, k) for r, k, _ in own_acknowledgments(reviewers)} == acknowledged - chosen
    everything = decisions["all"]
    assert open_findings(everything) == acknowledged
    assert own_acknowledgments(everything) == set()


# Twenty exports repeat the resources that three exports already have, and cfn-lint takes
# about 40 ms a resource: that app is audited, not linted.
LINTED = [name for name in AUDITS if not name.startswith("twenty-exports/")]


@pytest.mark.parametrize("name", LINTED)
def test_templates_pass_cfn_lint(audits: Callable[[str], Audit], name: str) -> None:
    templates = audits(name).templates
    # cfn-lint takes seconds a template: one seen before (the same stack in two apps) is not
    # linted again (tests/support.py).
    assert {stack: cfn_lint(template) for stack, template in templates.items()} == {
        stack: [] for stack in templates
    }


def test_compliance_page_lists_every_reason_and_rule() -> None:
    """Every reason the construct can write is a row, and the rules of the rows are
    ACKNOWLEDGED_RULES, the values unacknowledged_rules takes."""
    rows = documented_acknowledgments()
    reasons = {
        fold(value.reason if isinstance(value, compliance.Reason) else value)
        for name, value in vars(compliance).items()
        if name.isupper() and (isinstance(value, compliance.Reason) or name in WILDCARD_REASONS)
    }
    assert reasons == {row.reason for row in rows}
    assert set(compliance.ACKNOWLEDGED_RULES) == {rule for row in rows for rule in row.rules}


# The reasons of AwsSolutions-IAM5 findings, whose ids are computed from the policies.
WILDCARD_REASONS = {
    "EXPORTED_OBJECTS",
    "HANDLER_WILDCARDS",
    "VPC_NETWORKING",
    "RUNNER_LOG_DELIVERY",
    "RUNNER_EXECUTIONS",
}


# Statements the test fixtures' own resources carry (CDK's defaults for them), not the
# construct's: the VPC's flow-log role and the notification topic's TLS-only policy.
FIXTURE_STATEMENTS = {
    Signature("trust policy", "Allow", "vpc-flow-logs.amazonaws.com", "sts:AssumeRole", "-"),
    Signature("topic policy", "Deny", "*", "sns:Publish", "Bool aws:SecureTransport"),
}


def documented_statements() -> dict[Signature, str]:
    """The rows of docs/compliance.md's table of cross-service statements, with their source."""
    page = (ROOT / "docs" / "compliance.md").read_text()
    section = page.split("## Cross-service statements and their sources", 1)[1]
    table = section.split("\n\n")[2]
    rows: dict[Signature, str] = {}
    for line in table.splitlines()[2:]:
        cells = [
            cell.strip().replace("&lt;", "<").replace("&gt;", ">")
            for cell in line[1:-1].split(" | ")
        ]
        rows[Signature(*cells[:5])] = cells[5]
    return rows


def test_every_cross_service_statement_is_listed_with_its_source(
    audits: Callable[[str], Audit],
) -> None:
    """Each resource-policy, key-policy and trust statement, and each condition key, that the
    construct writes follows a form an AWS page documents: docs/compliance.md lists it with
    that page, and lists nothing the templates do not hold."""
    app = App()
    stack = Stack(app, "Reader")
    export = ReadSetExport(
        stack,
        "Export",
        sequence_store_id="1234567890",
        read_set_ids=["1111111111"],
        destination_prefix="exports/",
    )
    export.grant_read(iam.Role(stack, "Analysis", assumed_by=iam.AccountRootPrincipal()))
    templates = [app.synth().get_stack_by_name("Reader").template]
    templates += [t for name in AUDITS for t in audits(name).templates.values()]
    written = {sig for template in templates for sig in signatures(template)}
    # The fixture's analysis role trusts the account: the user's, not the construct's.
    written.discard(Signature("trust policy", "Allow", "AWS principal", "sts:AssumeRole", "-"))
    written -= FIXTURE_STATEMENTS
    documented = documented_statements()
    assert sorted(s.row() for s in written - set(documented)) == [], "not in docs/compliance.md"
    assert sorted(s.row() for s in set(documented) - written) == [], "in no template"
    for signature, source in documented.items():
        assert "https://docs.aws.amazon.com/" in source or source.startswith("the same page"), (
            signature
        )


def test_in_a_vpc_lambda_findings_go_away_rather_than_being_acknowledged(
    audits: Callable[[str], Audit],
) -> None:
    suppressed = findings(audits("every-option/no-flags").report, "suppressedViolations")
    assert not {rule for rule, _ in suppressed if "LambdaInsideVPC" in rule}


def test_reserved_concurrency_is_acknowledged_only_when_nothing_is_reserved(
    audits: Callable[[str], Audit],
) -> None:
    def concurrency(name: str) -> set[str]:
        suppressed = findings(audits(name).report, "suppressedViolations")
        return {path.rsplit("/", 2)[-2] for rule, path in suppressed if "LambdaConcurrency" in rule}

    # With reserved_concurrency the finding goes away; without, both functions acknowledge it.
    assert concurrency("every-option/no-flags") == set()
    assert concurrency(next(name for name in AUDITS if name.startswith("own-bucket/"))) == {
        "OnEventHandler",
        "RunnerHandler",
    }


def test_handler_policy_chunks_opened_after_the_service_was_built_are_acknowledged(
    audits: Callable[[str], Audit],
) -> None:
    result = audits("twenty-exports/example-flags")
    chunks = {
        path
        for path in result.paths
        if re.fullmatch(rf"TwentyExports/{SERVICE_ID}/HandlerPolicy\d*/Resource", path)
    }
    assert len(chunks) >= 3, chunks
    acknowledged = {
        path
        for rule, path in findings(result.report, "suppressedViolations")
        if rule.startswith("AwsSolutions-IAM5[")
    }
    assert chunks <= acknowledged


def cross_stack_references(data: dict[str, Any], exports: dict[str, Any]) -> dict[str, str]:
    """How stack Exports names the store's id, the lake's ARN and the key's ARN of stack
    Data, each as cdk-nag writes it in a finding id: the bare export name of an
    Fn::ImportValue, the compact JSON (keys in template order) of an Fn::GetStackOutput."""
    outputs = data["Outputs"]
    by_export = {o["Export"]["Name"]: o["Value"] for o in outputs.values() if "Export" in o}
    found: dict[str, str] = {}

    def visit(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                visit(item)
        elif isinstance(node, dict) and "Fn::ImportValue" in node:
            name = node["Fn::ImportValue"]
            found[referred(by_export[name])] = name
        elif isinstance(node, dict) and "Fn::GetStackOutput" in node:
            value = outputs[node["Fn::GetStackOutput"]["OutputName"]]["Value"]
            found[referred(value)] = json.dumps(node, separators=(",", ":"))
        elif isinstance(node, dict):
            for item in node.values():
                visit(item)

    def referred(value: dict[str, Any]) -> str:
        if "Ref" in value:
            return "lake name"  # the destination URI in the custom resource's properties
        logical, attribute = value["Fn::GetAtt"]
        return {"SequenceStoreId": "store", "Arn": "key" if "Key" in logical else "lake"}[attribute]

    visit(exports["Resources"])
    return found


@pytest.mark.parametrize("style", list(REFERENCE_STYLES))
def test_references_across_stacks_are_acknowledged_as_cdk_nag_names_them(
    audits: Callable[[str], Audit], style: str
) -> None:
    """The wildcard findings whose resources name stack Data's store and lake are
    acknowledged with the ids cdk-nag computes from the final template."""
    result = audits(f"two-stacks/{style}")
    exports = json.dumps(result.templates["Exports"])
    functions = {"default": "Fn::ImportValue", "weak": "Fn::GetStackOutput"}
    rendered = {name for name in functions.values() if f'"{name}"' in exports}
    assert rendered == {functions[style]}, (
        f"{style}: references across stacks render as {rendered}; if aws-cdk-lib changed its "
        f"default, add a style that sets {CROSS_STACK_REFERENCES} to the old one"
    )
    names = cross_stack_references(result.templates["Data"], result.templates["Exports"])
    assert set(names) == {"store", "lake", "key", "lake name"}, names
    store_arn = "arn:<AWS::Partition>:omics:<AWS::Region>:<AWS::AccountId>:sequenceStore/"
    handler_policy = f"Exports/{SERVICE_ID}/HandlerPolicy/Resource"
    export_policy = "Exports/IntoLake/ExportPolicy/Resource"
    expected = {
        (f"AwsSolutions-IAM5[Resource::{store_arn}{names['store']}/readSet/*]", handler_policy),
        (f"AwsSolutions-IAM5[Resource::{names['lake']}/omics/cdk-omics-export/*]", handler_policy),
        (f"AwsSolutions-IAM5[Resource::{names['lake']}/omics/*]", export_policy),
    }
    assert expected <= set(findings(result.report, "suppressedViolations"))


NAG_TEXT_SAMPLES: list[Any] = [
    "arn:aws:s3:::bucket/prefix/*",
    "arn:${AWS::Partition}:omics:${AWS::Region}:*",
    "odd}brace",
    "données/*",
    {"Ref": "AWS::Region"},
    {"Fn::GetAtt": ["Bucket83908E77", "Arn"]},
    {"Fn::Join": ["", [{"Fn::GetAtt": ["Bucket83908E77", "Arn"]}, "/omics/*"]]},
    {"Fn::Join": [":", ["arn", {"Ref": "AWS::Partition"}, {"Fn::ImportValue": "Data:Key"}]]},
    {"Fn::ImportValue": "Data:ExportsOutputFnGetAttLakeArn"},
    {"Fn::ImportValue": {"Fn::Sub": "${AWS::StackName}-lake"}},
    {"Fn::Sub": "arn:${AWS::Partition}:s3:::${Lake}/*"},
    {"Fn::Sub": ["${Lake}/*", {"Lake": {"Ref": "Lake"}}]},
    {
        "Fn::GetStackOutput": {
            "StackName": "Data",
            "Region": {"Ref": "AWS::Region"},
            "OutputName": "PublishOutputFnGetAttLakeArn",
        }
    },
    {"Fn::Select": [0, {"Fn::Split": ["/", "a/b"]}]},
    ["a", {"Ref": "B"}],
    7,
    True,
]


def test_finding_ids_name_intrinsics_as_cdk_nag_does(tmp_path: Path) -> None:
    """compliance._as_nag_text against cdk-nag's own flattenCfnReference, run in Node.js from
    the installed cdk_nag package."""
    (bundle,) = (Path(cdk_nag.__file__).parent / "_jsii").glob("cdk-nag@*.jsii.tgz")
    member = "package/lib/utils/flatten-cfn-reference.js"
    with tarfile.open(bundle) as archive:
        archive.extract(member, tmp_path, filter="data")
    node = shutil.which("node")
    assert node is not None
    script = (
        f"const {{ flattenCfnReference }} = require({json.dumps(str(tmp_path / member))});"
        "const samples = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
        "process.stdout.write(JSON.stringify(samples.map(flattenCfnReference)));"
    )
    ran = subprocess.run(
        [node, "-e", script],
        input=json.dumps(NAG_TEXT_SAMPLES),
        capture_output=True,
        text=True,
        check=True,
    )
    assert [compliance._as_nag_text(s) for s in NAG_TEXT_SAMPLES] == json.loads(ran.stdout)
