"""A ReadSetExport's props as one typed record: the checks and each step of the construct read it.

``ReadSetExport.__init__`` keeps its keyword-only signature (the props users see and their
defaults); the record carries them down, so that a step's signature does not repeat them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3

from .handler.rules import ArchivedReadSets
from .read_set_filter import ReadSetFilter

if TYPE_CHECKING:
    from aws_cdk import aws_sns as sns

# Versions that an export replaced, or that a delete hid, stay recoverable this long in a
# created bucket, then expire: a bucket kept for years does not pay for every re-export.
DEFAULT_NONCURRENT_VERSION_EXPIRATION = Duration.days(90)


@dataclass(frozen=True)
class ExportProps:
    """Every prop of ``ReadSetExport``, as given (``timeout`` with its default filled in)."""

    sequence_store_id: str
    read_set_ids: Sequence[str] | None
    read_set_filter: ReadSetFilter | None
    allow_empty_selection: bool
    destination_prefix: str
    destination_bucket: s3.IBucket | None
    encryption_key: kms.IKey | None
    removal_policy: RemovalPolicy | None
    auto_delete_objects: bool
    export_generation: int
    selection_refresh: str | None
    wait_for_completion: bool
    allow_partial_failure: bool
    archived_read_sets: ArchivedReadSets
    timeout: Duration
    # A ReadSetExportService, whose module sits above this one; validation checks its class.
    service: Any
    poll_interval: Duration | None
    max_requests_per_second: int | None
    notification_topic: sns.ITopic | None
    vpc: ec2.IVpc | None
    vpc_subnets: ec2.SubnetSelection | None
    security_groups: Sequence[ec2.ISecurityGroup] | None
    log_retention: logs.RetentionDays | None
    runtime: lambda_.Runtime | None
    reserved_concurrency: int | None
    noncurrent_version_expiration: Duration | None

    @classmethod
    def of(cls, arguments: Mapping[str, Any]) -> ExportProps:
        """The props among a call's arguments (``locals()`` of ``ReadSetExport.__init__``);
        a prop missing from them is a KeyError naming it."""
        return cls(**{field.name: arguments[field.name] for field in fields(cls)})

    def shared_options(self) -> dict[str, Any]:
        """The options the export forwards to the stack's service."""
        groups = self.security_groups
        return {
            "vpc": self.vpc,
            "vpc_subnets": self.vpc_subnets,
            "security_groups": list(groups) if isinstance(groups, list | tuple) else groups,
            "log_retention": self.log_retention,
            "max_requests_per_second": self.max_requests_per_second,
            "poll_interval": self.poll_interval,
            "runtime": self.runtime,
            "reserved_concurrency": self.reserved_concurrency,
        }

    @property
    def noncurrent_version_expiration_given(self) -> bool:
        """Whether the user set the prop (to a value other than None): the default is the very
        object of ``DEFAULT_NONCURRENT_VERSION_EXPIRATION``."""
        expiration = self.noncurrent_version_expiration
        return expiration is not DEFAULT_NONCURRENT_VERSION_EXPIRATION and expiration is not None
