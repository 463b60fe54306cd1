"""The ReadSetExport construct: export HealthOmics read sets to S3 during ``cdk deploy``."""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jsii
from aws_cdk import (
    Aws,
    CfnOutput,
    CustomResource,
    Duration,
    Fn,
    RemovalPolicy,
    Stack,
    Stage,
)
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from . import compliance
from .handler import rules
from .handler.rules import ArchivedReadSets
from .read_set_filter import ReadSetFilter
from .service import ReadSetExportService, secure_bucket
from .validation import is_list_token, validate_export

if TYPE_CHECKING:
    from aws_cdk import aws_sns as sns

RESOURCE_TYPE = "Custom::OmicsReadSetExport"
OMICS_SERVICE_PRINCIPAL = "omics.amazonaws.com"
# HealthOmics' own events, per job (best effort).
JOB_STATUS_CHANGE_DETAIL_TYPE = "Read Set Export Job Status Change"
# Versions that an export replaced, or that a delete hid, stay recoverable this long in a
# created bucket, then expire: a bucket kept for years does not pay for every re-export.
DEFAULT_NONCURRENT_VERSION_EXPIRATION = Duration.days(90)
# Multipart uploads that HealthOmics left unfinished (a failed job) are aborted after this.
INCOMPLETE_UPLOAD_EXPIRATION = Duration.days(7)


class ReadSetExport(Construct):
    """Exports HealthOmics read sets to S3 during ``cdk deploy``.

    Provisions a destination bucket (or uses yours), the export service role that HealthOmics
    assumes (the ``roleArn`` of StartReadSetExportJob) and a custom resource served by the
    stack's ``ReadSetExportService``. Its runner selects the read sets, starts the export jobs
    as the concurrent-job quota allows, follows them to their end (after the deploy, if the
    deploy does not wait) and reports them: a manifest in the destination and an EventBridge
    event at every status change. The export is incremental: each deploy exports only the
    selected read sets that are neither exported nor in flight.

    :param sequence_store_id: the HealthOmics sequence store holding the read sets
        (10-36 digits), or a token such as ``CfnSequenceStore.attr_sequence_store_id``.
    :param read_set_ids: the read sets to export: 1-10,000 ids of 10-36 digits, no
        duplicates, exported through jobs of at most 100; their order does not matter.
        Give this or ``read_set_filter``.
    :param read_set_filter: select the read sets at deploy time with ListReadSets' filter
        fields instead of listing them (evaluated when the resource is created or updated).
        Give this or ``read_set_ids``.
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
    :param removal_policy: what ``cdk destroy`` does to the created bucket.
        Default: ``RemovalPolicy.RETAIN``.
    :param auto_delete_objects: empty the created bucket when it is deleted (needs
        ``removal_policy=RemovalPolicy.DESTROY``; for throwaway stacks). Default: ``False``.
    :param export_generation: bump it to export every selected read set again, as a new
        export (a new physical id). Default: 0.
    :param selection_refresh: any string; changing it makes the next deploy evaluate the
        selection again (a filter picks up read sets added since) and export only what is
        neither exported nor in flight. Default: none.
    :param wait_for_completion: whether the deploy waits until every job ends and fails
        unless all complete. Default: ``True``. With ``False`` the resource is complete as
        soon as the runner has selected and checked the read sets (a missing or archived one
        still fails the deploy); the status output says ``RUNNING`` and the runner carries the
        export to its end after the deploy, for as long as it takes.
    :param allow_partial_failure: whether read sets that fail (jobs ending
        ``COMPLETED_WITH_FAILURES``) complete the deploy (status ``COMPLETED_WITH_FAILURES``)
        instead of failing it. Default: ``False``. Read sets that fail to activate count the
        same way.
    :param archived_read_sets: what the export does with selected read sets that
        HealthOmics has archived (it archives data not accessed for 30 days).
        ``ArchivedReadSets.ACTIVATE`` activates them (StartReadSetActivationJob, 20 per job),
        waits for read sets someone else is activating, and exports each once it is active;
        the export's status is ``ACTIVATING`` meanwhile. Activation can take hours: with
        ``wait_for_completion=True`` the deploy waits for it, within ``timeout``.
        ``ArchivedReadSets.FAIL`` fails the pre-flight, naming them, and exports nothing (and
        a ``read_set_filter`` then selects only ACTIVE read sets). Default:
        ``ArchivedReadSets.ACTIVATE``.
    :param noncurrent_version_expiration: how long the created bucket keeps a version that
        was replaced (an export written again) or hidden by a delete, in whole days; ``None``
        keeps them forever. Incomplete multipart uploads are aborted after 7 days either way.
        Not for ``destination_bucket``, whose lifecycle is its owner's. Default: 90 days.
    :param timeout: how long the deploy waits; at most 55 minutes (CloudFormation waits an
        hour for a custom resource). Default: 50 minutes.
    :param service: the stack's export service. Default: the stack's
        ``ReadSetExportService``, created with defaults by the first export.
    :param poll_interval: forwarded to the service (``ReadSetExportService``). Default: the
        service's (30 seconds).
    :param max_requests_per_second: forwarded to the service: the most HealthOmics requests
        per second that all exports of the stack send together. Default: the service's (5).
    :param notification_topic: an SNS topic told of every status change of this export and
        its jobs, from ``SUBMITTED`` to its end, after the deploy too (an EventBridge rule on
        the service's ``cdk-omics-export`` events, created before the export starts).
        Default: no notification.
    :param vpc: forwarded to the service. Default: the service's (outside any VPC).
    :param vpc_subnets: forwarded to the service. Default: the service's.
    :param security_groups: forwarded to the service. Default: the service's.
    :param log_retention: forwarded to the service. Default: the service's (one year).
    :param reserved_concurrency: forwarded to the service. Default: the service's (none).
    :param runtime: forwarded to the service: the Python runtime of the handler functions,
        python3.11 or newer. Default: the service's (the newest Python that aws-cdk-lib
        offers).
    """

    service: ReadSetExportService
    resource: CustomResource
    bucket: s3.IBucket
    encryption_key: kms.IKey | None
    role: iam.IRole
    export_id: str
    job_id: str
    job_ids: str
    job_status: str
    job_count: str
    read_set_count: str
    exported_read_set_count: str
    failed_read_set_count: str
    manifest_uri: str
    event_bus: events.IEventBus
    destination: str
    destination_prefix: str
    sequence_store_id: str
    archived_read_sets: ArchivedReadSets

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
        export_generation: int = 0,
        selection_refresh: str | None = None,
        wait_for_completion: bool = True,
        allow_partial_failure: bool = False,
        archived_read_sets: ArchivedReadSets = ArchivedReadSets.ACTIVATE,
        timeout: Duration | None = None,
        service: ReadSetExportService | None = None,
        poll_interval: Duration | None = None,
        max_requests_per_second: int | None = None,
        notification_topic: sns.ITopic | None = None,
        vpc: ec2.IVpc | None = None,
        vpc_subnets: ec2.SubnetSelection | None = None,
        security_groups: Sequence[ec2.ISecurityGroup] | None = None,
        log_retention: logs.RetentionDays | None = None,
        runtime: lambda_.Runtime | None = None,
        reserved_concurrency: int | None = None,
        noncurrent_version_expiration: Duration | None = DEFAULT_NONCURRENT_VERSION_EXPIRATION,
    ) -> None:
        super().__init__(scope, id)
        if timeout is None:
            timeout = Duration.seconds(rules.DEFAULT_TIMEOUT_SECONDS)
        shared_options: dict[str, Any] = {
            "vpc": vpc,
            "vpc_subnets": vpc_subnets,
            "security_groups": (
                list(security_groups)
                if isinstance(security_groups, list | tuple)
                else security_groups
            ),
            "log_retention": log_retention,
            "max_requests_per_second": max_requests_per_second,
            "poll_interval": poll_interval,
            "runtime": runtime,
            "reserved_concurrency": reserved_concurrency,
        }
        validate_export(
            self,
            sequence_store_id=sequence_store_id,
            read_set_ids=read_set_ids,
            read_set_filter=read_set_filter,
            allow_empty_selection=allow_empty_selection,
            destination_prefix=destination_prefix,
            destination_bucket=destination_bucket,
            encryption_key=encryption_key,
            removal_policy=removal_policy,
            auto_delete_objects=auto_delete_objects,
            timeout=timeout,
            export_generation=export_generation,
            selection_refresh=selection_refresh,
            wait_for_completion=wait_for_completion,
            allow_partial_failure=allow_partial_failure,
            archived_read_sets=archived_read_sets,
            shared_options=shared_options,
            service=service,
            notification_topic=notification_topic,
            noncurrent_version_expiration=noncurrent_version_expiration,
            noncurrent_version_expiration_given=(
                noncurrent_version_expiration is not DEFAULT_NONCURRENT_VERSION_EXPIRATION
                and noncurrent_version_expiration is not None
            ),
        )
        ids = None if read_set_ids is None else list(read_set_ids)
        if service is not None and Stack.of(service) is not Stack.of(self):
            raise ValueError(
                f"ReadSetExport {self.node.path}: invalid props:\n- service: "
                f"{service.node.path} belongs to stack {Stack.of(service).node.path}; an "
                "export is served by the ReadSetExportService of its own stack"
            )
        self.service = service or ReadSetExportService.of(self)
        self.service.configure(self, **shared_options)
        self.sequence_store_id = sequence_store_id
        self.destination_prefix = destination_prefix
        self.archived_read_sets = archived_read_sets
        if destination_bucket is None:
            self.encryption_key = encryption_key
            self.bucket = self._create_bucket(
                removal_policy, auto_delete_objects, noncurrent_version_expiration
            )
        else:
            self.encryption_key = encryption_key or destination_bucket.encryption_key
            self.bucket = destination_bucket
        self.destination = rules.destination_uri(self.bucket.bucket_name, destination_prefix)
        self.role = self._create_export_role()
        selection, read_set_list = self._selection(ids, read_set_filter)
        self._grant_handler(read_set_list)
        if selection_refresh is not None:
            selection["SelectionRefresh"] = selection_refresh
        self.resource = self._create_resource(
            selection,
            generation=export_generation,
            allow_empty_selection=allow_empty_selection if read_set_filter else None,
            wait_for_completion=wait_for_completion,
            allow_partial_failure=allow_partial_failure,
            timeout=timeout,
        )
        compliance.acknowledge_export(self)
        self._expose_attributes()
        if notification_topic is not None:
            self.on_status_change(
                "StatusChange",
                _TopicTarget(notification_topic),
                description="Tells the notification topic of cdk-omics-export status changes",
            )
            # As CDK's SnsTopic target grants it, and without a condition: "You can't use
            # Condition blocks in Amazon SNS topic policies for EventBridge" (EventBridge User
            # Guide, "Amazon SNS permissions"). A topic imported by ARN keeps its own policy,
            # which must allow this statement.
            notification_topic.add_to_resource_policy(
                iam.PolicyStatement(
                    principals=[iam.ServicePrincipal("events.amazonaws.com")],
                    actions=["sns:Publish"],
                    resources=[notification_topic.topic_arn],
                )
            )
            if notification_topic.master_key is not None:
                # As CDK's target grants it: SNS encrypts with the publisher's use of the key.
                notification_topic.master_key.grant(
                    iam.ServicePrincipal("events.amazonaws.com"),
                    "kms:Decrypt",
                    "kms:GenerateDataKey*",
                )
            # And the topic lets EventBridge publish before the first event (SUBMITTED) comes.
            topic_policy = notification_topic.node.try_find_child("Policy")
            if topic_policy is not None:
                self.resource.node.add_dependency(topic_policy)

    # Public methods

    def on_status_change(
        self, id: str, target: events.IRuleTarget | None = None, *, description: str | None = None
    ) -> events.Rule:
        """An EventBridge rule on every status change of this export and of its jobs.

        Matches the events the stack's ``ReadSetExportService`` publishes to its own bus
        (``event_bus``, which takes events from the service's handler role only: a status on
        it is the service's) with source ``cdk-omics-export``, detail-type ``Read Set Export
        Status Change``, this stack and this construct, all known at synth time. The export
        resource depends on the rule, so the rule exists before the export starts: it hears
        ``SUBMITTED``, ``RUNNING`` and the final status, and every job's change, during the
        deploy and after it. Each event's ``detail`` carries ``stackId``, ``constructPath``,
        ``exportId``, ``status``, ``counts``, ``jobIds``, ``jobs``, ``manifestUri`` and
        ``runner``.
        """
        rule = events.Rule(
            self,
            id,
            description=description or "Status changes of a cdk-omics-export read set export",
            event_pattern=events.EventPattern(
                source=[rules.EVENT_SOURCE],
                detail_type=[rules.EVENT_DETAIL_TYPE],
                detail={"stackId": [Aws.STACK_ID], "constructPath": [self.node.path]},
            ),
            event_bus=self.service.event_bus,
            targets=[target] if target is not None else None,
        )
        self.resource.node.add_dependency(rule)
        return rule

    def on_job_status_change(
        self, id: str, target: events.IRuleTarget | None = None, *, description: str | None = None
    ) -> events.Rule:
        """An EventBridge rule on HealthOmics' own events for the jobs this deploy started.

        Matches ``aws.omics`` events of detail-type ``Read Set Export Job Status Change`` for
        this sequence store and the jobs of this deploy (``JobIds``). The rule refers to the
        export resource's attributes, so CloudFormation creates it only once the export
        resource completes; EventBridge delivers these events on a best-effort basis. Prefer
        ``on_status_change``, which hears the export from its start.
        """
        return events.Rule(
            self,
            id,
            description=description or "HealthOmics events of cdk-omics-export export jobs",
            event_pattern=events.EventPattern(
                source=["aws.omics"],
                detail_type=[JOB_STATUS_CHANGE_DETAIL_TYPE],
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

    # What an export owns

    def _create_bucket(
        self,
        removal_policy: RemovalPolicy | None,
        auto_delete_objects: bool,
        noncurrent_version_expiration: Duration | None,
    ) -> s3.Bucket:
        # Without a key of the user's, SSE-KMS with the account's aws/s3 key: its key policy
        # already lets principals of the account (the export role) use it through S3.
        encryption: dict[str, Any] = (
            {"encryption": s3.BucketEncryption.KMS, "encryption_key": self.encryption_key}
            if self.encryption_key is not None
            else {"encryption": s3.BucketEncryption.KMS_MANAGED}
        )
        bucket = secure_bucket(
            self,
            "Bucket",
            server_access_logs_bucket=self.service.access_logs_bucket(),
            server_access_logs_prefix=f"{self.node.addr}/",
            removal_policy=removal_policy or RemovalPolicy.RETAIN,
            auto_delete_objects=auto_delete_objects,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="NoncurrentVersions",
                    abort_incomplete_multipart_upload_after=INCOMPLETE_UPLOAD_EXPIRATION,
                    noncurrent_version_expiration=noncurrent_version_expiration,
                )
            ],
            **encryption,
        )
        bucket.add_to_resource_policy(self._foreign_key_deny(bucket))
        bucket.add_to_resource_policy(self._manifest_writers_only(bucket))
        return bucket

    def _foreign_key_deny(self, bucket: s3.Bucket) -> iam.PolicyStatement:
        """Refuse a PutObject that names a KMS key other than the bucket's: exported data and
        manifests stay under the key the bucket's readers were granted. Only when the header
        is sent: HealthOmics writes with the bucket's default encryption.

        S3 compares the header with key ARNs ("Requiring server-side encryption with AWS KMS
        keys", S3 User Guide), so the condition names the key by its ARN. The account's
        ``aws/s3`` key has no ARN known at synth: with it, any named key is refused and the
        service writes its manifests without one (the bucket's default encryption applies).
        """
        header = "s3:x-amz-server-side-encryption-aws-kms-key-id"
        conditions: dict[str, Any] = {"Null": {header: "false"}}
        if self.encryption_key is not None:
            conditions["StringNotEquals"] = {header: self.encryption_key.key_arn}
        return iam.PolicyStatement(
            sid="DenyOtherKmsKeys",
            effect=iam.Effect.DENY,
            principals=[iam.AnyPrincipal()],
            actions=["s3:PutObject"],
            resources=[bucket.arn_for_objects("*")],
            conditions=conditions,
        )

    def _manifest_writers_only(self, bucket: s3.Bucket) -> iam.PolicyStatement:
        """Refuse writes to the manifest folder by anyone but the service's handler role: a
        manifest there is the service's word (the CLI checks it against the state too)."""
        return iam.PolicyStatement(
            sid="ManifestsByTheServiceOnly",
            effect=iam.Effect.DENY,
            principals=[iam.AnyPrincipal()],
            actions=["s3:PutObject"],
            resources=[
                bucket.arn_for_objects(f"{self.destination_prefix}{rules.MANIFEST_FOLDER}*")
            ],
            conditions={"ArnNotEquals": {"aws:PrincipalArn": self.service.handler_role.role_arn}},
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

    def _create_export_role(self) -> iam.Role:
        stack = Stack.of(self)
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

    def _grant_handler(self, read_set_list: s3_assets.Asset | None) -> None:
        """The shared handler's statements for this export: its store, manifest and role."""
        stack = Stack.of(self)
        store_arn = stack.format_arn(
            service="omics", resource="sequenceStore", resource_name=self.sequence_store_id
        )
        statements = [
            iam.PolicyStatement(
                # The List actions follow the running jobs (a Get only for one that ended)
                # and find the job of a start whose answer was lost. Archived read sets are
                # activated before they are exported (ACTIVATE only).
                actions=[
                    "omics:StartReadSetExportJob",
                    "omics:GetReadSetExportJob",
                    "omics:ListReadSetExportJobs",
                    "omics:ListReadSets",
                    *(
                        [
                            "omics:StartReadSetActivationJob",
                            "omics:GetReadSetActivationJob",
                            "omics:ListReadSetActivationJobs",
                        ]
                        if self.archived_read_sets is ArchivedReadSets.ACTIVATE
                        else []
                    ),
                ],
                resources=[store_arn],
            ),
            # The pre-flight reads the status of each read set to export from this store.
            iam.PolicyStatement(
                actions=["omics:GetReadSetMetadata"], resources=[f"{store_arn}/readSet/*"]
            ),
            # The manifest is written, never read: no s3:GetObject or s3:ListBucket.
            iam.PolicyStatement(
                actions=["s3:PutObject"],
                resources=[
                    self.bucket.arn_for_objects(
                        f"{self.destination_prefix}{rules.MANIFEST_FOLDER}*"
                    )
                ],
            ),
            *(
                [
                    iam.PolicyStatement(
                        actions=["kms:GenerateDataKey"],
                        resources=[self.encryption_key.key_arn],
                    )
                ]
                if self.encryption_key is not None
                else []
            ),
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[self.role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": OMICS_SERVICE_PRINCIPAL}},
            ),
        ]
        if read_set_list is not None:
            statements.append(
                iam.PolicyStatement(
                    actions=["s3:GetObject"],
                    resources=[read_set_list.bucket.arn_for_objects(read_set_list.s3_object_key)],
                )
            )
        self.service.add_to_handler_policy(*statements)

    def _selection(
        self, read_set_ids: list[str] | None, read_set_filter: ReadSetFilter | None
    ) -> tuple[dict[str, Any], s3_assets.Asset | None]:
        """The custom resource's selection properties: small at any number of read sets."""
        if read_set_filter is not None:
            return {"ReadSetFilter": read_set_filter.to_api()}, None
        assert read_set_ids is not None
        if len(read_set_ids) <= rules.INLINE_READ_SET_LIMIT or is_list_token(read_set_ids):
            return {"ReadSetIds": read_set_ids}, None
        # More ids than an event should carry: an S3 asset whose key is the hash of the
        # sorted ids, so the same ids in another order are the same property (no new run).
        # Written into the cloud assembly (cdk.out), which synthesis writes anyway: nothing
        # is left in the temp directory.
        stage = Stage.of(self)
        if stage is None:
            raise ValueError(
                f"ReadSetExport {self.node.path}: more than {rules.INLINE_READ_SET_LIMIT} "
                "read_set_ids travel as an asset, which needs the construct in an App"
            )
        folder = Path(stage.outdir) / "cdk-omics-export"
        asset = s3_assets.Asset(
            self, "ReadSetList", path=str(_read_set_list_file(read_set_ids, folder))
        )
        return {"ReadSetList": asset.s3_object_url}, asset

    def _create_resource(
        self,
        selection: dict[str, Any],
        *,
        generation: int,
        allow_empty_selection: bool | None,
        wait_for_completion: bool,
        allow_partial_failure: bool,
        timeout: Duration,
    ) -> CustomResource:
        # Manifests are written under the export's key, named by its ARN; without one, with
        # the bucket's default encryption and no key named (which DenyOtherKmsKeys refuses).
        encryption: dict[str, Any] = {}
        if self.encryption_key is not None:
            encryption["Encryption"] = "aws:kms"
            encryption["KmsKeyArn"] = self.encryption_key.key_arn
        return CustomResource(
            self,
            "Resource",
            service_token=self.service.service_token,
            resource_type=RESOURCE_TYPE,
            service_timeout=Duration.seconds(
                timeout.to_seconds() + rules.SERVICE_TIMEOUT_HEADROOM_SECONDS
            ),
            properties={
                # With the stack, the destination and the generation: the export's identity.
                "ConstructPath": self.node.path,
                "ExportGeneration": generation,
                "SequenceStoreId": self.sequence_store_id,
                **selection,
                **(
                    {"AllowEmptySelection": allow_empty_selection}
                    if allow_empty_selection is not None
                    else {}
                ),
                "Destination": self.destination,
                "RoleArn": self.role.role_arn,
                **encryption,
                "WaitForCompletion": wait_for_completion,
                **({"AllowPartialFailure": True} if allow_partial_failure else {}),
                # Absent means ACTIVATE, so templates from before the prop stay as they were.
                **(
                    {"ArchivedReadSets": ArchivedReadSets.FAIL.value}
                    if self.archived_read_sets is ArchivedReadSets.FAIL
                    else {}
                ),
                # The handler fails with the jobs' ids before the waiter's bare timeout.
                "TimeoutSeconds": int(timeout.to_seconds()),
            },
        )

    def _expose_attributes(self) -> None:
        resource = self.resource
        self.export_id = resource.ref
        self.job_id = resource.get_att_string("JobId")
        self.job_ids = resource.get_att_string("JobIds")
        self.job_status = resource.get_att_string("Status")
        self.job_count = resource.get_att_string("JobCount")
        self.read_set_count = resource.get_att_string("ReadSetCount")
        self.exported_read_set_count = resource.get_att_string("ExportedReadSetCount")
        self.failed_read_set_count = resource.get_att_string("FailedReadSetCount")
        self.manifest_uri = resource.get_att_string("ManifestUri")
        # Where this export's status changes travel (the service's bus), for rules of your own.
        self.event_bus = self.service.event_bus
        # Three outputs per export: a stack holds at most 200, and 50 exports fit.
        for name, value, description in (
            (
                "JobId",
                self.job_id,
                f"First HealthOmics export job this deploy started, or {rules.NONE}",
            ),
            ("JobStatus", self.job_status, "Export status when the deploy stopped waiting"),
            ("ManifestUri", self.manifest_uri, "S3 URI of the manifest: every job and read set"),
        ):
            CfnOutput(self, name, value=value, description=description)


def _read_set_list_file(read_set_ids: list[str], folder: Path) -> Path:
    """The sorted ids in a file named by its content (synthesis stages it as the asset).
    Written to a temporary name and renamed, and rewritten unless it holds exactly these ids,
    so a file that a killed or parallel synth left half-written is never shipped."""
    content = json.dumps(sorted(read_set_ids)).encode()
    digest = hashlib.sha256(content).hexdigest()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"read-set-ids-{digest}.json"
    if not path.exists() or path.read_bytes() != content:
        with tempfile.NamedTemporaryFile(dir=folder, delete=False, suffix=".part") as part:
            part.write(content)
        Path(part.name).replace(path)
    return path


@jsii.implements(events.IRuleTarget)
class _TopicTarget:
    """An SNS topic as a rule's target; the export writes the topic's grant to EventBridge
    itself, beside the key grant, so that its resource waits for both."""

    def __init__(self, topic: sns.ITopic) -> None:
        self._topic = topic

    def bind(self, rule: Any, id: str | None = None) -> events.RuleTargetConfig:
        return events.RuleTargetConfig(arn=self._topic.topic_arn, target_resource=self._topic)
