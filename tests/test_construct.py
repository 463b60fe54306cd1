"""Template assertions for ReadSetExport under CDK's default feature flags."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Duration, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_omics as omics
from aws_cdk.assertions import Capture, Match, Template

from cdk_omics_export import ReadSetExport, ReadSetFilter
from cdk_omics_export.read_set_export import HANDLER_RUNTIME

from .support import arn, logical_id, resource_of, statements
from .support import synth as synth_stack

STORE = "1234567890"
READ_SETS = ["1111111111", "2222222222"]


def synth(**props: Any) -> tuple[ReadSetExport, Template]:
    # No context at all: a library must be right under CDK's defaults, not only under
    # the example app's feature flags.
    stack = Stack(App(), "Test")
    props.setdefault("sequence_store_id", STORE)
    props.setdefault("read_set_ids", READ_SETS)
    export = ReadSetExport(stack, "Export", **props)
    return export, synth_stack(stack)


@pytest.fixture(scope="module")
def synthesized() -> tuple[ReadSetExport, Template]:
    return synth(destination_prefix="exports/")


@pytest.fixture(scope="module")
def template(synthesized: tuple[ReadSetExport, Template]) -> Template:
    return synthesized[1]


# Destination bucket


def test_destination_bucket_is_locked_down_and_retained(template: Template) -> None:
    logs_bucket = logical_id(template, "AWS::S3::Bucket", "/Export/AccessLogs/")
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
        "LoggingConfiguration": {
            "DestinationBucketName": {"Ref": logs_bucket},
            "LogFilePrefix": "destination/",
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


def test_access_log_bucket_is_locked_down_encrypted_and_retained(template: Template) -> None:
    key = logical_id(template, "AWS::KMS::Key", "/Export/LogsKey/")
    resource = resource_of(template, "AWS::S3::Bucket", "/Export/AccessLogs/")
    assert resource["DeletionPolicy"] == "Retain"
    props = resource["Properties"]
    assert props["BucketEncryption"] == {
        "ServerSideEncryptionConfiguration": [
            {
                "BucketKeyEnabled": True,
                "ServerSideEncryptionByDefault": {
                    "KMSMasterKeyID": arn(key),
                    "SSEAlgorithm": "aws:kms",
                },
            }
        ]
    }
    assert props["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    assert props["PublicAccessBlockConfiguration"]["RestrictPublicBuckets"] is True
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert "AccessControl" not in props


@pytest.mark.parametrize("path_part", ["/Export/Bucket/", "/Export/AccessLogs/"])
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
                            "Resource": [
                                arn(bucket),
                                {"Fn::Join": ["", [arn(bucket), "/*"]]},
                            ],
                        }
                    ]
                )
            },
        },
    )


def test_access_logs_are_delivered_through_a_bucket_policy(template: Template) -> None:
    bucket = logical_id(template, "AWS::S3::Bucket", "/Export/Bucket/")
    logs_bucket = logical_id(template, "AWS::S3::Bucket", "/Export/AccessLogs/")
    template.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "Bucket": {"Ref": logs_bucket},
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Action": "s3:PutObject",
                                "Principal": {"Service": "logging.s3.amazonaws.com"},
                                "Condition": {
                                    "ArnLike": {"aws:SourceArn": arn(bucket)},
                                    "StringEquals": {
                                        "aws:SourceAccount": {"Ref": "AWS::AccountId"}
                                    },
                                },
                            }
                        )
                    ]
                )
            },
        },
    )


def test_logs_key_rotates_is_retained_and_serves_only_log_services(template: Template) -> None:
    key = resource_of(template, "AWS::KMS::Key", "/Export/LogsKey/")
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
            "Condition": {
                "ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": {
                        "Fn::Join": [
                            "",
                            [
                                "arn:",
                                {"Ref": "AWS::Partition"},
                                ":logs:",
                                {"Ref": "AWS::Region"},
                                ":",
                                {"Ref": "AWS::AccountId"},
                                ":log-group:*",
                            ],
                        ]
                    }
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
        {
            # Added by CDK for the access log bucket: S3 log delivery encrypts with the key.
            "Action": ["kms:Decrypt", "kms:Encrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*"],
            "Effect": "Allow",
            "Principal": {"Service": "logging.s3.amazonaws.com"},
            "Resource": "*",
        },
    ]


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
                "Resource": {"Fn::Join": ["", [arn(bucket), "/exports/*"]]},
            },
            {"Action": "s3:GetBucketLocation", "Effect": "Allow", "Resource": arn(bucket)},
        ],
    }
    assert "Roles" not in document["Properties"]


@pytest.mark.parametrize("role_path", ["/Export/ExportRole/", "/Export/HandlerRole/"])
def test_no_other_policy_reaches_our_roles(template: Template, role_path: str) -> None:
    role = {"Ref": logical_id(template, "AWS::IAM::Role", role_path)}
    for type_ in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        for policy in template.find_resources(type_).values():
            assert role not in policy["Properties"].get("Roles", [])


# Handler


def test_handler_role_is_exactly_scoped(template: Template) -> None:
    export_role = logical_id(template, "AWS::IAM::Role", "/Export/ExportRole/")
    log_group = logical_id(template, "AWS::Logs::LogGroup", "/Export/HandlerLogs/")
    queue = logical_id(template, "AWS::SQS::Queue", "/Export/DeadLetters/")
    policy = logical_id(template, "AWS::IAM::ManagedPolicy", "/Export/HandlerPolicy/")
    props = resource_of(template, "AWS::IAM::Role", "/Export/HandlerRole/")["Properties"]
    assert props["ManagedPolicyArns"] == [{"Ref": policy}]
    assert "Policies" not in props
    assert props["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Action": "sts:AssumeRole",
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
        }
    ]
    store_arn = {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                ":omics:",
                {"Ref": "AWS::Region"},
                ":",
                {"Ref": "AWS::AccountId"},
                f":sequenceStore/{STORE}",
            ],
        ]
    }
    bucket = logical_id(template, "AWS::S3::Bucket", "/Export/Bucket/")
    document = resource_of(template, "AWS::IAM::ManagedPolicy", "/Export/HandlerPolicy/")
    read_sets = {
        "Fn::Join": ["", [*store_arn["Fn::Join"][1][:-1], f":sequenceStore/{STORE}/readSet/*"]]
    }
    assert document["Properties"]["PolicyDocument"] == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Action": [
                    "omics:StartReadSetExportJob",
                    "omics:GetReadSetExportJob",
                    "omics:ListReadSets",
                ],
                "Effect": "Allow",
                "Resource": store_arn,
            },
            {"Action": "omics:GetReadSetMetadata", "Effect": "Allow", "Resource": read_sets},
            {
                "Action": ["s3:GetObject", "s3:PutObject"],
                "Effect": "Allow",
                "Resource": {"Fn::Join": ["", [arn(bucket), "/exports/cdk-omics-export/*"]]},
            },
            {
                "Action": "s3:ListBucket",
                "Condition": {"StringLike": {"s3:prefix": ["exports/cdk-omics-export/*"]}},
                "Effect": "Allow",
                "Resource": arn(bucket),
            },
            {
                "Action": "iam:PassRole",
                "Condition": {"StringEquals": {"iam:PassedToService": "omics.amazonaws.com"}},
                "Effect": "Allow",
                "Resource": arn(export_role),
            },
            {
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Effect": "Allow",
                "Resource": arn(log_group),
            },
            {"Action": "sqs:SendMessage", "Effect": "Allow", "Resource": arn(queue)},
        ],
    }


def test_handler_runtime_is_the_newest_python_cdk_offers() -> None:
    def version(runtime: lambda_.Runtime) -> tuple[int, ...]:
        return tuple(int(part) for part in runtime.name.removeprefix("python").split("."))

    pythons = [
        getattr(lambda_.Runtime, name)
        for name in dir(lambda_.Runtime)
        if name.startswith("PYTHON_")
    ]
    assert version(HANDLER_RUNTIME) == max(version(r) for r in pythons)


@pytest.mark.parametrize(
    ("path_part", "entry_point"),
    [
        ("/Export/OnEventHandler/", "index.on_event"),
        ("/Export/IsCompleteHandler/", "index.is_complete"),
    ],
)
def test_handler_functions(template: Template, path_part: str, entry_point: str) -> None:
    function = logical_id(template, "AWS::Lambda::Function", path_part)
    props = template.to_json()["Resources"][function]["Properties"]
    assert props["Handler"] == entry_point
    assert props["Runtime"] == HANDLER_RUNTIME.name
    assert props["Role"] == arn(logical_id(template, "AWS::IAM::Role", "/Export/HandlerRole/"))
    assert props["LoggingConfig"] == {
        "LogGroup": {"Ref": logical_id(template, "AWS::Logs::LogGroup", "/Export/HandlerLogs/")}
    }
    assert props["Timeout"] == 300
    assert props["ReservedConcurrentExecutions"] == 2
    assert props["DeadLetterConfig"] == {
        "TargetArn": arn(logical_id(template, "AWS::SQS::Queue", "/Export/DeadLetters/"))
    }


def test_handler_log_group_has_a_retention_period(template: Template) -> None:
    key = logical_id(template, "AWS::KMS::Key", "/Export/LogsKey/")
    resource = resource_of(template, "AWS::Logs::LogGroup", "/Export/HandlerLogs/")
    assert resource["Properties"] == {"KmsKeyId": arn(key), "RetentionInDays": 365}
    assert resource["DeletionPolicy"] == "Retain"


def test_dead_letter_queue_is_encrypted_and_tls_only(template: Template) -> None:
    queue = logical_id(template, "AWS::SQS::Queue", "/Export/DeadLetters/")
    props = resource_of(template, "AWS::SQS::Queue", "/Export/DeadLetters/")["Properties"]
    assert props == {"MessageRetentionPeriod": 1209600, "SqsManagedSseEnabled": True}
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
                    )
                ]
            },
        },
    )


def test_handler_code_is_the_handler_package_alone(
    synthesized: tuple[ReadSetExport, Template],
) -> None:
    export, _ = synthesized
    code = export.node.find_child("OnEventHandler").node.find_child("Code")
    outdir = Path(App.of(export).outdir)  # type: ignore[union-attr]
    shipped = sorted(p.name for p in (outdir / code.asset_path).iterdir())  # type: ignore[attr-defined]
    assert shipped == ["__init__.py", "export.py", "index.py", "pacing.py", "rules.py"]


# Provider and custom resource


def test_custom_resource_receives_the_export_role_and_the_export(template: Template) -> None:
    role_arn = Capture()
    resources = template.find_resources("Custom::OmicsReadSetExport")
    assert len(resources) == 1
    bucket = logical_id(template, "AWS::S3::Bucket", "/Export/Bucket/")
    template.has_resource_properties(
        "Custom::OmicsReadSetExport",
        Match.object_equals(
            {
                "ServiceToken": arn(
                    logical_id(template, "AWS::Lambda::Function", "/Provider/framework-onEvent/")
                ),
                "ServiceTimeout": "3300",
                "SequenceStoreId": STORE,
                "ReadSetIds": READ_SETS,
                "Destination": {"Fn::Join": ["", ["s3://", {"Ref": bucket}, "/exports/"]]},
                "RoleArn": role_arn,
                "WaitForCompletion": True,
                "TimeoutSeconds": 3000,
                "PollIntervalSeconds": 30,
                "MaxRequestsPerSecond": 5,
            }
        ),
    )
    assert role_arn.as_object() == arn(
        logical_id(template, "AWS::IAM::Role", "/Export/ExportRole/")
    )


def test_waiter_polls_every_interval_until_the_timeout(template: Template) -> None:
    machine = logical_id(
        template, "AWS::StepFunctions::StateMachine", "/Provider/waiter-state-machine/"
    )
    definition = template.to_json()["Resources"][machine]["Properties"]["DefinitionString"]
    text = "".join(part if isinstance(part, str) else "" for part in definition["Fn::Join"][1])
    assert '"IntervalSeconds":30,"MaxAttempts":100,"BackoffRate":1' in text


def test_provider_uses_our_handlers(template: Template) -> None:
    on_event = logical_id(template, "AWS::Lambda::Function", "/Export/OnEventHandler/")
    is_complete = logical_id(template, "AWS::Lambda::Function", "/Export/IsCompleteHandler/")
    framework = logical_id(template, "AWS::Lambda::Function", "/Provider/framework-onEvent/")
    variables = template.to_json()["Resources"][framework]["Properties"]["Environment"]["Variables"]
    assert variables["USER_ON_EVENT_FUNCTION_ARN"] == arn(on_event)
    assert variables["USER_IS_COMPLETE_FUNCTION_ARN"] == arn(is_complete)


def test_outputs_report_job_status_and_destination(template: Template) -> None:
    resource = logical_id(template, "Custom::OmicsReadSetExport", "/Export/Resource/")
    bucket = logical_id(template, "AWS::S3::Bucket", "/Export/Bucket/")
    outputs = {
        key[len("Export") : -8]: o["Value"] for key, o in template.to_json()["Outputs"].items()
    }
    assert outputs == {
        "JobId": {"Fn::GetAtt": [resource, "JobId"]},
        "JobStatus": {"Fn::GetAtt": [resource, "Status"]},
        "JobCount": {"Fn::GetAtt": [resource, "JobCount"]},
        "ReadSetCount": {"Fn::GetAtt": [resource, "ReadSetCount"]},
        "FailedReadSetCount": {"Fn::GetAtt": [resource, "FailedReadSetCount"]},
        "ManifestUri": {"Fn::GetAtt": [resource, "ManifestUri"]},
        "Destination": {"Fn::Join": ["", ["s3://", {"Ref": bucket}, "/exports/"]]},
    }


def test_attributes(synthesized: tuple[ReadSetExport, Template]) -> None:
    export, _ = synthesized
    stack = Stack.of(export)
    assert stack.resolve(export.job_id) == {
        "Fn::GetAtt": [stack.get_logical_id(export.node.default_child.node.default_child), "JobId"]  # type: ignore[union-attr]
    }
    assert stack.resolve(export.job_status)["Fn::GetAtt"][1] == "Status"
    assert stack.resolve(export.destination) == {
        "Fn::Join": ["", ["s3://", stack.resolve(export.bucket.bucket_name), "/exports/"]]
    }
    assert stack.resolve(export.role.role_arn)["Fn::GetAtt"][1] == "Arn"
    assert export.function.node.id == "OnEventHandler"


# Options


def test_no_wait_short_timeout_and_root_prefix() -> None:
    _, template = synth(
        wait_for_completion=False,
        timeout=Duration.minutes(10),
        poll_interval=Duration.seconds(20),
    )
    template.has_resource_properties(
        "Custom::OmicsReadSetExport",
        {
            "WaitForCompletion": False,
            "ServiceTimeout": "900",
            "TimeoutSeconds": 600,
            "PollIntervalSeconds": 20,
            "Destination": {"Fn::Join": ["", ["s3://", Match.any_value(), "/"]]},
        },
    )
    machine = template.find_resources("AWS::StepFunctions::StateMachine")
    (definition,) = (m["Properties"]["DefinitionString"] for m in machine.values())
    text = "".join(p if isinstance(p, str) else "" for p in definition["Fn::Join"][1])
    assert '"IntervalSeconds":20,"MaxAttempts":30' in text


def test_sequence_store_from_the_same_stack() -> None:
    stack = Stack(App(), "WithStore")
    store = omics.CfnSequenceStore(stack, "Store", name="cohort")
    ReadSetExport(
        stack, "Export", sequence_store_id=store.attr_sequence_store_id, read_set_ids=READ_SETS
    )
    template = synth_stack(stack)
    store_id = {"Fn::GetAtt": ["Store", "SequenceStoreId"]}
    template.has_resource_properties("Custom::OmicsReadSetExport", {"SequenceStoreId": store_id})
    template.has_resource_properties(
        "AWS::IAM::ManagedPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Action": [
                                    "omics:StartReadSetExportJob",
                                    "omics:GetReadSetExportJob",
                                    "omics:ListReadSets",
                                ],
                                "Resource": {"Fn::Join": ["", Match.array_with([store_id])]},
                            }
                        )
                    ]
                )
            },
        },
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
            {"read_set_ids": [str(1000000000 + n) for n in range(10_001)]},
            r"read_set_ids: 10001 ids given, one export takes at most 10000 \(100 jobs of 100\)",
        ),
        ({"read_set_ids": ["1111111111"] * 2}, r"read_set_ids: '1111111111' listed more than once"),
        ({"destination_prefix": "exports"}, r"destination_prefix: 'exports' must be empty or end"),
        ({"timeout": Duration.minutes(60)}, r"timeout: 3600 s exceeds 3300 s"),
        ({"timeout": Duration.seconds(45)}, r"timeout: 45 s is not a whole number of poll"),
        ({"poll_interval": Duration.seconds(5)}, r"poll_interval: 5 s is below the minimum"),
    ],
)
def test_invalid_props_fail_at_synth_time(props: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build(**props)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ValueError) as raised:
        build(sequence_store_id="abc", read_set_ids=["x"], destination_prefix="p")
    text = str(raised.value)
    assert text.startswith("ReadSetExport Invalid/Export: invalid props:")
    for prop in ("sequence_store_id:", "read_set_ids:", "destination_prefix:"):
        assert f"\n- {prop}" in text


# Cohort scale


def cohort(count: int) -> list[str]:
    return [str(4000000000 + n) for n in range(count)]


@pytest.fixture(scope="module")
def sized() -> dict[int, tuple[ReadSetExport, Template]]:
    return {count: synth(read_set_ids=cohort(count)) for count in (100, 101, 10_000)}


def test_up_to_100_ids_travel_in_the_properties(
    sized: dict[int, tuple[ReadSetExport, Template]],
) -> None:
    _, template = sized[100]
    props = resource_of(template, "Custom::OmicsReadSetExport", "/Export/Resource/")["Properties"]
    assert props["ReadSetIds"] == cohort(100)
    assert "ReadSetList" not in props
    assert len(statements(template, "/Export/HandlerPolicy/")) == 7  # no asset to read
    assert len(sized[101][1].to_json()["Resources"]) == len(template.to_json()["Resources"])


@pytest.mark.parametrize("count", [101, 10_000])
def test_more_ids_travel_in_an_s3_asset_the_handler_alone_may_read(
    sized: dict[int, tuple[ReadSetExport, Template]], count: int
) -> None:
    export, template = sized[count]
    props = resource_of(template, "Custom::OmicsReadSetExport", "/Export/Resource/")["Properties"]
    assert "ReadSetIds" not in props
    asset = export.node.find_child("ReadSetList")
    stack = Stack.of(export)
    assert props["ReadSetList"] == stack.resolve(asset.s3_object_url)  # type: ignore[attr-defined]
    outdir = Path(App.of(export).outdir)  # type: ignore[union-attr]
    staged = json.loads((outdir / asset.asset_path).read_text())  # type: ignore[attr-defined]
    assert staged == cohort(count)
    assert statements(template, "/Export/HandlerPolicy/")[4] == {
        "Action": "s3:GetObject",
        "Effect": "Allow",
        "Resource": stack.resolve(
            asset.bucket.arn_for_objects(asset.s3_object_key)  # type: ignore[attr-defined]
        ),
    }


def test_template_does_not_grow_with_the_cohort(
    sized: dict[int, tuple[ReadSetExport, Template]], template: Template
) -> None:
    small = sized[101][1].to_json()
    large = sized[10_000][1].to_json()
    assert (
        len(large["Resources"]) == len(small["Resources"]) == len(template.to_json()["Resources"])
    )
    assert len(large["Outputs"]) == 7
    assert abs(len(json.dumps(large)) - len(json.dumps(small))) < 100
    assert len(json.dumps(large)) < 51_200  # CloudFormation takes 51,200 bytes inline, 1 MB via S3


def test_selection_by_filter() -> None:
    _, template = synth(
        read_set_ids=None,
        read_set_filter=ReadSetFilter(
            sample_id="tumour-7",
            creation_type="IMPORT",
            created_after=datetime(2026, 1, 1, tzinfo=UTC),
        ),
        allow_empty_selection=True,
        max_requests_per_second=2,
    )
    props = resource_of(template, "Custom::OmicsReadSetExport", "/Export/Resource/")["Properties"]
    assert props["ReadSetFilter"] == {
        "sampleId": "tumour-7",
        "creationType": "IMPORT",
        "createdAfter": "2026-01-01T00:00:00Z",
        "status": "ACTIVE",
    }
    assert props["AllowEmptySelection"] is True
    assert props["MaxRequestsPerSecond"] == 2
    assert "ReadSetIds" not in props


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
            r"read_set_filter: creation_type 'COPY' is not one of IMPORT, UPLOAD",
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
            r"read_set_filter: created_after must be earlier than created_before",
        ),
        (
            {
                "read_set_ids": None,
                "read_set_filter": ReadSetFilter(created_after=datetime(2026, 1, 1)),
            },
            r"read_set_filter: 2026-01-01T00:00:00 has no time zone",
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
