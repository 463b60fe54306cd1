"""Template assertions for the options platform teams use: their bucket and key, removal,
partial failures, notifications, read grants, permissions boundaries, a VPC, and the options
the exports of a stack share through its ReadSetExportService."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import App, Duration, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Match, Template

from cdk_omics_export import ArchivedReadSets, ReadSetExport, ReadSetExportService

from .support import (
    arn,
    depends_on,
    find,
    handler_policies,
    handler_statements,
    logical_id,
    python_functions,
    resource_of,
    state_machine_definition,
    statements,
    synth,
)

STORE = "1234567890"
READ_SETS = ["1111111111", "2222222222"]
KEY_ARN = "arn:aws:kms:us-east-1:111122223333:key/0f4b6d43-2a11-4c4e-9f6b-6f1f1d0c1a2b"
SERVICE = "/ReadSetExportService/"
STRICT_STORE = "9876543210"


def export_in(stack: Stack, id: str = "Export", **props: Any) -> ReadSetExport:
    props.setdefault("sequence_store_id", STORE)
    props.setdefault("read_set_ids", READ_SETS)
    return ReadSetExport(stack, id, **props)


def key_statement(key_arn: Any) -> dict[str, Any]:
    return {
        "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
        "Effect": "Allow",
        "Resource": key_arn,
    }


def ref_arn(stack: Stack, construct: Any) -> dict[str, Any]:
    return arn(stack.get_logical_id(construct.node.default_child))


def custom_resource(template: Template, name: str) -> dict[str, Any]:
    found: dict[str, Any] = resource_of(
        template, "Custom::OmicsReadSetExport", f"/{name}/Resource/"
    )["Properties"]
    return found


class Options:
    """One stack of exports with every per-export option, sharing the default service."""

    def __init__(self) -> None:
        self.stack = stack = Stack(App(), "Options")
        self.boundary = iam.ManagedPolicy.from_managed_policy_name(
            stack, "Boundary", "platform-boundary"
        )
        iam.PermissionsBoundary.of(stack).apply(self.boundary)
        self.lake = s3.Bucket(stack, "DataLake", enforce_ssl=True)
        self.lake_key = kms.Key(stack, "LakeKey", enable_key_rotation=True)
        keyed_lake = s3.Bucket(
            stack, "KeyedLake", encryption=s3.BucketEncryption.KMS, encryption_key=self.lake_key
        )
        self.export_key = kms.Key(stack, "ExportKey", enable_key_rotation=True)
        self.topic_key = kms.Key(stack, "TopicKey", enable_key_rotation=True)
        self.topic = sns.Topic(stack, "OnCall", master_key=self.topic_key, enforce_ssl=True)
        self.analysis = iam.Role(
            stack, "Analysis", assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com")
        )
        self.exports = {
            "OwnBucket": export_in(
                stack, "OwnBucket", destination_bucket=self.lake, destination_prefix="omics/"
            ),
            "OwnBucketKey": export_in(stack, "OwnBucketKey", destination_bucket=keyed_lake),
            "Imported": export_in(
                stack,
                "Imported",
                destination_bucket=s3.Bucket.from_bucket_name(
                    stack, "ImportedLake", "genomics-data-lake"
                ),
                encryption_key=kms.Key.from_key_arn(stack, "ImportedKey", KEY_ARN),
                destination_prefix="x/",
            ),
            "CreatedKey": export_in(stack, "CreatedKey", encryption_key=self.export_key),
            # The first exports set no shared option: this one's apply to the whole service.
            "Partial": export_in(
                stack,
                "Partial",
                allow_partial_failure=True,
                max_requests_per_second=3,
                poll_interval=Duration.seconds(45),
                log_retention=logs.RetentionDays.ONE_MONTH,
                runtime=lambda_.Runtime.PYTHON_3_12,
                reserved_concurrency=2,
            ),
            "Notify": export_in(
                stack, "Notify", wait_for_completion=False, notification_topic=self.topic
            ),
            "Readers": export_in(
                stack,
                "Readers",
                encryption_key=kms.Key.from_key_arn(stack, "ReadersKey", KEY_ARN),
                destination_prefix="cohort/",
                # The same values again are no conflict (each read of a Runtime constant is a
                # new object).
                max_requests_per_second=3,
                runtime=lambda_.Runtime.PYTHON_3_12,
            ),
            "Throwaway": export_in(
                stack, "Throwaway", removal_policy=RemovalPolicy.DESTROY, auto_delete_objects=True
            ),
            "Strict": export_in(
                stack,
                "Strict",
                sequence_store_id=STRICT_STORE,
                archived_read_sets=ArchivedReadSets.FAIL,
            ),
        }
        self.exports["Readers"].grant_read(self.analysis)
        self.watch = self.exports["Readers"].on_status_change("Watch")
        self.jobs = self.exports["Readers"].on_job_status_change("Jobs")
        self.template = synth(stack)


@pytest.fixture(scope="module")
def options() -> Options:
    return Options()


# Bring your own bucket and key


def test_own_bucket_without_key_creates_no_bucket_and_scopes_the_role_to_it(
    options: Options,
) -> None:
    template, export = options.template, options.exports["OwnBucket"]
    assert export.bucket is options.lake
    assert export.node.try_find_child("Bucket") is None
    bucket = ref_arn(options.stack, options.lake)
    assert statements(template, "/OwnBucket/ExportPolicy/") == [
        {
            "Action": "s3:PutObject",
            "Effect": "Allow",
            "Resource": {"Fn::Join": ["", [bucket, "/omics/*"]]},
        },
        {"Action": "s3:GetBucketLocation", "Effect": "Allow", "Resource": bucket},
    ]
    props = custom_resource(template, "OwnBucket")
    # Nothing known about the bucket's encryption: the handler writes with its default.
    assert "Encryption" not in props
    assert "KmsKeyArn" not in props
    assert {
        "Action": "s3:PutObject",
        "Effect": "Allow",
        "Resource": {"Fn::Join": ["", [bucket, "/omics/cdk-omics-export/*"]]},
    } in handler_statements(template)


def test_own_bucket_with_its_key_gives_both_roles_exactly_that_key(options: Options) -> None:
    template = options.template
    key_arn = ref_arn(options.stack, options.lake_key)
    assert statements(template, "/OwnBucketKey/ExportPolicy/")[2:] == [key_statement(key_arn)]
    # The handler only writes its manifest: GenerateDataKey, not Decrypt.
    on_key = [s for s in handler_statements(template) if s["Resource"] == key_arn]
    assert on_key == [{"Action": "kms:GenerateDataKey", "Effect": "Allow", "Resource": key_arn}]
    props = custom_resource(template, "OwnBucketKey")
    assert props["Encryption"] == "aws:kms"
    assert props["KmsKeyArn"] == key_arn


def test_imported_bucket_with_named_key(options: Options) -> None:
    template, export = options.template, options.exports["Imported"]
    assert options.stack.resolve(export.destination) == "s3://genomics-data-lake/x/"
    lake = ["arn:", {"Ref": "AWS::Partition"}, ":s3:::genomics-data-lake"]
    assert statements(template, "/Imported/ExportPolicy/") == [
        {
            "Action": "s3:PutObject",
            "Effect": "Allow",
            "Resource": {
                "Fn::Join": [
                    "",
                    ["arn:", {"Ref": "AWS::Partition"}, ":s3:::genomics-data-lake/x/*"],
                ]
            },
        },
        {"Action": "s3:GetBucketLocation", "Effect": "Allow", "Resource": {"Fn::Join": ["", lake]}},
        key_statement(KEY_ARN),
    ]
    props = custom_resource(template, "Imported")
    assert props["Destination"] == "s3://genomics-data-lake/x/"
    assert props["KmsKeyArn"] == KEY_ARN


def test_created_bucket_with_a_key_uses_sse_kms_with_it(options: Options) -> None:
    template = options.template
    key_arn = ref_arn(options.stack, options.export_key)
    bucket = resource_of(template, "AWS::S3::Bucket", "/CreatedKey/Bucket/")
    assert bucket["Properties"]["BucketEncryption"] == {
        "ServerSideEncryptionConfiguration": [
            {
                "BucketKeyEnabled": True,
                "ServerSideEncryptionByDefault": {
                    "KMSMasterKeyID": key_arn,
                    "SSEAlgorithm": "aws:kms",
                },
            }
        ]
    }
    assert statements(template, "/CreatedKey/ExportPolicy/")[2:] == [key_statement(key_arn)]
    assert custom_resource(template, "CreatedKey")["KmsKeyArn"] == key_arn
    # A PutObject that names another key is refused.
    policy = resource_of(template, "AWS::S3::BucketPolicy", "/CreatedKey/Bucket/")
    (deny,) = [
        s
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if s.get("Sid") == "DenyOtherKmsKeys"
    ]
    # The key by its ARN, the only form S3 compares this header with.
    # "Using server-side encryption with AWS KMS keys (SSE-KMS)" (Amazon S3 User Guide):
    # https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html
    header = "s3:x-amz-server-side-encryption-aws-kms-key-id"
    assert deny["Condition"] == {"Null": {header: "false"}, "StringNotEquals": {header: key_arn}}


def test_a_bucket_of_yours_keeps_its_own_policy(options: Options) -> None:
    """The export's bucket policy statements are for the buckets it creates: yours is
    yours to lock down (docs/compliance.md lists what to add)."""
    policy = resource_of(options.template, "AWS::S3::BucketPolicy", "/DataLake/")
    sids = [s.get("Sid") for s in policy["Properties"]["PolicyDocument"]["Statement"]]
    assert "DenyOtherKmsKeys" not in sids and "ManifestsByTheServiceOnly" not in sids


@pytest.mark.parametrize(
    ("props", "message"),
    [
        (
            {"removal_policy": RemovalPolicy.DESTROY, "own_bucket": True},
            r"removal_policy: applies only to the bucket this construct creates",
        ),
        (
            {"auto_delete_objects": True, "own_bucket": True},
            r"auto_delete_objects: applies only to the bucket this construct creates",
        ),
        (
            {"reserved_concurrency": 0},
            r"reserved_concurrency: 0 is not from 1 to 1000: the executions reserved for each "
            r"of the service's two functions \(None, the default, reserves none\)",
        ),
        (
            {"auto_delete_objects": True},
            r"auto_delete_objects: needs removal_policy=RemovalPolicy.DESTROY",
        ),
        (
            {"vpc_subnets": ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)},
            r"vpc_subnets, security_groups: need vpc",
        ),
        (
            {"own_bucket": True, "destination_prefix": "exports/", "bucket_name": "Bad_Name"},
            r"destination_prefix: destination 's3://Bad_Name/exports/' does not match",
        ),
    ],
)
def test_contradictory_options_fail_at_synth_time(props: dict[str, Any], message: str) -> None:
    stack = Stack(App(), "Contradictory")
    if props.pop("own_bucket", False):
        name = props.pop("bucket_name", "genomics-data-lake")
        props["destination_bucket"] = s3.Bucket.from_bucket_name(stack, "Lake", name)
    with pytest.raises(ValueError, match=message):
        export_in(stack, **props)


def test_buckets_of_other_stacks_with_the_same_logical_id_are_both_granted() -> None:
    app = App()
    lakes = [s3.Bucket(Stack(app, name), "Lake") for name in ("Genomics", "Imaging")]
    stack = Stack(app, "Exports")
    for n, lake in enumerate(lakes):
        export_in(stack, f"Export{n}", destination_bucket=lake, destination_prefix="x/")
    put = [s["Resource"] for s in handler_statements(synth(stack)) if s["Action"] == "s3:PutObject"]
    assert len(put) == 2, put


# Removal


def test_an_exports_removal_policy_concerns_only_its_bucket(options: Options) -> None:
    template = options.template
    throwaway = resource_of(template, "AWS::S3::Bucket", "/Throwaway/Bucket/")
    assert throwaway["DeletionPolicy"] == "Delete"
    assert resource_of(template, "AWS::S3::Bucket", "/Notify/Bucket/")["DeletionPolicy"] == (
        "Retain"
    )
    for type_, path in (
        ("AWS::S3::Bucket", f"{SERVICE}AccessLogs/"),
        ("AWS::Logs::LogGroup", f"{SERVICE}HandlerLogs/"),
        ("AWS::KMS::Key", f"{SERVICE}Key/"),
        ("AWS::DynamoDB::Table", f"{SERVICE}State/"),
    ):
        assert resource_of(template, type_, path)["DeletionPolicy"] == "Retain", path
    (auto_delete,) = find(template, "Custom::S3AutoDeleteObjects").values()
    bucket = logical_id(template, "AWS::S3::Bucket", "/Throwaway/Bucket/")
    assert auto_delete["Properties"]["BucketName"] == {"Ref": bucket}


# Partial failures


def test_partial_failure_reaches_the_handler_only_when_asked(options: Options) -> None:
    template = options.template
    assert custom_resource(template, "Partial")["AllowPartialFailure"] is True
    without = [
        name
        for name in options.exports
        if name != "Partial" and "AllowPartialFailure" in custom_resource(template, name)
    ]
    assert without == []


def test_archived_read_sets_fail_reaches_the_handler_and_drops_the_activation_grant(
    options: Options,
) -> None:
    template = options.template
    assert custom_resource(template, "Strict")["ArchivedReadSets"] == "FAIL"
    # ACTIVATE, the default, is the handler's default too: no property, as before the prop.
    assert [n for n in options.exports if "ArchivedReadSets" in custom_resource(template, n)] == [
        "Strict"
    ]
    actions = {
        json.dumps(statement["Resource"]): statement["Action"]
        for statement in handler_statements(template)
        if "omics:ListReadSets" in statement["Action"]
    }
    strict = next(a for r, a in actions.items() if STRICT_STORE in r)
    default = next(a for r, a in actions.items() if STRICT_STORE not in r)
    activation = {
        "omics:StartReadSetActivationJob",
        "omics:GetReadSetActivationJob",
        "omics:ListReadSetActivationJobs",
    }
    assert activation.isdisjoint(strict)
    assert activation <= set(default)


def test_archived_read_sets_of_another_type_fail_naming_the_enum() -> None:
    with pytest.raises(
        TypeError,
        match=r"archived_read_sets: expected an ArchivedReadSets \(ArchivedReadSets.ACTIVATE or "
        r"ArchivedReadSets.FAIL\), got str",
    ):
        export_in(Stack(App(), "Invalid"), archived_read_sets="FAIL")


# Shared options forwarded to the service


def test_options_of_any_export_configure_the_shared_functions(options: Options) -> None:
    template = options.template
    service = options.exports["OwnBucket"].service
    assert all(export.service is service for export in options.exports.values())
    functions = python_functions(template)
    assert len(functions) == 2
    for function in functions.values():
        variables = function["Properties"]["Environment"]["Variables"]
        assert variables["MAX_REQUESTS_PER_SECOND"] == "3"
        assert variables["POLL_INTERVAL_SECONDS"] == "45"
    assert service.max_requests_per_second == 3
    # The runner's step retries a failure from one poll interval on (its waits are the
    # step's own answer).
    runner = resource_of(template, "AWS::StepFunctions::StateMachine", f"{SERVICE}Runner/")
    step = state_machine_definition(runner["Properties"]["DefinitionString"])["States"]["Step"]
    assert step["Retry"][-1] == {
        "ErrorEquals": ["States.ALL"],
        "IntervalSeconds": 45,
        "MaxAttempts": 12,
        "BackoffRate": 2,
        "MaxDelaySeconds": 900,
    }
    log_group = resource_of(template, "AWS::Logs::LogGroup", f"{SERVICE}HandlerLogs/")
    assert log_group["Properties"]["RetentionInDays"] == 30
    # Each export keeps its own timeout, and CloudFormation's ServiceTimeout follows it: a
    # lost answer fails the deploy 300 s after the runner would have answered.
    props = custom_resource(template, "Partial")
    assert props["TimeoutSeconds"] == 3000
    assert props["ServiceTimeout"] == "3300"
    assert "PollIntervalSeconds" not in props
    assert "MaxRequestsPerSecond" not in props


def test_runtime_of_any_export_is_the_runtime_of_every_handler_function(
    options: Options,
) -> None:
    functions = python_functions(options.template)
    assert sorted(f["Properties"]["Handler"] for f in functions.values()) == [
        "index.on_event",
        "index.run_step",
    ]
    assert [f["Properties"]["Runtime"] for f in functions.values()] == ["python3.12"] * 2
    assert options.exports["OwnBucket"].service.runtime.name == "python3.12"


def conflict(first: dict[str, Any], second: dict[str, Any]) -> None:
    stack = Stack(App(), "Conflict")
    export_in(stack, "First", **first)
    export_in(stack, "Second", **second)


@pytest.mark.parametrize(
    ("option", "first", "second"),
    [
        ("max_requests_per_second", 3, 4),
        ("poll_interval", Duration.seconds(30), Duration.seconds(45)),
        ("log_retention", logs.RetentionDays.ONE_MONTH, logs.RetentionDays.ONE_YEAR),
        ("runtime", lambda_.Runtime.PYTHON_3_12, lambda_.Runtime.PYTHON_3_13),
        ("reserved_concurrency", 2, 3),
    ],
)
def test_exports_that_set_a_shared_option_differently_fail(
    option: str, first: Any, second: Any
) -> None:
    with pytest.raises(
        ValueError,
        match=rf"conflicting options:\n- {option}: Conflict/Second sets .*, but Conflict/First "
        r"set .*; the stack's exports share one ReadSetExportService",
    ):
        conflict({option: first}, {option: second})


def test_exports_with_different_runtimes_fail_naming_both() -> None:
    with pytest.raises(
        ValueError,
        match=r"runtime: Conflict/Second sets python3.13, but Conflict/First set python3.12;",
    ):
        conflict({"runtime": lambda_.Runtime.PYTHON_3_12}, {"runtime": lambda_.Runtime.PYTHON_3_13})


def test_exports_in_different_vpcs_fail() -> None:
    stack = Stack(App(), "Conflict")
    first, second = (ec2.Vpc(stack, name, max_azs=1, nat_gateways=0) for name in ("A", "B"))
    export_in(stack, "First", vpc=first)
    with pytest.raises(
        ValueError, match=r"vpc: Conflict/Second sets Conflict/B, but Conflict/First"
    ):
        export_in(stack, "Second", vpc=second)


def test_the_same_value_given_twice_is_no_conflict() -> None:
    stack = Stack(App(), "Agree")
    export_in(
        stack,
        "First",
        poll_interval=Duration.minutes(1),
        max_requests_per_second=2,
        runtime=lambda_.Runtime.PYTHON_3_13,
    )
    second = export_in(
        stack,
        "Second",
        poll_interval=Duration.seconds(60),
        max_requests_per_second=2,
        runtime=lambda_.Runtime.PYTHON_3_13,
    )
    assert second.service.poll_interval.to_seconds() == 60
    assert second.service.max_requests_per_second == 2
    assert second.service.runtime.name == "python3.13"


def test_an_export_cannot_override_the_services_own_option() -> None:
    stack = Stack(App(), "Declared")
    service = ReadSetExportService(stack, "Exports", max_requests_per_second=2)
    with pytest.raises(
        ValueError,
        match=r"max_requests_per_second: Declared/Export sets 3, but Declared/Exports set 2",
    ):
        export_in(stack, service=service, max_requests_per_second=3)


def test_an_option_set_after_the_service_was_built_fails() -> None:
    stack = Stack(App(), "Late")
    first = export_in(stack, "First")
    assert first.service.on_event_function is not None  # builds the functions
    with pytest.raises(
        ValueError,
        match=r"max_requests_per_second: Late/Second sets it after the stack's "
        r"ReadSetExportService was built",
    ):
        export_in(stack, "Second", max_requests_per_second=3)


@pytest.mark.parametrize(
    ("props", "message"),
    [
        ({"max_requests_per_second": 0}, r"max_requests_per_second: 0 must be between 1 and 100"),
        ({"poll_interval": Duration.seconds(5)}, r"poll_interval: 5 s is below the minimum"),
        (
            {"runtime": lambda_.Runtime.NODEJS_22_X},
            r"ReadSetExportService Invalid/Exports: invalid props:\n- runtime: nodejs22.x is not "
            r"a Python runtime; the handler needs python3.11 or newer",
        ),
        (
            {"runtime": lambda_.Runtime.PYTHON_3_10},
            r"runtime: python3.10 is older than python3.11, which the handler needs",
        ),
        (
            {"reserved_concurrency": 0},
            r"reserved_concurrency: 0 is not from 1 to 1000: the executions reserved for each "
            r"of the service's two functions \(None, the default, reserves none\)",
        ),
        (
            {"auto_delete_objects": True},
            r"ReadSetExportService Invalid/Exports: invalid props:\n- auto_delete_objects: "
            r"needs removal_policy=RemovalPolicy.DESTROY",
        ),
    ],
)
def test_invalid_service_props_fail(props: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ReadSetExportService(Stack(App(), "Invalid"), "Exports", **props)


def test_a_reserved_concurrency_that_is_not_a_number_fails_as_a_type() -> None:
    with pytest.raises(
        TypeError, match=r"reserved_concurrency: expected None or an int \(e.g. 2\), got str"
    ):
        export_in(Stack(App(), "Invalid"), reserved_concurrency="2")


def test_reserved_concurrency_reserves_that_many_for_every_function(options: Options) -> None:
    functions = python_functions(options.template)
    assert len(functions) == 2
    assert [f["Properties"]["ReservedConcurrentExecutions"] for f in functions.values()] == [2, 2]


# A service declared by the user


class Declared:
    def __init__(self) -> None:
        self.stack = stack = Stack(App(), "Declared")
        self.service = ReadSetExportService(
            stack,
            "Exports",
            removal_policy=RemovalPolicy.DESTROY,
            auto_delete_objects=True,
            max_requests_per_second=2,
        )
        self.kept = export_in(stack, "Kept", service=self.service)
        # No service= here: ReadSetExportService.of finds the declared one.
        self.disposable = export_in(
            stack,
            "Disposable",
            sequence_store_id="9876543210",
            removal_policy=RemovalPolicy.DESTROY,
            auto_delete_objects=True,
        )
        self.template = synth(stack)


@pytest.fixture(scope="module")
def declared() -> Declared:
    return Declared()


def test_a_declared_service_serves_every_export_of_its_stack(declared: Declared) -> None:
    service, stack, template = declared.service, declared.stack, declared.template
    assert declared.kept.service is service
    assert declared.disposable.service is service
    assert ReadSetExportService.of(stack) is service
    assert stack.node.try_find_child("ReadSetExportService") is None
    assert len(python_functions(template)) == 2
    assert len(find(template, "AWS::DynamoDB::Table")) == 1
    for function in python_functions(template).values():
        assert function["Properties"]["Environment"]["Variables"]["MAX_REQUESTS_PER_SECOND"] == "2"
    assert service.node.path == "Declared/Exports"
    (policy,) = handler_policies(template)
    assert [
        s["Resource"] for s in handler_statements(template) if s["Action"] == "iam:PassRole"
    ] == [
        arn(logical_id(template, "AWS::IAM::Role", f"/{name}/ExportRole/"))
        for name in ("Kept", "Disposable")
    ]
    assert policy == logical_id(template, "AWS::IAM::ManagedPolicy", "/Exports/HandlerPolicy/")


def test_the_services_removal_policy_concerns_its_own_resources(declared: Declared) -> None:
    template = declared.template
    for type_, path in (
        ("AWS::S3::Bucket", "/Exports/AccessLogs/"),
        ("AWS::Logs::LogGroup", "/Exports/HandlerLogs/"),
        ("AWS::KMS::Key", "/Exports/Key/"),
        ("AWS::DynamoDB::Table", "/Exports/State/"),
        ("AWS::S3::Bucket", "/Disposable/Bucket/"),
    ):
        resource = resource_of(template, type_, path)
        assert resource["DeletionPolicy"] == "Delete", path
        assert resource["UpdateReplacePolicy"] == "Delete", path
    assert resource_of(template, "AWS::S3::Bucket", "/Kept/Bucket/")["DeletionPolicy"] == "Retain"
    emptied = {
        resource["Properties"]["BucketName"]["Ref"]
        for resource in find(template, "Custom::S3AutoDeleteObjects").values()
    }
    assert emptied == {
        logical_id(template, "AWS::S3::Bucket", "/Exports/AccessLogs/"),
        logical_id(template, "AWS::S3::Bucket", "/Disposable/Bucket/"),
    }


# Notifications


def status_change_pattern(construct_path: str) -> dict[str, Any]:
    """The service's own events for one export of this stack."""
    return {
        "source": ["cdk-omics-export"],
        "detail-type": ["Read Set Export Status Change"],
        "detail": {"stackId": [{"Ref": "AWS::StackId"}], "constructPath": [construct_path]},
    }


def test_notification_topic_hears_every_status_change_of_this_export(options: Options) -> None:
    template, stack = options.template, options.stack
    resource = logical_id(template, "Custom::OmicsReadSetExport", "/Notify/Resource/")
    rule_id = logical_id(template, "AWS::Events::Rule", "/Notify/StatusChange/")
    rule = resource_of(template, "AWS::Events::Rule", "/Notify/StatusChange/")["Properties"]
    assert rule["EventPattern"] == status_change_pattern("Options/Notify")
    assert rule["Description"] == (
        "Tells the notification topic of cdk-omics-export status changes"
    )
    assert rule["State"] == "ENABLED"
    # The rule, and the topic's policy that lets EventBridge publish, exist before the
    # export starts, so SUBMITTED reaches the topic; the rule knows the export by its stack
    # and path, not by the resource's attributes.
    topic_policy = logical_id(template, "AWS::SNS::TopicPolicy", "/OnCall/Policy/")
    assert sorted(
        resource_of(template, "Custom::OmicsReadSetExport", "/Notify/Resource/")["DependsOn"]
    ) == sorted([rule_id, topic_policy])
    assert not depends_on(template, rule_id, resource)
    topic = {"Ref": stack.get_logical_id(options.topic.node.default_child)}  # type: ignore[arg-type]
    assert rule["Targets"] == [{"Arn": topic, "Id": "Target0"}]
    # EventBridge may publish, with no Condition: "You can't use Condition blocks in Amazon
    # SNS topic policies for EventBridge". "Using resource-based policies for Amazon
    # EventBridge", section "Amazon SNS permissions" (Amazon EventBridge User Guide):
    # https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html
    policy = resource_of(template, "AWS::SNS::TopicPolicy", "/OnCall/Policy/")["Properties"]
    assert policy["Topics"] == [topic]
    assert [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"] == [
        {
            "Action": "sns:Publish",
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Resource": topic,
            "Sid": "1",
        }
    ]
    # EventBridge can publish to the encrypted topic.
    key = resource_of(template, "AWS::KMS::Key", "/TopicKey/")
    assert key["Properties"]["KeyPolicy"]["Statement"][1:] == [
        {
            "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Resource": "*",
        }
    ]


def test_status_change_rules_listen_on_the_services_bus(options: Options) -> None:
    template = options.template
    bus = logical_id(template, "AWS::Events::EventBus", f"{SERVICE}Events/")
    export = options.exports["Readers"]
    assert export.event_bus is export.service.event_bus
    for path in ("/Readers/Watch/", "/Notify/StatusChange/"):
        rule = resource_of(template, "AWS::Events::Rule", path)["Properties"]
        assert rule["EventBusName"] == {"Ref": bus}
    # The runner's watchdog hears Step Functions, on the default bus.
    watchdog = resource_of(template, "AWS::Events::Rule", f"{SERVICE}RunnerWatchdog/")
    assert "EventBusName" not in watchdog["Properties"]


def test_on_status_change_takes_any_target(options: Options) -> None:
    template = options.template
    assert options.watch.node.path == "Options/Readers/Watch"
    rule_id = logical_id(template, "AWS::Events::Rule", "/Readers/Watch/")
    rule = resource_of(template, "AWS::Events::Rule", "/Readers/Watch/")["Properties"]
    assert rule == {
        "Description": "Status changes of a cdk-omics-export read set export",
        "EventBusName": {"Ref": logical_id(template, "AWS::Events::EventBus", SERVICE)},
        "EventPattern": status_change_pattern("Options/Readers"),
        "State": "ENABLED",
    }
    assert resource_of(template, "Custom::OmicsReadSetExport", "/Readers/Resource/")[
        "DependsOn"
    ] == [rule_id]


def test_on_job_status_change_hears_healthomics_events_of_this_deploys_jobs(
    options: Options,
) -> None:
    template = options.template
    assert options.jobs.node.path == "Options/Readers/Jobs"
    resource = logical_id(template, "Custom::OmicsReadSetExport", "/Readers/Resource/")
    rule_id = logical_id(template, "AWS::Events::Rule", "/Readers/Jobs/")
    rule = resource_of(template, "AWS::Events::Rule", "/Readers/Jobs/")["Properties"]
    assert rule == {
        "Description": "HealthOmics events of cdk-omics-export export jobs",
        "EventPattern": {
            "source": ["aws.omics"],
            "detail-type": ["Read Set Export Job Status Change"],
            "detail": {
                "sequenceStoreId": [STORE],
                "id": {"Fn::Split": [",", {"Fn::GetAtt": [resource, "JobIds"]}]},
            },
        },
        "State": "ENABLED",
    }
    # The rule names the export's jobs: CloudFormation creates it once the export completes
    # (the export does not wait for it).
    assert depends_on(template, rule_id, resource)
    assert not depends_on(template, resource, rule_id)


# Read grants


def test_grant_read_is_scoped_to_the_prefix_and_the_key(options: Options) -> None:
    template, stack = options.template, options.stack
    bucket = arn(logical_id(template, "AWS::S3::Bucket", "/Readers/Bucket/"))
    template.has_resource_properties(
        "AWS::IAM::Policy",
        Match.object_equals(
            {
                "PolicyName": Match.any_value(),
                "Roles": [{"Ref": stack.get_logical_id(options.analysis.node.default_child)}],  # type: ignore[arg-type]
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Action": "s3:GetObject",
                            "Effect": "Allow",
                            "Resource": {"Fn::Join": ["", [bucket, "/cohort/*"]]},
                        },
                        {
                            "Action": "s3:ListBucket",
                            "Condition": {"StringLike": {"s3:prefix": ["cohort/*"]}},
                            "Effect": "Allow",
                            "Resource": bucket,
                        },
                        {"Action": "kms:Decrypt", "Effect": "Allow", "Resource": KEY_ARN},
                    ],
                },
            }
        ),
    )


# Permissions boundaries


def test_permissions_boundary_reaches_every_role(options: Options) -> None:
    roles = find(options.template, "AWS::IAM::Role")
    # 9 export roles, the handler's, the runner's, the analysis role, and CDK's auto-delete
    # provider.
    assert len(roles) == 13
    assert logical_id(options.template, "AWS::IAM::Role", f"{SERVICE}RunnerRole/") in roles
    expected = {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                ":iam::",
                {"Ref": "AWS::AccountId"},
                ":policy/platform-boundary",
            ],
        ]
    }
    for role in roles.values():
        assert role["Properties"]["PermissionsBoundary"] == expected


# VPC


@pytest.fixture(scope="module")
def in_vpc() -> Template:
    stack = Stack(App(), "InVpc")
    vpc = ec2.Vpc(
        stack,
        "Vpc",
        max_azs=2,
        nat_gateways=0,
        subnet_configuration=[
            ec2.SubnetConfiguration(name="app", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
        ],
    )
    lake = s3.Bucket.from_bucket_name(stack, "Lake", "genomics-data-lake")
    export_in(stack, vpc=vpc, destination_bucket=lake)
    return synth(stack)


def test_vpc_places_every_function_in_it_with_https_out_only(in_vpc: Template) -> None:
    template = in_vpc
    group = logical_id(template, "AWS::EC2::SecurityGroup", f"{SERVICE}HandlerSecurityGroup/")
    functions = find(template, "AWS::Lambda::Function")
    # The runner's step and on_event: no other function.
    assert len(functions) == 2
    assert len(python_functions(template)) == 2
    for function in functions.values():
        config = function["Properties"]["VpcConfig"]
        assert config["SecurityGroupIds"] == [{"Fn::GetAtt": [group, "GroupId"]}]
        assert len(config["SubnetIds"]) == 2
    assert resource_of(template, "AWS::EC2::SecurityGroup", "/HandlerSecurityGroup/")["Properties"][
        "SecurityGroupEgress"
    ] == [
        {
            "CidrIp": "0.0.0.0/0",
            "Description": "HTTPS to AWS endpoints",
            "FromPort": 443,
            "IpProtocol": "tcp",
            "ToPort": 443,
        }
    ]
    assert (
        "SecurityGroupIngress"
        not in resource_of(template, "AWS::EC2::SecurityGroup", "/HandlerSecurityGroup/")[
            "Properties"
        ]
    )


def test_vpc_statements_are_scoped_as_far_as_ec2_allows(in_vpc: Template) -> None:
    def ec2_arn(resource: str) -> dict[str, Any]:
        return {
            "Fn::Join": [
                "",
                [
                    "arn:",
                    {"Ref": "AWS::Partition"},
                    ":ec2:",
                    {"Ref": "AWS::Region"},
                    ":",
                    {"Ref": "AWS::AccountId"},
                    f":{resource}/*",
                ],
            ]
        }

    found = [s for s in handler_statements(in_vpc) if "ec2:" in str(s["Action"])]
    assert found == [
        {
            "Action": "ec2:CreateNetworkInterface",
            "Effect": "Allow",
            "Resource": [
                ec2_arn("network-interface"),
                ec2_arn("subnet"),
                ec2_arn("security-group"),
            ],
        },
        {
            "Action": [
                "ec2:DeleteNetworkInterface",
                "ec2:AssignPrivateIpAddresses",
                "ec2:UnassignPrivateIpAddresses",
            ],
            "Effect": "Allow",
            "Resource": ec2_arn("network-interface"),
        },
        # Describe actions support no resource-level permissions: the only "*".
        {
            "Action": ["ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"],
            "Effect": "Allow",
            "Resource": "*",
        },
    ]
    everything = [s for s in handler_statements(in_vpc) if s["Resource"] == "*"]
    assert everything == found[2:]


def test_without_a_created_bucket_there_is_no_access_log_bucket(in_vpc: Template) -> None:
    assert find(in_vpc, "AWS::S3::Bucket") == {}
    assert find(in_vpc, "AWS::S3::BucketPolicy") == {}
