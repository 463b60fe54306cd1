"""The ReadSetExport construct: export HealthOmics read sets to S3 during ``cdk deploy``."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aws_cdk import (
    ArnFormat,
    CfnOutput,
    CustomResource,
    Duration,
    Fn,
    RemovalPolicy,
    Stack,
    Token,
)
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import custom_resources as cr
from constructs import Construct

from .compliance import acknowledge_findings
from .handler import rules
from .handler.export import MANIFEST_FOLDER
from .read_set_filter import ReadSetFilter

HANDLER_DIR = Path(__file__).parent / "handler"
RESOURCE_TYPE = "Custom::OmicsReadSetExport"
OMICS_SERVICE_PRINCIPAL = "omics.amazonaws.com"
STATUS_CHANGE_DETAIL_TYPE = "Read Set Export Job Status Change"
# Newest Python runtime that aws-cdk-lib offers; tests fail when CDK adds a newer one.
HANDLER_RUNTIME = lambda_.Runtime.PYTHON_3_14
HANDLER_TIMEOUT = Duration.minutes(5)
HANDLER_RESERVED_CONCURRENCY = 2
DEFAULT_LOG_RETENTION = logs.RetentionDays.ONE_YEAR
S3_ACCESS_LOGS_USE_BUCKET_POLICY = "@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy"
# What a Lambda function needs to attach to a VPC; EC2 grants these on "*" only.
VPC_NETWORKING_ACTIONS = [
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
]


class ReadSetExport(Construct):
    """Exports HealthOmics read sets to S3 during ``cdk deploy``.

    Provisions a destination bucket (or uses yours), the export service role that HealthOmics
    assumes (the ``roleArn`` of StartReadSetExportJob) and a custom resource whose Lambda
    handler selects the read sets, starts the export jobs, follows them and reports them.

    :param sequence_store_id: the HealthOmics sequence store holding the read sets
        (10-36 digits), or a token such as ``CfnSequenceStore.attr_sequence_store_id``.
    :param read_set_ids: the read sets to export: 1-10,000 ids of 10-36 digits, no
        duplicates, exported through jobs of at most 100. Give this or ``read_set_filter``.
    :param read_set_filter: select the read sets at deploy time with ListReadSets' filter
        fields instead of listing them. Give this or ``read_set_ids``.
    :param allow_empty_selection: with ``read_set_filter``, whether a filter that selects
        nothing completes the deploy (status ``COMPLETED``, no job) instead of failing it.
        Default: ``False``.
    :param destination_prefix: key prefix in the bucket, ``""`` or ending in ``/``.
        Default: ``""`` (the bucket's root).
    :param destination_bucket: an existing bucket to export into (same stack, another stack,
        or imported). Default: a new bucket with public access blocked, TLS only, SSE-KMS,
        versioning, access logging and ``RemovalPolicy.RETAIN``.
    :param encryption_key: the KMS key of the destination. A created bucket uses SSE-KMS
        with it (bucket key enabled); with ``destination_bucket`` it names that bucket's key.
        Default: the created bucket uses the account's ``aws/s3`` key; a given bucket's own
        ``encryption_key`` when it has one.
    :param removal_policy: what ``cdk destroy`` does to the created bucket, its access log
        bucket, the log group and the logs key. Default: ``RemovalPolicy.RETAIN``.
    :param auto_delete_objects: empty the created buckets when they are deleted (needs
        ``removal_policy=RemovalPolicy.DESTROY``; for throwaway stacks). Default: ``False``.
    :param wait_for_completion: whether the deploy waits until every job ends and fails
        unless all complete. Default: ``True``. With ``False`` the resource is complete as
        soon as every job is submitted and the status output says ``SUBMITTED``.
    :param allow_partial_failure: whether jobs ending ``COMPLETED_WITH_FAILURES`` complete
        the deploy (status ``COMPLETED_WITH_FAILURES``, failed read sets in the manifest and
        the ``FailedReadSetCount`` output) instead of failing it. Default: ``False``.
    :param timeout: how long the deploy waits; at most 55 minutes (CloudFormation waits an
        hour for a custom resource) and a whole number of poll intervals. Default: 50 minutes.
    :param poll_interval: how often the jobs are followed while waiting; at least
        10 seconds. Default: 30 seconds.
    :param max_requests_per_second: the most HealthOmics requests per second this
        construct's handler sends, retries included. Default: 5, HealthOmics' default quota.
    :param notification_topic: an SNS topic told of every status change of this
        construct's jobs (an EventBridge rule on ``aws.omics``). Default: no notification.
    :param vpc: run the handler and the Provider framework's functions in this VPC.
        Default: outside any VPC.
    :param vpc_subnets: the subnets for the functions. Default: the VPC's private subnets.
    :param security_groups: the functions' security groups. Default: one group allowing
        HTTPS out only.
    :param log_retention: how long the handler's logs are kept. Default: one year.
    """

    bucket: s3.IBucket
    encryption_key: kms.IKey | None
    role: iam.IRole
    function: lambda_.IFunction
    is_complete_function: lambda_.IFunction
    log_group: logs.ILogGroup
    logs_key: kms.IKey
    dead_letter_queue: sqs.IQueue
    job_id: str
    job_ids: str
    job_status: str
    job_count: str
    read_set_count: str
    failed_read_set_count: str
    manifest_uri: str
    destination: str
    destination_prefix: str
    sequence_store_id: str

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        sequence_store_id: str,
        read_set_ids: Sequence[str] | None = None,
        read_set_filter: ReadSetFilter | None = None,
        allow_empty_selection: bool = False,
        destination_prefix: str = "",
        destination_bucket: s3.IBucket | None = None,
        encryption_key: kms.IKey | None = None,
        removal_policy: RemovalPolicy | None = None,
        auto_delete_objects: bool = False,
        wait_for_completion: bool = True,
        allow_partial_failure: bool = False,
        timeout: Duration | None = None,
        poll_interval: Duration | None = None,
        max_requests_per_second: int = rules.DEFAULT_MAX_REQUESTS_PER_SECOND,
        notification_topic: sns.ITopic | None = None,
        vpc: ec2.IVpc | None = None,
        vpc_subnets: ec2.SubnetSelection | None = None,
        security_groups: Sequence[ec2.ISecurityGroup] | None = None,
        log_retention: logs.RetentionDays | None = None,
    ) -> None:
        super().__init__(scope, id)
        # A library cannot choose its users' cdk.json: pin, for this subtree only, the
        # behaviour the design relies on. ACL-based log delivery cannot work with
        # bucket-owner-enforced ownership.
        self.node.set_context(S3_ACCESS_LOGS_USE_BUCKET_POLICY, True)
        timeout = timeout or Duration.seconds(rules.DEFAULT_TIMEOUT_SECONDS)
        poll_interval = poll_interval or Duration.seconds(rules.DEFAULT_POLL_INTERVAL_SECONDS)
        read_set_ids = None if read_set_ids is None else list(read_set_ids)
        _validate(
            self,
            sequence_store_id=sequence_store_id,
            read_set_ids=read_set_ids,
            read_set_filter=read_set_filter,
            allow_empty_selection=allow_empty_selection,
            destination_prefix=destination_prefix,
            destination_bucket=destination_bucket,
            removal_policy=removal_policy,
            auto_delete_objects=auto_delete_objects,
            timeout=timeout,
            poll_interval=poll_interval,
            max_requests_per_second=max_requests_per_second,
            vpc=vpc,
            vpc_subnets=vpc_subnets,
            security_groups=security_groups,
        )
        stack = Stack.of(self)
        removal = removal_policy or RemovalPolicy.RETAIN
        self.sequence_store_id = sequence_store_id
        self.destination_prefix = destination_prefix

        self.logs_key = self._create_logs_key(stack, removal)
        if destination_bucket is None:
            self.encryption_key = encryption_key
            self.bucket = self._create_bucket(removal, auto_delete_objects)
        else:
            self.encryption_key = encryption_key or destination_bucket.encryption_key
            self.bucket = destination_bucket
        self.destination = rules.destination_uri(self.bucket.bucket_name, destination_prefix)
        self.role = self._create_export_role(stack)

        self.log_group = logs.LogGroup(
            self,
            "HandlerLogs",
            retention=log_retention or DEFAULT_LOG_RETENTION,
            encryption_key=self.logs_key,
            removal_policy=removal,
        )
        # Only asynchronous invocations reach a dead-letter queue; the Provider framework
        # invokes the handlers synchronously, so it stays empty unless someone else
        # invokes them asynchronously.
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetters",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        selection, read_set_list = self._selection(read_set_ids, read_set_filter)
        if read_set_filter is not None:
            selection["AllowEmptySelection"] = allow_empty_selection
        if vpc is not None and security_groups is None:
            security_groups = [self._create_security_group(vpc)]
        network: dict[str, Any] = {
            "vpc": vpc,
            "vpc_subnets": vpc_subnets,
            "security_groups": security_groups,
        }
        handler_role = self._create_handler_role(stack, read_set_list, in_vpc=vpc is not None)
        code = lambda_.Code.from_asset(str(HANDLER_DIR), exclude=["__pycache__", "*.pyc"])
        self.function = self._create_function(
            "OnEventHandler", "index.on_event", code, handler_role, network
        )
        self.is_complete_function = self._create_function(
            "IsCompleteHandler", "index.is_complete", code, handler_role, network
        )

        provider = cr.Provider(
            self,
            "Provider",
            on_event_handler=self.function,
            is_complete_handler=self.is_complete_function,
            query_interval=poll_interval,
            total_timeout=timeout,
            log_group=self.log_group,
            **network,
        )
        resource = CustomResource(
            self,
            "Resource",
            service_token=provider.service_token,
            resource_type=RESOURCE_TYPE,
            service_timeout=Duration.seconds(
                timeout.to_seconds() + rules.SERVICE_TIMEOUT_HEADROOM_SECONDS
            ),
            properties={
                "SequenceStoreId": sequence_store_id,
                **selection,
                "Destination": self.destination,
                "RoleArn": self.role.role_arn,
                "WaitForCompletion": wait_for_completion,
                **({"AllowPartialFailure": True} if allow_partial_failure else {}),
                # The handler fails with the jobs' ids before the waiter's bare timeout.
                "TimeoutSeconds": timeout.to_seconds(),
                "PollIntervalSeconds": poll_interval.to_seconds(),
                "MaxRequestsPerSecond": max_requests_per_second,
            },
        )
        acknowledge_findings(self, provider, in_vpc=vpc is not None)
        self.job_id = resource.get_att_string("JobId")
        self.job_ids = resource.get_att_string("JobIds")
        self.job_status = resource.get_att_string("Status")
        self.job_count = resource.get_att_string("JobCount")
        self.read_set_count = resource.get_att_string("ReadSetCount")
        self.failed_read_set_count = resource.get_att_string("FailedReadSetCount")
        self.manifest_uri = resource.get_att_string("ManifestUri")

        for name, value, description in (
            ("JobId", self.job_id, "HealthOmics export job id (the first, when there are several)"),
            ("JobStatus", self.job_status, "Export status when the deploy finished waiting"),
            ("JobCount", self.job_count, "Number of export jobs"),
            ("ReadSetCount", self.read_set_count, "Number of read sets selected for export"),
            ("FailedReadSetCount", self.failed_read_set_count, "Number of read sets that failed"),
            ("ManifestUri", self.manifest_uri, "S3 URI of the manifest: every job and read set"),
            ("Destination", self.destination, "S3 URI of the export"),
        ):
            CfnOutput(self, name, value=value, description=description)

        if notification_topic is not None:
            self._notify(notification_topic)

    # Public methods

    def on_status_change(
        self, id: str, target: events.IRuleTarget | None = None, *, description: str | None = None
    ) -> events.Rule:
        """An EventBridge rule on the status changes of this construct's export jobs.

        Matches ``aws.omics`` events of detail-type ``Read Set Export Job Status Change`` for
        this sequence store and the jobs this construct started (``JobIds``). The rule exists
        once the jobs are submitted, so it hears IN_PROGRESS, COMPLETED, FAILED and
        COMPLETED_WITH_FAILURES; EventBridge delivers them on a best-effort basis.
        """
        return events.Rule(
            self,
            id,
            description=description or "Status changes of cdk-omics-export read set export jobs",
            event_pattern=events.EventPattern(
                source=["aws.omics"],
                detail_type=[STATUS_CHANGE_DETAIL_TYPE],
                detail={
                    "sequenceStoreId": [self.sequence_store_id],
                    "id": Fn.split(",", self.job_ids),
                },
            ),
            targets=[target] if target is not None else None,
        )

    def grant_read(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` list and read the exported objects: the prefix only, and the key."""
        prefix = self.destination_prefix
        grant = iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["s3:GetObject"],
            resource_arns=[self.bucket.arn_for_objects(f"{prefix}*")],
        )
        listing: dict[str, Any] = {"StringLike": {"s3:prefix": [f"{prefix}*"]}} if prefix else {}
        iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["s3:ListBucket"],
            resource_arns=[self.bucket.bucket_arn],
            conditions=listing or None,
        )
        if self.encryption_key is not None:
            self.encryption_key.grant_decrypt(grantee)
        return grant

    # Resources

    def _selection(
        self, read_set_ids: list[str] | None, read_set_filter: ReadSetFilter | None
    ) -> tuple[dict[str, Any], s3_assets.Asset | None]:
        """The custom resource's selection properties: small at any number of read sets."""
        if read_set_filter is not None:
            return {"ReadSetFilter": read_set_filter.to_api()}, None
        assert read_set_ids is not None
        if len(read_set_ids) <= rules.INLINE_READ_SET_LIMIT or _is_list_token(read_set_ids):
            return {"ReadSetIds": read_set_ids}, None
        # More ids than an event should carry: an S3 asset, whose key is its content's hash,
        # so a changed list is a changed property (a new export) and an unchanged one is not.
        folder = Path(tempfile.mkdtemp(prefix="cdk-omics-export-"))
        (folder / "read-set-ids.json").write_text(json.dumps(read_set_ids))
        asset = s3_assets.Asset(self, "ReadSetList", path=str(folder / "read-set-ids.json"))
        return {"ReadSetList": asset.s3_object_url}, asset

    def _create_logs_key(self, stack: Stack, removal: RemovalPolicy) -> kms.Key:
        key = kms.Key(
            self,
            "LogsKey",
            description="cdk-omics-export: encrypts the export handler's logs and S3 access logs",
            enable_key_rotation=True,
            # Retained logs stay readable only while their key exists.
            removal_policy=removal,
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
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": stack.format_arn(
                            service="logs",
                            resource="log-group",
                            resource_name="*",
                            arn_format=ArnFormat.COLON_RESOURCE_NAME,
                        )
                    }
                },
            )
        )
        # CDK adds S3 log delivery's use of the key when the access log bucket names it.
        return key

    def _create_bucket(self, removal: RemovalPolicy, auto_delete_objects: bool) -> s3.Bucket:
        lifecycle = {"removal_policy": removal, "auto_delete_objects": auto_delete_objects}
        access_logs = self._secure_bucket(
            "AccessLogs",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.logs_key,
            **lifecycle,
        )
        # Without a key of the user's, SSE-KMS with the account's aws/s3 key: its key policy
        # already lets principals of the account (the export role) use it through S3.
        encryption: dict[str, Any] = (
            {"encryption": s3.BucketEncryption.KMS, "encryption_key": self.encryption_key}
            if self.encryption_key is not None
            else {"encryption": s3.BucketEncryption.KMS_MANAGED}
        )
        return self._secure_bucket(
            "Bucket",
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix="destination/",
            **encryption,
            **lifecycle,
        )

    def _secure_bucket(self, id: str, **settings: Any) -> s3.Bucket:
        return s3.Bucket(
            self,
            id,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            bucket_key_enabled=True,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            **settings,
        )

    def _key_statements(self) -> list[iam.PolicyStatement]:
        """SSE-KMS writes (multipart included) need these two on the destination's key."""
        if self.encryption_key is None:
            return []
        return [
            iam.PolicyStatement(
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=[self.encryption_key.key_arn],
            )
        ]

    def _create_export_role(self, stack: Stack) -> iam.Role:
        # The confused-deputy conditions AWS recommends for HealthOmics service roles.
        principal = iam.ServicePrincipal(
            OMICS_SERVICE_PRINCIPAL,
            conditions={
                "StringEquals": {"aws:SourceAccount": stack.account},
                "StringLike": {
                    "aws:SourceArn": f"arn:{stack.partition}:omics:{stack.region}:{stack.account}:*"
                },
            },
        )
        policy = iam.PolicyDocument(
            statements=[
                iam.PolicyStatement(
                    actions=["s3:PutObject"],
                    resources=[self.bucket.arn_for_objects(f"{self.destination_prefix}*")],
                ),
                iam.PolicyStatement(
                    actions=["s3:GetBucketLocation"], resources=[self.bucket.bucket_arn]
                ),
                *self._key_statements(),
            ]
        )
        # Attached through the role's ManagedPolicyArns, so the permissions exist as soon
        # as the role does: the job may start the moment the role's ARN is known.
        return iam.Role(
            self,
            "ExportRole",
            assumed_by=principal,
            description="Assumed by HealthOmics to write read set exports to S3",
            managed_policies=[
                iam.ManagedPolicy(
                    self,
                    "ExportPolicy",
                    description="cdk-omics-export: what HealthOmics may do for the export",
                    document=policy,
                )
            ],
        )

    def _create_handler_role(
        self, stack: Stack, read_set_list: s3_assets.Asset | None, *, in_vpc: bool
    ) -> iam.IRole:
        store_arn = stack.format_arn(
            service="omics", resource="sequenceStore", resource_name=self.sequence_store_id
        )
        manifests = self.bucket.arn_for_objects(f"{self.destination_prefix}{MANIFEST_FOLDER}*")
        statements = [
            iam.PolicyStatement(
                actions=[
                    "omics:StartReadSetExportJob",
                    "omics:GetReadSetExportJob",
                    "omics:ListReadSets",
                ],
                resources=[store_arn],
            ),
            # The pre-flight reads the status of each listed read set of this store.
            iam.PolicyStatement(
                actions=["omics:GetReadSetMetadata"], resources=[f"{store_arn}/readSet/*"]
            ),
            iam.PolicyStatement(actions=["s3:GetObject", "s3:PutObject"], resources=[manifests]),
            # Without s3:ListBucket, S3 answers GetObject on a missing key with 403, not 404:
            # the first read of a new export's manifest would fail every Create.
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[self.bucket.bucket_arn],
                conditions={
                    "StringLike": {"s3:prefix": [f"{self.destination_prefix}{MANIFEST_FOLDER}*"]}
                },
            ),
        ]
        if read_set_list is not None:
            statements.append(
                iam.PolicyStatement(
                    actions=["s3:GetObject"],
                    resources=[read_set_list.bucket.arn_for_objects(read_set_list.s3_object_key)],
                )
            )
        # The manifests live in the destination: its key encrypts them too.
        statements += self._key_statements()
        statements += [
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[self.role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": OMICS_SERVICE_PRINCIPAL}},
            ),
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn],
            ),
            iam.PolicyStatement(
                actions=["sqs:SendMessage"], resources=[self.dead_letter_queue.queue_arn]
            ),
        ]
        if in_vpc:
            statements.append(iam.PolicyStatement(actions=VPC_NETWORKING_ACTIONS, resources=["*"]))
        role = iam.Role(
            self,
            "HandlerRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Starts and follows the HealthOmics read set export jobs",
            managed_policies=[
                iam.ManagedPolicy(
                    self,
                    "HandlerPolicy",
                    description="cdk-omics-export: what the export handler may do",
                    document=iam.PolicyDocument(statements=statements),
                )
            ],
        )
        # Every permission is in the policy above: grants that CDK would add on its own
        # (the dead-letter queue's, the VPC's) must not create a second, inline policy.
        return role.without_policy_updates()

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
        role: iam.IRole,
        network: dict[str, Any],
    ) -> lambda_.Function:
        return lambda_.Function(
            self,
            id,
            runtime=HANDLER_RUNTIME,
            architecture=lambda_.Architecture.ARM_64,
            handler=handler,
            code=code,
            role=role,
            timeout=HANDLER_TIMEOUT,
            memory_size=256,
            log_group=self.log_group,
            dead_letter_queue=self.dead_letter_queue,
            # One deploy needs one invocation at a time; the cap keeps a runaway caller
            # from exhausting the account's concurrency.
            reserved_concurrent_executions=HANDLER_RESERVED_CONCURRENCY,
            description="cdk-omics-export: HealthOmics read set export custom resource",
            **network,
        )

    def _notify(self, topic: sns.ITopic) -> None:
        # EventBridge publishes to an encrypted topic only if the key lets it.
        if topic.master_key is not None:
            topic.master_key.grant(
                iam.ServicePrincipal("events.amazonaws.com"), "kms:GenerateDataKey*", "kms:Decrypt"
            )
        self.on_status_change(
            "StatusChange",
            targets.SnsTopic(topic),
            description="Tells the notification topic of cdk-omics-export job status changes",
        )


def _validate(
    scope: Construct,
    *,
    sequence_store_id: str,
    read_set_ids: list[str] | None,
    read_set_filter: ReadSetFilter | None,
    allow_empty_selection: bool,
    destination_prefix: str,
    destination_bucket: s3.IBucket | None,
    removal_policy: RemovalPolicy | None,
    auto_delete_objects: bool,
    timeout: Duration,
    poll_interval: Duration,
    max_requests_per_second: int,
    vpc: ec2.IVpc | None,
    vpc_subnets: ec2.SubnetSelection | None,
    security_groups: Sequence[ec2.ISecurityGroup] | None,
) -> None:
    """Gather every problem with the props and raise once, naming each prop and rule."""
    problems: list[str] = []
    if not Token.is_unresolved(sequence_store_id):
        problems += rules.check_sequence_store_id(sequence_store_id)
    problems += _selection_problems(read_set_ids, read_set_filter, allow_empty_selection)
    problems += _destination_problems(
        destination_prefix, destination_bucket, removal_policy, auto_delete_objects
    )
    if vpc is None and (vpc_subnets is not None or security_groups is not None):
        problems.append("vpc_subnets, security_groups: need vpc")
    if not timeout.is_unresolved() and not poll_interval.is_unresolved():
        problems += rules.check_timeout(int(timeout.to_seconds()), int(poll_interval.to_seconds()))
    problems += rules.check_max_requests_per_second(max_requests_per_second)
    if problems:
        raise ValueError(
            f"ReadSetExport {scope.node.path}: invalid props:\n- " + "\n- ".join(problems)
        )


def _selection_problems(
    read_set_ids: list[str] | None,
    read_set_filter: ReadSetFilter | None,
    allow_empty_selection: bool,
) -> list[str]:
    problems: list[str] = []
    if (read_set_ids is None) == (read_set_filter is None):
        problems.append(
            "read_set_ids, read_set_filter: give exactly one (a list of ids, or a filter "
            "resolved at deploy time)"
        )
    if read_set_ids is not None and not _is_list_token(read_set_ids):
        problems += rules.check_read_set_ids(_literal_ids(read_set_ids))
    if read_set_filter is not None:
        problems += rules.check_read_set_filter(read_set_filter.literal_fields())
    elif allow_empty_selection:
        problems.append("allow_empty_selection: applies only to read_set_filter")
    return problems


def _destination_problems(
    prefix: str,
    bucket: s3.IBucket | None,
    removal_policy: RemovalPolicy | None,
    auto_delete_objects: bool,
) -> list[str]:
    problems: list[str] = []
    if Token.is_unresolved(prefix):
        problems.append("destination_prefix: must be a literal string, not a token")
    else:
        name = bucket.bucket_name if bucket is not None else None
        known_name = name if name is not None and not Token.is_unresolved(name) else None
        problems += rules.check_destination_prefix(prefix, known_name)
    if bucket is not None:
        if removal_policy is not None:
            problems.append(
                "removal_policy: applies only to the bucket this construct creates; the "
                "lifecycle of destination_bucket is its owner's"
            )
        if auto_delete_objects:
            problems.append(
                "auto_delete_objects: applies only to the bucket this construct creates; it "
                "never empties destination_bucket"
            )
    elif auto_delete_objects and removal_policy != RemovalPolicy.DESTROY:
        problems.append(
            "auto_delete_objects: needs removal_policy=RemovalPolicy.DESTROY (exported data "
            "is kept unless you ask for both)"
        )
    return problems


def _is_list_token(values: list[str]) -> bool:
    # A list token (e.g. Fn.split) is a one-element list; asking jsii about a 10,000-id list
    # would cost more than the rest of the synthesis.
    return len(values) == 1 and Token.is_unresolved(values)


def _literal_ids(values: list[str]) -> list[str | None]:
    """The ids with tokens replaced by None: one jsii call unless some id is a token."""
    if not Token.is_unresolved("\n".join(values)):
        return list(values)
    return [None if Token.is_unresolved(v) else v for v in values]
