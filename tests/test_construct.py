"""Template assertions for ReadSetExport and the stack's ReadSetExportService under CDK's
default feature flags."""

from __future__ import annotations

import json
import re
import tempfile
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, CustomResource, Duration, Stack, Stage
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_omics as omics
from aws_cdk.assertions import Capture, Match, Template

from cdk_omics_export import ReadSetExport, ReadSetExportService, ReadSetFilter
from cdk_omics_export import handler as handler_package
from cdk_omics_export.service import HANDLER_RUNTIME

from .support import (
    arn,
    depends_on,
    find,
    handler_policies,
    handler_statements,
    iam_length,
    logical_id,
    python_functions,
    resolve_longest,
    resource_of,
    state_machine_definition,
    synth,
    template_json,
)

STORE = "1234567890"
OTHER_STORE = "9876543210"
READ_SETS = ["1111111111", "2222222222"]
KEY_ARN = "arn:aws:kms:us-east-1:111122223333:key/0f4b6d43-2a11-4c4e-9f6b-6f1f1d0c1a2b"
SERVICE = "/ReadSetExportService/"
IAM_POLICY_LIMIT = 6144


def cohort(count: int, start: int = 4000000000) -> list[str]:
    return [str(start + n) for n in range(count)]


def store_arn(store: str, suffix: str = "") -> dict[str, Any]:
    return {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                ":omics:",
                {"Ref": "AWS::Region"},
                ":",
                {"Ref": "AWS::AccountId"},
                f":sequenceStore/{store}{suffix}",
            ],
        ]
    }


def objects(bucket: dict[str, Any], suffix: str) -> dict[str, Any]:
    return {"Fn::Join": ["", [bucket, suffix]]}


# What the handler may do on an export's store: export, and activate archived read sets.
STORE_ACTIONS = [
    "omics:StartReadSetExportJob",
    "omics:GetReadSetExportJob",
    "omics:ListReadSetExportJobs",
    "omics:ListReadSets",
    "omics:StartReadSetActivationJob",
    "omics:GetReadSetActivationJob",
    "omics:ListReadSetActivationJobs",
]


def export_statements(
    store: str, manifests: dict[str, Any], role: dict[str, Any], key: Any = None
) -> list[dict[str, Any]]:
    """The statements one export adds to the shared handler policy, in order."""
    return [
        {
            "Action": STORE_ACTIONS,
            "Effect": "Allow",
            "Resource": store_arn(store),
        },
        {
            "Action": "omics:GetReadSetMetadata",
            "Effect": "Allow",
            "Resource": store_arn(store, "/readSet/*"),
        },
        {"Action": "s3:PutObject", "Effect": "Allow", "Resource": manifests},
        *([{"Action": "kms:GenerateDataKey", "Effect": "Allow", "Resource": key}] if key else []),
        {
            "Action": "iam:PassRole",
            "Condition": {"StringEquals": {"iam:PassedToService": "omics.amazonaws.com"}},
            "Effect": "Allow",
            "Resource": role,
        },
    ]


def regional_arn(service: str, *resource: Any) -> dict[str, Any]:
    """``arn:<partition>:<service>:<region>:<account><resource...>`` as CDK's format_arn
    writes it (``resource``: the strings and tokens after the account, from its colon)."""
    return {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                f":{service}:",
                {"Ref": "AWS::Region"},
                ":",
                {"Ref": "AWS::AccountId"},
                *resource,
            ],
        ]
    }


# The handler publishes the service's status-change events, and only those, to its own bus.
# events:source and events:detail-type are multi-valued condition keys: a set operator, and a
# Null check so that a request without them is not allowed by an empty set.
# "Actions, resources, and condition keys for Amazon EventBridge" (Service Authorization
# Reference): https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoneventbridge.html
# "Single-valued vs. multivalued context keys" (IAM User Guide):
# https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html
EVENT_BUS = "ReadSetExportServiceEvents59052E39"
EVENTS_STATEMENT = {
    "Action": "events:PutEvents",
    "Condition": {
        "ForAllValues:StringEquals": {
            "events:source": ["cdk-omics-export"],
            "events:detail-type": ["Read Set Export Status Change"],
        },
        "Null": {"events:source": "false", "events:detail-type": "false"},
    },
    "Effect": "Allow",
    "Resource": {"Fn::GetAtt": [EVENT_BUS, "Arn"]},
}


def runner_control_statements(template: Template) -> list[dict[str, Any]]:
    """The handler's use of the runner: start executions of the one state machine, read the
    status of its executions (named when they start)."""
    runner = logical_id(template, "AWS::StepFunctions::StateMachine", f"{SERVICE}Runner/")
    return [
        {"Action": "states:StartExecution", "Effect": "Allow", "Resource": {"Ref": runner}},
        {
            "Action": "states:DescribeExecution",
            "Effect": "Allow",
            "Resource": regional_arn(
                "states", ":execution:", {"Fn::GetAtt": [runner, "Name"]}, ":*"
            ),
        },
    ]


# One app, two stacks: the example export alone, and the same export with a second one beside
# it. No context at all: a library must be right under CDK's defaults, not only under the
# example app's feature flags.


@pytest.fixture(scope="module")
def stacks() -> dict[str, tuple[Stack, dict[str, ReadSetExport], Template]]:
    app = App()
    built: dict[str, tuple[Stack, dict[str, ReadSetExport]]] = {}
    for name in ("Test", "Pair"):
        stack = Stack(app, name)
        exports = {
            "Export": ReadSetExport(
                stack,
                "Export",
                sequence_store_id=STORE,
                read_set_ids=READ_SETS,
                destination_prefix="exports/",
            )
        }
        if name == "Pair":
            exports["Cohort"] = ReadSetExport(
                stack,
                "Cohort",
                sequence_store_id=OTHER_STORE,
                read_set_ids=cohort(3),
                destination_prefix="cohort-7/",
                encryption_key=kms.Key.from_key_arn(stack, "CohortKey", KEY_ARN),
            )
        built[name] = (stack, exports)
    return {name: (stack, exports, synth(stack)) for name, (stack, exports) in built.items()}


@pytest.fixture(scope="module")
def synthesized(
    stacks: dict[str, tuple[Stack, dict[str, ReadSetExport], Template]],
) -> tuple[ReadSetExport, Template]:
    _, exports, template = stacks["Test"]
    return exports["Export"], template


@pytest.fixture(scope="module")
def template(synthesized: tuple[ReadSetExport, Template]) -> Template:
    return synthesized[1]


@pytest.fixture(scope="module")
def pair(
    stacks: dict[str, tuple[Stack, dict[str, ReadSetExport], Template]],
) -> tuple[dict[str, ReadSetExport], Template]:
    _, exports, template = stacks["Pair"]
    return exports, template


# One service per stack


def test_two_exports_share_one_service(pair: tuple[dict[str, ReadSetExport], Template]) -> None:
    exports, template = pair
    first, second = exports["Export"], exports["Cohort"]
    assert first.service is second.service
    assert first.service.node.path == "Pair/ReadSetExportService"
    assert ReadSetExportService.of(second) is first.service
    # The runner's step and on_event; no Node.js function at all.
    assert len(python_functions(template)) == 2
    assert len(find(template, "AWS::Lambda::Function")) == 2
    for type_ in ("AWS::DynamoDB::Table", "AWS::KMS::Key", "AWS::SQS::Queue"):
        assert len(find(template, type_)) == 1, type_
    # The handlers' and the runner's.
    assert sorted(find(template, "AWS::Logs::LogGroup")) == sorted(
        [
            logical_id(template, "AWS::Logs::LogGroup", f"{SERVICE}HandlerLogs/"),
            logical_id(template, "AWS::Logs::LogGroup", f"{SERVICE}RunnerLogs/"),
        ]
    )
    # The runner alone: it answers CloudFormation itself.
    assert sorted(find(template, "AWS::StepFunctions::StateMachine")) == [
        logical_id(template, "AWS::StepFunctions::StateMachine", f"{SERVICE}Runner/")
    ]
    assert len(find(template, "Custom::OmicsReadSetExport")) == 2


def test_a_second_export_adds_only_its_own_resources(
    template: Template, pair: tuple[dict[str, ReadSetExport], Template]
) -> None:
    # The watchdog's Lambda permission has a logical id that CDK derives from the stack's
    # path: one in each stack, compared apart.
    def without_permission(resources: dict[str, Any]) -> dict[str, Any]:
        permissions = [k for k, v in resources.items() if v["Type"] == "AWS::Lambda::Permission"]
        assert len(permissions) == 1
        return {k: v for k, v in resources.items() if k not in permissions}

    one = without_permission(template_json(template)["Resources"])
    two = without_permission(template_json(pair[1])["Resources"])
    assert one.keys() <= two.keys()
    assert len(two) - len(one) == 5
    added = {key: two[key]["Type"] for key in two.keys() - one.keys()}
    assert sorted(added.values()) == [
        "AWS::IAM::ManagedPolicy",
        "AWS::IAM::Role",
        "AWS::S3::Bucket",
        "AWS::S3::BucketPolicy",
        "Custom::OmicsReadSetExport",
    ]
    assert all(key.startswith("Cohort") for key in added)


def test_each_stack_has_its_own_service(
    stacks: dict[str, tuple[Stack, dict[str, ReadSetExport], Template]],
) -> None:
    (_, test, test_template), (_, pair, pair_template) = stacks["Test"], stacks["Pair"]
    assert test["Export"].service is not pair["Export"].service
    assert test["Export"].service.node.path == "Test/ReadSetExportService"
    assert pair["Export"].service.node.path == "Pair/ReadSetExportService"
    # Neither stack reaches into the other.
    for template in (test_template, pair_template):
        assert "Fn::ImportValue" not in json.dumps(template_json(template))
        assert all("Export" not in o for o in template_json(template)["Outputs"].values())


def test_state_table_is_encrypted_recoverable_and_retained(template: Template) -> None:
    key = logical_id(template, "AWS::KMS::Key", SERVICE)
    table = resource_of(template, "AWS::DynamoDB::Table", f"{SERVICE}State/")
    assert table["DeletionPolicy"] == "Retain"
    assert table["UpdateReplacePolicy"] == "Retain"
    assert table["Properties"] == {
        "AttributeDefinitions": [
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        "SSESpecification": {"KMSMasterKeyId": arn(key), "SSEEnabled": True, "SSEType": "KMS"},
    }


GUID = {"Fn::Select": [2, {"Fn::Split": ["/", {"Ref": "AWS::StackId"}]}]}


def test_service_key_rotates_is_retained_and_serves_only_the_services_logs(
    synthesized: tuple[ReadSetExport, Template],
) -> None:
    _, template = synthesized
    key = resource_of(template, "AWS::KMS::Key", f"{SERVICE}Key/")
    assert key["DeletionPolicy"] == "Retain"
    assert key["Properties"]["EnableKeyRotation"] is True
    key_policy = key["Properties"]["KeyPolicy"]["Statement"]
    services = [s for s in key_policy if "Service" in s["Principal"]]
    assert services == [
        {
            "Action": [
                "kms:Encrypt*",
                "kms:Decrypt*",
                "kms:ReEncrypt*",
                "kms:GenerateDataKey*",
                "kms:Describe*",
            ],
            # The service's two log groups, named by the stack's GUID: not log-group:*.
            "Condition": {
                "ArnEquals": {
                    "kms:EncryptionContext:aws:logs:arn": [
                        regional_arn("logs", ":log-group:/cdk-omics-export/handler-", GUID),
                        regional_arn(
                            "logs", ":log-group:/aws/vendedlogs/states/cdk-omics-export-", GUID
                        ),
                    ]
                }
            },
            "Effect": "Allow",
            "Principal": {
                "Service": {
                    "Fn::Join": [
                        "",
                        ["logs.", {"Ref": "AWS::Region"}, ".", {"Ref": "AWS::URLSuffix"}],
                    ]
                }
            },
            "Resource": "*",
        },
    ]


def test_the_functions_environment_is_encrypted_with_the_services_key(
    template: Template,
) -> None:
    key = logical_id(template, "AWS::KMS::Key", SERVICE)
    functions = python_functions(template)
    assert len(functions) == 2
    assert {name: f["Properties"]["KmsKeyArn"] for name, f in functions.items()} == dict.fromkeys(
        functions, arn(key)
    )


# Destination bucket and access logs


def test_destination_bucket_is_locked_down_and_retained(
    synthesized: tuple[ReadSetExport, Template],
) -> None:
    export, template = synthesized
    logs_bucket = logical_id(template, "AWS::S3::Bucket", f"{SERVICE}AccessLogs/")
    resource = resource_of(template, "AWS::S3::Bucket", "/Export/Bucket/")
    assert resource["DeletionPolicy"] == "Retain"
    assert resource["UpdateReplacePolicy"] == "Retain"
    assert resource["Properties"] == {
        "BucketEncryption": {
            "ServerSideEncryptionConfiguration": [
                {
                    "BucketKeyEnabled": True,
                    "ServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"},
                }
            ]
        },
        # Replaced exports are paid for only 90 days; uploads HealthOmics abandoned, 7 days.
        "LifecycleConfiguration": {
            "Rules": [
                {
                    "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
                    "Id": "NoncurrentVersions",
                    "NoncurrentVersionExpiration": {"NoncurrentDays": 90},
                    "Status": "Enabled",
                }
            ]
        },
        "LoggingConfiguration": {
            "DestinationBucketName": {"Ref": logs_bucket},
            "LogFilePrefix": f"{export.node.addr}/",
        },
        "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
        "PublicAccessBlockConfiguration": {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        },
        "VersioningConfiguration": {"Status": "Enabled"},
    }


def test_access_log_bucket_is_locked_down_encrypted_with_sse_s3_and_retained(
    template: Template,
) -> None:
    resource = resource_of(template, "AWS::S3::Bucket", f"{SERVICE}AccessLogs/")
    assert resource["DeletionPolicy"] == "Retain"
    # SSE-S3, the only default encryption S3 server access logging delivers to: no key, no
    # alias, no key grant to log delivery.
    # "Enabling Amazon S3 server access logging" (Amazon S3 User Guide):
    # https://docs.aws.amazon.com/AmazonS3/latest/userguide/enable-server-access-logging.html
    assert resource["Properties"] == {
        "BucketEncryption": {
            "ServerSideEncryptionConfiguration": [
                {
                    "BucketKeyEnabled": True,
                    "ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"},
                }
            ]
        },
        "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
        "PublicAccessBlockConfiguration": {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        },
        "VersioningConfiguration": {"Status": "Enabled"},
    }
    assert not find(template, "AWS::KMS::Alias")
    key_policy = resource_of(template, "AWS::KMS::Key", f"{SERVICE}Key/")["Properties"]
    principals = json.dumps(key_policy["KeyPolicy"])
    assert "logging.s3.amazonaws.com" not in principals


@pytest.mark.parametrize("path_part", ["/Export/Bucket/", f"{SERVICE}AccessLogs/"])
def test_buckets_refuse_requests_without_tls(template: Template, path_part: str) -> None:
    bucket = logical_id(template, "AWS::S3::Bucket", path_part)
    template.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "Bucket": {"Ref": bucket},
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        {
                            "Action": "s3:*",
                            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            "Effect": "Deny",
                            "Principal": {"AWS": "*"},
                            "Resource": [arn(bucket), objects(arn(bucket), "/*")],
                        }
                    ]
                )
            },
        },
    )


def test_destination_refuses_other_keys_and_manifests_written_by_anyone_else(
    template: Template,
) -> None:
    bucket = logical_id(template, "AWS::S3::Bucket", "/Export/Bucket/")
    role = logical_id(template, "AWS::IAM::Role", f"{SERVICE}HandlerRole/")
    policy = resource_of(template, "AWS::S3::BucketPolicy", "/Export/Bucket/")
    header = "s3:x-amz-server-side-encryption-aws-kms-key-id"
    assert policy["Properties"]["PolicyDocument"]["Statement"][1:] == [
        {
            # With the account's aws/s3 key, whose ARN is unknown at synth, any named key is
            # refused: HealthOmics and the manifests write with the bucket's default. S3
            # compares this header with key ARNs, never aliases.
            # "Using server-side encryption with AWS KMS keys (SSE-KMS)" (Amazon S3 User
            # Guide): https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html
            "Action": "s3:PutObject",
            "Condition": {"Null": {header: "false"}},
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Resource": objects(arn(bucket), "/*"),
            "Sid": "DenyOtherKmsKeys",
        },
        {
            "Action": "s3:PutObject",
            "Condition": {"ArnNotEquals": {"aws:PrincipalArn": arn(role)}},
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Resource": objects(arn(bucket), "/exports/cdk-omics-export/*"),
            "Sid": "ManifestsByTheServiceOnly",
        },
    ]


def test_each_exports_access_logs_go_to_its_own_folder_of_the_shared_bucket(
    pair: tuple[dict[str, ReadSetExport], Template],
) -> None:
    exports, template = pair
    logs_bucket = logical_id(template, "AWS::S3::Bucket", f"{SERVICE}AccessLogs/")
    delivery = [
        {
            "Action": "s3:PutObject",
            "Condition": {
                "ArnLike": {
                    "aws:SourceArn": arn(
                        logical_id(template, "AWS::S3::Bucket", f"/{name}/Bucket/")
                    )
                },
                "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
            },
            "Effect": "Allow",
            "Principal": {"Service": "logging.s3.amazonaws.com"},
            "Resource": objects(arn(logs_bucket), f"/{export.node.addr}/*"),
        }
        for name, export in exports.items()
    ]
    policy = resource_of(template, "AWS::S3::BucketPolicy", f"{SERVICE}AccessLogs/")
    assert policy["Properties"]["PolicyDocument"]["Statement"][1:] == delivery
    for name, export in exports.items():
        bucket = resource_of(template, "AWS::S3::Bucket", f"/{name}/Bucket/")
        assert bucket["Properties"]["LoggingConfiguration"] == {
            "DestinationBucketName": {"Ref": logs_bucket},
            "LogFilePrefix": f"{export.node.addr}/",
        }


# Export service role


def test_export_role_trusts_only_healthomics_from_this_account(template: Template) -> None:
    role = resource_of(template, "AWS::IAM::Role", "/Export/ExportRole/")
    assert role["Properties"]["AssumeRolePolicyDocument"] == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Action": "sts:AssumeRole",
                "Effect": "Allow",
                "Principal": {"Service": "omics.amazonaws.com"},
                "Condition": {
                    "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
                    "StringLike": {
                        "aws:SourceArn": {
                            "Fn::Join": [
                                "",
                                [
                                    "arn:",
                                    {"Ref": "AWS::Partition"},
                                    ":omics:",
                                    {"Ref": "AWS::Region"},
                                    ":",
                                    {"Ref": "AWS::AccountId"},
                                    ":*",
                                ],
                            ]
                        }
                    },
                },
            }
        ],
    }


def test_export_role_may_only_write_under_the_prefix(template: Template) -> None:
    bucket = logical_id(template, "AWS::S3::Bucket", "/Export/Bucket/")
    policy = logical_id(template, "AWS::IAM::ManagedPolicy", "/Export/ExportPolicy/")
    role = resource_of(template, "AWS::IAM::Role", "/Export/ExportRole/")
    # The role references the policy: CloudFormation creates the permissions first.
    assert role["Properties"]["ManagedPolicyArns"] == [{"Ref": policy}]
    assert "Policies" not in role["Properties"]
    document = resource_of(template, "AWS::IAM::ManagedPolicy", "/Export/ExportPolicy/")
    assert document["Properties"]["PolicyDocument"] == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Action": "s3:PutObject",
                "Effect": "Allow",
                "Resource": objects(arn(bucket), "/exports/*"),
            },
            {"Action": "s3:GetBucketLocation", "Effect": "Allow", "Resource": arn(bucket)},
        ],
    }
    assert "Roles" not in document["Properties"]


@pytest.mark.parametrize(
    ("role_path", "attached"),
    [
        ("/Export/ExportRole/", []),
        # Attached by the policy's Roles: the role cannot refer to it (see the test below).
        (f"{SERVICE}HandlerRole/", [f"{SERVICE}RunnerControlPolicy/"]),
        (f"{SERVICE}RunnerRole/", []),
    ],
)
def test_no_other_policy_reaches_our_roles(
    template: Template, role_path: str, attached: list[str]
) -> None:
    role = {"Ref": logical_id(template, "AWS::IAM::Role", role_path)}
    reaching = [
        key
        for type_ in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")
        for key, policy in find(template, type_).items()
        if role in policy["Properties"].get("Roles", [])
    ]
    assert reaching == [logical_id(template, "AWS::IAM::ManagedPolicy", path) for path in attached]


# The shared handler


def test_handler_role_is_exactly_scoped(template: Template) -> None:
    export_role = logical_id(template, "AWS::IAM::Role", "/Export/ExportRole/")
    table = logical_id(template, "AWS::DynamoDB::Table", SERVICE)
    key = logical_id(template, "AWS::KMS::Key", SERVICE)
    log_group = logical_id(template, "AWS::Logs::LogGroup", f"{SERVICE}HandlerLogs/")
    queue = logical_id(template, "AWS::SQS::Queue", f"{SERVICE}DeadLetters/")
    bucket = logical_id(template, "AWS::S3::Bucket", "/Export/Bucket/")
    (policy,) = handler_policies(template)
    role = logical_id(template, "AWS::IAM::Role", f"{SERVICE}HandlerRole/")
    props = resource_of(template, "AWS::IAM::Role", f"{SERVICE}HandlerRole/")["Properties"]
    assert props["ManagedPolicyArns"] == [{"Ref": policy}]
    assert "Policies" not in props
    # The one other policy of the role, attached by its Roles (see below).
    control = resource_of(template, "AWS::IAM::ManagedPolicy", f"{SERVICE}RunnerControlPolicy/")
    assert control["Properties"]["Roles"] == [{"Ref": role}]
    assert control["Properties"]["PolicyDocument"] == {
        "Version": "2012-10-17",
        "Statement": runner_control_statements(template),
    }
    assert props["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Action": "sts:AssumeRole",
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
        }
    ]
    document = template_json(template)["Resources"][policy]["Properties"]["PolicyDocument"]
    assert document == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Action": [
                    "dynamodb:GetItem",
                    "dynamodb:Query",
                    "dynamodb:UpdateItem",
                    "dynamodb:ConditionCheckItem",
                ],
                "Effect": "Allow",
                "Resource": arn(table),
            },
            {
                "Action": ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"],
                "Effect": "Allow",
                "Resource": arn(key),
            },
            {"Action": "sqs:SendMessage", "Effect": "Allow", "Resource": arn(queue)},
            # The manifest is written, never read: no s3:GetObject, no s3:ListBucket.
            *export_statements(
                STORE, objects(arn(bucket), "/exports/cdk-omics-export/*"), arn(export_role)
            ),
            {
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Effect": "Allow",
                "Resource": arn(log_group),
            },
            EVENTS_STATEMENT,
        ],
    }


def test_shared_handler_gets_each_exports_scoped_statements(
    pair: tuple[dict[str, ReadSetExport], Template],
) -> None:
    _, template = pair

    def of(type_: str, path: str) -> dict[str, Any]:
        return arn(logical_id(template, type_, path))

    (policy,) = handler_policies(template)
    template.has_resource_properties(
        "AWS::IAM::ManagedPolicy",
        Match.object_equals(
            {
                "Description": "cdk-omics-export: what the stack's export handler may do",
                "Path": "/",
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Action": [
                                "dynamodb:GetItem",
                                "dynamodb:Query",
                                "dynamodb:UpdateItem",
                                "dynamodb:ConditionCheckItem",
                            ],
                            "Effect": "Allow",
                            "Resource": of("AWS::DynamoDB::Table", SERVICE),
                        },
                        {
                            "Action": ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"],
                            "Effect": "Allow",
                            "Resource": of("AWS::KMS::Key", SERVICE),
                        },
                        {
                            "Action": "sqs:SendMessage",
                            "Effect": "Allow",
                            "Resource": of("AWS::SQS::Queue", SERVICE),
                        },
                        *export_statements(
                            STORE,
                            objects(
                                of("AWS::S3::Bucket", "/Export/Bucket/"),
                                "/exports/cdk-omics-export/*",
                            ),
                            of("AWS::IAM::Role", "/Export/ExportRole/"),
                        ),
                        *export_statements(
                            OTHER_STORE,
                            objects(
                                of("AWS::S3::Bucket", "/Cohort/Bucket/"),
                                "/cohort-7/cdk-omics-export/*",
                            ),
                            of("AWS::IAM::Role", "/Cohort/ExportRole/"),
                            key=KEY_ARN,
                        ),
                        {
                            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                            "Effect": "Allow",
                            "Resource": of("AWS::Logs::LogGroup", f"{SERVICE}HandlerLogs/"),
                        },
                        EVENTS_STATEMENT,
                    ],
                },
            }
        ),
    )
    resources = template_json(template)["Resources"]
    assert list(resources[policy]["Properties"]) == ["Description", "Path", "PolicyDocument"]


def test_exports_run_only_once_the_handler_has_their_permissions(
    pair: tuple[dict[str, ReadSetExport], Template],
) -> None:
    """An export's statements reach the shared role before its resource (or any function)
    runs: on a first deploy, and when an export is added to a stack that has others."""
    _, template = pair
    policies = handler_policies(template)
    dependents = [*find(template, "Custom::OmicsReadSetExport"), *python_functions(template)]
    for dependent in dependents:
        for policy in policies:
            assert depends_on(template, dependent, policy), (dependent, policy)


def test_handler_runtime_is_the_newest_python_cdk_offers() -> None:
    def version(runtime: lambda_.Runtime) -> tuple[int, ...]:
        return tuple(int(part) for part in runtime.name.removeprefix("python").split("."))

    pythons = [
        getattr(lambda_.Runtime, name)
        for name in dir(lambda_.Runtime)
        if name.startswith("PYTHON_")
    ]
    assert version(HANDLER_RUNTIME) == max(version(r) for r in pythons)


def test_the_services_bus_takes_events_from_the_handler_role_only(template: Template) -> None:
    assert logical_id(template, "AWS::Events::EventBus", f"{SERVICE}Events/") == EVENT_BUS
    role = logical_id(template, "AWS::IAM::Role", f"{SERVICE}HandlerRole/")
    policy = resource_of(template, "AWS::Events::EventBusPolicy", f"{SERVICE}Events/")
    assert policy["Properties"] == {
        "EventBusName": {"Ref": EVENT_BUS},
        "Statement": {
            "Action": "events:PutEvents",
            "Condition": {"ArnNotEquals": {"aws:PrincipalArn": arn(role)}},
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Resource": arn(EVENT_BUS),
            "Sid": "cdk-OnlyTheServicePutsEvents",
        },
        "StatementId": "cdk-OnlyTheServicePutsEvents",
    }


@pytest.mark.parametrize(
    ("path_part", "entry_point", "starts_runners"),
    [
        # The runner's step learns its state machine from its context object.
        (f"{SERVICE}RunnerHandler/", "index.run_step", False),
        (f"{SERVICE}OnEventHandler/", "index.on_event", True),
    ],
)
def test_handler_functions(
    template: Template, path_part: str, entry_point: str, starts_runners: bool
) -> None:
    function = resource_of(template, "AWS::Lambda::Function", path_part)
    props = function["Properties"]
    log_group = {"Ref": logical_id(template, "AWS::Logs::LogGroup", f"{SERVICE}HandlerLogs/")}
    role = logical_id(template, "AWS::IAM::Role", f"{SERVICE}HandlerRole/")
    runner = logical_id(template, "AWS::StepFunctions::StateMachine", f"{SERVICE}Runner/")
    control = logical_id(template, "AWS::IAM::ManagedPolicy", f"{SERVICE}RunnerControlPolicy/")
    key = logical_id(template, "AWS::KMS::Key", SERVICE)
    # The functions that start runner executions wait for the policy that allows it.
    assert function["DependsOn"] == [role, *([control] if starts_runners else [])]
    # No reservation unless asked (reserved_concurrency): it would come out of the account's
    # pool, and a new account's quota cannot spare it.
    assert {key: value for key, value in props.items() if key != "Code"} == {
        "Architectures": ["arm64"],
        "DeadLetterConfig": {
            "TargetArn": arn(logical_id(template, "AWS::SQS::Queue", f"{SERVICE}DeadLetters/"))
        },
        "Description": "cdk-omics-export: HealthOmics read set exports of this stack",
        "Environment": {
            "Variables": {
                "STATE_TABLE_NAME": {"Ref": logical_id(template, "AWS::DynamoDB::Table", SERVICE)},
                "LOG_GROUP_NAME": log_group,
                "MAX_REQUESTS_PER_SECOND": "5",
                "POLL_INTERVAL_SECONDS": "30",
                "EVENT_BUS_NAME": {"Ref": EVENT_BUS},
                **({"RUNNER_STATE_MACHINE_ARN": {"Ref": runner}} if starts_runners else {}),
            }
        },
        "Handler": entry_point,
        "KmsKeyArn": arn(key),
        "LoggingConfig": {"LogGroup": log_group},
        "MemorySize": 256,
        "Role": arn(role),
        "Runtime": HANDLER_RUNTIME.name,
        "Timeout": 300,
    }


def test_handler_log_group_is_encrypted_with_a_retention_period(template: Template) -> None:
    key = logical_id(template, "AWS::KMS::Key", SERVICE)
    resource = resource_of(template, "AWS::Logs::LogGroup", f"{SERVICE}HandlerLogs/")
    assert resource["Properties"] == {
        "KmsKeyId": arn(key),
        "LogGroupName": {"Fn::Join": ["", ["/cdk-omics-export/handler-", GUID]]},
        "RetentionInDays": 365,
    }
    assert resource["DeletionPolicy"] == "Retain"


def test_dead_letter_queue_is_encrypted_and_tls_only(template: Template) -> None:
    queue = logical_id(template, "AWS::SQS::Queue", f"{SERVICE}DeadLetters/")
    props = resource_of(template, "AWS::SQS::Queue", f"{SERVICE}DeadLetters/")["Properties"]
    assert props == {"MessageRetentionPeriod": 1209600, "SqsManagedSseEnabled": True}
    watchdog = logical_id(template, "AWS::Events::Rule", f"{SERVICE}RunnerWatchdog/")
    template.has_resource_properties(
        "AWS::SQS::QueuePolicy",
        {
            "Queues": [{"Ref": queue}],
            "PolicyDocument": {
                "Statement": [
                    Match.object_like(
                        {
                            "Action": "sqs:*",
                            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            "Effect": "Deny",
                        }
                    ),
                    # The watchdog rule's undeliverable events, from that rule only.
                    {
                        "Action": "sqs:SendMessage",
                        "Condition": {"ArnEquals": {"aws:SourceArn": arn(watchdog)}},
                        "Effect": "Allow",
                        "Principal": {"Service": "events.amazonaws.com"},
                        "Resource": arn(queue),
                        "Sid": Match.any_value(),
                    },
                ]
            },
        },
    )


def test_a_failed_runner_execution_is_restarted_by_the_watchdog(template: Template) -> None:
    runner = logical_id(template, "AWS::StepFunctions::StateMachine", f"{SERVICE}Runner/")
    step = logical_id(template, "AWS::Lambda::Function", f"{SERVICE}RunnerHandler/")
    queue = logical_id(template, "AWS::SQS::Queue", f"{SERVICE}DeadLetters/")
    rule = resource_of(template, "AWS::Events::Rule", f"{SERVICE}RunnerWatchdog/")["Properties"]
    # Failed or timed out (retries spent), not stopped by hand: a person's stop stands.
    assert rule["EventPattern"] == {
        "source": ["aws.states"],
        "detail-type": ["Step Functions Execution Status Change"],
        "detail": {
            "stateMachineArn": [{"Ref": runner}],
            "status": ["FAILED", "TIMED_OUT", "ABORTED"],
        },
    }
    assert rule["Targets"] == [
        {
            "Arn": arn(step),
            "DeadLetterConfig": {"Arn": arn(queue)},
            "Id": "Target0",
            "RetryPolicy": {"MaximumRetryAttempts": 12},
        }
    ]
    template.has_resource_properties(
        "AWS::Lambda::Permission",
        {
            "Action": "lambda:InvokeFunction",
            "FunctionName": arn(step),
            "Principal": "events.amazonaws.com",
            "SourceArn": arn(logical_id(template, "AWS::Events::Rule", "RunnerWatchdog")),
        },
    )


def test_handler_code_is_the_handler_package_alone(
    synthesized: tuple[ReadSetExport, Template],
) -> None:
    export, template = synthesized
    service = export.service
    functions = [service.runner_function, service.on_event_function]
    # One asset for the two functions, staged under the first that bound it.
    (code,) = [c for f in functions if (c := f.node.try_find_child("Code")) is not None]
    outdir = Path(App.of(export).outdir)  # type: ignore[union-attr]
    staged = outdir / code.asset_path  # type: ignore[attr-defined]
    shipped = sorted(str(p.relative_to(staged)) for p in staged.rglob("*") if p.is_file())
    source = Path(handler_package.__file__).parent
    assert shipped == sorted(str(p.relative_to(source)) for p in source.rglob("*.py"))
    assert "answer.py" in shipped and "index.py" in shipped and "core/decide.py" in shipped
    codes = [f["Properties"]["Code"] for f in python_functions(template).values()]
    assert len(codes) == 2
    assert all(c == codes[0] for c in codes)


# The runner: one Step Functions state machine carries each export to its end


def test_runner_steps_waits_and_ends(synthesized: tuple[ReadSetExport, Template]) -> None:
    export, template = synthesized
    stack = Stack.of(export)
    step = logical_id(template, "AWS::Lambda::Function", f"{SERVICE}RunnerHandler/")
    machine = export.service.runner.node.default_child
    resolved = stack.resolve(machine.definition_string)  # type: ignore[union-attr]
    runner = resource_of(template, "AWS::StepFunctions::StateMachine", f"{SERVICE}Runner/")
    assert resolved == runner["Properties"]["DefinitionString"]
    definition = state_machine_definition(resolved)
    retries = [
        # The Lambda service's own errors, throttling included: at most a minute apart, for
        # about 56 minutes (Step Functions applies only the first retrier that matches).
        {
            "ErrorEquals": [
                "Lambda.ClientExecutionTimeoutException",
                "Lambda.ServiceException",
                "Lambda.AWSLambdaException",
                "Lambda.SdkClientException",
                "Lambda.TooManyRequestsException",
            ],
            "IntervalSeconds": 2,
            "MaxAttempts": 60,
            "BackoffRate": 2,
            "MaxDelaySeconds": 60,
        },
        # Anything else, last: from the poll interval, doubling, at most 15 minutes apart.
        {
            "ErrorEquals": ["States.ALL"],
            "IntervalSeconds": 30,
            "MaxAttempts": 12,
            "BackoffRate": 2,
            "MaxDelaySeconds": 900,
        },
    ]
    assert definition == {
        "Comment": "cdk-omics-export: carries each export of the stack to its end",
        "StartAt": "Step",
        "States": {
            "Step": {
                "Type": "Task",
                # The function itself (payload_response_only): the step's answer is the state.
                "Resource": arn(step),
                "Parameters": {
                    "exportId.$": "$.exportId",
                    "steps.$": "$.steps",
                    "execution.$": "$$.Execution.Name",
                    "stateMachine.$": "$$.StateMachine.Id",
                },
                "Retry": retries,
                "Next": "CarryOn",
            },
            "CarryOn": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.action", "StringEquals": "END", "Next": "Ended"}],
                "Default": "Wait",
            },
            # As long as the step says: Step Functions' Wait costs nothing while it waits.
            "Wait": {"Type": "Wait", "SecondsPath": "$.waitSeconds", "Next": "Step"},
            "Ended": {"Type": "Succeed"},
        },
    }
    # About two hours of retries before the execution fails and the watchdog starts
    # another: 30 + 60 + 120 + 240 + 480 + 7 x 900 seconds.
    last = retries[-1]
    delays = [
        min(last["IntervalSeconds"] * last["BackoffRate"] ** n, last["MaxDelaySeconds"])
        for n in range(last["MaxAttempts"])
    ]
    assert sum(delays) == 7230


def test_runner_is_a_standard_state_machine_logging_errors_to_a_vended_log_group(
    template: Template,
) -> None:
    machine = logical_id(template, "AWS::StepFunctions::StateMachine", f"{SERVICE}Runner/")
    runner = template_json(template)["Resources"][machine]
    log_group = logical_id(template, "AWS::Logs::LogGroup", f"{SERVICE}RunnerLogs/")
    key = logical_id(template, "AWS::KMS::Key", SERVICE)
    # Under /aws/vendedlogs/, so the account's CloudWatch Logs resource policy does not grow
    # with each stack; named by the stack's GUID, so a stack created again after a retained
    # one gets a log group of its own.
    logs_group = template_json(template)["Resources"][log_group]
    assert logs_group["Properties"] == {
        "KmsKeyId": arn(key),
        "LogGroupName": {
            "Fn::Join": [
                "",
                [
                    "/aws/vendedlogs/states/cdk-omics-export-",
                    {"Fn::Select": [2, {"Fn::Split": ["/", {"Ref": "AWS::StackId"}]}]},
                ],
            ]
        },
        "RetentionInDays": 365,
    }
    assert logs_group["DeletionPolicy"] == "Retain"
    role = logical_id(template, "AWS::IAM::Role", f"{SERVICE}RunnerRole/")
    # No tracing (acknowledged to cdk-nag): the history and the logs record every step.
    assert {k: v for k, v in runner["Properties"].items() if k != "DefinitionString"} == {
        "LoggingConfiguration": {
            "Destinations": [{"CloudWatchLogsLogGroup": {"LogGroupArn": arn(log_group)}}],
            # Errors only, without data: the runner's input names the filter's values.
            "IncludeExecutionData": False,
            "Level": "ERROR",
        },
        "RoleArn": arn(role),
        "StateMachineType": "STANDARD",
    }
    # Its executions' history is in the retained log group; the machine goes with the stack.
    assert runner["DeletionPolicy"] == "Delete"
    assert runner["UpdateReplacePolicy"] == "Delete"
    # Created once its role has its permissions (the role names its managed policy).
    assert runner["DependsOn"] == [role]
    policy = logical_id(template, "AWS::IAM::ManagedPolicy", f"{SERVICE}RunnerRolePolicy/")
    assert depends_on(template, machine, policy)


def test_runner_role_trusts_step_functions_and_may_only_call_its_step_and_log(
    template: Template,
) -> None:
    step = logical_id(template, "AWS::Lambda::Function", f"{SERVICE}RunnerHandler/")
    policy = logical_id(template, "AWS::IAM::ManagedPolicy", f"{SERVICE}RunnerRolePolicy/")
    role = resource_of(template, "AWS::IAM::Role", f"{SERVICE}RunnerRole/")
    assert role["Properties"] == {
        "AssumeRolePolicyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Action": "sts:AssumeRole",
                    "Condition": {
                        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
                        "ArnLike": {"aws:SourceArn": regional_arn("states", ":stateMachine:*")},
                    },
                    "Effect": "Allow",
                    "Principal": {"Service": "states.amazonaws.com"},
                }
            ],
        },
        "Description": "Runs the cdk-omics-export runner: calls its step and logs",
        # Every permission in the managed policy: no inline policy, no DefaultPolicy.
        "ManagedPolicyArns": [{"Ref": policy}],
    }
    assert resource_of(template, "AWS::IAM::ManagedPolicy", f"{SERVICE}RunnerRolePolicy/")[
        "Properties"
    ] == {
        "Description": "cdk-omics-export: what the runner state machine may do",
        "Path": "/",
        "PolicyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {"Action": "lambda:InvokeFunction", "Effect": "Allow", "Resource": arn(step)},
                # Step Functions' log delivery: these actions take no resource-level
                # permissions (acknowledged to cdk-nag).
                {
                    "Action": [
                        "logs:CreateLogDelivery",
                        "logs:GetLogDelivery",
                        "logs:UpdateLogDelivery",
                        "logs:DeleteLogDelivery",
                        "logs:ListLogDeliveries",
                        "logs:PutResourcePolicy",
                        "logs:DescribeResourcePolicies",
                        "logs:DescribeLogGroups",
                    ],
                    "Effect": "Allow",
                    "Resource": "*",
                },
            ],
        },
    }


def test_handler_starts_and_follows_only_the_runners_executions(template: Template) -> None:
    """RunnerControlPolicy is attached by its Roles: the runner refers to its step, whose
    role is the handler's, so the role cannot refer to a policy that refers to the runner.
    The functions that start executions, and so every export, wait for it instead."""
    role = logical_id(template, "AWS::IAM::Role", f"{SERVICE}HandlerRole/")
    control = logical_id(template, "AWS::IAM::ManagedPolicy", f"{SERVICE}RunnerControlPolicy/")
    template.has_resource_properties(
        "AWS::IAM::ManagedPolicy",
        Match.object_equals(
            {
                "Description": "cdk-omics-export: the handler starts and follows runner executions",
                "Path": "/",
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": runner_control_statements(template),
                },
                "Roles": [{"Ref": role}],
            }
        ),
    )
    handler_role = resource_of(template, "AWS::IAM::Role", f"{SERVICE}HandlerRole/")
    assert {"Ref": control} not in handler_role["Properties"]["ManagedPolicyArns"]
    for dependent in (
        logical_id(template, "AWS::Lambda::Function", f"{SERVICE}OnEventHandler/"),
        logical_id(template, "Custom::OmicsReadSetExport", "/Export/Resource/"),
    ):
        assert depends_on(template, dependent, control), dependent


# The custom resource, served by the service's own function


def test_custom_resource_receives_the_export_role_and_the_export(template: Template) -> None:
    role_arn = Capture()
    assert len(find(template, "Custom::OmicsReadSetExport")) == 1
    bucket = logical_id(template, "AWS::S3::Bucket", "/Export/Bucket/")
    template.has_resource_properties(
        "Custom::OmicsReadSetExport",
        Match.object_equals(
            {
                "ServiceToken": arn(
                    logical_id(template, "AWS::Lambda::Function", f"{SERVICE}OnEventHandler/")
                ),
                "ServiceTimeout": "3300",
                "ConstructPath": "Test/Export",
                "ExportGeneration": 0,
                "SequenceStoreId": STORE,
                "ReadSetIds": READ_SETS,
                "Destination": {"Fn::Join": ["", ["s3://", {"Ref": bucket}, "/exports/"]]},
                "RoleArn": role_arn,
                # No key of the user's: manifests are written with the bucket's default
                # encryption (the account's aws/s3 key), naming no key.
                "WaitForCompletion": True,
                "TimeoutSeconds": 3000,
            }
        ),
    )
    assert role_arn.as_object() == arn(
        logical_id(template, "AWS::IAM::Role", "/Export/ExportRole/")
    )


def test_custom_resource_names_a_known_destination_key(
    pair: tuple[dict[str, ReadSetExport], Template],
) -> None:
    _, template = pair
    props = resource_of(template, "Custom::OmicsReadSetExport", "/Cohort/Resource/")["Properties"]
    assert props["ConstructPath"] == "Pair/Cohort"
    assert props["Encryption"] == "aws:kms"
    assert props["KmsKeyArn"] == KEY_ARN
    assert props["ReadSetIds"] == cohort(3)


def test_no_provider_framework_and_no_nodejs_function(template: Template) -> None:
    functions = find(template, "AWS::Lambda::Function")
    assert sorted(f["Properties"]["Handler"] for f in functions.values()) == [
        "index.on_event",
        "index.run_step",
    ]
    assert all(f["Properties"]["Runtime"].startswith("python") for f in functions.values())
    assert not [k for k in template_json(template)["Resources"] if "Provider" in k]
    # CloudFormation invokes the function asynchronously: no resource policy is needed for
    # it, and the only permission is the watchdog rule's on the runner's function.
    (permission,) = find(template, "AWS::Lambda::Permission").values()
    assert permission["Properties"]["Principal"] == "events.amazonaws.com"


def test_three_outputs_per_export_and_two_of_the_service(
    pair: tuple[dict[str, ReadSetExport], Template],
) -> None:
    exports, template = pair
    outputs = template_json(template)["Outputs"]
    assert len(outputs) == 3 * len(exports) + 2
    # Where `cdk-omics-export status` checks each manifest: the state and the runner.
    service = {key[:-8]: o["Value"] for key, o in outputs.items() if key.startswith("ReadSet")}
    assert service == {
        "ReadSetExportServiceStateTableName": {
            "Ref": logical_id(template, "AWS::DynamoDB::Table", SERVICE)
        },
        "ReadSetExportServiceRunnerStateMachineArn": {
            "Ref": logical_id(template, "AWS::StepFunctions::StateMachine", f"{SERVICE}Runner/")
        },
    }
    for name in exports:
        resource = logical_id(template, "Custom::OmicsReadSetExport", f"/{name}/Resource/")
        mine = {
            key[len(name) : -8]: o["Value"] for key, o in outputs.items() if key.startswith(name)
        }
        assert mine == {
            "JobId": {"Fn::GetAtt": [resource, "JobId"]},
            "JobStatus": {"Fn::GetAtt": [resource, "Status"]},
            "ManifestUri": {"Fn::GetAtt": [resource, "ManifestUri"]},
        }


def test_attributes(synthesized: tuple[ReadSetExport, Template]) -> None:
    export, template = synthesized
    stack = Stack.of(export)
    resource = logical_id(template, "Custom::OmicsReadSetExport", "/Export/Resource/")
    assert isinstance(export.resource, CustomResource)
    assert stack.resolve(export.export_id) == {"Ref": resource}
    for attribute, name in (
        (export.job_id, "JobId"),
        (export.job_ids, "JobIds"),
        (export.job_status, "Status"),
        (export.job_count, "JobCount"),
        (export.read_set_count, "ReadSetCount"),
        (export.exported_read_set_count, "ExportedReadSetCount"),
        (export.failed_read_set_count, "FailedReadSetCount"),
        (export.manifest_uri, "ManifestUri"),
    ):
        assert stack.resolve(attribute) == {"Fn::GetAtt": [resource, name]}
    assert stack.resolve(export.destination) == {
        "Fn::Join": ["", ["s3://", stack.resolve(export.bucket.bucket_name), "/exports/"]]
    }
    assert stack.resolve(export.role.role_arn) == arn(
        logical_id(template, "AWS::IAM::Role", "/Export/ExportRole/")
    )
    service = export.service
    for construct, path in (
        (service.on_event_function, "OnEventHandler"),
        (service.runner_function, "RunnerHandler"),
        (service.runner, "Runner"),
        (service.log_group, "HandlerLogs"),
        (service.key, "Key"),
        (service.dead_letter_queue, "DeadLetters"),
        (service.table, "State"),
        (service.handler_role, "HandlerRole"),
    ):
        assert construct.node.path == f"Test/ReadSetExportService/{path}"
    assert [p.node.id for p in service.handler_policies] == ["HandlerPolicy"]
    for gone in ("function", "is_complete_function", "log_group", "logs_key", "dead_letter_queue"):
        assert not hasattr(export, gone), gone
    for gone in ("provider", "is_complete_function"):
        assert not hasattr(service, gone), gone


# Selections, timeouts, and cohorts of every size: one stack of exports beside each other.


@pytest.fixture(scope="module")
def cohorts(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[dict[str, ReadSetExport], Template, Path, list[list[str]]]:
    """Also returns the temp dir the read set lists were written to, and its listing after
    the first synthesis and after a second one of the same ids."""
    temp = tmp_path_factory.mktemp("tempdir")

    def listing() -> list[str]:
        return sorted(str(p.relative_to(temp)) for p in temp.rglob("*"))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tempfile, "tempdir", str(temp))
        stack = Stack(App(), "Cohorts")
        store = omics.CfnSequenceStore(stack, "Store", name="cohort")
        exports = {
            name: ReadSetExport(stack, name, sequence_store_id=STORE, read_set_ids=ids)
            for name, ids in (
                ("Hundred", cohort(100)),
                ("Over", cohort(101)),
                ("Reordered", cohort(101)[::-1]),
                ("Cohort", cohort(10_000)),
            )
        }
        exports["FromStore"] = ReadSetExport(
            stack,
            "FromStore",
            sequence_store_id=store.attr_sequence_store_id,
            read_set_ids=READ_SETS,
        )
        exports["ByFilter"] = ReadSetExport(
            stack,
            "ByFilter",
            sequence_store_id=OTHER_STORE,
            read_set_filter=ReadSetFilter(
                sample_id="tumour-7",
                creation_type="IMPORT",
                created_after=datetime(2026, 1, 1, tzinfo=UTC),
            ),
            allow_empty_selection=True,
            export_generation=2,
            wait_for_completion=False,
            # Not a whole number of poll intervals: the handler keeps each export's timeout.
            timeout=Duration.seconds(100),
        )
        template = synth(stack)
        listings = [listing()]
        again = Stack(App(), "Again")
        ReadSetExport(again, "Over", sequence_store_id=STORE, read_set_ids=cohort(101)[::-1])
        App.of(again).synth()  # type: ignore[union-attr]
        listings.append(listing())
    return exports, template, temp, listings


def custom_resource(template: Template, name: str) -> dict[str, Any]:
    found: dict[str, Any] = resource_of(
        template, "Custom::OmicsReadSetExport", f"/{name}/Resource/"
    )["Properties"]
    return found


def test_up_to_100_ids_travel_in_the_properties(
    cohorts: tuple[dict[str, ReadSetExport], Template, Path, list[list[str]]],
) -> None:
    exports, template, _, _ = cohorts
    props = custom_resource(template, "Hundred")
    assert props["ReadSetIds"] == cohort(100)
    assert "ReadSetList" not in props
    assert exports["Hundred"].node.try_find_child("ReadSetList") is None


@pytest.mark.parametrize(("name", "count"), [("Over", 101), ("Cohort", 10_000)])
def test_more_ids_travel_in_an_s3_asset_the_handler_alone_may_read(
    cohorts: tuple[dict[str, ReadSetExport], Template, Path, list[list[str]]],
    name: str,
    count: int,
) -> None:
    exports, template, _, _ = cohorts
    export = exports[name]
    props = custom_resource(template, name)
    assert "ReadSetIds" not in props
    asset = export.node.find_child("ReadSetList")
    stack = Stack.of(export)
    assert props["ReadSetList"] == stack.resolve(asset.s3_object_url)  # type: ignore[attr-defined]
    outdir = Path(App.of(export).outdir)  # type: ignore[union-attr]
    staged = json.loads((outdir / asset.asset_path).read_text())  # type: ignore[attr-defined]
    assert staged == sorted(cohort(count))
    read_list = {
        "Action": "s3:GetObject",
        "Effect": "Allow",
        "Resource": stack.resolve(
            asset.bucket.arn_for_objects(asset.s3_object_key)  # type: ignore[attr-defined]
        ),
    }
    assert handler_statements(template).count(read_list) == 1


def test_the_same_ids_in_another_order_are_the_same_read_set_list(
    cohorts: tuple[dict[str, ReadSetExport], Template, Path, list[list[str]]],
) -> None:
    _, template, _, _ = cohorts
    over, reordered = custom_resource(template, "Over"), custom_resource(template, "Reordered")
    assert over["ReadSetList"] == reordered["ReadSetList"]
    assert over["ReadSetList"] != custom_resource(template, "Cohort")["ReadSetList"]


def test_read_set_lists_leave_nothing_in_the_temp_dir(
    cohorts: tuple[dict[str, ReadSetExport], Template, Path, list[list[str]]],
) -> None:
    exports, _, _, (first, second) = cohorts
    # Synthesizing twice left nothing of ours in the temp directory ...
    assert first == second == []
    # ... because the lists are written into the cloud assembly, one file per content.
    stage = Stage.of(exports["Over"])
    assert stage is not None
    outdir = Path(stage.outdir) / "cdk-omics-export"
    files = sorted(outdir.glob("*.json"))
    assert len(files) == 2, files
    contents = sorted(json.loads(f.read_text()) for f in files)
    assert contents == sorted([sorted(cohort(101)), sorted(cohort(10_000))])


def test_a_damaged_read_set_list_file_is_not_shipped(tmp_path: Path) -> None:
    ids = cohort(101)
    out = tmp_path / "out"
    ReadSetExport(
        Stack(App(outdir=str(out)), "First"), "Export", sequence_store_id=STORE, read_set_ids=ids
    )
    (written,) = (out / "cdk-omics-export").glob("*.json")
    written.write_text(written.read_text()[:100])  # what a synth killed mid-write leaves
    app = App(outdir=str(out))
    export = ReadSetExport(
        Stack(app, "Second"), "Export", sequence_store_id=STORE, read_set_ids=ids
    )
    app.synth()
    asset = export.node.find_child("ReadSetList")
    staged = (out / asset.asset_path).read_text()  # type: ignore[attr-defined]
    assert json.loads(staged) == sorted(ids)


def test_template_does_not_grow_with_the_cohort(
    cohorts: tuple[dict[str, ReadSetExport], Template, Path, list[list[str]]],
) -> None:
    _, template, _, _ = cohorts
    small = json.dumps(custom_resource(template, "Over"))
    large = json.dumps(custom_resource(template, "Cohort"))
    assert abs(len(large) - len(small)) < 20
    text = json.dumps(template_json(template))
    # The only read set ids in the template are the 100 that travel in Hundred's properties.
    assert set(re.findall(r"\b4\d{9}\b", text)) == set(cohort(100))
    # One service and six exports: 52.7 kB since the runner (4.8 kB of it). A fixed budget,
    # far below the 10,000 ids' 130 kB and CloudFormation's 1 MB through S3 (`cdk deploy`
    # uploads the template); no longer within the 51,200 bytes it takes inline.
    assert len(text) < 56_000


def test_sequence_store_from_the_same_stack(
    cohorts: tuple[dict[str, ReadSetExport], Template, Path, list[list[str]]],
) -> None:
    _, template, _, _ = cohorts
    store_id = {"Fn::GetAtt": ["Store", "SequenceStoreId"]}
    assert custom_resource(template, "FromStore")["SequenceStoreId"] == store_id
    arn_of = {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                ":omics:",
                {"Ref": "AWS::Region"},
                ":",
                {"Ref": "AWS::AccountId"},
                ":sequenceStore/",
                store_id,
            ],
        ]
    }
    assert {
        "Action": STORE_ACTIONS,
        "Effect": "Allow",
        "Resource": arn_of,
    } in handler_statements(template)


def test_the_same_store_is_granted_once(
    cohorts: tuple[dict[str, ReadSetExport], Template, Path, list[list[str]]],
) -> None:
    _, template, _, _ = cohorts
    resources = Counter(json.dumps(s["Resource"]) for s in handler_statements(template))
    # Four exports read from STORE; each statement on it is there once.
    assert resources[json.dumps(store_arn(STORE))] == 1
    assert resources[json.dumps(store_arn(STORE, "/readSet/*"))] == 1
    assert all(
        count == 1 for count in Counter(map(json.dumps, handler_statements(template))).values()
    )


def test_selection_by_filter_with_a_generation_and_a_short_timeout(
    cohorts: tuple[dict[str, ReadSetExport], Template, Path, list[list[str]]],
) -> None:
    _, template, _, _ = cohorts
    bucket = logical_id(template, "AWS::S3::Bucket", "/ByFilter/Bucket/")
    role = logical_id(template, "AWS::IAM::Role", "/ByFilter/ExportRole/")
    template.has_resource_properties(
        "Custom::OmicsReadSetExport",
        Match.object_equals(
            {
                "ServiceToken": Match.any_value(),
                "ServiceTimeout": "400",
                "ConstructPath": "Cohorts/ByFilter",
                "ExportGeneration": 2,
                "SequenceStoreId": OTHER_STORE,
                "ReadSetFilter": {
                    "sampleId": "tumour-7",
                    "creationType": "IMPORT",
                    # No status: ACTIVE read sets, and archived ones, which are activated.
                    "createdAfter": "2026-01-01T00:00:00Z",
                },
                "AllowEmptySelection": True,
                "Destination": {"Fn::Join": ["", ["s3://", {"Ref": bucket}, "/"]]},
                "RoleArn": arn(role),
                "WaitForCompletion": False,
                "TimeoutSeconds": 100,
            }
        ),
    )


# Validation


def build(**props: Any) -> None:
    props.setdefault("sequence_store_id", STORE)
    props.setdefault("read_set_ids", READ_SETS)
    ReadSetExport(Stack(App(), "Invalid"), "Export", **props)


@pytest.mark.parametrize(
    ("props", "message"),
    [
        ({"sequence_store_id": "abc"}, r"sequence_store_id: 'abc' is not a sequence store id"),
        ({"read_set_ids": []}, r"read_set_ids: no ids given"),
        (
            {"read_set_ids": cohort(10_001, start=1000000000)},
            r"read_set_ids: 10001 ids given, one export takes at most 10000 \(100 jobs of 100\)",
        ),
        ({"read_set_ids": ["1111111111"] * 2}, r"read_set_ids: '1111111111' listed more than once"),
        ({"destination_prefix": "exports"}, r"destination_prefix: 'exports' must be empty or end"),
        ({"timeout": Duration.minutes(60)}, r"timeout: 3600 s exceeds 3300 s"),
        ({"timeout": Duration.seconds(0)}, r"timeout: 0 s must be positive"),
        ({"poll_interval": Duration.seconds(5)}, r"poll_interval: 5 s is below the minimum"),
        ({"export_generation": -1}, r"export_generation: -1 must be 0 or more"),
    ],
)
def test_invalid_props_fail_at_synth_time(props: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build(**props)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ValueError) as raised:
        build(
            sequence_store_id="abc",
            read_set_ids=["x"],
            destination_prefix="p",
            export_generation=-1,
        )
    text = str(raised.value)
    assert text.startswith("ReadSetExport Invalid/Export: invalid props:")
    for prop in (
        "sequence_store_id:",
        "read_set_ids:",
        "destination_prefix:",
        "export_generation:",
    ):
        assert f"\n- {prop}" in text


@pytest.mark.parametrize(
    ("props", "message"),
    [
        ({"read_set_ids": None}, r"read_set_ids, read_set_filter: give exactly one"),
        (
            {"read_set_filter": ReadSetFilter(sample_id="s")},
            r"read_set_ids, read_set_filter: give exactly one",
        ),
        (
            {"read_set_ids": None, "read_set_filter": ReadSetFilter()},
            r"read_set_filter: give at least one field besides status",
        ),
        (
            {"read_set_ids": None, "read_set_filter": ReadSetFilter(creation_type="COPY")},
            r"read_set_filter.creation_type: 'COPY' is not one of IMPORT, UPLOAD",
        ),
        (
            {
                "read_set_ids": None,
                "read_set_filter": ReadSetFilter(
                    name="x",
                    created_after=datetime(2026, 2, 1, tzinfo=UTC),
                    created_before=datetime(2026, 1, 1, tzinfo=UTC),
                ),
            },
            r"read_set_filter.created_after: must be earlier than read_set_filter.created_before",
        ),
        (
            {
                "read_set_ids": None,
                "read_set_filter": ReadSetFilter(created_after=datetime(2026, 1, 1)),
            },
            r"read_set_filter.created_after: 2026-01-01T00:00:00 has no time zone",
        ),
        (
            {"allow_empty_selection": True},
            r"allow_empty_selection: applies only to read_set_filter",
        ),
        ({"max_requests_per_second": 0}, r"max_requests_per_second: 0 must be between 1 and 100"),
    ],
)
def test_invalid_selection_props_fail_at_synth_time(props: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build(**props)


# Scale: the handler policy is split to stay within IAM's limit, and 50 exports fit a stack.


def crowd(
    name: str, count: int, stores: int, *, lint: bool = True
) -> tuple[list[ReadSetExport], Template]:
    stack = Stack(App(), name)
    exports = [
        ReadSetExport(
            stack,
            f"Export{n}",
            sequence_store_id=str(1000000000 + n % stores),
            read_set_ids=READ_SETS,
            destination_prefix=f"cohort-{n}/",
        )
        for n in range(count)
    ]
    return exports, synth(stack, lint=lint)


@pytest.fixture(scope="module")
def twenty() -> tuple[list[ReadSetExport], Template]:
    return crowd("Twenty", 20, stores=20)


@pytest.fixture(scope="module")
def fifty() -> tuple[list[ReadSetExport], Template]:
    # The same resources as the twenty above, 2.5 times over: cfn-lint would add 10 s.
    return crowd("Fifty", 50, stores=10, lint=False)


def test_handler_policy_is_split_to_fit_iam_limit(
    twenty: tuple[list[ReadSetExport], Template],
) -> None:
    exports, template = twenty
    policies = handler_policies(template)
    assert len(policies) > 1
    assert [p.node.id for p in exports[0].service.handler_policies] == [
        "HandlerPolicy",
        *(f"HandlerPolicy{n}" for n in range(2, len(policies) + 1)),
    ]
    role = resource_of(template, "AWS::IAM::Role", f"{SERVICE}HandlerRole/")
    assert role["Properties"]["ManagedPolicyArns"] == [{"Ref": p} for p in policies]
    resources = template_json(template)["Resources"]
    for policy in policies:
        document = resources[policy]["Properties"]["PolicyDocument"]
        assert iam_length(resolve_longest(template, document)) < IAM_POLICY_LIMIT, policy
    # Every export's statements are there, once.
    passed = [s["Resource"] for s in handler_statements(template) if s["Action"] == "iam:PassRole"]
    assert passed == [
        arn(logical_id(template, "AWS::IAM::Role", f"/Export{n}/ExportRole/")) for n in range(20)
    ]


def test_fifty_exports_fit_one_stack(fifty: tuple[list[ReadSetExport], Template]) -> None:
    exports, template = fifty
    resources = template_json(template)["Resources"]
    outputs = template_json(template)["Outputs"]
    assert len(resources) < 500
    assert len(outputs) <= 200
    assert len(outputs) == 3 * len(exports) + 2
    assert len(python_functions(template)) == 2
    assert len(find(template, "AWS::StepFunctions::StateMachine")) == 1
    assert len(find(template, "Custom::OmicsReadSetExport")) == 50
    for policy in handler_policies(template):
        document = resources[policy]["Properties"]["PolicyDocument"]
        assert iam_length(resolve_longest(template, document)) < IAM_POLICY_LIMIT, policy
    # Ten stores, each granted once however many exports read from it.
    granted = Counter(
        json.dumps(s["Resource"]) for s in handler_statements(template) if "omics:" in str(s)
    )
    assert len(granted) == 20
    assert set(granted.values()) == {1}
