"""Template assertions for the options platform teams use: their bucket and key, removal,
partial failures, VPC, notifications, read grants and permissions boundaries."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import App, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Match, Template

from cdk_omics_export import ReadSetExport

from .support import arn, logical_id, resource_of, statements, synth

STORE = "1234567890"
READ_SETS = ["1111111111", "2222222222"]
KEY_ARN = "arn:aws:kms:us-east-1:111122223333:key/0f4b6d43-2a11-4c4e-9f6b-6f1f1d0c1a2b"


def export_in(stack: Stack, **props: Any) -> ReadSetExport:
    props.setdefault("sequence_store_id", STORE)
    props.setdefault("read_set_ids", READ_SETS)
    return ReadSetExport(stack, "Export", **props)


def key_statement(key_arn: Any) -> dict[str, Any]:
    return {
        "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
        "Effect": "Allow",
        "Resource": key_arn,
    }


# Bring your own bucket and key


def test_own_bucket_without_key_creates_no_bucket_and_scopes_the_role_to_it() -> None:
    stack = Stack(App(), "OwnBucket")
    lake = s3.Bucket(stack, "DataLake", enforce_ssl=True)
    export = export_in(stack, destination_bucket=lake, destination_prefix="omics/exports/")
    template = synth(stack)
    assert len(template.find_resources("AWS::S3::Bucket")) == 1  # the user's
    assert export.bucket is lake
    bucket = {"Fn::GetAtt": [stack.get_logical_id(lake.node.default_child), "Arn"]}  # type: ignore[arg-type]
    assert statements(template, "/Export/ExportPolicy/") == [
        {
            "Action": "s3:PutObject",
            "Effect": "Allow",
            "Resource": {"Fn::Join": ["", [bucket, "/omics/exports/*"]]},
        },
        {"Action": "s3:GetBucketLocation", "Effect": "Allow", "Resource": bucket},
    ]


def test_own_bucket_with_its_key_gives_both_roles_exactly_that_key() -> None:
    stack = Stack(App(), "OwnBucketKey")
    key = kms.Key(stack, "LakeKey", enable_key_rotation=True)
    lake = s3.Bucket(stack, "DataLake", encryption=s3.BucketEncryption.KMS, encryption_key=key)
    export_in(stack, destination_bucket=lake)
    template = synth(stack)
    key_arn = {"Fn::GetAtt": [stack.get_logical_id(key.node.default_child), "Arn"]}  # type: ignore[arg-type]
    export_statements = statements(template, "/Export/ExportPolicy/")
    assert export_statements[2:] == [key_statement(key_arn)]
    assert key_statement(key_arn) in statements(template, "/Export/HandlerPolicy/")


def test_imported_bucket_with_named_key() -> None:
    stack = Stack(App(), "Imported")
    lake = s3.Bucket.from_bucket_name(stack, "DataLake", "genomics-data-lake")
    key = kms.Key.from_key_arn(stack, "LakeKey", KEY_ARN)
    export = export_in(stack, destination_bucket=lake, encryption_key=key, destination_prefix="x/")
    template = synth(stack)
    assert stack.resolve(export.destination) == "s3://genomics-data-lake/x/"
    bucket = {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":s3:::genomics-data-lake"]]}
    assert statements(template, "/Export/ExportPolicy/") == [
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
        {"Action": "s3:GetBucketLocation", "Effect": "Allow", "Resource": bucket},
        key_statement(KEY_ARN),
    ]


def test_created_bucket_with_a_key_uses_sse_kms_with_it() -> None:
    stack = Stack(App(), "CreatedKey")
    key = kms.Key(stack, "ExportKey", enable_key_rotation=True)
    export_in(stack, encryption_key=key)
    template = synth(stack)
    key_arn = {"Fn::GetAtt": [stack.get_logical_id(key.node.default_child), "Arn"]}  # type: ignore[arg-type]
    bucket = resource_of(template, "AWS::S3::Bucket", "/Export/Bucket/")
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
    assert statements(template, "/Export/ExportPolicy/")[2:] == [key_statement(key_arn)]


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


# Removal


def test_throwaway_stacks_can_delete_everything() -> None:
    stack = Stack(App(), "Throwaway")
    export_in(stack, removal_policy=RemovalPolicy.DESTROY, auto_delete_objects=True)
    template = synth(stack)
    for type_, path in (
        ("AWS::S3::Bucket", "/Export/Bucket/"),
        ("AWS::S3::Bucket", "/Export/AccessLogs/"),
        ("AWS::Logs::LogGroup", "/Export/HandlerLogs/"),
        ("AWS::KMS::Key", "/Export/LogsKey/"),
    ):
        resource = resource_of(template, type_, path)
        assert resource["DeletionPolicy"] == "Delete", path
    assert len(template.find_resources("Custom::S3AutoDeleteObjects")) == 2


# Partial failures


def test_partial_failure_reaches_the_handler_only_when_asked() -> None:
    stack = Stack(App(), "Partial")
    export_in(stack, allow_partial_failure=True)
    synth(stack).has_resource_properties(
        "Custom::OmicsReadSetExport", {"AllowPartialFailure": True}
    )


# Notifications


def status_rule(template: Template) -> dict[str, Any]:
    (rule,) = template.find_resources("AWS::Events::Rule").values()
    found: dict[str, Any] = rule["Properties"]
    return found


def test_notification_topic_hears_this_constructs_jobs() -> None:
    stack = Stack(App(), "Notify")
    key = kms.Key(stack, "TopicKey", enable_key_rotation=True)
    topic = sns.Topic(stack, "OnCall", master_key=key, enforce_ssl=True)
    export_in(stack, wait_for_completion=False, notification_topic=topic)
    template = synth(stack)
    resource = logical_id(template, "Custom::OmicsReadSetExport", "/Export/Resource/")
    rule = status_rule(template)
    assert rule["EventPattern"] == {
        "source": ["aws.omics"],
        "detail-type": ["Read Set Export Job Status Change"],
        "detail": {
            "sequenceStoreId": [STORE],
            "id": {"Fn::Split": [",", {"Fn::GetAtt": [resource, "JobIds"]}]},
        },
    }
    assert rule["State"] == "ENABLED"
    assert rule["Targets"] == [
        {"Arn": {"Ref": stack.get_logical_id(topic.node.default_child)}, "Id": "Target0"}  # type: ignore[arg-type]
    ]
    # EventBridge can publish to the encrypted topic.
    template.has_resource_properties(
        "AWS::KMS::Key",
        {
            "KeyPolicy": {
                "Statement": Match.array_with(
                    [
                        {
                            "Action": ["kms:GenerateDataKey*", "kms:Decrypt"],
                            "Effect": "Allow",
                            "Principal": {"Service": "events.amazonaws.com"},
                            "Resource": "*",
                        }
                    ]
                )
            }
        },
    )


def test_on_status_change_takes_any_target() -> None:
    stack = Stack(App(), "AnyTarget")
    export = export_in(stack)
    rule = export.on_status_change("Watch")
    template = synth(stack)
    assert rule.node.path == "AnyTarget/Export/Watch"
    assert status_rule(template)["EventPattern"]["source"] == ["aws.omics"]


# Read grants


def test_grant_read_is_scoped_to_the_prefix_and_the_key() -> None:
    stack = Stack(App(), "Readers")
    key = kms.Key.from_key_arn(stack, "Key", KEY_ARN)
    export = export_in(stack, encryption_key=key, destination_prefix="cohort/")
    analysis = iam.Role(
        stack, "Analysis", assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com")
    )
    export.grant_read(analysis)
    template = synth(stack)
    bucket = arn(logical_id(template, "AWS::S3::Bucket", "/Export/Bucket/"))
    template.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "Roles": [{"Ref": stack.get_logical_id(analysis.node.default_child)}],  # type: ignore[arg-type]
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
        },
    )


# VPC


def test_vpc_places_every_function_in_it_with_https_out_only() -> None:
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
    export_in(stack, vpc=vpc)
    template = synth(stack)
    group = logical_id(template, "AWS::EC2::SecurityGroup", "/Export/HandlerSecurityGroup/")
    functions = template.find_resources("AWS::Lambda::Function")
    assert len(functions) == 5
    for function in functions.values():
        config = function["Properties"]["VpcConfig"]
        assert config["SecurityGroupIds"] == [{"Fn::GetAtt": [group, "GroupId"]}]
        assert len(config["SubnetIds"]) == 2
    template.has_resource_properties(
        "AWS::EC2::SecurityGroup",
        {
            "SecurityGroupEgress": [
                {
                    "CidrIp": "0.0.0.0/0",
                    "Description": "HTTPS to AWS endpoints",
                    "FromPort": 443,
                    "IpProtocol": "tcp",
                    "ToPort": 443,
                }
            ]
        },
    )
    assert statements(template, "/Export/HandlerPolicy/")[-1] == {
        "Action": [
            "ec2:CreateNetworkInterface",
            "ec2:DescribeNetworkInterfaces",
            "ec2:DescribeSubnets",
            "ec2:DeleteNetworkInterface",
            "ec2:AssignPrivateIpAddresses",
            "ec2:UnassignPrivateIpAddresses",
        ],
        "Effect": "Allow",
        "Resource": "*",
    }


# Permissions boundaries


def test_permissions_boundary_reaches_every_role() -> None:
    stack = Stack(App(), "Bounded")
    boundary = iam.ManagedPolicy.from_managed_policy_name(stack, "Boundary", "platform-boundary")
    iam.PermissionsBoundary.of(stack).apply(boundary)
    export_in(stack, read_set_ids=[str(4000000000 + n) for n in range(150)])
    template = synth(stack)
    roles = template.find_resources("AWS::IAM::Role")
    assert len(roles) == 6  # export, handler, the 3 framework functions and the waiter
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
