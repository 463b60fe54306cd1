"""Who may do what for one export: the bucket it writes to (created with its policies, or
given), the role HealthOmics assumes to write there, and the shared handler's statements for it.

Every construct here is a child of the ``ReadSetExport`` passed as ``scope``; what they need
of the stack's service (its access log bucket, its handler role) is handed in.
"""

from __future__ import annotations

from typing import Any, Protocol

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from .handler import rules
from .handler.rules import ArchivedReadSets

OMICS_SERVICE_PRINCIPAL = "omics.amazonaws.com"


class Export(Protocol):
    """What the grants of one export are scoped to (a ``ReadSetExport``, whose module sits
    above this one)."""

    sequence_store_id: str
    bucket: s3.IBucket
    destination_prefix: str
    encryption_key: kms.IKey | None
    role: iam.IRole
    archived_read_sets: ArchivedReadSets


# Multipart uploads that HealthOmics left unfinished (a failed job) are aborted after this.
INCOMPLETE_UPLOAD_EXPIRATION = Duration.days(7)


def secure_bucket(scope: Construct, id: str, **settings: Any) -> s3.Bucket:
    """A bucket with every public access blocked, TLS only, a bucket key, versioning and
    bucket-owner-enforced ownership (no ACLs): the destination's and the access logs'."""
    return s3.Bucket(
        scope,
        id,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        bucket_key_enabled=True,
        enforce_ssl=True,
        versioned=True,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        **settings,
    )


def create_access_logs(
    scope: Construct, *, removal_policy: RemovalPolicy, auto_delete_objects: bool
) -> s3.Bucket:
    """The bucket that receives the access logs of the destination buckets exports create."""
    # SSE-S3: the only default encryption that S3 server access logging delivers to
    # ("Enabling Amazon S3 server access logging", S3 User Guide). CDK's bucket policy
    # lets logging.s3.amazonaws.com write here for the logged buckets of this account.
    return secure_bucket(
        scope,
        "AccessLogs",
        encryption=s3.BucketEncryption.S3_MANAGED,
        removal_policy=removal_policy,
        auto_delete_objects=auto_delete_objects,
    )


def create_bucket(
    scope: Construct,
    *,
    key: kms.IKey | None,
    prefix: str,
    access_logs: s3.IBucket,
    manifest_writer: iam.IRole,
    removal_policy: RemovalPolicy | None,
    auto_delete_objects: bool,
    noncurrent_version_expiration: Duration | None,
) -> s3.Bucket:
    """The export's own destination bucket, logging to the service's access log bucket."""
    # Without a key of the user's, SSE-KMS with the account's aws/s3 key: its key policy
    # already lets principals of the account (the export role) use it through S3.
    encryption: dict[str, Any] = (
        {"encryption": s3.BucketEncryption.KMS, "encryption_key": key}
        if key is not None
        else {"encryption": s3.BucketEncryption.KMS_MANAGED}
    )
    bucket = secure_bucket(
        scope,
        "Bucket",
        server_access_logs_bucket=access_logs,
        server_access_logs_prefix=f"{scope.node.addr}/",
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
    bucket.add_to_resource_policy(_foreign_key_deny(bucket, key))
    bucket.add_to_resource_policy(_manifest_writers_only(bucket, prefix, manifest_writer))
    return bucket


def _foreign_key_deny(bucket: s3.Bucket, key: kms.IKey | None) -> iam.PolicyStatement:
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
    if key is not None:
        conditions["StringNotEquals"] = {header: key.key_arn}
    return iam.PolicyStatement(
        sid="DenyOtherKmsKeys",
        effect=iam.Effect.DENY,
        principals=[iam.AnyPrincipal()],
        actions=["s3:PutObject"],
        resources=[bucket.arn_for_objects("*")],
        conditions=conditions,
    )


def _manifest_writers_only(
    bucket: s3.Bucket, prefix: str, writer: iam.IRole
) -> iam.PolicyStatement:
    """Refuse writes to the manifest folder by anyone but the service's handler role: a
    manifest there is the service's word (the CLI checks it against the state too)."""
    return iam.PolicyStatement(
        sid="ManifestsByTheServiceOnly",
        effect=iam.Effect.DENY,
        principals=[iam.AnyPrincipal()],
        actions=["s3:PutObject"],
        resources=[bucket.arn_for_objects(f"{prefix}{rules.MANIFEST_FOLDER}*")],
        conditions={"ArnNotEquals": {"aws:PrincipalArn": writer.role_arn}},
    )


def _key_statements(key: kms.IKey | None) -> list[iam.PolicyStatement]:
    """SSE-KMS writes (multipart included) need these two on the destination's key."""
    if key is None:
        return []
    return [
        iam.PolicyStatement(
            actions=["kms:GenerateDataKey", "kms:Decrypt"],
            resources=[key.key_arn],
        )
    ]


def create_export_role(
    scope: Construct, *, bucket: s3.IBucket, prefix: str, key: kms.IKey | None
) -> iam.Role:
    """The role HealthOmics assumes to write the export (StartReadSetExportJob's roleArn)."""
    stack = Stack.of(scope)
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
                resources=[bucket.arn_for_objects(f"{prefix}*")],
            ),
            iam.PolicyStatement(actions=["s3:GetBucketLocation"], resources=[bucket.bucket_arn]),
            *_key_statements(key),
        ]
    )
    # Attached through the role's ManagedPolicyArns, so the permissions exist as soon
    # as the role does: the job may start the moment the role's ARN is known.
    return iam.Role(
        scope,
        "ExportRole",
        assumed_by=principal,
        description="Assumed by HealthOmics to write read set exports to S3",
        managed_policies=[
            iam.ManagedPolicy(
                scope,
                "ExportPolicy",
                description="cdk-omics-export: what HealthOmics may do for the export",
                document=policy,
            )
        ],
    )


def handler_statements(
    stack: Stack, export: Export, read_set_list: s3_assets.Asset | None
) -> list[iam.PolicyStatement]:
    """The shared handler's statements for one export: its store, manifest and role."""
    store_arn = stack.format_arn(
        service="omics", resource="sequenceStore", resource_name=export.sequence_store_id
    )
    manifests = f"{export.destination_prefix}{rules.MANIFEST_FOLDER}"
    key = export.encryption_key
    # Archived read sets are activated before they are exported (ACTIVATE only).
    activation = (
        [
            "omics:StartReadSetActivationJob",
            "omics:GetReadSetActivationJob",
            "omics:ListReadSetActivationJobs",
        ]
        if export.archived_read_sets is ArchivedReadSets.ACTIVATE
        else []
    )
    statements = [
        iam.PolicyStatement(
            # The List actions follow the running jobs (a Get only for one that ended) and
            # find the job of a start whose answer was lost.
            actions=[
                "omics:StartReadSetExportJob",
                "omics:GetReadSetExportJob",
                "omics:ListReadSetExportJobs",
                "omics:ListReadSets",
                *activation,
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
            resources=[export.bucket.arn_for_objects(f"{manifests}*")],
        ),
        *(
            [iam.PolicyStatement(actions=["kms:GenerateDataKey"], resources=[key.key_arn])]
            if key is not None
            else []
        ),
        iam.PolicyStatement(
            actions=["iam:PassRole"],
            resources=[export.role.role_arn],
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
    return statements


def grant_read(grantee: iam.IGrantable, export: Export) -> iam.Grant:
    """Let ``grantee`` list and read the objects under the export's prefix, and decrypt them."""
    bucket, prefix, key = export.bucket, export.destination_prefix, export.encryption_key
    grant = iam.Grant.add_to_principal(
        grantee=grantee,
        actions=["s3:GetObject"],
        resource_arns=[bucket.arn_for_objects(f"{prefix}*")],
    )
    listing: dict[str, Any] = {"StringLike": {"s3:prefix": [f"{prefix}*"]}} if prefix else {}
    iam.Grant.add_to_principal(
        grantee=grantee,
        actions=["s3:ListBucket"],
        resource_arns=[bucket.bucket_arn],
        conditions=listing or None,
    )
    if key is not None:
        key.grant_decrypt(grantee)
    return grant
