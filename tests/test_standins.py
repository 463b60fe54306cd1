"""The stand-ins' own rules: each test fails if the rule it names stops being enforced.

A rehearsal that passes where AWS would fail is a defect, so the evaluator, the resolver and the
gateway are held here to what IAM, CloudFormation, S3, DynamoDB and HealthOmics really do.
"""

from __future__ import annotations

import itertools
import re
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from .iam_evaluator import Decision, Request, evaluate
from .omics_endpoint import OmicsEndpoint
from .standins.deployed import DeployedStack, Unresolvable
from .standins.gateway import Gateway, UnsupportedPolicy, _refuse_unmodelled_keys

ACCOUNT = "111122223333"
STORE = "1234567890"
STORE_ARN = f"arn:aws:omics:us-east-1:{ACCOUNT}:sequenceStore/{STORE}"
READ_SETS = ["1111111111", "2222222222", "3333333333"]


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action: Any, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: Any, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def error_code(error: ClientError) -> str:
    return str(error.response["Error"]["Code"])


# What the evaluator is not asked


def test_a_condition_on_a_key_the_gateway_cannot_know_raises_unless_supplied() -> None:
    vpce = {"StringEquals": {"aws:SourceVpce": "vpce-1"}}
    document = policy(allow("s3:GetObject", Condition=vpce))
    with pytest.raises(UnsupportedPolicy, match="aws:SourceVpce"):
        _refuse_unmodelled_keys([document], {})
    _refuse_unmodelled_keys([document], {"aws:sourcevpce": "vpce-1"})
    tagged = policy(allow("s3:GetObject", Condition={"StringEquals": {"aws:ResourceTag/t": "x"}}))
    with pytest.raises(UnsupportedPolicy, match="aws:ResourceTag/t"):
        _refuse_unmodelled_keys([None, tagged], {})


# The resolver

FRAGMENT: dict[str, Any] = {
    "Parameters": {
        "Stage": {"Type": "String", "Default": "prod"},
        "Zones": {"Type": "CommaDelimitedList", "Default": "a,b,c"},
        "BootstrapVersion": {
            "Type": "AWS::SSM::Parameter::Value<String>",
            "Default": "/cdk-bootstrap/hnb659fds/version",
        },
    },
    "Conditions": {
        "IsProd": {"Fn::Equals": [{"Ref": "Stage"}, "prod"]},
        "IsDev": {"Fn::Not": [{"Condition": "IsProd"}]},
        "ProdInVirginia": {
            "Fn::And": [
                {"Condition": "IsProd"},
                {"Fn::Equals": [{"Ref": "AWS::Region"}, "us-east-1"]},
            ]
        },
        "Either": {"Fn::Or": [{"Condition": "IsDev"}, {"Condition": "ProdInVirginia"}]},
    },
    "Resources": {
        "Data": {"Type": "AWS::S3::Bucket"},
        "Named": {
            "Type": "AWS::S3::Bucket",
            "Properties": {"BucketName": {"Fn::Sub": "named-${AWS::AccountId}-${AWS::Region}"}},
        },
        "Worker": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": policy(),
                "Path": "/service/",
                "RoleName": "worker",
            },
        },
        "Plain": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": policy()}},
        "Key": {"Type": "AWS::KMS::Key"},
        "Queue": {"Type": "AWS::SQS::Queue"},
        "Topic": {"Type": "AWS::SNS::Topic"},
        "Logs": {"Type": "AWS::Logs::LogGroup"},
        "Machine": {"Type": "AWS::StepFunctions::StateMachine"},
        "Fn": {"Type": "AWS::Lambda::Function"},
        "Table": {"Type": "AWS::DynamoDB::Table"},
        "Group": {"Type": "AWS::EC2::SecurityGroup"},
        "Rule": {"Type": "AWS::Events::Rule"},
        "Export": {"Type": "Custom::Export"},
        "DevOnly": {"Type": "AWS::S3::Bucket", "Condition": "IsDev"},
    },
    "Outputs": {
        "Joined": {
            "Value": {
                "Fn::Join": ["|", [{"Fn::GetAtt": ["Data", "Arn"]}, {"Ref": "AWS::Partition"}]]
            }
        },
        "Subbed": {
            "Value": {"Fn::Sub": "${AWS::Region}/${Data}/${Data.Arn}/${!Literal}/${AWS::URLSuffix}"}
        },
        "SubbedWithVariables": {
            "Value": {"Fn::Sub": ["${Name}:${AWS::StackName}", {"Name": {"Ref": "Worker"}}]}
        },
        "Selected": {"Value": {"Fn::Select": [1, {"Fn::Split": [",", "x,y,z"]}]}},
        "FromList": {"Value": {"Fn::Select": ["2", {"Ref": "Zones"}]}},
        "Chosen": {
            "Value": {
                "Fn::If": [
                    "IsProd",
                    [{"Ref": "Table"}, {"Fn::If": ["IsDev", "x", {"Ref": "AWS::NoValue"}]}],
                    "dev",
                ]
            }
        },
        "Imported": {"Value": {"Fn::ImportValue": "shared-vpc-id"}},
        "Output": {
            "Value": {"Fn::GetStackOutput": {"StackName": "Network", "OutputName": "SubnetId"}}
        },
    },
}


@pytest.fixture
def fragment() -> DeployedStack:
    return DeployedStack(
        FRAGMENT,
        stack_name="Rehearsal",
        imports={"shared-vpc-id": "vpc-123", "Network.SubnetId": "subnet-9"},
    )


def output(stack: DeployedStack, name: str) -> Any:
    return stack.resolve(FRAGMENT["Outputs"][name]["Value"])


VALID_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def test_intrinsics_and_pseudo_parameters_resolve(fragment: DeployedStack) -> None:
    bucket = fragment.ref("Data")
    assert VALID_BUCKET.match(bucket) and bucket.startswith("rehearsal-data-")
    assert output(fragment, "Joined") == f"arn:aws:s3:::{bucket}|aws"
    assert output(fragment, "Subbed") == (
        f"us-east-1/{bucket}/arn:aws:s3:::{bucket}/${{Literal}}/amazonaws.com"
    )
    assert output(fragment, "SubbedWithVariables") == "worker:Rehearsal"
    assert output(fragment, "Selected") == "y"
    assert output(fragment, "FromList") == "c"
    assert output(fragment, "Chosen") == [fragment.ref("Table")]  # NoValue removed
    assert output(fragment, "Imported") == "vpc-123"
    assert output(fragment, "Output") == "subnet-9"
    assert fragment.ref("Named") == f"named-{ACCOUNT}-us-east-1"
    assert fragment.ref("BootstrapVersion") == "6"
    assert fragment.resolve({"Fn::GetAtt": "Data.RegionalDomainName"}) == (
        f"{bucket}.s3.us-east-1.amazonaws.com"
    )


def test_physical_names_and_attributes(fragment: DeployedStack) -> None:
    assert fragment.role_arn("Worker") == f"arn:aws:iam::{ACCOUNT}:role/service/worker"
    plain = fragment.ref("Plain")
    assert len(plain) <= 64 and fragment.role_arn("Plain").endswith(f":role/{plain}")
    assert fragment.role_by_arn(fragment.role_arn("Plain")) == "Plain"
    key_id = fragment.ref("Key")
    assert fragment.get_att("Key", "Arn") == f"arn:aws:kms:us-east-1:{ACCOUNT}:key/{key_id}"
    queue = fragment.physical_name("Queue")
    assert fragment.ref("Queue") == f"https://sqs.us-east-1.amazonaws.com/{ACCOUNT}/{queue}"
    assert fragment.get_att("Queue", "Arn") == f"arn:aws:sqs:us-east-1:{ACCOUNT}:{queue}"
    topic = fragment.get_att("Topic", "TopicName")
    assert fragment.ref("Topic") == f"arn:aws:sns:us-east-1:{ACCOUNT}:{topic}"
    logs = fragment.ref("Logs")
    assert fragment.get_att("Logs", "Arn") == f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:{logs}:*"
    machine = fragment.get_att("Machine", "Name")
    assert fragment.ref("Machine") == f"arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:{machine}"
    function = fragment.ref("Fn")
    assert (
        fragment.get_att("Fn", "Arn") == f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{function}"
    )
    table = fragment.ref("Table")
    assert fragment.get_att("Table", "Arn") == f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/{table}"
    assert fragment.get_att("Table", "StreamArn").startswith(
        f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/{table}/stream/"
    )
    assert fragment.get_att("Group", "GroupId") == fragment.ref("Group")
    assert fragment.ref("Group").startswith("sg-")
    rule = fragment.ref("Rule")
    assert fragment.get_att("Rule", "Arn") == f"arn:aws:events:us-east-1:{ACCOUNT}:rule/{rule}"
    again = DeployedStack(FRAGMENT, stack_name="Rehearsal", imports={})
    assert again.ref("Data") == fragment.ref("Data")  # deterministic
    assert DeployedStack(FRAGMENT, stack_name="Other").ref("Data") != fragment.ref("Data")


def test_conditions_decide_which_resources_exist(fragment: DeployedStack) -> None:
    assert fragment.condition("IsProd") and not fragment.condition("IsDev")
    assert fragment.condition("ProdInVirginia") and fragment.condition("Either")
    assert "DevOnly" not in fragment.resources("AWS::S3::Bucket")
    with pytest.raises(Unresolvable):
        fragment.ref("DevOnly")
    dev = DeployedStack(FRAGMENT, parameters={"Stage": "dev"})
    assert "DevOnly" in dev.resources("AWS::S3::Bucket")
    assert dev.resolve(FRAGMENT["Outputs"]["Chosen"]["Value"]) == "dev"


def test_what_the_simulation_cannot_know_raises(fragment: DeployedStack) -> None:
    with pytest.raises(Unresolvable, match="set_attributes"):
        fragment.get_att("Export", "JobId")
    fragment.set_attributes("Export", {"JobId": "5555555555"}, physical_id="export-1")
    assert fragment.resolve({"Fn::GetAtt": ["Export", "JobId"]}) == "5555555555"
    assert fragment.ref("Export") == "export-1"
    with pytest.raises(Unresolvable):
        DeployedStack(FRAGMENT).resolve(FRAGMENT["Outputs"]["Imported"]["Value"])
    with pytest.raises(Unresolvable):
        fragment.get_att("Data", "NoSuchAttribute")
    with pytest.raises(Unresolvable, match="AWS_MANAGED_POLICIES"):
        fragment.policy_document("arn:aws:iam::aws:policy/AdministratorAccess")


# A synthesized plain-CDK stack


@pytest.fixture(scope="module")
def synthesized() -> tuple[dict[str, Any], dict[str, str]]:
    """A plain CDK stack (no construct of ours) and the logical ids of its parts."""
    from aws_cdk import App, Aws, Stack
    from aws_cdk import aws_dynamodb as dynamodb
    from aws_cdk import aws_iam as iam
    from aws_cdk import aws_kms as kms
    from aws_cdk import aws_s3 as s3

    app = App()
    stack = Stack(app, "Plain")
    bucket = s3.Bucket(stack, "Data", enforce_ssl=True)
    key = kms.Key(stack, "SealKey")
    sealed = s3.Bucket(
        stack, "Sealed", encryption=s3.BucketEncryption.KMS, encryption_key=key, enforce_ssl=True
    )
    locks = dynamodb.Table(
        stack,
        "Locks",
        partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
    )
    audit = dynamodb.Table(
        stack,
        "Audit",
        partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
    )
    omics_trust = iam.ServicePrincipal(
        "omics.amazonaws.com",
        conditions={
            "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
            "ArnLike": {
                "aws:SourceArn": f"arn:{Aws.PARTITION}:omics:{Aws.REGION}:{Aws.ACCOUNT_ID}:*"
            },
        },
    )

    def export_role(name: str, prefix: str, trust: iam.IPrincipal) -> iam.Role:
        grant = iam.ManagedPolicy(
            stack,
            f"{name}Policy",
            statements=[
                iam.PolicyStatement(
                    actions=["s3:PutObject"], resources=[bucket.arn_for_objects(f"{prefix}*")]
                )
            ],
        )
        return iam.Role(stack, name, assumed_by=trust, managed_policies=[grant])

    export = export_role("ExportRole", "exports/", omics_trust)
    narrow = export_role("NarrowRole", "elsewhere/", omics_trust)
    untrusting = export_role(
        "LambdaOnlyRole", "exports/", iam.ServicePrincipal("lambda.amazonaws.com")
    )
    store_arn = stack.format_arn(service="omics", resource="sequenceStore", resource_name=STORE)
    handler_policy = iam.ManagedPolicy(
        stack,
        "HandlerPolicy",
        statements=[
            iam.PolicyStatement(
                actions=["s3:PutObject", "s3:GetObject"],
                resources=[bucket.arn_for_objects("exports/cdk/*"), sealed.arn_for_objects("*")],
            ),
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[export.role_arn, narrow.role_arn, untrusting.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "omics.amazonaws.com"}},
            ),
            iam.PolicyStatement(
                actions=["omics:StartReadSetExportJob", "omics:GetReadSetExportJob"],
                resources=[store_arn],
            ),
            iam.PolicyStatement(
                actions=["dynamodb:PutItem", "dynamodb:GetItem"], resources=[locks.table_arn]
            ),
        ],
    )
    handler = iam.Role(
        stack,
        "HandlerRole",
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        managed_policies=[
            handler_policy,
            iam.ManagedPolicy.from_aws_managed_policy_name(
                "service-role/AWSLambdaBasicExecutionRole"
            ),
        ],
    )
    # An AWS::IAM::Policy (the role's default policy) that lists only the handler's folder.
    handler.add_to_policy(
        iam.PolicyStatement(
            actions=["s3:ListBucket"],
            resources=[bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": "exports/cdk/*"}},
        )
    )
    starter = iam.Role(
        stack,
        "StarterRole",
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        inline_policies={
            "omics": iam.PolicyDocument(
                statements=[
                    iam.PolicyStatement(
                        actions=["omics:StartReadSetExportJob"], resources=[store_arn]
                    )
                ]
            )
        },
    )
    parts = {
        "bucket": bucket,
        "sealed": sealed,
        "key": key,
        "locks": locks,
        "audit": audit,
        "export": export,
        "narrow": narrow,
        "untrusting": untrusting,
        "handler": handler,
        "starter": starter,
    }
    ids = {
        name: stack.resolve(stack.get_logical_id(part.node.default_child))  # type: ignore[arg-type]
        for name, part in parts.items()
    }
    template = app.synth().get_stack_by_name("Plain").template
    return template, ids


@pytest.fixture(scope="module")
def deployed(synthesized: tuple[dict[str, Any], dict[str, str]]) -> DeployedStack:
    return DeployedStack(synthesized[0], stack_name="Plain")


@pytest.fixture(scope="module")
def ids(synthesized: tuple[dict[str, Any], dict[str, str]]) -> dict[str, str]:
    return synthesized[1]


def test_a_synthesized_stack_resolves_end_to_end(
    deployed: DeployedStack, ids: dict[str, str]
) -> None:
    bucket = deployed.physical_name(ids["bucket"])
    assert VALID_BUCKET.match(bucket)
    assert deployed.bucket_by_name(bucket) == ids["bucket"]
    export_arn = deployed.role_arn(ids["export"])
    assert deployed.role_by_arn(export_arn) == ids["export"]
    documents = deployed.role_policies(ids["handler"])
    statements = [s for d in documents for s in _listed(d["Statement"])]
    resources = {r for s in statements for r in _listed(s["Resource"])}
    assert f"arn:aws:s3:::{bucket}/exports/cdk/*" in resources
    assert deployed.get_att(ids["locks"], "Arn") in resources
    assert STORE_ARN in resources
    assert export_arn in resources
    # The AWS managed policy and the role's default policy (an AWS::IAM::Policy) both apply.
    assert any("logs:CreateLogGroup" in _listed(s["Action"]) for s in statements)
    assert any(s["Action"] == "s3:ListBucket" for s in statements)
    assert deployed.permissions_boundary(ids["handler"]) is None
    # The resolved documents, as the evaluator judges them.
    handler_arn = deployed.role_arn(ids["handler"])
    bucket_policy = deployed.bucket_policy(ids["bucket"])
    assert bucket_policy is not None

    def as_handler(action: str, resource: str, **context: str) -> Request:
        return Request(handler_arn, action, resource, ACCOUNT, documents, context=context)

    passed = {"iam:PassedToService": "omics.amazonaws.com"}
    answers = evaluate(
        [
            as_handler("iam:PassRole", export_arn, **passed),
            as_handler("iam:PassRole", export_arn),
            as_handler("s3:PutObject", f"arn:aws:s3:::{bucket}/exports/cdk/m.json"),
            as_handler("s3:PutObject", f"arn:aws:s3:::{bucket}/exports/x"),
            Request(
                "omics.amazonaws.com",
                "sts:AssumeRole",
                export_arn,
                ACCOUNT,
                resource_policy=deployed.trust_policy(ids["export"]),
                context={"aws:SourceAccount": ACCOUNT, "aws:SourceArn": STORE_ARN},
            ),
            Request(
                export_arn,
                "s3:GetObject",
                f"arn:aws:s3:::{bucket}/k",
                ACCOUNT,
                resource_policy=bucket_policy,
                context={"aws:SecureTransport": "false"},
            ),
        ]
    )
    assert [a.decision for a in answers] == [
        Decision.ALLOW,
        Decision.IMPLICIT_DENY,
        Decision.ALLOW,
        Decision.IMPLICIT_DENY,
        Decision.ALLOW,
        Decision.EXPLICIT_DENY,
    ]
    assert deployed.bucket_key_arn(ids["bucket"]) is None
    assert deployed.bucket_key_arn(ids["sealed"]) == deployed.get_att(ids["key"], "Arn")
    assert deployed.role_policies(ids["starter"])[0]["Statement"][0]["Resource"] == STORE_ARN


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# The gateway


@pytest.fixture(scope="module")
def running() -> Iterator[Gateway]:
    with Gateway() as gateway:
        yield gateway


@pytest.fixture
def gateway(running: Gateway, deployed: DeployedStack) -> Gateway:
    running.reset(OmicsEndpoint(polls_submitted=1, polls_in_progress=1))
    running.omics.add_read_sets(STORE, READ_SETS)
    running.add_stack(deployed)
    return running


def role_client(gateway: Gateway, deployed: DeployedStack, role: str, service: str) -> Any:
    return gateway.client(service, *gateway.add_role(deployed, role))


USER_NUMBERS = itertools.count(1)


def user_client(gateway: Gateway, service: str, *statements: dict[str, Any]) -> Any:
    key = f"AKIAUSER{next(USER_NUMBERS):012d}"
    return gateway.client(service, key, gateway.add_principal(key, [policy(*statements)]))


def test_get_of_a_missing_key_is_403_without_list_bucket_and_404_with_it(
    gateway: Gateway, deployed: DeployedStack, ids: dict[str, str]
) -> None:
    bucket = deployed.physical_name(ids["bucket"])
    objects = f"arn:aws:s3:::{bucket}/*"
    reader = user_client(gateway, "s3", allow("s3:GetObject", objects))
    lister = user_client(
        gateway,
        "s3",
        allow("s3:GetObject", objects),
        allow("s3:ListBucket", f"arn:aws:s3:::{bucket}"),
    )
    for client, expected in ((reader, "AccessDenied"), (lister, "NoSuchKey")):
        with pytest.raises(ClientError) as raised:
            client.get_object(Bucket=bucket, Key="exports/missing.json")
        assert error_code(raised.value) == expected
    with pytest.raises(ClientError) as raised:
        reader.head_object(Bucket=bucket, Key="exports/missing.json")
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with pytest.raises(ClientError) as raised:
        lister.head_object(Bucket=bucket, Key="exports/missing.json")
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    gateway.client("s3").put_object(Bucket=bucket, Key="exports/there", Body=b"x")
    assert reader.get_object(Bucket=bucket, Key="exports/there")["Body"].read() == b"x"


def test_list_bucket_must_cover_the_missing_key_through_its_prefix_condition(
    gateway: Gateway, deployed: DeployedStack, ids: dict[str, str]
) -> None:
    """The handler role may list only exports/cdk/ (its default policy, s3:prefix)."""
    bucket = deployed.physical_name(ids["bucket"])
    handler = role_client(gateway, deployed, ids["handler"], "s3")
    with pytest.raises(ClientError) as raised:
        handler.get_object(Bucket=bucket, Key="exports/cdk/missing.json")
    assert error_code(raised.value) == "NoSuchKey"
    gateway.client("s3").put_object(Bucket=bucket, Key="exports/cdk", Body=b"")
    outside = f"arn:aws:s3:::{bucket}/*"
    reader = user_client(
        gateway,
        "s3",
        allow("s3:GetObject", outside),
        allow(
            "s3:ListBucket",
            f"arn:aws:s3:::{bucket}",
            Condition={"StringLike": {"s3:prefix": "exports/cdk/*"}},
        ),
    )
    with pytest.raises(ClientError) as raised:
        reader.get_object(Bucket=bucket, Key="other/missing.json")
    assert error_code(raised.value) == "AccessDenied"
    assert "s3:ListBucket" in raised.value.response["Error"]["Message"]
    handler.list_objects_v2(Bucket=bucket, Prefix="exports/cdk/")
    with pytest.raises(ClientError) as raised:
        handler.list_objects_v2(Bucket=bucket)  # s3:prefix "" is not under exports/cdk/
    assert error_code(raised.value) == "AccessDenied"


def test_put_outside_the_granted_prefix_is_denied(
    gateway: Gateway, deployed: DeployedStack, ids: dict[str, str]
) -> None:
    bucket = deployed.physical_name(ids["bucket"])
    handler = role_client(gateway, deployed, ids["handler"], "s3")
    handler.put_object(Bucket=bucket, Key="exports/cdk/manifest.json", Body=b"{}")
    with pytest.raises(ClientError) as raised:
        handler.put_object(Bucket=bucket, Key="exports/manifest.json", Body=b"{}")
    assert error_code(raised.value) == "AccessDenied"
    role_name = deployed.ref(ids["handler"])
    assert raised.value.response["Error"]["Message"] == (
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/{role_name}/rehearsal is not authorized to "
        f'perform: s3:PutObject on resource: "arn:aws:s3:::{bucket}/exports/manifest.json" '
        "because no identity-based policy allows the s3:PutObject action"
    )
    (denied,) = gateway.denied()
    assert (denied.principal, denied.action, denied.status) == (ids["handler"], "s3:PutObject", 403)
    keys = [o["Key"] for o in gateway.client("s3").list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == ["exports/cdk/manifest.json"]


def test_a_bucket_policy_deny_wins_and_enforce_ssl_does_not_fire(
    gateway: Gateway, deployed: DeployedStack, ids: dict[str, str]
) -> None:
    bucket = deployed.physical_name(ids["bucket"])
    handler = role_client(gateway, deployed, ids["handler"], "s3")
    handler.put_object(Bucket=bucket, Key="exports/cdk/a", Body=b"1")  # enforce_ssl allows TLS
    lake = policy(
        {
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:PutObject",
            "Resource": f"arn:aws:s3:::{bucket}/*",
            "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}},
        }
    )
    gateway.set_bucket_policy(bucket, lake)
    with pytest.raises(ClientError) as raised:
        handler.put_object(Bucket=bucket, Key="exports/cdk/b", Body=b"2")
    assert "explicit deny in a resource-based policy" in raised.value.response["Error"]["Message"]
    handler.put_object(
        Bucket=bucket, Key="exports/cdk/b", Body=b"2", ServerSideEncryption="aws:kms"
    )


def test_a_customer_managed_key_needs_kms_permissions_on_the_key(
    gateway: Gateway, deployed: DeployedStack, ids: dict[str, str]
) -> None:
    sealed = deployed.physical_name(ids["sealed"])
    key_arn = deployed.get_att(ids["key"], "Arn")
    handler = role_client(gateway, deployed, ids["handler"], "s3")
    with pytest.raises(ClientError) as raised:
        handler.put_object(Bucket=sealed, Key="a", Body=b"1")
    message = raised.value.response["Error"]["Message"]
    assert error_code(raised.value) == "AccessDenied"
    assert f"kms:GenerateDataKey on resource: {key_arn}" in message
    objects = f"arn:aws:s3:::{sealed}/*"
    writer = user_client(
        gateway, "s3", allow("s3:PutObject", objects), allow("kms:GenerateDataKey", key_arn)
    )
    writer.put_object(Bucket=sealed, Key="a", Body=b"1")
    reader = user_client(gateway, "s3", allow("s3:GetObject", objects))
    with pytest.raises(ClientError) as raised:
        reader.get_object(Bucket=sealed, Key="a")
    assert "kms:Decrypt" in raised.value.response["Error"]["Message"]
    decrypter = user_client(
        gateway, "s3", allow("s3:GetObject", objects), allow("kms:Decrypt", key_arn)
    )
    assert decrypter.get_object(Bucket=sealed, Key="a")["Body"].read() == b"1"
    # A bucket whose default is the aws/s3 key (SSE-KMS without a key id) needs none.
    bucket = deployed.physical_name(ids["bucket"])
    plain_writer = user_client(gateway, "s3", allow("s3:PutObject", f"arn:aws:s3:::{bucket}/*"))
    plain_writer.put_object(Bucket=bucket, Key="b", Body=b"2", ServerSideEncryption="aws:kms")


def test_a_permissions_boundary_limits_the_gateway_too(
    gateway: Gateway, deployed: DeployedStack, ids: dict[str, str]
) -> None:
    bucket = deployed.physical_name(ids["bucket"])
    documents = [policy(allow("s3:*", "*"))]
    secret = gateway.add_principal(
        "AKIABOUNDED", documents, boundary=policy(allow("s3:GetObject", "*")), name="bounded"
    )
    client = gateway.client("s3", "AKIABOUNDED", secret)
    with pytest.raises(ClientError) as raised:
        client.put_object(Bucket=bucket, Key="k", Body=b"")
    assert "because no permissions boundary allows" in raised.value.response["Error"]["Message"]


def test_dynamodb_put_on_a_table_the_role_may_not_write_is_denied(
    gateway: Gateway, deployed: DeployedStack, ids: dict[str, str]
) -> None:
    handler = role_client(gateway, deployed, ids["handler"], "dynamodb")
    audit = deployed.physical_name(ids["audit"])
    with pytest.raises(ClientError) as raised:
        handler.put_item(TableName=audit, Item={"pk": {"S": "1"}})
    assert error_code(raised.value) == "AccessDeniedException"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert (
        f":table/{audit} because no identity-based policy allows"
        in (raised.value.response["Error"]["Message"])
    )
    assert gateway.client("dynamodb").scan(TableName=audit)["Count"] == 0


def test_conditional_put_through_the_gateway_still_fails_its_condition(
    gateway: Gateway, deployed: DeployedStack, ids: dict[str, str]
) -> None:
    handler = role_client(gateway, deployed, ids["handler"], "dynamodb")
    locks = deployed.physical_name(ids["locks"])
    arguments = {
        "TableName": locks,
        "Item": {"pk": {"S": "export-1"}},
        "ConditionExpression": "attribute_not_exists(pk)",
    }
    handler.put_item(**arguments)
    with pytest.raises(ClientError) as raised:
        handler.put_item(**arguments)
    assert error_code(raised.value) == "ConditionalCheckFailedException"
    assert handler.get_item(TableName=locks, Key={"pk": {"S": "export-1"}})["Item"]
    described = gateway.client("dynamodb").describe_table(TableName=locks)["Table"]
    assert described["TableArn"] == deployed.get_att(ids["locks"], "Arn")


def test_unknown_access_keys_are_rejected_in_each_service_s_format(
    gateway: Gateway, deployed: DeployedStack, ids: dict[str, str]
) -> None:
    bucket = deployed.physical_name(ids["bucket"])
    with pytest.raises(ClientError) as raised:
        gateway.client("s3", "AKIANOBODY", "x").get_object(Bucket=bucket, Key="k")
    assert error_code(raised.value) == "InvalidAccessKeyId"
    with pytest.raises(ClientError) as raised:
        gateway.client("dynamodb", "AKIANOBODY", "x").list_tables()
    assert error_code(raised.value) == "UnrecognizedClientException"
    with pytest.raises(ClientError) as raised:
        gateway.client("omics", "AKIANOBODY", "x").get_read_set_export_job(
            sequenceStoreId=STORE, id="5000000001"
        )
    assert error_code(raised.value) == "UnrecognizedClientException"


def start_export(client: Any, destination: str, role_arn: str) -> str:
    started = client.start_read_set_export_job(
        sequenceStoreId=STORE,
        destination=destination,
        roleArn=role_arn,
        sources=[{"readSetId": r} for r in READ_SETS],
        clientToken="t-" + role_arn[-12:],
    )
    return str(started["id"])


def follow(client: Any, job_id: str) -> dict[str, Any]:
    for _ in range(10):
        job: dict[str, Any] = client.get_read_set_export_job(sequenceStoreId=STORE, id=job_id)
        if job["status"] not in {"SUBMITTED", "IN_PROGRESS"}:
            return job
    raise AssertionError(f"job {job_id} never ended")


def test_start_export_without_pass_role_is_denied(
    gateway: Gateway, deployed: DeployedStack, ids: dict[str, str]
) -> None:
    starter = role_client(gateway, deployed, ids["starter"], "omics")
    bucket = deployed.physical_name(ids["bucket"])
    export_arn = deployed.role_arn(ids["export"])
    with pytest.raises(ClientError) as raised:
        start_export(starter, f"s3://{bucket}/exports/", export_arn)
    assert error_code(raised.value) == "AccessDeniedException"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert f"iam:PassRole on resource: {export_arn}" in raised.value.response["Error"]["Message"]
    assert gateway.omics.jobs == {}


def test_an_export_lands_in_s3_written_as_the_export_role(
    gateway: Gateway, deployed: DeployedStack, ids: dict[str, str]
) -> None:
    handler = role_client(gateway, deployed, ids["handler"], "omics")
    bucket = deployed.physical_name(ids["bucket"])
    job = follow(
        handler, start_export(handler, f"s3://{bucket}/exports/", deployed.role_arn(ids["export"]))
    )
    assert job["status"] == "COMPLETED"
    assert [r["status"] for r in job["readSets"]] == ["FINISHED"] * 3
    listed = gateway.client("s3").list_objects_v2(Bucket=bucket, Prefix="exports/")
    assert sorted(o["Key"] for o in listed["Contents"]) == [
        f"exports/{r}/{r}.cram" for r in READ_SETS
    ]
    writes = gateway.calls("s3:PutObject")
    assert {w.principal for w in writes} == {ids["export"]}
    assert all(w.decision == Decision.ALLOW and w.status == 200 for w in writes)


def test_an_export_role_without_put_on_the_prefix_fails_the_read_sets(
    gateway: Gateway, deployed: DeployedStack, ids: dict[str, str]
) -> None:
    handler = role_client(gateway, deployed, ids["handler"], "omics")
    bucket = deployed.physical_name(ids["bucket"])
    job = follow(
        handler, start_export(handler, f"s3://{bucket}/exports/", deployed.role_arn(ids["narrow"]))
    )
    assert job["status"] == "FAILED"
    for read_set in job["readSets"]:
        assert read_set["status"] == "FAILED"
        full = (
            f"Access Denied: s3:PutObject on arn:aws:s3:::{bucket}/exports/{read_set['id']}/"
            f"{read_set['id']}.cram (no identity-based policy allows)"
        )
        # The model caps statusMessage at 127 characters.
        assert read_set["statusMessage"] == (full if len(full) <= 127 else full[:124] + "...")
    (record, *_) = gateway.denied()
    assert record.principal == ids["narrow"]
    assert record.message.startswith(
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/{deployed.ref(ids['narrow'])}/rehearsal "
        "is not authorized to perform: s3:PutObject"
    )
    assert "Contents" not in gateway.client("s3").list_objects_v2(Bucket=bucket)


def test_an_export_role_that_does_not_trust_omics_fails_the_job(
    gateway: Gateway, deployed: DeployedStack, ids: dict[str, str]
) -> None:
    handler = role_client(gateway, deployed, ids["handler"], "omics")
    bucket = deployed.physical_name(ids["bucket"])
    untrusting = deployed.role_arn(ids["untrusting"])
    job = follow(handler, start_export(handler, f"s3://{bucket}/exports/", untrusting))
    assert job["status"] == "FAILED"
    assert "sts:AssumeRole" in job["statusMessage"]
    assert gateway.calls("s3:PutObject") == []


def test_not_yet_usable_denies_exactly_n_requests(
    gateway: Gateway, deployed: DeployedStack, ids: dict[str, str]
) -> None:
    bucket = deployed.physical_name(ids["bucket"])
    handler = role_client(gateway, deployed, ids["handler"], "s3")
    gateway.not_yet_usable(deployed.role_arn(ids["handler"]), requests=2)
    outcomes = []
    for index in range(4):
        try:
            handler.put_object(Bucket=bucket, Key=f"exports/cdk/{index}", Body=b"")
            outcomes.append("ok")
        except ClientError as error:
            outcomes.append(error_code(error))
    assert outcomes == ["AccessDenied", "AccessDenied", "ok", "ok"]
    # A role HealthOmics writes as is not usable yet either: one read set fails.
    gateway.not_yet_usable(deployed.role_arn(ids["export"]), requests=1)
    omics = role_client(gateway, deployed, ids["handler"], "omics")
    job = follow(
        omics, start_export(omics, f"s3://{bucket}/exports/", deployed.role_arn(ids["export"]))
    )
    assert job["status"] == "COMPLETED_WITH_FAILURES"
    assert [r["status"] for r in job["readSets"]] == ["FAILED", "FINISHED", "FINISHED"]


def test_concurrent_callers_are_each_authorized_and_recorded(
    gateway: Gateway, deployed: DeployedStack, ids: dict[str, str]
) -> None:
    bucket = deployed.physical_name(ids["bucket"])
    clients = [role_client(gateway, deployed, ids["handler"], "s3") for _ in range(4)]
    failures: list[BaseException] = []

    def work(index: int) -> None:
        try:
            for n in range(5):
                clients[index].put_object(Bucket=bucket, Key=f"exports/cdk/{index}/{n}", Body=b"")
                with pytest.raises(ClientError):
                    clients[index].put_object(Bucket=bucket, Key=f"outside/{index}/{n}", Body=b"")
        except BaseException as error:  # reported by the main thread
            failures.append(error)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert len(gateway.calls("s3:PutObject")) == 40
    assert len(gateway.denied()) == 20
