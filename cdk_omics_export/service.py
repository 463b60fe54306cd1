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
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import (
    ArnFormat,
    Aspects,
    Aws,
    CfnOutput,
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
from .export_access import secure_bucket
from .handler import rules
from .handler_policies import HandlerPolicies, vpc_statements
from .validation import Problems, check_service_props, check_shared_options

HANDLER_DIR = Path(__file__).parent / "handler"
SERVICE_ID = "ReadSetExportService"
# The default runtime: the newest Python that aws-cdk-lib offers; tests fail when CDK adds a
# newer one.
HANDLER_RUNTIME = lambda_.Runtime.PYTHON_3_14
HANDLER_TIMEOUT = Duration.minutes(5)
DEFAULT_LOG_RETENTION = logs.RetentionDays.ONE_YEAR
DEFAULT_RUNNER_LOG_LEVEL = sfn.LogLevel.ERROR
S3_ACCESS_LOGS_USE_BUCKET_POLICY = "@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy"
SHARED_OPTIONS = (
    "vpc",
    "vpc_subnets",
    "security_groups",
    "log_retention",
    "max_requests_per_second",
    "poll_interval",
    "runtime",
    "reserved_concurrency",
)


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
    ) -> None:
        super().__init__(scope, id)
        # A library cannot choose its users' cdk.json: pin, for this subtree only, the
        # behaviour the design relies on. ACL-based log delivery cannot work with
        # bucket-owner-enforced ownership.
        self.node.set_context(S3_ACCESS_LOGS_USE_BUCKET_POLICY, True)
        problems: list[str] = []
        if auto_delete_objects and removal_policy != RemovalPolicy.DESTROY:
            problems.append(
                "auto_delete_objects: needs removal_policy=RemovalPolicy.DESTROY (logs are "
                "kept unless you ask for both)"
            )
        wrong = Problems()
        check_service_props(
            wrong,
            removal_policy=removal_policy,
            auto_delete_objects=auto_delete_objects,
            runner_log_level=runner_log_level,
            runner_log_execution_data=runner_log_execution_data,
        )
        wrong.add(problems)
        wrong.raise_if_any(self)
        self.removal_policy = removal_policy or RemovalPolicy.RETAIN
        self.runner_log_level = runner_log_level or DEFAULT_RUNNER_LOG_LEVEL
        self.runner_log_execution_data = runner_log_execution_data
        self._auto_delete_objects = auto_delete_objects
        self._settings: dict[str, tuple[Any, str]] = {}
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
        self._built = False
        self._access_logs: s3.Bucket | None = None

        stack = Stack.of(self)
        self.key = self._create_key(stack)
        self.table = dynamodb.Table(
            self,
            "State",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=self.key,
            removal_policy=self.removal_policy,
        )
        # Asynchronous invocations that fail every attempt land here: CloudFormation's
        # requests (which the function answers even when it fails, so this is rare) and the
        # watchdog's events.
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetters",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        self.handler_role = iam.Role(
            self,
            "HandlerRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Starts and follows HealthOmics read set export jobs for this stack",
        )
        self._handler_policies = HandlerPolicies(self, self.handler_role)
        self.event_bus = self._create_event_bus()
        self.add_to_handler_policy(
            iam.PolicyStatement(
                actions=[
                    "dynamodb:GetItem",
                    "dynamodb:Query",
                    "dynamodb:UpdateItem",
                    "dynamodb:ConditionCheckItem",
                ],
                resources=[self.table.table_arn],
            ),
            # The table is encrypted with the service's key.
            iam.PolicyStatement(
                actions=["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"],
                resources=[self.key.key_arn],
            ),
            iam.PolicyStatement(
                actions=["sqs:SendMessage"], resources=[self.dead_letter_queue.queue_arn]
            ),
        )
        Aspects.of(self).add(_BuildAtSynthesis(self))

    # Finding the stack's service

    @classmethod
    def of(cls, scope: Construct) -> ReadSetExportService:
        """The service of ``scope``'s stack, created with defaults if there is none yet."""
        stack = Stack.of(scope)
        for child in stack.node.children:
            if isinstance(child, ReadSetExportService):
                return child
        return cls(stack, SERVICE_ID)

    # Shared options

    def configure(self, setter: IConstruct, **options: Any) -> None:
        """Set shared options on behalf of ``setter`` (an export or the service itself).

        An option left ``None`` takes the service's value. Setting one that another
        construct set to something else is an error naming both.
        """
        for name in options:
            if name not in SHARED_OPTIONS:
                raise TypeError(f"ReadSetExportService has no shared option {name!r}")
        wrong = Problems()
        check_shared_options(wrong, options)
        wrong.raise_if_any(setter)
        conflicts: list[str] = []
        for name, value in options.items():
            if value is None:
                continue
            current = self._settings.get(name)
            if current is not None and not _same(current[0], value):
                conflicts.append(
                    f"{name}: {setter.node.path} sets {_describe(value)}, but {current[1]} "
                    f"set {_describe(current[0])}; the stack's exports share one "
                    "ReadSetExportService, so give it once (on the service, or the same value "
                    "on every export)"
                )
                continue
            if current is None and getattr(self, "_built", False):
                conflicts.append(
                    f"{name}: {setter.node.path} sets it after the stack's "
                    f"ReadSetExportService was built; set it on the service, or before its "
                    "functions are used"
                )
                continue
            if current is None:
                self._settings[name] = (value, setter.node.path)
        if conflicts:
            raise ValueError(
                f"ReadSetExportService {self.node.path}: conflicting options:\n- "
                + "\n- ".join(conflicts)
            )
        problems: list[str] = []
        rate = self.setting("max_requests_per_second")
        if rate is not None:
            problems += rules.check_max_requests_per_second(rate)
        interval = self.setting("poll_interval")
        if interval is not None and not interval.is_unresolved():
            problems += rules.check_poll_interval(int(interval.to_seconds()))
        if self.setting("vpc") is None and (
            self.setting("vpc_subnets") is not None or self.setting("security_groups") is not None
        ):
            problems.append("vpc_subnets, security_groups: need vpc")
        if problems:
            raise ValueError(
                f"{type(setter).__name__} {setter.node.path}: invalid props:\n- "
                + "\n- ".join(problems)
            )

    def setting(self, name: str) -> Any:
        found = self._settings.get(name)
        return found[0] if found is not None else None

    @property
    def max_requests_per_second(self) -> int:
        value = self.setting("max_requests_per_second")
        return int(value) if value is not None else rules.DEFAULT_MAX_REQUESTS_PER_SECOND

    @property
    def poll_interval(self) -> Duration:
        value = self.setting("poll_interval")
        if value is None:
            return Duration.seconds(rules.DEFAULT_POLL_INTERVAL_SECONDS)
        assert isinstance(value, Duration)
        return value

    @property
    def log_retention(self) -> logs.RetentionDays:
        value = self.setting("log_retention")
        return value if value is not None else DEFAULT_LOG_RETENTION

    @property
    def runtime(self) -> lambda_.Runtime:
        """The handler functions' runtime."""
        value = self.setting("runtime")
        if value is None:
            return HANDLER_RUNTIME
        assert isinstance(value, lambda_.Runtime)
        return value

    # What exports use

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
            # SSE-S3: the only default encryption that S3 server access logging delivers to
            # ("Enabling Amazon S3 server access logging", S3 User Guide). CDK's bucket policy
            # lets logging.s3.amazonaws.com write here for the logged buckets of this account.
            bucket = secure_bucket(
                self,
                "AccessLogs",
                encryption=s3.BucketEncryption.S3_MANAGED,
                removal_policy=self.removal_policy,
                auto_delete_objects=self._auto_delete_objects,
            )
            compliance.acknowledge_access_logs(bucket)
            self._access_logs = bucket
        return self._access_logs

    def add_to_handler_policy(self, *statements: iam.PolicyStatement) -> None:
        """Add statements to the shared handler role, once each, in managed policies of at
        most IAM's 6,144 characters (a new one when the current one is full)."""
        self._handler_policies.add(*statements)

    @property
    def handler_policies(self) -> list[iam.ManagedPolicy]:
        return self._handler_policies.policies

    # Building

    def build(self) -> None:
        """Create the functions and the runner with the settled options (once)."""
        if self._built:
            return
        self._built = True
        stack = Stack.of(self)
        self._log_group = logs.LogGroup(
            self,
            "HandlerLogs",
            # Named, so that the key's policy can name it without depending on it.
            log_group_name=self.handler_log_group_name,
            retention=self.log_retention,
            encryption_key=self.key,
            removal_policy=self.removal_policy,
        )
        self.add_to_handler_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self._log_group.log_group_arn],
            ),
            # Status-change events, to the service's bus, with the service's source only.
            # events:source and events:detail-type are multi-valued keys (Service
            # Authorization Reference, EventBridge): a set operator, with a Null check so that
            # a request without the key is not allowed by an empty set.
            iam.PolicyStatement(
                actions=["events:PutEvents"],
                resources=[self.event_bus.event_bus_arn],
                conditions={
                    "ForAllValues:StringEquals": {
                        "events:source": [rules.EVENT_SOURCE],
                        "events:detail-type": [rules.EVENT_DETAIL_TYPE],
                    },
                    "Null": {"events:source": "false", "events:detail-type": "false"},
                },
            ),
        )
        vpc: ec2.IVpc | None = self.setting("vpc")
        security_groups = self.setting("security_groups")
        if vpc is not None:
            if security_groups is None:
                security_groups = [self._create_security_group(vpc)]
            self.add_to_handler_policy(*vpc_statements(stack))
        network: dict[str, Any] = {
            "vpc": vpc,
            "vpc_subnets": self.setting("vpc_subnets"),
            "security_groups": security_groups,
        }
        code = lambda_.Code.from_asset(str(HANDLER_DIR), exclude=["__pycache__", "*.pyc"])
        environment = {
            rules.TABLE_ENV: self.table.table_name,
            rules.LOG_GROUP_ENV: self._log_group.log_group_name,
            rules.RATE_ENV: str(self.max_requests_per_second),
            rules.POLL_ENV: str(int(self.poll_interval.to_seconds())),
            rules.EVENT_BUS_ENV: self.event_bus.event_bus_name,
        }
        # The runner calls this one; it learns the state machine from its context object, so
        # the state machine and the function do not refer to each other.
        self._runner_step = self._create_function(
            "RunnerHandler",
            "index.run_step",
            code,
            environment,
            network,
        )
        self._runner, self._runner_log_group = runner.create_runner(
            self,
            stack,
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
        )
        runner.create_watchdog(
            self, self._runner, self._runner_step, dead_letter_queue=self.dead_letter_queue
        )
        control = runner.create_control(self, stack, self._runner, handler_role=self.handler_role)
        environment = {**environment, rules.RUNNER_ENV: self._runner.state_machine_arn}
        # CloudFormation invokes it asynchronously: Lambda retries a failed invocation
        # twice, and the function answers every request itself, errors included.
        self._on_event = self._create_function(
            "OnEventHandler", "index.on_event", code, environment, network
        )
        self._on_event.node.add_dependency(control)
        # For `cdk-omics-export status`: it checks each manifest against the export's record
        # and its runner execution, which it finds here, not in the manifest.
        CfnOutput(
            self,
            "StateTableName",
            value=self.table.table_name,
            description="cdk-omics-export: the state table of this stack's exports",
        )
        CfnOutput(
            self,
            "RunnerStateMachineArn",
            value=self._runner.state_machine_arn,
            description="cdk-omics-export: the state machine that runs this stack's exports",
        )
        compliance.acknowledge_service(
            self,
            in_vpc=vpc is not None,
            reserved=self.setting("reserved_concurrency") is not None,
            runner_logs_all=self.runner_log_level == sfn.LogLevel.ALL,
        )

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

    def _create_event_bus(self) -> events.EventBus:
        """The bus the service tells of status changes on. On the default bus, any principal
        of the account allowed events:PutEvents could send a COMPLETED that the exports'
        rules would take for the service's; this bus refuses PutEvents from every principal
        but the handler's role, so a status on it is the service's."""
        bus = events.EventBus(
            self,
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
                conditions={"ArnNotEquals": {"aws:PrincipalArn": self.handler_role.role_arn}},
            )
        )
        return bus

    def _create_key(self, stack: Stack) -> kms.Key:
        key = kms.Key(
            self,
            "Key",
            description="cdk-omics-export: encrypts the export state, handler logs and S3 "
            "access logs",
            enable_key_rotation=True,
            # Retained state and logs stay readable only while their key exists.
            removal_policy=self.removal_policy,
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
                            for name in (self.handler_log_group_name, self.runner_log_group_name)
                        ]
                    }
                },
            )
        )
        return key

    def _create_security_group(self, vpc: ec2.IVpc) -> ec2.SecurityGroup:
        group = ec2.SecurityGroup(
            self,
            "HandlerSecurityGroup",
            vpc=vpc,
            description="cdk-omics-export functions: HTTPS out to AWS endpoints, nothing in",
            allow_all_outbound=False,
        )
        group.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS to AWS endpoints")
        return group

    def _create_function(
        self,
        id: str,
        handler: str,
        code: lambda_.Code,
        environment: dict[str, str],
        network: dict[str, Any],
    ) -> lambda_.Function:
        return lambda_.Function(
            self,
            id,
            runtime=self.runtime,
            architecture=lambda_.Architecture.ARM_64,
            handler=handler,
            code=code,
            # Every permission is in the managed policies: grants that CDK would add on its
            # own (the dead-letter queue's, the VPC's) must not create an inline policy.
            role=self.handler_role.without_policy_updates(),
            timeout=HANDLER_TIMEOUT,
            memory_size=256,
            environment=environment,
            # The service's key, not Lambda's default one (the environment names the table,
            # the log group and the runner).
            environment_encryption=self.key,
            log_group=self._log_group,
            dead_letter_queue=self.dead_letter_queue,
            # None by default: a reservation comes out of the account's pool, and Lambda
            # refuses one that leaves less than its unreserved minimum (a new account's quota
            # can be 10). The pacer, not concurrency, bounds the HealthOmics requests.
            reserved_concurrent_executions=self.setting("reserved_concurrency"),
            description="cdk-omics-export: HealthOmics read set exports of this stack",
            **network,
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


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, Duration) and isinstance(b, Duration):
        return a.to_seconds() == b.to_seconds()
    # Each read of a constant such as Runtime.PYTHON_3_12 is a new proxy object.
    if isinstance(a, lambda_.Runtime) and isinstance(b, lambda_.Runtime):
        return a.name == b.name
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(x is y for x, y in zip(a, b, strict=True))
    return a is b or a == b


def _describe(value: Any) -> str:
    if isinstance(value, Duration):
        return f"{int(value.to_seconds())} s"
    if isinstance(value, Construct):
        return value.node.path
    if isinstance(value, lambda_.Runtime):
        return value.name
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_describe(v) for v in value) + "]"
    return repr(value)
