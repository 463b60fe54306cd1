"""Every malformed prop is refused at synth time with a message naming the prop and what it
accepts: a table of cases, each with the message it must give, covering every prop of
``ReadSetExport``, ``ReadSetExportService`` and ``ReadSetFilter``.

``python -m tests.test_malformed_props`` prints the table's tally (tried, refused clearly,
accepted, crashed)."""

from __future__ import annotations

import dataclasses
import inspect
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from aws_cdk import App, Duration, Environment, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_omics as omics
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from cdk_omics_export import ArchivedReadSets, ReadSetExport, ReadSetExportService, ReadSetFilter

STORE = "1234567890"
READ_SETS = ["1111111111", "2222222222"]
EXPORT, SERVICE, FILTER = "ReadSetExport", "ReadSetExportService", "ReadSetFilter"

Props = dict[str, Any] | Callable[[Stack], dict[str, Any]]


@dataclass(frozen=True)
class Case:
    """``props`` given to ``target`` (a filter's fields, for ``ReadSetFilter``, exported with
    ``sample_id='S1'`` unless the case gives it) must fail naming ``prop``, with ``message``
    among the error's lines. ``region``: the stack's, when the case needs one known at
    synth."""

    target: str
    prop: str
    props: Props
    message: str
    region: str | None = None

    def __str__(self) -> str:
        return f"{self.target}.{self.prop}: {self.message[:50]}"


def _vpc(stack: Stack) -> ec2.IVpc:
    return ec2.Vpc.from_vpc_attributes(
        stack, "Vpc", vpc_id="vpc-1", availability_zones=["a"], private_subnet_ids=["s-1"]
    )


def _other_stack_service(stack: Stack) -> dict[str, Any]:
    other = Stack(stack.node.root, "Other")
    return {"service": ReadSetExportService(other, "Service")}


def _second_service(stack: Stack) -> dict[str, Any]:
    ReadSetExportService(stack, "First")
    return {"service": ReadSetExportService(stack, "Second")}


def _service_after_an_export(stack: Stack) -> dict[str, Any]:
    """An export creates the stack's service; a service declared after it is a second one."""
    ReadSetExport(stack, "Earlier", sequence_store_id=STORE, read_set_ids=READ_SETS)
    return {"service": ReadSetExportService(stack, "Exports")}


def _store_elsewhere(stack: Stack) -> dict[str, Any]:
    """A sequence store of a stack in another Region, referred to across Regions."""
    data = Stack(stack.node.root, "Data", env=Environment(region="us-east-1"))
    store = omics.CfnSequenceStore(data, "Store", name="cohort")
    return {"sequence_store_id": store.attr_sequence_store_id}


def _bucket_elsewhere(stack: Stack) -> dict[str, Any]:
    lake = s3.Bucket.from_bucket_attributes(
        stack, "Lake", bucket_name="genomics-lake", region="us-east-1"
    )
    return {"destination_bucket": lake}


def _bucket_of_a_stack_elsewhere(stack: Stack) -> dict[str, Any]:
    data = Stack(stack.node.root, "Data", env=Environment(region="us-east-1"))
    return {"destination_bucket": s3.Bucket(data, "Lake")}


def _key_elsewhere(stack: Stack) -> dict[str, Any]:
    arn = "arn:aws:kms:us-east-1:123456789012:key/0f4b6d43-2a11-4c4e-9f6b-6f1f1d0c1a2b"
    return {"encryption_key": kms.Key.from_key_arn(stack, "Key", arn)}


def _own_bucket(stack: Stack) -> dict[str, Any]:
    return {"destination_bucket": s3.Bucket.from_bucket_name(stack, "Lake", "my-lake")}


def _export(prop: str, value: Any, message: str) -> Case:
    return Case(EXPORT, prop, {prop: value}, message)


def _service(prop: str, value: Any, message: str) -> Case:
    return Case(SERVICE, prop, {prop: value}, message)


def _filter(prop: str, value: Any, message: str) -> Case:
    return Case(FILTER, prop, {prop: value}, message)


DIGITS = "(10-36 digits)"
NOT_BOOL = "expected True or False, got {}"
CONTROL = "holds control characters (tab, newline, ...), which no read set's field holds"
NOT_TIME = "is not an ISO 8601 time with a zone (e.g. '2026-01-01T00:00:00Z')"
EXPORT_CASES = [
    _export("sequence_store_id", "", f"sequence_store_id: '' is not a sequence store id {DIGITS}"),
    _export(
        "sequence_store_id", "abc", f"sequence_store_id: 'abc' is not a sequence store id {DIGITS}"
    ),
    _export(
        "sequence_store_id",
        "123456789",
        f"sequence_store_id: '123456789' is not a sequence store id {DIGITS}",
    ),
    _export(
        "sequence_store_id",
        "12345\n67890",
        f"sequence_store_id: '12345\\n67890' is not a sequence store id {DIGITS}",
    ),
    _export(
        "sequence_store_id",
        None,
        "sequence_store_id: expected a string of 10-36 digits, got NoneType",
    ),
    _export(
        "sequence_store_id", 1234567890, "sequence_store_id: expected a string of 10-36 digits"
    ),
    _export("read_set_ids", [], "read_set_ids: no ids given, the export needs at least one"),
    _export(
        "read_set_ids",
        ["1111111111", "1111111111"],
        "read_set_ids: '1111111111' listed more than once",
    ),
    _export("read_set_ids", ["abc"], f"read_set_ids: 'abc' is not a read set id {DIGITS}"),
    _export("read_set_ids", "1111111111", "read_set_ids: give a list of ids, not a string"),
    _export("read_set_ids", 1111111111, "read_set_ids: expected a list of read set ids, got int"),
    _export(
        "read_set_ids",
        ["1111111111", None],
        "read_set_ids: expected strings of 10-36 digits, got NoneType None at [1]",
    ),
    _export(
        "read_set_ids",
        None,
        "read_set_ids, read_set_filter: give exactly one (a list of ids, or a filter",
    ),
    Case(
        EXPORT,
        "read_set_filter",
        {"read_set_filter": ReadSetFilter(sample_id="S1"), "read_set_ids": READ_SETS},
        "read_set_ids, read_set_filter: give exactly one",
    ),
    _export(
        "read_set_filter",
        "sampleId=S1",
        "read_set_filter: expected a ReadSetFilter (e.g. ReadSetFilter(sample_id='S1')), got str",
    ),
    _export(
        "read_set_filter",
        {"sample_id": "S1"},
        "read_set_filter: expected a ReadSetFilter (e.g. ReadSetFilter(sample_id='S1')), got dict",
    ),
    _export(
        "allow_empty_selection", True, "allow_empty_selection: applies only to read_set_filter"
    ),
    Case(
        EXPORT,
        "allow_empty_selection",
        {"read_set_filter": ReadSetFilter(sample_id="S1"), "allow_empty_selection": "yes"},
        "allow_empty_selection: " + NOT_BOOL.format("str"),
    ),
    _export("destination_prefix", "/abs", "destination_prefix: '/abs' must be empty or end with"),
    _export("destination_prefix", "exports", "destination_prefix: 'exports' must be empty or end"),
    _export(
        "destination_prefix",
        "a\nb/",
        "destination_prefix: 'a\\nb/' holds control characters (tab, newline, ...)",
    ),
    _export(
        "destination_prefix",
        "x" * 1025 + "/",
        "destination_prefix: 1026 characters, the API accepts at most 1024 before the final '/'",
    ),
    _export("destination_prefix", 5, "destination_prefix: expected a string (e.g. 'exports/')"),
    _export("destination_prefix", None, "destination_prefix: expected a string"),
    _export(
        "destination_bucket",
        "my-bucket",
        "destination_bucket: expected an s3.IBucket (e.g. s3.Bucket.from_bucket_name(self, "
        "'Lake', 'my-lake')), got str",
    ),
    Case(
        EXPORT,
        "destination_bucket",
        _bucket_elsewhere,
        "destination_bucket: the bucket is in us-east-1, the stack in eu-west-2; HealthOmics "
        "exports into a bucket of the sequence store's Region, encrypted with a key of that "
        "Region: give a bucket in eu-west-2, or put the export in a stack of us-east-1 "
        "(env=Environment(region='us-east-1'))",
        region="eu-west-2",
    ),
    Case(
        EXPORT,
        "destination_bucket",
        _bucket_of_a_stack_elsewhere,
        "destination_bucket: the bucket is in us-east-1, the stack in eu-west-2",
        region="eu-west-2",
    ),
    Case(
        EXPORT,
        "encryption_key",
        _key_elsewhere,
        "encryption_key: the key is in us-east-1, the stack in eu-west-2; HealthOmics exports into "
        "a bucket of the sequence store's Region, encrypted with a key of that Region: give a "
        "key in eu-west-2, or put the export in a stack of us-east-1",
        region="eu-west-2",
    ),
    _export(
        "encryption_key",
        "arn:aws:kms:us-east-1:123456789012:key/1",
        "encryption_key: expected a kms.IKey (e.g. kms.Key.from_key_arn(self, 'Key', arn)), "
        "got str",
    ),
    # An alias satisfies kms.IKey, but cannot name a key in an IAM policy: "You cannot use a
    # key id, alias name, or alias ARN to identify a KMS key in an IAM policy statement".
    # "Specifying KMS keys in IAM policy statements" (AWS KMS Developer Guide):
    # https://docs.aws.amazon.com/kms/latest/developerguide/cmks-in-iam-policies.html
    Case(
        EXPORT,
        "encryption_key",
        lambda stack: {"encryption_key": kms.Alias.from_alias_name(stack, "A", "alias/genomics")},
        "encryption_key: a KMS alias cannot name a key in the IAM policies that let HealthOmics "
        "and the service write under it; pass the key itself",
    ),
    Case(
        EXPORT,
        "encryption_key",
        lambda stack: {
            "encryption_key": kms.Alias(
                stack, "A", alias_name="alias/genomics", target_key=kms.Key(stack, "K")
            )
        },
        "encryption_key: a KMS alias cannot name a key",
    ),
    Case(
        EXPORT,
        "encryption_key",
        lambda stack: {
            "encryption_key": kms.Key.from_key_arn(
                stack, "K", "arn:aws:kms:us-east-1:123456789012:alias/genomics"
            )
        },
        "encryption_key: a KMS alias cannot name a key",
    ),
    Case(
        EXPORT,
        "destination_bucket",
        lambda stack: {
            "destination_bucket": s3.Bucket.from_bucket_attributes(
                stack,
                "Lake",
                bucket_name="my-lake",
                encryption_key=kms.Alias.from_alias_name(stack, "A", "alias/lake"),
            )
        },
        "destination_bucket's encryption key: a KMS alias cannot name a key",
    ),
    _export(
        "removal_policy",
        "destroy",
        "removal_policy: expected an aws_cdk.RemovalPolicy (e.g. RemovalPolicy.DESTROY), got str",
    ),
    _export(
        "auto_delete_objects",
        True,
        "auto_delete_objects: needs removal_policy=RemovalPolicy.DESTROY (exported data is kept "
        "unless you ask for both)",
    ),
    _export("auto_delete_objects", "yes", "auto_delete_objects: " + NOT_BOOL.format("str")),
    _export(
        "export_generation",
        -1,
        "export_generation: -1 must be 0 or more (bump it to export everything again)",
    ),
    _export(
        "export_generation", 1.5, "export_generation: expected an int (0, 1, 2, ...), got float"
    ),
    _export("export_generation", "1", "export_generation: expected an int (0, 1, 2, ...), got str"),
    _export(
        "export_generation", True, "export_generation: expected an int (0, 1, 2, ...), got bool"
    ),
    _export(
        "selection_refresh",
        "2026-12-06\x00",
        "selection_refresh: holds control characters (tab, newline, ...)",
    ),
    _export(
        "selection_refresh",
        "x" * 257,
        "selection_refresh: 257 characters; at most 256 (a date or a version label)",
    ),
    _export(
        "selection_refresh", 20261206, "selection_refresh: expected a string (e.g. '2026-11-29')"
    ),
    _export("wait_for_completion", None, "wait_for_completion: " + NOT_BOOL.format("NoneType")),
    _export("wait_for_completion", "false", "wait_for_completion: " + NOT_BOOL.format("str")),
    _export("allow_partial_failure", "no", "allow_partial_failure: " + NOT_BOOL.format("str")),
    _export("allow_partial_failure", 1, "allow_partial_failure: " + NOT_BOOL.format("int")),
    _export(
        "archived_read_sets",
        "ACTIVATE",
        "archived_read_sets: expected an ArchivedReadSets (ArchivedReadSets.ACTIVATE or "
        "ArchivedReadSets.FAIL), got str",
    ),
    _export(
        "archived_read_sets",
        None,
        "archived_read_sets: expected an ArchivedReadSets (ArchivedReadSets.ACTIVATE or "
        "ArchivedReadSets.FAIL), got NoneType",
    ),
    _export(
        "timeout",
        Duration.millis(1500),
        "timeout: 1 second 500 millis is not a whole number of seconds (e.g. Duration.minutes(50))",
    ),
    _export(
        "timeout",
        Duration.millis(999),
        "timeout: 999 millis is not a whole number of seconds (e.g. Duration.minutes(50))",
    ),
    _export("timeout", Duration.seconds(0), "timeout: 0 s must be positive"),
    _export(
        "timeout",
        Duration.hours(2),
        "timeout: 7200 s exceeds 3300 s; CloudFormation waits at most 3600 s for a custom resource",
    ),
    _export(
        "timeout",
        3000,
        "timeout: expected an aws_cdk.Duration (e.g. Duration.minutes(50)), got int",
    ),
    _export(
        "service",
        "ReadSetExportService",
        "service: expected a ReadSetExportService of the export's stack (or None), got str",
    ),
    Case(
        EXPORT,
        "service",
        _second_service,
        "ReadSetExportService Invalid/Second: stack Invalid already has a ReadSetExportService "
        "(Invalid/First); a stack has one, shared by all its exports. Find it with "
        "ReadSetExportService.of(stack), or declare yours before the first export and pass it "
        "to each export as its service prop",
    ),
    Case(
        EXPORT,
        "service",
        _service_after_an_export,
        "ReadSetExportService Invalid/Exports: stack Invalid already has a ReadSetExportService "
        "(Invalid/ReadSetExportService)",
    ),
    Case(
        EXPORT,
        "service",
        _other_stack_service,
        "service: Other/Service belongs to stack Other; an export is served by the "
        "ReadSetExportService of its own stack",
    ),
    _export(
        "poll_interval",
        Duration.millis(10),
        "poll_interval: 10 millis is not a whole number of seconds (e.g. Duration.seconds(30))",
    ),
    _export(
        "poll_interval", Duration.seconds(1), "poll_interval: 1 s is below the minimum of 10 s"
    ),
    _export("poll_interval", Duration.hours(2), "poll_interval: 7200 s exceeds 3300 s"),
    _export(
        "poll_interval",
        30,
        "poll_interval: expected an aws_cdk.Duration (e.g. Duration.seconds(30)), got int",
    ),
    _export(
        "max_requests_per_second",
        0,
        "max_requests_per_second: 0 must be between 1 and 100 (HealthOmics' default quota is 5)",
    ),
    _export(
        "max_requests_per_second",
        1000,
        "max_requests_per_second: 1000 must be between 1 and 100",
    ),
    _export(
        "max_requests_per_second", "5", "max_requests_per_second: expected an int (e.g. 5), got str"
    ),
    _export(
        "max_requests_per_second",
        2.5,
        "max_requests_per_second: expected an int (e.g. 5), got float",
    ),
    _export(
        "notification_topic",
        "arn:aws:sns:us-east-1:123456789012:exports",
        "notification_topic: expected an sns.ITopic (e.g. sns.Topic(self, 'Exports') or "
        "sns.Topic.from_topic_arn(...)), got str",
    ),
    _export(
        "notification_topic",
        {"TopicArn": "arn:aws:sns:us-east-1:123456789012:exports"},
        "notification_topic: expected an sns.ITopic",
    ),
    _export("vpc", "vpc-1", "vpc: expected an ec2.IVpc (e.g. ec2.Vpc.from_lookup(...)), got str"),
    _export(
        "vpc_subnets",
        "private",
        "vpc_subnets: expected an ec2.SubnetSelection (e.g. ec2.SubnetSelection(subnet_type=...)), "
        "got str",
    ),
    _export(
        "vpc_subnets",
        ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
        "vpc_subnets, security_groups: need vpc",
    ),
    _export("security_groups", ["sg-1"], "security_groups: expected a list of ec2.ISecurityGroup"),
    _export("security_groups", "sg-1", "security_groups: expected a list of ec2.ISecurityGroup"),
    _export(
        "log_retention",
        30,
        "log_retention: expected an aws_logs.RetentionDays (e.g. RetentionDays.ONE_YEAR), got int",
    ),
    _export(
        "runtime",
        "python3.12",
        "runtime: expected an aws_lambda.Runtime (e.g. Runtime.PYTHON_3_12), got str",
    ),
    _export(
        "runtime",
        lambda_.Runtime.PYTHON_3_9,
        "runtime: python3.9 is older than python3.11, which the handler needs",
    ),
    _export(
        "runtime",
        lambda_.Runtime.NODEJS_20_X,
        "runtime: nodejs20.x is not a Python runtime; the handler needs python3.11 or newer",
    ),
    _export(
        "reserved_concurrency",
        -1,
        "reserved_concurrency: -1 is not from 1 to 1000: the executions reserved for each of "
        "the service's two functions",
    ),
    _export("reserved_concurrency", 0, "reserved_concurrency: 0 is not from 1 to 1000"),
    _export("reserved_concurrency", "1", "reserved_concurrency: expected None or an int (e.g. 2)"),
    _export(
        "noncurrent_version_expiration",
        Duration.hours(5),
        "noncurrent_version_expiration: 5 hours is not a whole number of days, 1 or more (None "
        "keeps replaced versions forever)",
    ),
    _export(
        "noncurrent_version_expiration",
        Duration.days(0),
        "noncurrent_version_expiration: 0 days is not a whole number of days, 1 or more",
    ),
    _export(
        "noncurrent_version_expiration",
        30,
        "noncurrent_version_expiration: expected an aws_cdk.Duration (e.g. Duration.days(90)), "
        "got int",
    ),
    Case(
        EXPORT,
        "noncurrent_version_expiration",
        lambda stack: _own_bucket(stack) | {"noncurrent_version_expiration": Duration.days(30)},
        "noncurrent_version_expiration: applies only to the bucket this construct creates; the "
        "lifecycle of destination_bucket is its owner's",
    ),
]
SERVICE_CASES = [
    _service("vpc", "vpc-1", "vpc: expected an ec2.IVpc (e.g. ec2.Vpc.from_lookup(...)), got str"),
    _service("vpc_subnets", "private", "vpc_subnets: expected an ec2.SubnetSelection"),
    Case(
        SERVICE,
        "vpc_subnets",
        {"vpc_subnets": ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)},
        "vpc_subnets, security_groups: need vpc",
    ),
    _service("security_groups", "sg-1", "security_groups: expected a list of ec2.ISecurityGroup"),
    Case(
        SERVICE,
        "security_groups",
        lambda stack: {"vpc": _vpc(stack), "security_groups": [None]},
        "security_groups: expected a list of ec2.ISecurityGroup",
    ),
    _service("log_retention", "forever", "log_retention: expected an aws_logs.RetentionDays"),
    _service(
        "max_requests_per_second", -3, "max_requests_per_second: -3 must be between 1 and 100"
    ),
    _service(
        "max_requests_per_second",
        True,
        "max_requests_per_second: expected an int (e.g. 5), got bool",
    ),
    _service(
        "poll_interval",
        Duration.millis(5),
        "poll_interval: 5 millis is not a whole number of seconds (e.g. Duration.seconds(30))",
    ),
    _service("poll_interval", "30s", "poll_interval: expected an aws_cdk.Duration"),
    _service("runtime", "python3.12", "runtime: expected an aws_lambda.Runtime"),
    _service(
        "runtime",
        lambda_.Runtime.PYTHON_3_10,
        "runtime: python3.10 is older than python3.11, which the handler needs",
    ),
    _service("reserved_concurrency", 0, "reserved_concurrency: 0 is not from 1 to 1000"),
    _service("reserved_concurrency", 1001, "reserved_concurrency: 1001 is not from 1 to 1000"),
    _service(
        "removal_policy",
        "RETAIN",
        "removal_policy: expected an aws_cdk.RemovalPolicy (e.g. RemovalPolicy.RETAIN), got str",
    ),
    _service(
        "auto_delete_objects",
        True,
        "auto_delete_objects: needs removal_policy=RemovalPolicy.DESTROY (logs are kept unless "
        "you ask for both)",
    ),
    _service("auto_delete_objects", 1, "auto_delete_objects: " + NOT_BOOL.format("int")),
    _service(
        "runner_log_level",
        "ALL",
        "runner_log_level: expected an aws_stepfunctions.LogLevel (e.g. LogLevel.ERROR), got str",
    ),
    _service(
        "runner_log_execution_data",
        "yes",
        "runner_log_execution_data: " + NOT_BOOL.format("str"),
    ),
    _service(
        "runner_log_execution_data",
        None,
        "runner_log_execution_data: " + NOT_BOOL.format("NoneType"),
    ),
]
SERVICE_CASES += [
    _service(
        "unacknowledged_rules",
        "HIPAA.Security-S3BucketReplicationEnabled",
        "unacknowledged_rules: expected a list of rule ids (e.g. "
        "['HIPAA.Security-S3BucketReplicationEnabled']), got str",
    ),
    _service(
        "unacknowledged_rules",
        ["S3BucketReplicationEnabled"],
        "unacknowledged_rules: 'S3BucketReplicationEnabled' is not a rule the construct "
        "acknowledges; give rule ids among HIPAA.Security-LambdaConcurrency, "
        "NIST.800.53.R5-LambdaConcurrency, HIPAA.Security-LambdaInsideVPC,",
    ),
]
FILTER_CASES = [
    _filter("name", "Run\x07 1", f"read_set_filter.name: {CONTROL}"),
    _filter("name", "", "read_set_filter.name: 0 characters; it must be 1-127"),
    _filter("name", "x" * 128, "read_set_filter.name: 128 characters; it must be 1-127"),
    _filter("name", 5, "name: expected a string, got int"),
    _filter("sample_id", "S1\n", f"read_set_filter.sample_id: {CONTROL}"),
    _filter("sample_id", "\u0085S1", f"read_set_filter.sample_id: {CONTROL}"),
    _filter("sample_id", "", "read_set_filter.sample_id: 0 characters; it must be 1-127"),
    _filter("sample_id", ["S1"], "sample_id: expected a string, got list"),
    _filter("subject_id", "P\t1", f"read_set_filter.subject_id: {CONTROL}"),
    _filter("subject_id", "x" * 200, "read_set_filter.subject_id: 200 characters"),
    _filter("subject_id", 7, "subject_id: expected a string, got int"),
    _filter(
        "reference_arn",
        "reference/1",
        "read_set_filter.reference_arn: 'reference/1' must be an ARN of at most 127 characters",
    ),
    _filter(
        "reference_arn",
        "arn:aws:omics:us-east-1:123456789012:referenceStore/1234567890/reference/1\r",
        f"read_set_filter.reference_arn: {CONTROL}",
    ),
    _filter("reference_arn", 1, "reference_arn: expected a string, got int"),
    _filter("generated_from", "lab\x1f", f"read_set_filter.generated_from: {CONTROL}"),
    _filter("generated_from", "", "read_set_filter.generated_from: 0 characters"),
    _filter("generated_from", 3, "generated_from: expected a string, got int"),
    _filter(
        "creation_type",
        "COPY",
        "read_set_filter.creation_type: 'COPY' is not one of IMPORT, UPLOAD",
    ),
    _filter(
        "creation_type",
        "import",
        "read_set_filter.creation_type: 'import' is not one of IMPORT, UPLOAD",
    ),
    _filter("creation_type", "IMPORT\n", f"read_set_filter.creation_type: {CONTROL}"),
    _filter("created_after", "yesterday", f"read_set_filter.created_after: 'yesterday' {NOT_TIME}"),
    _filter(
        "created_after", "2026-01-01", f"read_set_filter.created_after: '2026-01-01' {NOT_TIME}"
    ),
    _filter(
        "created_after",
        "2026-01-01T00:00:00",
        f"read_set_filter.created_after: '2026-01-01T00:00:00' {NOT_TIME}",
    ),
    _filter(
        "created_after",
        datetime(2026, 1, 1),
        "read_set_filter.created_after: 2026-01-01T00:00:00 has no time zone; give an aware "
        "datetime (e.g. datetime(2026, 1, 1, tzinfo=UTC))",
    ),
    _filter(
        "created_after",
        1767225600,
        "created_after: expected a timezone-aware datetime or an ISO 8601 string, got int",
    ),
    _filter(
        "created_before",
        "2026-13-01T00:00:00Z",
        f"read_set_filter.created_before: '2026-13-01T00:00:00Z' {NOT_TIME}",
    ),
    _filter(
        "created_before",
        "2026-02-30T00:00:00Z",
        f"read_set_filter.created_before: '2026-02-30T00:00:00Z' {NOT_TIME}",
    ),
    Case(
        FILTER,
        "created_before",
        {"created_after": "2026-02-01T00:00:00+01:00", "created_before": "2026-01-31T22:00:00Z"},
        "read_set_filter.created_after: must be earlier than read_set_filter.created_before",
    ),
    Case(
        FILTER,
        "created_before",
        {"created_after": "2026-02-01T00:00:00Z", "created_before": "2026-02-01T00:00:00Z"},
        "read_set_filter.created_after: must be earlier than read_set_filter.created_before",
    ),
    _filter(
        "status",
        "active",
        "read_set_filter.status: 'active' is not one of ARCHIVED, ACTIVATING, ACTIVE",
    ),
    _filter("status", 1, "status: expected a string, got int"),
    Case(
        FILTER,
        "status",
        {"sample_id": None, "status": "ACTIVE"},
        "read_set_filter: give at least one field besides status",
    ),
]
CASES = EXPORT_CASES + SERVICE_CASES + FILTER_CASES


def _run(case: Case) -> None:
    env = Environment(region=case.region) if case.region else None
    stack = Stack(App(), "Invalid", env=env)
    props = case.props(stack) if callable(case.props) else dict(case.props)
    if case.target == SERVICE:
        ReadSetExportService(stack, "Service", **props)
        return
    if case.target == FILTER:
        fields = {"sample_id": "S1"} | props
        props = {"read_set_filter": ReadSetFilter(**fields)}
    props.setdefault("sequence_store_id", STORE)
    if "read_set_filter" not in props:
        props.setdefault("read_set_ids", READ_SETS)
    ReadSetExport(stack, "Export", **props)


def outcome(case: Case) -> tuple[str, str]:
    """``refused`` (a TypeError or ValueError that names the prop), ``accepted``, or
    ``crashed`` (any other error), with the error's text."""
    try:
        _run(case)
    except (TypeError, ValueError) as error:
        text = str(error)
        return ("refused" if case.prop in text else "crashed"), text
    except Exception as error:  # noqa: BLE001 - the table counts what a user would see
        return "crashed", f"{type(error).__name__}: {error}"
    return "accepted", ""


@pytest.mark.parametrize("case", CASES, ids=str)
def test_a_malformed_prop_is_refused_naming_the_prop_and_what_it_accepts(case: Case) -> None:
    result, text = outcome(case)
    assert result == "refused", text
    assert case.message in text.split("\n- ") or any(
        line.startswith(case.message) for line in text.split("\n- ")
    ), text


def _params(target: Callable[..., Any]) -> set[str]:
    return set(inspect.signature(target).parameters) - {"self", "scope", "id"}


@pytest.mark.parametrize(
    ("target", "props"),
    [
        (EXPORT, _params(ReadSetExport.__init__)),
        (SERVICE, _params(ReadSetExportService.__init__)),
        (FILTER, {field.name for field in dataclasses.fields(ReadSetFilter)}),
    ],
)
def test_the_table_covers_every_prop(target: str, props: set[str]) -> None:
    covered = {case.prop for case in CASES if case.target == target}
    assert props - covered == set(), f"{target} props without a malformed case"
    assert covered - props == set(), f"{target} cases of props it does not have"


def test_the_values_the_table_refuses_are_accepted_when_well_formed() -> None:
    """The base props are valid: each case fails for its own prop, not for the rest."""
    stack = Stack(App(), "Valid")
    ReadSetExportService(
        stack,
        "Service",
        runner_log_level=sfn.LogLevel.ALL,
        runner_log_execution_data=True,
        removal_policy=RemovalPolicy.DESTROY,
        auto_delete_objects=True,
        log_retention=logs.RetentionDays.ONE_MONTH,
        unacknowledged_rules=["HIPAA.Security-DynamoDBInBackupPlan", "AwsSolutions-IAM5"],
    )
    ReadSetExport(
        stack,
        "ById",
        sequence_store_id=STORE,
        read_set_ids=READ_SETS,
        archived_read_sets=ArchivedReadSets.FAIL,
        timeout=Duration.minutes(50),
        poll_interval=Duration.seconds(30),
        noncurrent_version_expiration=None,
    )
    ReadSetExport(
        stack,
        "ByFilter",
        sequence_store_id=STORE,
        read_set_filter=ReadSetFilter(
            sample_id="S1",
            created_after="2026-02-01T00:00:00+01:00",
            created_before="2026-01-31T23:30:00Z",
        ),
        destination_bucket=s3.Bucket.from_bucket_name(stack, "Lake", "my-lake"),
        encryption_key=kms.Key.from_key_arn(
            stack, "Key", "arn:aws:kms:us-east-1:123456789012:key/1"
        ),
        notification_topic=sns.Topic(stack, "Topic"),
    )


@pytest.mark.parametrize("region", ["us-east-1", None])
def test_a_store_bucket_and_key_of_the_stacks_region_or_an_unknown_one_are_accepted(
    region: str | None,
) -> None:
    """The Region checks refuse only when both Regions are known and differ: the same Region,
    or an environment-agnostic stack (its Region a token), synthesizes."""
    app = App()
    stack = Stack(app, "Exports", env=Environment(region=region) if region else None)
    data = Stack(app, "Data", env=Environment(region="us-east-1"))
    store = omics.CfnSequenceStore(data, "Store", name="cohort")
    ReadSetExport(
        stack,
        "Export",
        sequence_store_id=store.attr_sequence_store_id,
        read_set_ids=READ_SETS,
        **_bucket_elsewhere(stack),
        **_key_elsewhere(stack),
    )
    ReadSetExport(
        stack,
        "IntoTheirs",
        sequence_store_id=STORE,
        read_set_ids=READ_SETS,
        # Named, so that an environment-agnostic stack may refer to it.
        destination_bucket=s3.Bucket(data, "Lake", bucket_name="genomics-data-lake"),
    )


def test_a_service_declared_deeper_in_the_stack_serves_its_exports() -> None:
    """ReadSetExportService.of finds the stack's one service wherever it was declared, so an
    export that names none uses it instead of making a second (which would be refused)."""
    stack = Stack(App(), "Platform")
    declared = ReadSetExportService(Construct(stack, "Shared"), "Exports")
    export = ReadSetExport(stack, "Export", sequence_store_id=STORE, read_set_ids=READ_SETS)
    assert export.service is declared
    assert ReadSetExportService.of(stack) is declared


def tally() -> Counter[str]:
    return Counter(outcome(case)[0] for case in CASES)


if __name__ == "__main__":
    counts = tally()
    print(
        f"malformed props: {len(CASES)} tried, {counts['refused']} refused clearly, "
        f"{counts['accepted']} accepted, {counts['crashed']} crashed"
    )
    for case in CASES:
        result, text = outcome(case)
        if result != "refused":
            print(f"  {result}: {case} -> {text[:200]}")
