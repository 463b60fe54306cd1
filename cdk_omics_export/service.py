"""ReadSetExportService: what every ReadSetExport of a stack shares.

One per stack, found by ``ReadSetExportService.of(scope)`` the way CDK's singleton functions
are: the two handler functions (one serves the exports' custom resources, the other is the
runner's step), the runner (a Step Functions state machine that carries each export to its end
and answers CloudFormation, after the deploy if need be), one log group and its key, the
dead-letter queue, the state table, the shared request budget, and the access log bucket of
the destination buckets the exports create. Each export adds only what is its own: its custom
resource, its export role, its bucket, and statements scoped to its store, bucket, prefix and
role on the shared handler role.

Options that configure shared parts can be given here or on any export; they are settled when
the app is synthesized (or when a built part is first used), so an export that leaves one unset
takes the service's value, and two constructs that set different values fail the synthesis
with both their paths.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jsii
from aws_cdk import (
    Aspects,
    Aws,
    Duration,
    Fn,
    IAspect,
    IStableStringProducer,
    Lazy,
    RemovalPolicy,
    Stack,
)
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct, IConstruct

from . import compliance, runner
from . import service_resources as parts
from .export_access import create_access_logs
from .handler import rules
from .handler_policies import HandlerPolicies, vpc_statements
from .shared_options import SharedOptions
from .validation import Problems, check_rule_ids, check_service_props

SERVICE_ID = "ReadSetExportService"
# The default runtime: the newest Python that aws-cdk-lib offers; tests fail when CDK adds a
# newer one.
HANDLER_RUNTIME = lambda_.Runtime.PYTHON_3_14
DEFAULT_LOG_RETENTION = logs.RetentionDays.ONE_YEAR
DEFAULT_MAX_REQUESTS_PER_SECOND = rules.DEFAULT_MAX_REQUESTS_PER_SECOND
DEFAULT_POLL_INTERVAL = Duration.seconds(rules.DEFAULT_POLL_INTERVAL_SECONDS)
DEFAULT_RUNNER_LOG_LEVEL = sfn.LogLevel.ERROR
S3_ACCESS_LOGS_USE_BUCKET_POLICY = "@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy"


class ReadSetExportService(Construct):
    """The per-stack machinery shared by every ``ReadSetExport`` in a stack.

    The first ``ReadSetExport`` of a stack creates it with defaults; declare it yourself to
    set its options in one place and pass it as ``service=``. Options set on an export are
    forwarded here.

    :param vpc: run the service's functions in this VPC (needs
        interface endpoints for HealthOmics' ``control-storage-omics``, S3, DynamoDB, Step
        Functions (``states``), EventBridge (``events``) and CloudWatch Logs, or a NAT).
        Default: outside any VPC.
    :param vpc_subnets: the subnets for the functions. Default: the VPC's private subnets.
    :param security_groups: the functions' security groups. Default: one group allowing
        HTTPS out only.
    :param log_retention: how long the handler's logs are kept. Default: one year.
    :param max_requests_per_second: the most HealthOmics requests per second that all
        exports of this service send together, retries included. Default: 5, HealthOmics'
        default quota, which every stack of the account and Region shares.
    :param poll_interval: how often the runner follows each export's jobs; at least 10
        seconds. Each poll costs 3 Step Functions state transitions. Default: 30 seconds.
    :param reserved_concurrency: the executions to reserve for each of the two functions.
        Default: ``None``, none reserved: a reservation comes out of the account's pool, and
        Lambda refuses one that leaves the account less than its unreserved minimum (a new
        account's quota can be 10).
    :param runtime: the Python runtime of the two handler functions, python3.11 or newer
        (for a partition or Region that lacks the newest). Default: the newest Python that
        aws-cdk-lib offers (``HANDLER_RUNTIME``).
    :param runner_log_level: what the runner's state machine logs to its log group.
        Default: ``sfn.LogLevel.ERROR``: failed steps and executions only.
    :param runner_log_execution_data: whether those logs carry each state's input and output.
        Default: ``False``. With ``True``, they may hold what the export was asked to select
        and what the services answered, which can include identifiers of samples and
        subjects: keep it for debugging.
    :param removal_policy: what ``cdk destroy`` does to the state table, the log group, the
        key and the access log bucket. Default: ``RemovalPolicy.RETAIN``.
    :param auto_delete_objects: empty the access log bucket when it is deleted (needs
        ``removal_policy=RemovalPolicy.DESTROY``). Default: ``False``.
    :param unacknowledged_rules: cdk-nag rule ids (``HIPAA.Security-S3BucketReplicationEnabled``,
        ``AwsSolutions-IAM5``...) whose findings on the resources of this service and of its
        exports the construct leaves open, for the team to decide in its own report (fix, or
        acknowledge with its own reason); ``ACKNOWLEDGED_RULES`` leaves every one open.
        Default: none: each finding listed in docs/compliance.md is acknowledged with its
        reason.
    """

    key: kms.Key
    event_bus: events.EventBus
    table: dynamodb.Table
    dead_letter_queue: sqs.Queue
    handler_role: iam.Role

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        vpc: ec2.IVpc | None = None,
        vpc_subnets: ec2.SubnetSelection | None = None,
        security_groups: Sequence[ec2.ISecurityGroup] | None = None,
        log_retention: logs.RetentionDays | None = None,
        max_requests_per_second: int | None = None,
        poll_interval: Duration | None = None,
        runtime: lambda_.Runtime | None = None,
        reserved_concurrency: int | None = None,
        removal_policy: RemovalPolicy | None = None,
        auto_delete_objects: bool = False,
        runner_log_level: sfn.LogLevel | None = None,
        runner_log_execution_data: bool = False,
        unacknowledged_rules: Sequence[str] | None = None,
    ) -> None:
        super().__init__(scope, id)
        _refuse_a_second(self)
        # A library cannot choose its users' cdk.json: pin, for this subtree only, the
        # behaviour the design relies on. ACL-based log delivery cannot work with
        # bucket-owner-enforced ownership.
        self.node.set_context(S3_ACCESS_LOGS_USE_BUCKET_POLICY, True)
        _check_props(
            self,
            removal_policy=removal_policy,
            auto_delete_objects=auto_delete_objects,
            runner_log_level=runner_log_level,
            runner_log_execution_data=runner_log_execution_data,
            unacknowledged_rules=unacknowledged_rules,
        )
        # The compliance decisions the team takes itself: the rest are acknowledged here.
        self.unacknowledged_rules = frozenset(unacknowledged_rules or ())
        self.removal_policy = removal_policy or RemovalPolicy.RETAIN
        self.runner_log_level = runner_log_level or DEFAULT_RUNNER_LOG_LEVEL
        self.runner_log_execution_data = runner_log_execution_data
        self._auto_delete_objects = auto_delete_objects
        self._options = SharedOptions(self.node.path)
        self._built = False
        self.configure(
            self,
            vpc=vpc,
            vpc_subnets=vpc_subnets,
            security_groups=security_groups,
            log_retention=log_retention,
            max_requests_per_second=max_requests_per_second,
            poll_interval=poll_interval,
            runtime=runtime,
            reserved_concurrency=reserved_concurrency,
        )
        self._access_logs: s3.Bucket | None = None
        self._create_shared_parts()
        Aspects.of(self).add(_BuildAtSynthesis(self))

    def _create_shared_parts(self) -> None:
        """What exists before any export uses the service, and the handler's use of it."""
        shared = parts.create_shared_parts(
            self,
            log_group_names=(self.handler_log_group_name, self.runner_log_group_name),
            removal_policy=self.removal_policy,
        )
        self.key, self.table = shared.key, shared.table
        self.dead_letter_queue, self.handler_role = shared.dead_letter_queue, shared.handler_role
        self.event_bus = shared.event_bus
        self._handler_policies = HandlerPolicies(self, self.handler_role)
        self.add_to_handler_policy(
            *parts.state_statements(self.table, self.key, self.dead_letter_queue)
        )

    @classmethod
    def of(cls, scope: Construct) -> ReadSetExportService:
        """The service of ``scope``'s stack, created with defaults if there is none yet."""
        stack = Stack.of(scope)
        # Found among the stack's children first: where of() creates it, and cheap.
        for child in stack.node.children:
            if isinstance(child, ReadSetExportService):
                return child
        for service in _services_of(stack):
            return service
        return cls(stack, SERVICE_ID)

    def configure(self, setter: IConstruct, **options: Any) -> None:
        """Set shared options on behalf of ``setter`` (an export or the service itself).

        An option left ``None`` takes the service's value. Setting one that another
        construct set to something else is an error naming both.
        """
        self._options.set(setter, options, built=self._built)

    def setting(self, name: str) -> Any:
        return self._options.get(name)

    @property
    def max_requests_per_second(self) -> int:
        return self._options.get_or("max_requests_per_second", DEFAULT_MAX_REQUESTS_PER_SECOND)

    @property
    def poll_interval(self) -> Duration:
        return self._options.get_or("poll_interval", DEFAULT_POLL_INTERVAL)

    @property
    def log_retention(self) -> logs.RetentionDays:
        return self._options.get_or("log_retention", DEFAULT_LOG_RETENTION)

    @property
    def runtime(self) -> lambda_.Runtime:
        """The handler functions' runtime."""
        return self._options.get_or("runtime", HANDLER_RUNTIME)

    @property
    def service_token(self) -> str:
        """The ARN of the function that serves the exports' custom resources (CloudFormation
        invokes it with each request), known once the service is built at synthesis."""
        return Lazy.string(_Produce(lambda: self.on_event_function.function_arn))

    @property
    def on_event_function(self) -> lambda_.Function:
        """Serves the exports' custom resources: registers each request and starts the
        runner, which answers CloudFormation."""
        self.build()
        return self._on_event

    @property
    def runner_function(self) -> lambda_.Function:
        """The runner's step: advances one export each time the state machine calls it."""
        self.build()
        return self._runner_step

    @property
    def runner(self) -> sfn.StateMachine:
        """The Step Functions state machine that carries every export of the stack to its end:
        one execution per export at a time, named ``<export id>-<run>-<segment>``."""
        self.build()
        return self._runner

    @property
    def log_group(self) -> logs.LogGroup:
        self.build()
        return self._log_group

    def access_logs_bucket(self) -> s3.Bucket:
        """The bucket that receives the access logs of every destination bucket created by
        the service's exports; created with the first of them."""
        if self._access_logs is None:
            self._access_logs = create_access_logs(
                self,
                removal_policy=self.removal_policy,
                auto_delete_objects=self._auto_delete_objects,
            )
            compliance.acknowledge_access_logs(self._access_logs, self.unacknowledged_rules)
        return self._access_logs

    def add_to_handler_policy(self, *statements: iam.PolicyStatement) -> None:
        """Add statements to the shared handler role, once each, in managed policies of at
        most IAM's 6,144 characters (a new one when the current one is full)."""
        self._handler_policies.add(*statements)

    @property
    def handler_policies(self) -> list[iam.ManagedPolicy]:
        return self._handler_policies.policies

    def build(self) -> None:
        """Create the functions and the runner with the settled options (once)."""
        if self._built:
            return
        self._built = True
        stack = Stack.of(self)
        self._log_group = parts.create_handler_logs(
            self,
            name=self.handler_log_group_name,
            retention=self.log_retention,
            key=self.key,
            removal_policy=self.removal_policy,
        )
        self.add_to_handler_policy(*parts.logging_statements(self._log_group, self.event_bus))
        functions = self._function_settings(stack)
        environment = parts.handler_environment(
            self.table,
            self._log_group,
            self.event_bus,
            max_requests_per_second=self.max_requests_per_second,
            poll_interval=self.poll_interval,
        )
        # The runner calls this one; it learns the state machine from its context object, so
        # the state machine and the function do not refer to each other.
        self._runner_step = parts.create_function(
            self, "RunnerHandler", "index.run_step", environment, functions
        )
        control = self._create_runner()
        environment = {**environment, rules.RUNNER_ENV: self._runner.state_machine_arn}
        # CloudFormation invokes it asynchronously: Lambda retries a failed invocation
        # twice, and the function answers every request itself, errors included.
        self._on_event = parts.create_function(
            self, "OnEventHandler", "index.on_event", environment, functions
        )
        self._on_event.node.add_dependency(control)
        parts.create_outputs(self, self.table, self._runner)
        compliance.acknowledge_service(
            self,
            in_vpc=self.setting("vpc") is not None,
            reserved=self.setting("reserved_concurrency") is not None,
            runner_logs_all=self.runner_log_level == sfn.LogLevel.ALL,
            open_rules=self.unacknowledged_rules,
        )

    def _function_settings(self, stack: Stack) -> parts.FunctionSettings:
        """What both functions share: their code, role, key, logs and network."""
        settings = parts.function_settings(
            self,
            runtime=self.runtime,
            role=self.handler_role,
            key=self.key,
            log_group=self._log_group,
            dead_letter_queue=self.dead_letter_queue,
            reserved_concurrency=self.setting("reserved_concurrency"),
            vpc=self.setting("vpc"),
            vpc_subnets=self.setting("vpc_subnets"),
            security_groups=self.setting("security_groups"),
        )
        if self.setting("vpc") is not None:
            self.add_to_handler_policy(*vpc_statements(stack))
        return settings

    def _create_runner(self) -> iam.ManagedPolicy:
        """The runner and its watchdog; the handler's use of it, returned."""
        created = runner.create(
            self,
            self._runner_step,
            poll_interval=self.poll_interval,
            logging=runner.RunnerLogs(
                log_group_name=self.runner_log_group_name,
                retention=self.log_retention,
                key=self.key,
                removal_policy=self.removal_policy,
                level=self.runner_log_level,
                include_execution_data=self.runner_log_execution_data,
            ),
            dead_letter_queue=self.dead_letter_queue,
            handler_role=self.handler_role,
        )
        self._runner, self._runner_log_group = created.machine, created.log_group
        return created.control

    @property
    def runner_log_group(self) -> logs.LogGroup:
        """The runner's execution logs (Step Functions' own, at ``runner_log_level``)."""
        self.build()
        return self._runner_log_group

    @property
    def handler_log_group_name(self) -> str:
        """``/cdk-omics-export/handler-<stack GUID>``: a stack created again after a retained
        one has its own."""
        return Fn.join("", ["/cdk-omics-export/handler-", _stack_guid()])

    @property
    def runner_log_group_name(self) -> str:
        """``/aws/vendedlogs/states/cdk-omics-export-<stack GUID>``: under /aws/vendedlogs/,
        Step Functions adds nothing to the account's CloudWatch Logs resource policy."""
        return Fn.join("", ["/aws/vendedlogs/states/cdk-omics-export-", _stack_guid()])


def _check_props(
    service: ReadSetExportService,
    *,
    removal_policy: object,
    auto_delete_objects: object,
    runner_log_level: object,
    runner_log_execution_data: object,
    unacknowledged_rules: object,
) -> None:
    """The props that only the service takes (the shared ones are checked by configure)."""
    wrong = Problems()
    check_service_props(
        wrong,
        removal_policy=removal_policy,
        auto_delete_objects=auto_delete_objects,
        runner_log_level=runner_log_level,
        runner_log_execution_data=runner_log_execution_data,
    )
    check_rule_ids(
        wrong, "unacknowledged_rules", unacknowledged_rules, compliance.ACKNOWLEDGED_RULES
    )
    if auto_delete_objects and removal_policy != RemovalPolicy.DESTROY:
        wrong.add(
            [
                "auto_delete_objects: needs removal_policy=RemovalPolicy.DESTROY (logs are "
                "kept unless you ask for both)"
            ]
        )
    wrong.raise_if_any(service)


def _services_of(stack: Stack) -> list[ReadSetExportService]:
    """The services anywhere in the stack (a nested stack is a stack of its own)."""
    return [
        construct
        for construct in stack.node.find_all()
        if isinstance(construct, ReadSetExportService) and Stack.of(construct) is stack
    ]


def _refuse_a_second(service: ReadSetExportService) -> None:
    """A stack has one service: a second would create the same named log groups and compete
    for the same request budget, and the deploy would fail after minutes."""
    stack = Stack.of(service)
    others = [other for other in _services_of(stack) if other is not service]
    if others:
        raise ValueError(
            f"ReadSetExportService {service.node.path}: stack {stack.node.path} already has a "
            f"ReadSetExportService ({others[0].node.path}); a stack has one, shared by all its "
            "exports. Find it with ReadSetExportService.of(stack), or declare yours before the "
            "first export and pass it to each export as its service prop"
        )


@jsii.implements(IAspect)
class _BuildAtSynthesis:
    """Builds the service's functions once every export has had its say on the options."""

    def __init__(self, service: ReadSetExportService) -> None:
        self._service = service

    def visit(self, node: IConstruct) -> None:
        if node is self._service:
            self._service.build()


def _stack_guid() -> str:
    """The GUID that ends the stack's id: a stack created again gets a new one."""
    return Fn.select(2, Fn.split("/", Aws.STACK_ID))


@jsii.implements(IStableStringProducer)
class _Produce:
    """A ``Lazy`` string from a Python callable, called when the template is resolved."""

    def __init__(self, produce: Callable[[], str]) -> None:
        self._produce = produce

    def produce(self) -> str:
        return self._produce()
