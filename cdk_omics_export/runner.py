"""The runner: the Step Functions state machine that carries each export of a stack to its end.

Its loop is Step (one short call of the service's ``RunnerHandler``) → CarryOn? → Wait (the
poll interval) → Step, until the export ends (``handler/runner.py``). Here: its definition and
role, its execution logs, the watchdog rule that hears an execution end otherwise than by
succeeding, and the handler's permission to start and follow executions. Every construct is a
child of the ``ReadSetExportService``, with the ids it always had; the service hands in what
they need of it, so this module sits below it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

# Lambda's own transient errors (throttling included) are retried for about 56 minutes.
LAMBDA_ERRORS = (
    "Lambda.ClientExecutionTimeoutException",
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
)
LAMBDA_RETRY_ATTEMPTS = 60
# The runner's step retries anything that failed its Lambda call: after these attempts
# (about two hours in all) the execution fails, and the watchdog starts a new one.
RUNNER_RETRY_ATTEMPTS = 12
RUNNER_RETRY_MAX_DELAY = Duration.minutes(15)
STATES_PRINCIPAL = "states.amazonaws.com"
STATES_STATUS_CHANGE = "Step Functions Execution Status Change"


@dataclass(frozen=True)
class RunnerLogs:
    """Where the runner's executions log, and how much: the service's settings."""

    log_group_name: str
    retention: logs.RetentionDays
    key: kms.IKey
    removal_policy: RemovalPolicy
    level: sfn.LogLevel
    include_execution_data: bool


@dataclass(frozen=True)
class Runner:
    machine: sfn.StateMachine
    log_group: logs.LogGroup
    # The handler's use of the runner, which the function CloudFormation calls depends on.
    control: iam.ManagedPolicy


def create(
    scope: Construct,
    step: lambda_.Function,
    *,
    poll_interval: Duration,
    logging: RunnerLogs,
    dead_letter_queue: sqs.IQueue,
    handler_role: iam.IRole,
) -> Runner:
    """The runner, its watchdog, and the handler's permission to start and follow it."""
    stack = Stack.of(scope)
    machine, log_group = create_runner(
        scope, stack, step, poll_interval=poll_interval, logging=logging
    )
    create_watchdog(scope, machine, step, dead_letter_queue=dead_letter_queue)
    control = create_control(scope, stack, machine, handler_role=handler_role)
    return Runner(machine, log_group, control)


def create_runner(
    scope: Construct,
    stack: Stack,
    step: lambda_.Function,
    *,
    poll_interval: Duration,
    logging: RunnerLogs,
) -> tuple[sfn.StateMachine, logs.LogGroup]:
    """Step → carry on? → Wait (the poll interval) → Step ..., until the export ends.

    Waiting is Step Functions' own Wait state, which costs nothing while it waits; the
    step is one short Lambda call that is safe to retry (every write is conditional, every
    start carries its batch's client token).
    """
    definition = _definition(step, poll_interval)
    role = _create_role(scope, stack, step)
    log_group = _create_logs(scope, logging)
    machine = sfn.StateMachine(
        scope,
        "Runner",
        # Written out rather than built from state constructs: five constructs and the
        # aws_stepfunctions_tasks module cost a whole-app synthesis more than the service's
        # every other part. The function's ARN is a token inside the string.
        definition_body=sfn.DefinitionBody.from_string(
            json.dumps(definition, separators=(",", ":"))
        ),
        state_machine_type=sfn.StateMachineType.STANDARD,
        # Every permission is in the managed policy above (none inline).
        role=role.without_policy_updates(),
        # Errors only, without execution data, unless the user asks for more: with execution
        # data, a state's input and output are logged, and a failed step's cause can repeat
        # what the service was sent.
        logs=sfn.LogOptions(
            destination=log_group,
            level=logging.level,
            include_execution_data=logging.include_execution_data,
        ),
        removal_policy=RemovalPolicy.DESTROY,
    )
    return machine, log_group


def _definition(step: lambda_.Function, poll_interval: Duration) -> dict[str, Any]:
    """The state machine's Amazon States Language, the step's ARN a token inside it."""
    return {
        "StartAt": "Step",
        "States": {
            "Step": {
                "Next": "CarryOn",
                "Retry": [
                    {
                        "ErrorEquals": list(LAMBDA_ERRORS),
                        "IntervalSeconds": 2,
                        "MaxAttempts": LAMBDA_RETRY_ATTEMPTS,
                        "BackoffRate": 2,
                        "MaxDelaySeconds": 60,
                    },
                    {
                        "ErrorEquals": ["States.ALL"],
                        "IntervalSeconds": int(poll_interval.to_seconds()),
                        "MaxAttempts": RUNNER_RETRY_ATTEMPTS,
                        "BackoffRate": 2,
                        "MaxDelaySeconds": int(RUNNER_RETRY_MAX_DELAY.to_seconds()),
                    },
                ],
                "Type": "Task",
                # The function itself, not the lambda:invoke integration: its result is
                # the next state's input, and the step's input carries no ResponseURL.
                "Resource": step.function_arn,
                "Parameters": {
                    "exportId.$": "$.exportId",
                    "steps.$": "$.steps",
                    "execution.$": "$$.Execution.Name",
                    "stateMachine.$": "$$.StateMachine.Id",
                },
            },
            "Wait": {"Type": "Wait", "SecondsPath": "$.waitSeconds", "Next": "Step"},
            "CarryOn": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.action", "StringEquals": "END", "Next": "Ended"}],
                "Default": "Wait",
            },
            "Ended": {"Type": "Succeed"},
        },
        "Comment": "cdk-omics-export: carries each export of the stack to its end",
    }


def _create_role(scope: Construct, stack: Stack, step: lambda_.Function) -> iam.Role:
    """The role Step Functions runs the runner as: it calls the step and delivers logs."""
    role = iam.Role(
        scope,
        "RunnerRole",
        assumed_by=iam.ServicePrincipal(
            STATES_PRINCIPAL,
            conditions={
                "StringEquals": {"aws:SourceAccount": stack.account},
                "ArnLike": {
                    "aws:SourceArn": stack.format_arn(
                        service="states",
                        resource="stateMachine",
                        resource_name="*",
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    )
                },
            },
        ),
        description="Runs the cdk-omics-export runner: calls its step and logs",
    )
    policy = iam.ManagedPolicy(
        scope,
        "RunnerRolePolicy",
        description="cdk-omics-export: what the runner state machine may do",
        statements=[
            iam.PolicyStatement(
                actions=["lambda:InvokeFunction"],
                resources=[step.function_arn],
            ),
            # What Step Functions needs to deliver its logs; these actions support no
            # resource-level permissions.
            iam.PolicyStatement(
                actions=[
                    "logs:CreateLogDelivery",
                    "logs:GetLogDelivery",
                    "logs:UpdateLogDelivery",
                    "logs:DeleteLogDelivery",
                    "logs:ListLogDeliveries",
                    "logs:PutResourcePolicy",
                    "logs:DescribeResourcePolicies",
                    "logs:DescribeLogGroups",
                ],
                resources=["*"],
            ),
        ],
    )
    role.add_managed_policy(policy)
    return role


def _create_logs(scope: Construct, logging: RunnerLogs) -> logs.LogGroup:
    """The runner's execution logs, in a log group of their own under /aws/vendedlogs/:
    Step Functions adds every other log group it logs to to the account's CloudWatch Logs
    resource policy, whose 5,120 characters a few dozen stacks would fill. The name ends
    with the stack's GUID, so a stack created again after a retained one has its own."""
    return logs.LogGroup(
        scope,
        "RunnerLogs",
        log_group_name=logging.log_group_name,
        retention=logging.retention,
        encryption_key=logging.key,
        removal_policy=logging.removal_policy,
    )


def create_watchdog(
    scope: Construct,
    runner: sfn.StateMachine,
    step: lambda_.Function,
    *,
    dead_letter_queue: sqs.IQueue,
) -> events.Rule:
    """Step Functions' own event for a runner execution that failed or timed out (its
    retries ran out) goes to the runner's function, which starts the next execution if
    that one still carried an unfinished export: no export is left without a runner after
    the deploy. One stopped by hand (ABORTED) is not restarted: a deploy that waits for it is
    answered FAILED, naming the execution."""
    return events.Rule(
        scope,
        "RunnerWatchdog",
        description="cdk-omics-export: restarts a runner execution that failed",
        event_pattern=events.EventPattern(
            source=["aws.states"],
            detail_type=[STATES_STATUS_CHANGE],
            detail={
                "stateMachineArn": [runner.state_machine_arn],
                "status": ["FAILED", "TIMED_OUT", "ABORTED"],
            },
        ),
        targets=[
            targets.LambdaFunction(
                step,
                retry_attempts=RUNNER_RETRY_ATTEMPTS,
                dead_letter_queue=dead_letter_queue,
            )
        ],
    )


def create_control(
    scope: Construct, stack: Stack, runner: sfn.StateMachine, *, handler_role: iam.IRole
) -> iam.ManagedPolicy:
    """The handler's use of the runner: start executions and read their status.

    Attached through the policy's Roles, not the role's ManagedPolicyArns: the state
    machine refers to the runner function, whose role this is, so the role cannot refer
    to a policy that refers to the state machine. The functions that use it depend on it.
    """
    executions = stack.format_arn(
        service="states",
        resource="execution",
        resource_name=f"{runner.state_machine_name}:*",
        arn_format=ArnFormat.COLON_RESOURCE_NAME,
    )
    return iam.ManagedPolicy(
        scope,
        "RunnerControlPolicy",
        description="cdk-omics-export: the handler starts and follows runner executions",
        statements=[
            iam.PolicyStatement(
                actions=["states:StartExecution"],
                resources=[runner.state_machine_arn],
            ),
            iam.PolicyStatement(actions=["states:DescribeExecution"], resources=[executions]),
        ],
        roles=[handler_role],
    )
