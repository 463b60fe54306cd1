"""Synth-time checks of the constructs' props: gather every problem, raise once."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, TypeGuard

from aws_cdk import Duration, Reference, RemovalPolicy, Stack, Token, Tokenization
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct, IConstruct

from .handler import rules
from .props import ExportProps
from .read_set_filter import ReadSetFilter

# The handler is written for Python 3.11 (its syntax and standard library).
MIN_HANDLER_PYTHON = (3, 11)
_PYTHON_RUNTIME = re.compile(r"python([0-9]+)\.([0-9]+)")
_ID_DIGITS = f"{rules.ID_MIN_LENGTH}-{rules.ID_MAX_LENGTH} digits"


class Problems:
    """Problems with a construct's props, raised together: as a TypeError when any of them is
    a value of the wrong type, else as a ValueError."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.wrong_type = False

    def add(self, messages: Sequence[str]) -> None:
        self.messages += messages

    def add_type(self, message: str) -> None:
        self.messages.append(message)
        self.wrong_type = True

    def expected(self, prop: str, expected: str, value: object) -> None:
        self.add_type(f"{prop}: expected {expected}, got {type(value).__name__}")

    def raise_if_any(self, construct: IConstruct) -> None:
        if not self.messages:
            return
        error = TypeError if self.wrong_type else ValueError
        raise error(
            f"{type(construct).__name__} {construct.node.path}: invalid props:\n- "
            + "\n- ".join(self.messages)
        )


def validate_export(scope: Construct, props: ExportProps, *, service_class: type) -> None:
    """Gather every problem with the props and raise once, naming each prop and rule.

    ``service_class`` is the class a given ``service`` must be: the service's module imports
    this one, so this one cannot import it."""
    problems = Problems()
    _check_store(problems, props.sequence_store_id)
    _check_selection(
        problems, props.read_set_ids, props.read_set_filter, props.allow_empty_selection
    )
    _check_destination(
        problems,
        prefix=props.destination_prefix,
        bucket=props.destination_bucket,
        key=props.encryption_key,
        removal_policy=props.removal_policy,
        auto_delete_objects=props.auto_delete_objects,
    )
    if check_duration(problems, "timeout", props.timeout, "Duration.minutes(50)"):
        problems.add(rules.check_timeout(int(props.timeout.to_seconds())))
    _check_runs(problems, props.export_generation, props.selection_refresh)
    _check_parts(problems, props.service, service_class, props.notification_topic)
    _check_noncurrent_versions(
        problems,
        props.noncurrent_version_expiration,
        given=props.noncurrent_version_expiration_given,
        own_bucket=props.destination_bucket is None,
    )
    for name, flag in (
        ("allow_empty_selection", props.allow_empty_selection),
        ("auto_delete_objects", props.auto_delete_objects),
        ("wait_for_completion", props.wait_for_completion),
        ("allow_partial_failure", props.allow_partial_failure),
    ):
        if not isinstance(flag, bool):
            problems.expected(name, "True or False", flag)
    if not isinstance(props.archived_read_sets, rules.ArchivedReadSets):
        problems.expected(
            "archived_read_sets",
            "an ArchivedReadSets (ArchivedReadSets.ACTIVATE or ArchivedReadSets.FAIL)",
            props.archived_read_sets,
        )
    check_shared_options(problems, props.shared_options())
    _check_regions(problems, Stack.of(scope), props)
    problems.raise_if_any(scope)


def _check_regions(problems: Problems, stack: Stack, props: ExportProps) -> None:
    """The store, bucket and key must be in the stack's Region, where the handler starts the
    jobs: HealthOmics exports only into a bucket of the store's Region, and S3 encrypts only
    with a key of the bucket's. Checked only when both Regions are known at synth (an
    environment-agnostic stack's Region is a token)."""
    region = stack.region
    if Token.is_unresolved(region):
        return
    store_region = _producer_region(props.sequence_store_id)
    if store_region is not None and store_region != region:
        problems.add(
            [
                f"sequence_store_id: the sequence store is in {store_region}, the stack in "
                f"{region}; the export runs in its stack's Region, where HealthOmics has no such "
                f"store: {_move_to(store_region)}"
            ]
        )
    for prop, part in (
        ("destination_bucket", props.destination_bucket),
        ("encryption_key", props.encryption_key),
    ):
        part_region = _known_region(part)
        if part_region is not None and part_region != region:
            what = "bucket" if prop == "destination_bucket" else "key"
            problems.add(
                [
                    f"{prop}: the {what} is in {part_region}, the stack in {region}; HealthOmics "
                    f"exports into a bucket of the sequence store's Region, encrypted with a key "
                    f"of that Region: give a {what} in {region}, or {_move_to(part_region)}"
                ]
            )


def _move_to(region: str) -> str:
    return f"put the export in a stack of {region} (env=Environment(region='{region}'))"


def _known_region(resource: object) -> str | None:
    """The Region of an imported or constructed resource (``env.region``: the Region given to
    ``from_bucket_attributes``, of a key's ARN, or of the resource's stack), when known."""
    env = getattr(resource, "env", None)
    region = getattr(env, "region", None)
    return region if isinstance(region, str) and not Token.is_unresolved(region) else None


def _producer_region(value: object) -> str | None:
    """The Region of the stack whose resource a token refers to (a ``CfnSequenceStore``'s
    ``attr_sequence_store_id`` of another stack, say), when that Region is known."""
    if not isinstance(value, str) or not Token.is_unresolved(value):
        return None
    fragments = Tokenization.reverse_string(value)
    token = fragments.first_token if fragments.length == 1 else None
    if not isinstance(token, Reference):
        return None
    region = Stack.of(token.target).region
    return None if Token.is_unresolved(region) else region


def _check_store(problems: Problems, sequence_store_id: object) -> None:
    if not isinstance(sequence_store_id, str):
        problems.expected("sequence_store_id", f"a string of {_ID_DIGITS}", sequence_store_id)
    elif not Token.is_unresolved(sequence_store_id):
        problems.add(rules.check_sequence_store_id(sequence_store_id))


def _check_runs(problems: Problems, export_generation: object, selection_refresh: object) -> None:
    """The props that start a new export or a new run of it."""
    if _is_int(export_generation):
        problems.add(rules.check_export_generation(export_generation))
    else:
        problems.expected("export_generation", "an int (0, 1, 2, ...)", export_generation)
    if selection_refresh is None:
        return
    if not isinstance(selection_refresh, str):
        problems.expected("selection_refresh", "a string (e.g. '2026-11-29')", selection_refresh)
    elif rules.has_control_characters(selection_refresh):
        problems.add(["selection_refresh: holds control characters (tab, newline, ...)"])
    elif len(selection_refresh) > rules.SELECTION_REFRESH_MAX_LENGTH:
        problems.add(
            [
                f"selection_refresh: {len(selection_refresh)} characters; at most "
                f"{rules.SELECTION_REFRESH_MAX_LENGTH} (a date or a version label)"
            ]
        )


def check_duration(problems: Problems, prop: str, value: object, example: str) -> bool:
    """Whether ``value`` is a literal Duration of whole seconds (its value can be checked);
    otherwise the problem is added, or it is a token that is checked at deploy time."""
    if not isinstance(value, Duration):
        problems.expected(prop, f"an aws_cdk.Duration (e.g. {example})", value)
        return False
    if value.is_unresolved():
        return False
    # Duration.millis(1500).to_seconds() raises a bare jsii error: refused here instead.
    milliseconds = value.to_milliseconds(integral=False)
    if milliseconds != int(milliseconds) or int(milliseconds) % 1000:
        problems.add(
            [f"{prop}: {value.to_human_string()} is not a whole number of seconds (e.g. {example})"]
        )
        return False
    return True


def check_service_props(
    problems: Problems,
    *,
    removal_policy: object,
    auto_delete_objects: object,
    runner_log_level: object,
    runner_log_execution_data: object,
) -> None:
    """The props that only ``ReadSetExportService`` takes."""
    if removal_policy is not None and not isinstance(removal_policy, RemovalPolicy):
        problems.expected(
            "removal_policy", "an aws_cdk.RemovalPolicy (e.g. RemovalPolicy.RETAIN)", removal_policy
        )
    if not isinstance(auto_delete_objects, bool):
        problems.expected("auto_delete_objects", "True or False", auto_delete_objects)
    if runner_log_level is not None and not isinstance(runner_log_level, sfn.LogLevel):
        problems.expected(
            "runner_log_level",
            "an aws_stepfunctions.LogLevel (e.g. LogLevel.ERROR)",
            runner_log_level,
        )
    if not isinstance(runner_log_execution_data, bool):
        problems.expected("runner_log_execution_data", "True or False", runner_log_execution_data)


def check_rule_ids(problems: Problems, prop: str, value: object, known: Sequence[str]) -> None:
    """A list of cdk-nag rule ids among ``known`` (the ones the construct acknowledges)."""
    if value is None:
        return
    if isinstance(value, str) or not isinstance(value, Sequence):
        problems.expected(
            prop, "a list of rule ids (e.g. ['HIPAA.Security-S3BucketReplicationEnabled'])", value
        )
        return
    for rule in value:
        if rule not in known:
            problems.add(
                [
                    f"{prop}: {_show(repr(rule))} is not a rule the construct acknowledges; "
                    f"give rule ids among {', '.join(known)} (docs/compliance.md)"
                ]
            )


def _check_parts(
    problems: Problems, service: object, service_class: type, notification_topic: object
) -> None:
    if service is not None and not isinstance(service, service_class):
        problems.expected(
            "service", "a ReadSetExportService of the export's stack (or None)", service
        )
    if notification_topic is not None and not hasattr(notification_topic, "topic_arn"):
        problems.expected(
            "notification_topic",
            "an sns.ITopic (e.g. sns.Topic(self, 'Exports') or sns.Topic.from_topic_arn(...))",
            notification_topic,
        )


def _check_noncurrent_versions(
    problems: Problems, expiration: object, *, given: bool, own_bucket: bool
) -> None:
    prop = "noncurrent_version_expiration"
    if expiration is None or not check_duration(problems, prop, expiration, "Duration.days(90)"):
        return
    assert isinstance(expiration, Duration)
    days = expiration.to_days(integral=False)
    if days < 1 or days != int(days):
        problems.add(
            [
                f"{prop}: {expiration.to_human_string()} is not a whole number of days, 1 or "
                "more (None keeps replaced versions forever)"
            ]
        )
    elif given and not own_bucket:
        problems.add(
            [
                f"{prop}: applies only to the bucket this construct creates; the lifecycle of "
                "destination_bucket is its owner's"
            ]
        )


# Lambda refuses more than the account quota leaves; 1,000 is the default quota.
MAX_RESERVED_CONCURRENCY = 1000


def check_shared_options(problems: Problems, options: Mapping[str, Any]) -> None:
    """The types of the options the service shares, and the runtime's version; the service
    checks the other values once they are settled."""
    rate = options.get("max_requests_per_second")
    if rate is not None and not _is_int(rate):
        problems.expected("max_requests_per_second", "an int (e.g. 5)", rate)
    interval = options.get("poll_interval")
    if interval is not None:
        check_duration(problems, "poll_interval", interval, "Duration.seconds(30)")
    vpc = options.get("vpc")
    if vpc is not None and not hasattr(vpc, "vpc_id"):
        problems.expected("vpc", "an ec2.IVpc (e.g. ec2.Vpc.from_lookup(...))", vpc)
    subnets = options.get("vpc_subnets")
    if subnets is not None and not isinstance(subnets, ec2.SubnetSelection):
        problems.expected(
            "vpc_subnets",
            "an ec2.SubnetSelection (e.g. ec2.SubnetSelection(subnet_type=...))",
            subnets,
        )
    groups = options.get("security_groups")
    if groups is not None and (
        isinstance(groups, str)
        or not isinstance(groups, Sequence)
        or not all(hasattr(g, "security_group_id") for g in groups)
    ):
        problems.expected("security_groups", "a list of ec2.ISecurityGroup", groups)
    reserved = options.get("reserved_concurrency")
    if reserved is not None and not _is_int(reserved):
        problems.expected("reserved_concurrency", "None or an int (e.g. 2)", reserved)
    elif reserved is not None and not 1 <= reserved <= MAX_RESERVED_CONCURRENCY:
        problems.add(
            [
                f"reserved_concurrency: {reserved} is not from 1 to {MAX_RESERVED_CONCURRENCY}: "
                "the executions reserved for each of the service's two functions (None, the "
                "default, reserves none)"
            ]
        )
    retention = options.get("log_retention")
    if retention is not None and not isinstance(retention, logs.RetentionDays):
        problems.expected(
            "log_retention", "an aws_logs.RetentionDays (e.g. RetentionDays.ONE_YEAR)", retention
        )
    runtime = options.get("runtime")
    if runtime is None:
        return
    if not isinstance(runtime, lambda_.Runtime):
        problems.expected("runtime", "an aws_lambda.Runtime (e.g. Runtime.PYTHON_3_12)", runtime)
        return
    oldest = "python{}.{}".format(*MIN_HANDLER_PYTHON)
    version = _PYTHON_RUNTIME.fullmatch(runtime.name)
    if runtime.family != lambda_.RuntimeFamily.PYTHON or version is None:
        problems.add(
            [
                f"runtime: {runtime.name} is not a Python runtime; the handler needs {oldest} "
                "or newer"
            ]
        )
    elif (int(version[1]), int(version[2])) < MIN_HANDLER_PYTHON:
        problems.add([f"runtime: {runtime.name} is older than {oldest}, which the handler needs"])


def _check_selection(
    problems: Problems,
    read_set_ids: Sequence[str] | None,
    read_set_filter: ReadSetFilter | None,
    allow_empty_selection: bool,
) -> None:
    if (read_set_ids is None) == (read_set_filter is None):
        problems.add(
            [
                "read_set_ids, read_set_filter: give exactly one (a list of ids, or a filter "
                "resolved at deploy time)"
            ]
        )
    if read_set_ids is not None:
        _check_read_set_ids(problems, read_set_ids)
    if read_set_filter is None:
        if allow_empty_selection is True:
            problems.add(["allow_empty_selection: applies only to read_set_filter"])
    elif not isinstance(read_set_filter, ReadSetFilter):
        problems.expected(
            "read_set_filter",
            "a ReadSetFilter (e.g. ReadSetFilter(sample_id='S1'))",
            read_set_filter,
        )
    else:
        problems.add(read_set_filter.problems())
        problems.add(rules.check_read_set_filter(read_set_filter.literal_fields()))


def _check_read_set_ids(problems: Problems, read_set_ids: Sequence[str]) -> None:
    # A string is a Sequence[str] too: each character would be reported as an id.
    if isinstance(read_set_ids, str):
        problems.add_type("read_set_ids: give a list of ids, not a string")
        return
    if not isinstance(read_set_ids, Sequence):
        problems.expected("read_set_ids", "a list of read set ids", read_set_ids)
        return
    values = list(read_set_ids)
    not_strings = [(n, v) for n, v in enumerate(values) if not isinstance(v, str)]
    if not_strings:
        shown = rules.first_of(
            [f"{type(v).__name__} {_show(repr(v))} at [{n}]" for n, v in not_strings], 5
        )
        problems.add_type(f"read_set_ids: expected strings of {_ID_DIGITS}, got {shown}")
    elif not is_list_token(values):
        problems.add(rules.check_read_set_ids(_literal_ids(values)))


def _check_destination(
    problems: Problems,
    *,
    prefix: str,
    bucket: s3.IBucket | None,
    key: kms.IKey | None,
    removal_policy: RemovalPolicy | None,
    auto_delete_objects: bool,
) -> None:
    # jsii interfaces are Protocols that isinstance cannot check (and imported resources are
    # dynamic proxies): ask for what the construct uses of them.
    if bucket is not None and not hasattr(bucket, "bucket_arn"):
        problems.expected(
            "destination_bucket",
            "an s3.IBucket (e.g. s3.Bucket.from_bucket_name(self, 'Lake', 'my-lake'))",
            bucket,
        )
        bucket = None
    _check_key(problems, key, bucket)
    _check_prefix(problems, prefix, bucket)
    if removal_policy is not None and not isinstance(removal_policy, RemovalPolicy):
        problems.expected(
            "removal_policy",
            "an aws_cdk.RemovalPolicy (e.g. RemovalPolicy.DESTROY)",
            removal_policy,
        )
    if bucket is not None:
        if removal_policy is not None:
            problems.add(
                [
                    "removal_policy: applies only to the bucket this construct creates; the "
                    "lifecycle of destination_bucket is its owner's"
                ]
            )
        if auto_delete_objects is True:
            problems.add(
                [
                    "auto_delete_objects: applies only to the bucket this construct creates; it "
                    "never empties destination_bucket"
                ]
            )
    elif auto_delete_objects is True and removal_policy != RemovalPolicy.DESTROY:
        problems.add(
            [
                "auto_delete_objects: needs removal_policy=RemovalPolicy.DESTROY (exported data "
                "is kept unless you ask for both)"
            ]
        )


def _check_prefix(problems: Problems, prefix: object, bucket: s3.IBucket | None) -> None:
    if not isinstance(prefix, str):
        problems.expected("destination_prefix", "a string (e.g. 'exports/')", prefix)
    elif Token.is_unresolved(prefix):
        problems.add(["destination_prefix: must be a literal string, not a token"])
    elif prefix.lower().startswith("s3://"):
        problems.add(
            [
                f"destination_prefix: {_show(repr(prefix))} is a URI; give the key prefix only "
                "(e.g. 'exports/') and the bucket as destination_bucket"
            ]
        )
    else:
        name = bucket.bucket_name if bucket is not None else None
        known_name = name if name is not None and not Token.is_unresolved(name) else None
        problems.add(rules.check_destination_prefix(prefix, known_name))


# "You cannot use a key id, alias name, or alias ARN to identify a KMS key in an IAM policy
# statement" (KMS Developer Guide, "Using aliases in IAM policies"): the export's grants and
# its bucket's key condition name the key by its key ARN.
ALIAS_PROBLEM = (
    "{prop}: a KMS alias cannot name a key in the IAM policies that let HealthOmics and the "
    "service write under it; pass the key itself "
    "(kms.Key.from_key_arn(self, 'Key', 'arn:aws:kms:<region>:<account>:key/<key id>'))"
)


def is_alias(key: object) -> bool:
    """Whether ``key`` is a KMS alias (a ``kms.IAlias`` satisfies ``kms.IKey``), or a key
    imported from an alias ARN."""
    if key is None:
        return False
    if hasattr(key, "alias_name"):
        return True
    arn = getattr(key, "key_arn", None)
    return isinstance(arn, str) and not Token.is_unresolved(arn) and ":alias/" in arn


def _check_key(problems: Problems, key: kms.IKey | None, bucket: s3.IBucket | None) -> None:
    if key is not None and not hasattr(key, "key_arn"):
        problems.expected(
            "encryption_key", "a kms.IKey (e.g. kms.Key.from_key_arn(self, 'Key', arn))", key
        )
    elif key is not None and is_alias(key):
        problems.add([ALIAS_PROBLEM.format(prop="encryption_key")])
    elif key is None and bucket is not None and is_alias(getattr(bucket, "encryption_key", None)):
        problems.add([ALIAS_PROBLEM.format(prop="destination_bucket's encryption key")])


def _is_int(value: object) -> TypeGuard[int]:
    # bool is an int subclass, but True is no count.
    return isinstance(value, int) and not isinstance(value, bool)


def _show(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def is_list_token(values: list[str]) -> bool:
    # A list token (e.g. Fn.split) is a one-element list; asking jsii about a 10,000-id list
    # would cost more than the rest of the synthesis.
    return len(values) == 1 and Token.is_unresolved(values)


def _literal_ids(values: list[str]) -> list[str | None]:
    """The ids with tokens replaced by None: one jsii call unless some id is a token."""
    if not Token.is_unresolved("\n".join(values)):
        return list(values)
    return [None if Token.is_unresolved(v) else v for v in values]
