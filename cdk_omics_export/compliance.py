"""Acknowledged compliance findings, shipped with the construct.

cdk-nag 3.x reads acknowledgments from construct metadata (``Validations.acknowledge``), so
teams that run the AwsSolutions, HIPAA Security or NIST 800-53 rev 5 packs on their own apps
get the same result as this project's tests. Each acknowledgment names one finding on one
construct. The same findings are also written, with the same reasons, as the ``cdk_nag``
resource metadata that cdk-nag 2.x's ``NagSuppressions.add_resource_suppressions`` writes
(without depending on cdk-nag), for teams whose packs still run as Aspects.

Only findings this construct cannot fix by itself are acknowledged, each with its reason; every
other finding is fixed in the construct.
"""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any, NamedTuple

import jsii
from aws_cdk import (
    Acknowledgment,
    AspectPriority,
    Aspects,
    CfnElement,
    CfnResource,
    IAspect,
    Stack,
    Validations,
)
from constructs import Construct, IConstruct, IValidation

COMPLIANCE_PACKS = ("AwsSolutions", "HIPAA.Security", "NIST.800.53.R5")


class Reason(NamedTuple):
    rules: tuple[str, ...]
    reason: str

    def without(self, open_rules: frozenset[str]) -> Reason:
        """The reason for the rules a team has not taken on themselves (``unacknowledged_rules``
        names rule ids; a finding id ``<rule>[...]`` belongs to its rule)."""
        return Reason(
            tuple(rule for rule in self.rules if rule.split("[")[0] not in open_rules),
            self.reason,
        )


OUTSIDE_VPC = ("HIPAA.Security-LambdaInsideVPC", "NIST.800.53.R5-LambdaInsideVPC")
HANDLER_OUTSIDE_VPC = Reason(
    OUTSIDE_VPC,
    "Without the vpc prop the handler runs outside a VPC: it reaches only the HealthOmics "
    "control plane, S3, DynamoDB, Step Functions, EventBridge, CloudWatch Logs and SQS over "
    "TLS with IAM authentication, and inside a VPC it needs interface endpoints that only the "
    "account's network design can provide. Give vpc to place it in one.",
)
BUCKET_REPLICATION = Reason(
    ("HIPAA.Security-S3BucketReplicationEnabled", "NIST.800.53.R5-S3BucketReplicationEnabled"),
    "Replication needs a second bucket, ideally in another Region and account, which itself "
    "would need replication; exported read sets are copies of data kept in the HealthOmics "
    "sequence store and can be exported again. Versioning and retention protect them here.",
)
ACCESS_LOGS_SSE_S3 = Reason(
    ("HIPAA.Security-S3DefaultEncryptionKMS", "NIST.800.53.R5-S3DefaultEncryptionKMS"),
    "S3 server access logging delivers only to a target bucket whose default encryption is "
    "SSE-S3: with SSE-KMS the access logs never arrive (Amazon S3 User Guide, 'Enabling Amazon "
    "S3 server access logging'). The access logs are encrypted at rest with SSE-S3, and the "
    "bucket refuses requests without TLS; the exported data stays under SSE-KMS.",
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
RUNNER_LOG_DELIVERY = (
    "Step Functions delivers the runner's execution logs through CloudWatch Logs' log delivery "
    "actions, which support no resource-level permissions (the Step Functions developer "
    "guide's policy for logging grants them on '*'); the logs go to the runner's log group, "
    "encrypted with the service's key."
)
RUNNER_EXECUTIONS = (
    "The handler reads the status of the runner's executions, one per export run and segment, "
    "named when they start: the statement covers the executions of the stack's one runner "
    "state machine, nothing else."
)
RUNNER_TRACING = Reason(
    ("AwsSolutions-SF2",),
    "The runner's only Task is one Lambda call per step; its execution history (kept 90 days "
    "by Step Functions) and its error logs in its encrypted log group record every step, and "
    "X-Ray would bill a trace per step for no more insight. Enable tracing on `service.runner` "
    "if you need it.",
)
RUNNER_ERRORS_ONLY = Reason(
    ("AwsSolutions-SF1",),
    "The runner's input and each step's data name the export's read set filter, whose sample, "
    "subject and name values identify patients: the runner logs errors only, without "
    "execution data, so no identifier reaches its log group. Its execution history records "
    "every step. Give runner_log_level=LogLevel.ALL to the ReadSetExportService to log every "
    "event (and runner_log_execution_data=True for their data, identifiers included).",
)
NO_RESERVED_CONCURRENCY = Reason(
    ("HIPAA.Security-LambdaConcurrency", "NIST.800.53.R5-LambdaConcurrency"),
    "No concurrency is reserved unless reserved_concurrency asks for it: a reservation comes "
    "out of the account's shared pool, and Lambda refuses one that would leave less than the "
    "account's unreserved minimum, which fails a new account's first deploy (its quota can be "
    "10). The functions' HealthOmics requests are bounded by the service's shared request "
    "budget (max_requests_per_second), not by concurrency. Give reserved_concurrency to "
    "reserve that many executions for each function.",
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


WILDCARDS = "AwsSolutions-IAM5"
# Every rule whose findings the construct may acknowledge, in docs/compliance.md's order: the
# values ``unacknowledged_rules`` accepts (all of them leave every decision to the team).
ACKNOWLEDGED_RULES: tuple[str, ...] = tuple(
    dict.fromkeys(
        [
            *NO_RESERVED_CONCURRENCY.rules,
            *HANDLER_OUTSIDE_VPC.rules,
            *RUNNER_TRACING.rules,
            *RUNNER_ERRORS_ONLY.rules,
            WILDCARDS,
            *STATE_TABLE_BACKUP.rules,
            *BUCKET_REPLICATION.rules,
            *ACCESS_LOGS_SSE_S3.rules,
        ]
    )
)
NOTHING_OPEN: frozenset[str] = frozenset()


def acknowledge_service(
    service: Construct,
    *,
    in_vpc: bool,
    reserved: bool,
    runner_logs_all: bool,
    open_rules: frozenset[str] = NOTHING_OPEN,
) -> None:
    """Record the acknowledged findings of the shared service on the exact constructs, but
    those of ``open_rules``, which the team decides in its own report."""
    for child in ("OnEventHandler", "RunnerHandler"):
        function = _resource(service, child)
        if function is not None and not in_vpc:
            _acknowledge(function, HANDLER_OUTSIDE_VPC.without(open_rules))
        if function is not None and not reserved:
            _acknowledge(function, NO_RESERVED_CONCURRENCY.without(open_rules))
    runner = _resource(service, "Runner")
    if runner is not None:
        _acknowledge(runner, RUNNER_TRACING.without(open_rules))
        if not runner_logs_all:
            _acknowledge(runner, RUNNER_ERRORS_ONLY.without(open_rules))
    table = _resource(service, "State")
    if table is not None:
        _acknowledge(table, STATE_TABLE_BACKUP.without(open_rules))
    if WILDCARDS in open_rules:
        return
    runner_policy = _resource(service, "RunnerRolePolicy")
    if runner_policy is not None:
        _acknowledge(runner_policy, Reason((EVERYTHING,), RUNNER_LOG_DELIVERY))
    control = _resource(service, "RunnerControlPolicy")
    if control is not None:
        _acknowledge_wildcards(control, RUNNER_EXECUTIONS)
    # Exports declared after the service was built (after its functions were first used)
    # may still open new HandlerPolicy chunks: they are looked up when the app is validated.
    service.node.add_validation(
        _AtValidation(partial(_acknowledge_handler_policies, service, _acknowledge_for_nag3))
    )
    _suppress_handler_policies_for_nag2(service)


def _handler_policies(service: IConstruct) -> Iterator[CfnElement]:
    for construct in service.node.children:
        if construct.node.id.startswith("HandlerPolicy"):
            policy = construct.node.default_child
            assert isinstance(policy, CfnElement)
            yield policy


def _acknowledge_handler_policies(service: IConstruct, write: Writer) -> None:
    for policy in _handler_policies(service):
        _acknowledge_final_wildcards(policy, HANDLER_WILDCARDS, write, everything=VPC_NETWORKING)


def _suppress_handler_policies_for_nag2(service: IConstruct) -> None:
    """Each HandlerPolicy chunk's cdk-nag 2 suppressions, written just before the packs visit
    it. Called when the service is built, which may happen while the app's Aspects run (the
    service node itself has then been visited: only the chunks, not yet visited, can take an
    Aspect), and after each export, which may open a chunk."""
    for policy in _handler_policies(service):
        if not any(isinstance(aspect, _BeforeNagPacks) for aspect in Aspects.of(policy).all):
            _before_nag_packs(
                policy,
                partial(
                    _acknowledge_final_wildcards,
                    policy,
                    HANDLER_WILDCARDS,
                    _suppress_for_nag2,
                    everything=VPC_NETWORKING,
                ),
            )


def acknowledge_bucket(bucket: IConstruct, open_rules: frozenset[str] = NOTHING_OPEN) -> None:
    default = bucket.node.default_child
    assert isinstance(default, CfnElement)
    _acknowledge(default, BUCKET_REPLICATION.without(open_rules))


def acknowledge_access_logs(bucket: IConstruct, open_rules: frozenset[str] = NOTHING_OPEN) -> None:
    acknowledge_bucket(bucket, open_rules)
    default = bucket.node.default_child
    assert isinstance(default, CfnElement)
    _acknowledge(default, ACCESS_LOGS_SSE_S3.without(open_rules))


def acknowledge_export(export: Construct, open_rules: frozenset[str] = NOTHING_OPEN) -> None:
    """Record the acknowledged findings of one export's own resources, but those of
    ``open_rules`` (the service's ``unacknowledged_rules``)."""
    bucket = export.node.try_find_child("Bucket")
    if bucket is not None:  # only when the export created it
        acknowledge_bucket(bucket, open_rules)
    if WILDCARDS in open_rules:
        return
    export_policy = _resource(export, "ExportPolicy")
    assert export_policy is not None
    _acknowledge_wildcards(export_policy, EXPORTED_OBJECTS)
    # The export's statements are in the service's handler policy: maybe in a new chunk.
    service: IConstruct | None = getattr(export, "service", None)
    if service is not None:
        _suppress_handler_policies_for_nag2(service)


def _resource(parent: Construct, child: str) -> CfnElement | None:
    found = parent.node.try_find_child(child)
    default = found.node.default_child if found is not None else None
    return default if isinstance(default, CfnElement) else None


# Writes the acknowledgment of one Reason on one construct: for cdk-nag 3
# (_acknowledge_for_nag3) or for cdk-nag 2 (_suppress_for_nag2).
Writer = Callable[[IConstruct, Reason], None]


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
        if nag_in_use():
            self._acknowledge()
        return []


@jsii.implements(IAspect)
class _BeforeNagPacks:
    """Writes cdk-nag 2 suppressions when the app's Aspects run, just before its packs.

    cdk-nag 2.x packs are Aspects (added with the default priority, 500) that read each
    resource's ``cdk_nag`` metadata as they visit it, before references across stacks are
    resolved and before validation. This Aspect has the MUTATING priority (200), which
    aws-cdk-lib runs first on every construct, whatever scope either was added to; by then
    every export has added its statements, and a policy document resolves exactly as the pack
    resolves it a moment later (cross-stack references still resolve as in their own stack,
    ``<Lake.Arn>``, for the pack as for this Aspect).

    The metadata is written only where a cdk-nag 2 pack is among the Aspects of the resource
    or of a scope above it: elsewhere (cdk-nag 3, or no cdk-nag) templates stay as they were,
    without the tens of kilobytes of reasons cdk-nag 2 alone reads.
    """

    def __init__(self, target: IConstruct, suppress: Callable[[], None]) -> None:
        self._target = target.node.path
        self._suppress = suppress

    def visit(self, node: IConstruct) -> None:
        if nag_in_use() and node.node.path == self._target and _nag2_packs_apply(node):
            self._suppress()


def nag_in_use() -> bool:
    """Whether any cdk-nag pack can be at work: a pack of either version is an object of the
    ``cdk_nag`` module, which the app has imported by the time its packs run. Without one,
    the findings computed from final documents are not computed at all (a whole-app synthesis
    would pay for them)."""
    return "cdk_nag" in sys.modules


def _nag2_packs_apply(node: IConstruct) -> bool:
    """Whether a cdk-nag 2.x pack (a ``cdk_nag.NagPack`` Aspect, custom packs included) visits
    the node. cdk-nag 3's packs are validation plugins, not Aspects."""
    return any(
        _is_nag2_pack(aspect) for scope in node.node.scopes for aspect in Aspects.of(scope).all
    )


def _is_nag2_pack(aspect: IAspect) -> bool:
    return any(
        cls.__name__ == "NagPack" and cls.__module__.split(".")[0] == "cdk_nag"
        for cls in type(aspect).__mro__
    )


def _at_validation(construct: IConstruct, acknowledge: Callable[[Writer], None]) -> None:
    """Acknowledge findings computed from the construct tree as late as each cdk-nag reads
    them: for cdk-nag 3 at validation, for cdk-nag 2 just before its Aspects."""
    construct.node.add_validation(_AtValidation(partial(acknowledge, _acknowledge_for_nag3)))
    _before_nag_packs(construct, partial(acknowledge, _suppress_for_nag2))


def _before_nag_packs(construct: IConstruct, suppress: Callable[[], None]) -> None:
    Aspects.of(construct).add(
        _BeforeNagPacks(construct, suppress), priority=AspectPriority.MUTATING
    )


def _acknowledge_wildcards(
    policy: CfnElement, reason: str, *, everything: str | None = None
) -> None:
    """Acknowledge a policy's AwsSolutions-IAM5 findings from its final document."""
    _at_validation(
        policy,
        lambda write: _acknowledge_final_wildcards(policy, reason, write, everything=everything),
    )


def _acknowledge_final_wildcards(
    policy: CfnElement, reason: str, write: Writer, *, everything: str | None = None
) -> None:
    document = Stack.of(policy).resolve(policy.policy_document)  # type: ignore[attr-defined]
    wildcards = _wildcard_findings(document)
    if everything is not None and EVERYTHING in wildcards:
        write(policy, Reason((EVERYTHING,), everything))
        wildcards = tuple(w for w in wildcards if w != EVERYTHING)
    write(policy, Reason(wildcards, reason))


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
    """Acknowledge findings known when the construct is built, for cdk-nag 3 and 2."""
    _acknowledge_for_nag3(construct, reason)
    _before_nag_packs(construct, partial(_suppress_for_nag2, construct, reason))


def _acknowledge_for_nag3(construct: IConstruct, reason: Reason) -> None:
    if reason.rules:
        Validations.of(construct).acknowledge(
            *(
                Acknowledgment(id=f"{_pack(rule)}::{rule}", reason=reason.reason)
                for rule in reason.rules
            )
        )


NAG2_METADATA = "cdk_nag"


def _suppress_for_nag2(construct: IConstruct, reason: Reason) -> None:
    """Add the suppressions to the resource's ``cdk_nag`` metadata as cdk-nag 2.x's
    ``NagSuppressions.add_resource_suppressions`` does (``NagSuppressionHelper
    .addRulesToMetadata``): appended to those already there (the user's own survive), each
    in the CloudFormation format, duplicates dropped."""
    resource = construct if isinstance(construct, CfnResource) else construct.node.default_child
    suppressions = list(nag2_suppressions(reason))
    if not suppressions or not isinstance(resource, CfnResource):
        return
    metadata = resource.get_metadata(NAG2_METADATA)
    existing = metadata.get("rules_to_suppress") if isinstance(metadata, dict) else None
    rules = {
        json.dumps(rule, separators=(",", ":"), ensure_ascii=False): rule
        for rule in [*(existing or []), *suppressions]
    }
    resource.add_metadata(NAG2_METADATA, {"rules_to_suppress": list(rules.values())})


def nag2_suppressions(reason: Reason) -> Iterator[dict[str, Any]]:
    """A Reason as cdk-nag 2.x suppressions, in the format it writes into metadata.

    cdk-nag 2 names a rule ``<pack>-<rule>`` (``AwsSolutions-IAM5``,
    ``HIPAA.Security-LambdaDLQ``), the id of a cdk-nag 3 acknowledgment without its
    ``<pack>::`` namespace; a granular finding (``AwsSolutions-IAM5[Resource::...]``) is
    suppressed by the rule id with the finding in ``applies_to``, one suppression a rule.
    A reason with characters beyond Latin-1 is stored base64-encoded, as cdk-nag 2 does.
    """
    findings: dict[str, list[str] | None] = {}
    for rule in reason.rules:
        rule_id, bracket, finding = rule.partition("[")
        listed = findings.setdefault(rule_id, [])
        if not bracket:
            findings[rule_id] = None  # the whole rule
        elif listed is not None:
            listed.append(finding.removesuffix("]"))
    encoded = any(ord(c) > 255 for c in reason.reason)
    text = base64.b64encode(reason.reason.encode()).decode() if encoded else reason.reason
    for rule_id, applies_to in findings.items():
        suppression: dict[str, Any] = {"reason": text, "id": rule_id}
        if applies_to is not None:
            suppression["applies_to"] = applies_to
        if encoded:
            suppression["is_reason_encoded"] = True
        yield suppression


def _pack(rule: str) -> str:
    return rule.split("-", 1)[0] if not rule.startswith("NIST") else "NIST.800.53.R5"
