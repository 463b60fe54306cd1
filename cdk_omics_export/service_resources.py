"""The parts a ``ReadSetExportService`` creates for every export of its stack: its key, state
table, dead-letter queue, handler role, event bus, handler logs, functions and security group,
with the handler's statements on them.

Every construct here is a child of the service passed as ``scope``, with the ids it always had;
the service hands in its settings, so this module sits below it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk import ArnFormat, CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from .handler import rules

HANDLER_DIR = Path(__file__).parent / "handler"
HANDLER_TIMEOUT = Duration.minutes(5)


@dataclass(frozen=True)
class SharedParts:
    """What a service has before any export uses it."""

    key: kms.Key
    table: dynamodb.Table
    dead_letter_queue: sqs.Queue
    handler_role: iam.Role
    event_bus: events.EventBus


def create_shared_parts(
    scope: Construct, *, log_group_names: Sequence[str], removal_policy: RemovalPolicy
) -> SharedParts:
    """The key, the state table, the dead-letter queue, the handler role and the event bus."""
    key = create_key(
        scope, Stack.of(scope), log_group_names=log_group_names, removal_policy=removal_policy
    )
    table = create_state_table(scope, key=key, removal_policy=removal_policy)
    dead_letter_queue = create_dead_letter_queue(scope)
    handler_role = create_handler_role(scope)
    event_bus = create_event_bus(scope, handler_role)
    return SharedParts(key, table, dead_letter_queue, handler_role, event_bus)


def create_key(
    scope: Construct, stack: Stack, *, log_group_names: Sequence[str], removal_policy: RemovalPolicy
) -> kms.Key:
    """The service's key: its state, its logs and its functions' environment."""
    key = kms.Key(
        scope,
        "Key",
        description="cdk-omics-export: encrypts the export state, handler logs and S3 access logs",
        enable_key_rotation=True,
        # Retained state and logs stay readable only while their key exists.
        removal_policy=removal_policy,
    )
    key.add_to_resource_policy(
        iam.PolicyStatement(
            principals=[iam.ServicePrincipal(f"logs.{stack.region}.{stack.url_suffix}")],
            actions=[
                "kms:Encrypt*",
                "kms:Decrypt*",
                "kms:ReEncrypt*",
                "kms:GenerateDataKey*",
                "kms:Describe*",
            ],
            resources=["*"],
            # The service's two log groups, not every log group of the account.
            conditions={
                "ArnEquals": {
                    "kms:EncryptionContext:aws:logs:arn": [
                        stack.format_arn(
                            service="logs",
                            resource="log-group",
                            resource_name=name,
                            arn_format=ArnFormat.COLON_RESOURCE_NAME,
                        )
                        for name in log_group_names
                    ]
                }
            },
        )
    )
    return key


def create_state_table(
    scope: Construct, *, key: kms.IKey, removal_policy: RemovalPolicy
) -> dynamodb.Table:
    return dynamodb.Table(
        scope,
        "State",
        partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
        sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
            point_in_time_recovery_enabled=True
        ),
        encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
        encryption_key=key,
        removal_policy=removal_policy,
    )


def create_dead_letter_queue(scope: Construct) -> sqs.Queue:
    """Asynchronous invocations that fail every attempt land here: CloudFormation's requests
    (which the function answers even when it fails, so this is rare) and the watchdog's
    events."""
    return sqs.Queue(
        scope,
        "DeadLetters",
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        retention_period=Duration.days(14),
    )


def create_handler_role(scope: Construct) -> iam.Role:
    return iam.Role(
        scope,
        "HandlerRole",
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        description="Starts and follows HealthOmics read set export jobs for this stack",
    )


def state_statements(
    table: dynamodb.ITable, key: kms.IKey, dead_letter_queue: sqs.IQueue
) -> list[iam.PolicyStatement]:
    """The handler's use of the state table, its key and the dead-letter queue."""
    return [
        iam.PolicyStatement(
            actions=[
                "dynamodb:GetItem",
                "dynamodb:Query",
                "dynamodb:UpdateItem",
                "dynamodb:ConditionCheckItem",
            ],
            resources=[table.table_arn],
        ),
        # The table is encrypted with the service's key.
        iam.PolicyStatement(
            actions=["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"],
            resources=[key.key_arn],
        ),
        iam.PolicyStatement(actions=["sqs:SendMessage"], resources=[dead_letter_queue.queue_arn]),
    ]


def create_event_bus(scope: Construct, handler_role: iam.IRole) -> events.EventBus:
    """The bus the service tells of status changes on. On the default bus, any principal
    of the account allowed events:PutEvents could send a COMPLETED that the exports'
    rules would take for the service's; this bus refuses PutEvents from every principal
    but the handler's role, so a status on it is the service's."""
    bus = events.EventBus(
        scope,
        "Events",
        description="cdk-omics-export: status changes of this stack's read set exports",
    )
    bus.add_to_resource_policy(
        iam.PolicyStatement(
            sid="OnlyTheServicePutsEvents",
            effect=iam.Effect.DENY,
            principals=[iam.AnyPrincipal()],
            actions=["events:PutEvents"],
            resources=[bus.event_bus_arn],
            conditions={"ArnNotEquals": {"aws:PrincipalArn": handler_role.role_arn}},
        )
    )
    return bus


def create_handler_logs(
    scope: Construct,
    *,
    name: str,
    retention: logs.RetentionDays,
    key: kms.IKey,
    removal_policy: RemovalPolicy,
) -> logs.LogGroup:
    return logs.LogGroup(
        scope,
        "HandlerLogs",
        # Named, so that the key's policy can name it without depending on it.
        log_group_name=name,
        retention=retention,
        encryption_key=key,
        removal_policy=removal_policy,
    )


def logging_statements(
    log_group: logs.ILogGroup, event_bus: events.IEventBus
) -> list[iam.PolicyStatement]:
    """The handler's logs, and its status-change events to the service's bus."""
    return [
        iam.PolicyStatement(
            actions=["logs:CreateLogStream", "logs:PutLogEvents"],
            resources=[log_group.log_group_arn],
        ),
        # Status-change events, to the service's bus, with the service's source only.
        # events:source and events:detail-type are multi-valued keys (Service
        # Authorization Reference, EventBridge): a set operator, with a Null check so that
        # a request without the key is not allowed by an empty set.
        iam.PolicyStatement(
            actions=["events:PutEvents"],
            resources=[event_bus.event_bus_arn],
            conditions={
                "ForAllValues:StringEquals": {
                    "events:source": [rules.EVENT_SOURCE],
                    "events:detail-type": [rules.EVENT_DETAIL_TYPE],
                },
                "Null": {"events:source": "false", "events:detail-type": "false"},
            },
        ),
    ]


def create_security_group(scope: Construct, vpc: ec2.IVpc) -> ec2.SecurityGroup:
    group = ec2.SecurityGroup(
        scope,
        "HandlerSecurityGroup",
        vpc=vpc,
        description="cdk-omics-export functions: HTTPS out to AWS endpoints, nothing in",
        allow_all_outbound=False,
    )
    group.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS to AWS endpoints")
    return group


@dataclass(frozen=True)
class FunctionSettings:
    """What the service's two functions share."""

    runtime: lambda_.Runtime
    role: iam.Role
    key: kms.IKey
    log_group: logs.ILogGroup
    dead_letter_queue: sqs.IQueue
    reserved_concurrency: int | None
    code: lambda_.Code
    network: dict[str, Any]


def function_settings(
    scope: Construct,
    *,
    runtime: lambda_.Runtime,
    role: iam.Role,
    key: kms.IKey,
    log_group: logs.ILogGroup,
    dead_letter_queue: sqs.IQueue,
    reserved_concurrency: int | None,
    vpc: ec2.IVpc | None,
    vpc_subnets: ec2.SubnetSelection | None,
    security_groups: Sequence[ec2.ISecurityGroup] | None,
) -> FunctionSettings:
    """What both functions share; in a VPC without security groups given, a group of the
    service's own."""
    if vpc is not None and security_groups is None:
        security_groups = [create_security_group(scope, vpc)]
    return FunctionSettings(
        runtime=runtime,
        role=role,
        key=key,
        log_group=log_group,
        dead_letter_queue=dead_letter_queue,
        reserved_concurrency=reserved_concurrency,
        code=lambda_.Code.from_asset(str(HANDLER_DIR), exclude=["__pycache__", "*.pyc"]),
        network={"vpc": vpc, "vpc_subnets": vpc_subnets, "security_groups": security_groups},
    )


def handler_environment(
    table: dynamodb.ITable,
    log_group: logs.ILogGroup,
    event_bus: events.IEventBus,
    *,
    max_requests_per_second: int,
    poll_interval: Duration,
) -> dict[str, str]:
    """What both functions are told in their environment (the runner's ARN aside)."""
    return {
        rules.TABLE_ENV: table.table_name,
        rules.LOG_GROUP_ENV: log_group.log_group_name,
        rules.RATE_ENV: str(max_requests_per_second),
        rules.POLL_ENV: str(int(poll_interval.to_seconds())),
        rules.EVENT_BUS_ENV: event_bus.event_bus_name,
    }


def create_function(
    scope: Construct,
    id: str,
    handler: str,
    environment: dict[str, str],
    settings: FunctionSettings,
) -> lambda_.Function:
    return lambda_.Function(
        scope,
        id,
        runtime=settings.runtime,
        architecture=lambda_.Architecture.ARM_64,
        handler=handler,
        code=settings.code,
        # Every permission is in the managed policies: grants that CDK would add on its
        # own (the dead-letter queue's, the VPC's) must not create an inline policy.
        role=settings.role.without_policy_updates(),
        timeout=HANDLER_TIMEOUT,
        memory_size=256,
        environment=environment,
        # The service's key, not Lambda's default one (the environment names the table,
        # the log group and the runner).
        environment_encryption=settings.key,
        log_group=settings.log_group,
        dead_letter_queue=settings.dead_letter_queue,
        # None by default: a reservation comes out of the account's pool, and Lambda
        # refuses one that leaves less than its unreserved minimum (a new account's quota
        # can be 10). The pacer, not concurrency, bounds the HealthOmics requests.
        reserved_concurrent_executions=settings.reserved_concurrency,
        description="cdk-omics-export: HealthOmics read set exports of this stack",
        **settings.network,
    )


def create_outputs(scope: Construct, table: dynamodb.ITable, runner: sfn.StateMachine) -> None:
    """For `cdk-omics-export status`: it checks each manifest against the export's record and
    its runner execution, which it finds here, not in the manifest."""
    CfnOutput(
        scope,
        "StateTableName",
        value=table.table_name,
        description="cdk-omics-export: the state table of this stack's exports",
    )
    CfnOutput(
        scope,
        "RunnerStateMachineArn",
        value=runner.state_machine_arn,
        description="cdk-omics-export: the state machine that runs this stack's exports",
    )
