"""The ReadSetExport construct: export HealthOmics read sets to S3 during ``cdk deploy``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from aws_cdk import (
    Aws,
    CfnOutput,
    CustomResource,
    Duration,
    Fn,
    RemovalPolicy,
    Stack,
)
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from . import compliance
from .export_access import create_bucket, create_export_role, grant_read, handler_statements
from .handler import rules
from .handler.rules import ArchivedReadSets
from .notification import TopicTarget, allow_eventbridge
from .props import DEFAULT_NONCURRENT_VERSION_EXPIRATION, ExportProps
from .read_set_filter import ReadSetFilter
from .resource_properties import resource_properties, selection_properties
from .service import ReadSetExportService
from .validation import validate_export

if TYPE_CHECKING:
    from aws_cdk import aws_sns as sns

RESOURCE_TYPE = "Custom::OmicsReadSetExport"
# Three outputs per export, in this order: a stack holds at most 200, and 50 exports fit.
OUTPUTS = {
    "JobId": f"First HealthOmics export job this deploy started, or {rules.NONE}",
    "JobStatus": "Export status when the deploy stopped waiting",
    "ManifestUri": "S3 URI of the manifest: every job and read set",
}
# HealthOmics' own events, per job (best effort).
JOB_STATUS_CHANGE_DETAIL_TYPE = "Read Set Export Job Status Change"


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
        # Every prop, by its name in this signature, as one record for the checks and steps.
        props = ExportProps.of(locals())
        validate_export(self, props, service_class=ReadSetExportService)
        self.service = self._use_service(props)
        self.sequence_store_id = sequence_store_id
        self.destination_prefix = destination_prefix
        self.archived_read_sets = archived_read_sets
        self.encryption_key, self.bucket = self._use_destination(props)
        self.destination = rules.destination_uri(self.bucket.bucket_name, destination_prefix)
        self.role = create_export_role(
            self, bucket=self.bucket, prefix=destination_prefix, key=self.encryption_key
        )
        selection, read_set_list = selection_properties(self, props)
        # The shared handler's statements for this export: its store, manifest and role.
        self.service.add_to_handler_policy(*handler_statements(Stack.of(self), self, read_set_list))
        self.resource = self._create_resource(selection, props)
        compliance.acknowledge_export(self, self.service.unacknowledged_rules)
        self._expose_attributes()
        if notification_topic is not None:
            self._notify(notification_topic)

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
        return grant_read(grantee, self)

    # The steps of __init__, in order

    def _use_service(self, props: ExportProps) -> ReadSetExportService:
        """The stack's service (given, else found or created), told this export's options."""
        service: ReadSetExportService | None = props.service
        if service is not None and Stack.of(service) is not Stack.of(self):
            raise ValueError(
                f"ReadSetExport {self.node.path}: invalid props:\n- service: "
                f"{service.node.path} belongs to stack {Stack.of(service).node.path}; an "
                "export is served by the ReadSetExportService of its own stack"
            )
        service = service or ReadSetExportService.of(self)
        service.configure(self, **props.shared_options())
        return service

    def _use_destination(self, props: ExportProps) -> tuple[kms.IKey | None, s3.IBucket]:
        """The destination's key and bucket: the bucket given, else one of the export's own."""
        given = props.destination_bucket
        if given is not None:
            return props.encryption_key or given.encryption_key, given
        bucket = create_bucket(
            self,
            key=props.encryption_key,
            prefix=props.destination_prefix,
            access_logs=self.service.access_logs_bucket(),
            manifest_writer=self.service.handler_role,
            removal_policy=props.removal_policy,
            auto_delete_objects=props.auto_delete_objects,
            noncurrent_version_expiration=props.noncurrent_version_expiration,
        )
        return props.encryption_key, bucket

    def _create_resource(self, selection: dict[str, Any], props: ExportProps) -> CustomResource:
        return CustomResource(
            self,
            "Resource",
            service_token=self.service.service_token,
            resource_type=RESOURCE_TYPE,
            service_timeout=Duration.seconds(
                props.timeout.to_seconds() + rules.SERVICE_TIMEOUT_HEADROOM_SECONDS
            ),
            properties=resource_properties(
                props,
                selection,
                construct_path=self.node.path,
                destination=self.destination,
                role_arn=self.role.role_arn,
                key=self.encryption_key,
            ),
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
        values = (self.job_id, self.job_status, self.manifest_uri)
        for (name, description), value in zip(OUTPUTS.items(), values, strict=True):
            CfnOutput(self, name, value=value, description=description)

    def _notify(self, topic: sns.ITopic) -> None:
        """Tell ``topic`` of every status change, from the first (SUBMITTED) on."""
        self.on_status_change(
            "StatusChange",
            TopicTarget(topic),
            description="Tells the notification topic of cdk-omics-export status changes",
        )
        topic_policy = allow_eventbridge(topic)
        # The topic lets EventBridge publish before the first event comes.
        if topic_policy is not None:
            self.resource.node.add_dependency(topic_policy)
