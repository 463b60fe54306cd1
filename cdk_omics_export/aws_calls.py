"""Every AWS request the deployed construct makes or lets others make, and the decision IAM
must give it: the calls of the handler and runner roles (read from ``handler/``), the writes
HealthOmics makes as the export role, the services that use the keys, topic and function, and
the requests that must be refused.

Plain data, no CDK: ``tests/test_iam_calls.py`` fills each row's templates with the names of a
deployed stack and has an IAM evaluator judge it against the synthesized identity, resource,
key and trust policies together. A new call in the handler, or a new grant, gets a row here.

Resource and context templates are ``str.format`` strings over these names: ``partition``,
``region``, ``account``, ``other_account``, ``store_arn``, ``other_store_arn``,
``read_set_arn``, ``bucket_arn``, ``other_bucket_arn``, ``prefix``, ``export_id``,
``table_arn``, ``service_key_arn``, ``destination_key_arn``, ``other_key_arn``, ``bus_arn``,
``topic_arn``, ``topic_key_arn``, ``queue_arn``, ``handler_log_group_arn``,
``runner_log_group_arn``, ``other_log_group_arn``, ``state_machine_arn``, ``execution_arn``,
``step_function_arn``, ``on_event_function_arn``, ``watchdog_rule_arn``, ``other_rule_arn``,
``handler_role_arn``, ``runner_role_arn``, ``export_role_arn``, ``access_logs_bucket_arn``,
``access_logs_prefix`` (the created bucket's log prefix there), ``read_set_list_arn`` (the
asset of a long ``read_set_ids``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .handler import rules

# Who makes the request. Roles are the stack's; ANOTHER_ROLE is any other principal of the
# account whose own identity policy allows the action everywhere (what a resource policy must
# still refuse). The rest are service principals, judged by resource and trust policies only.
HANDLER_ROLE = "handler-role"
RUNNER_ROLE = "runner-role"
EXPORT_ROLE = "export-role"
ANOTHER_ROLE = "another-role"
ROLES = (HANDLER_ROLE, RUNNER_ROLE, EXPORT_ROLE, ANOTHER_ROLE)
OMICS = "omics.amazonaws.com"
LAMBDA = "lambda.amazonaws.com"
STATES = "states.amazonaws.com"
EVENTS = "events.amazonaws.com"
LOGS = "logs.{region}.amazonaws.com"
S3_LOGGING = "logging.s3.amazonaws.com"

MANIFEST = "{bucket_arn}/{prefix}" + rules.MANIFEST_FOLDER + "{export_id}.json"
EXPORTED = "{bucket_arn}/{prefix}{export_id}/1111111111/read1.fastq.gz"
# S3 names each log object <prefix>YYYY-mm-DD-HH-MM-SS-<unique> under the bucket's prefix.
ACCESS_LOG = "{access_logs_bucket_arn}/{access_logs_prefix}2026-01-01-00-00-00-0123456789ABCDEF"
SSE = "s3:x-amz-server-side-encryption"
SSE_KEY = "s3:x-amz-server-side-encryption-aws-kms-key-id"


class Decision(StrEnum):
    ALLOWED = "Allowed"
    IMPLICITLY_DENIED = "ImplicitlyDenied"
    EXPLICITLY_DENIED = "ExplicitlyDenied"


class Policy(StrEnum):
    """The resource's own policy that IAM evaluates beside the principal's."""

    NONE = "none"
    DESTINATION_BUCKET = "destination-bucket"
    ACCESS_LOGS_BUCKET = "access-logs-bucket"
    SERVICE_KEY = "service-key"
    DESTINATION_KEY = "destination-key"
    BUS = "bus"
    TOPIC = "topic"
    TOPIC_KEY = "topic-key"
    STEP_FUNCTION = "step-function"  # the runner function's Lambda permissions
    TRUST = "trust"  # the role's trust policy (the resource is the role)


class Needs(StrEnum):
    """A row that applies only to exports with (or without) an option."""

    BUCKET_DEFAULT_KEY = "the created bucket's aws/s3 key (no encryption_key)"
    DESTINATION_KEY = "an encryption_key"
    TOPIC = "a notification_topic"
    TOPIC_KEY = "a notification_topic encrypted with a KMS key"
    ACTIVATION = "archived_read_sets=ACTIVATE"
    PREFIX = "a destination_prefix"
    READ_SET_LIST = "more read_set_ids than travel inline (an S3 asset)"


ContextValue = str | tuple[str, ...]


@dataclass(frozen=True)
class Call:
    name: str
    principal: str
    action: str
    resource: str
    expected: Decision
    why: str
    policy: Policy = Policy.NONE
    context: tuple[tuple[str, ContextValue], ...] = ()
    needs: frozenset[Needs] = frozenset()


# Positional: each row reads as who does what to which resource, the decision and why.
def _call(  # noqa: PLR0917
    name: str,
    principal: str,
    action: str,
    resource: str,
    expected: Decision,
    why: str,
    *,
    policy: Policy = Policy.NONE,
    context: dict[str, ContextValue] | None = None,
    needs: tuple[Needs, ...] = (),
) -> Call:
    return Call(
        name,
        principal,
        action,
        resource,
        expected,
        why,
        policy,
        tuple((context or {}).items()),
        frozenset(needs),
    )


ALLOWED = Decision.ALLOWED
IMPLICIT = Decision.IMPLICITLY_DENIED
EXPLICIT = Decision.EXPLICITLY_DENIED
STORE = "{store_arn}"
KMS_VIA_S3 = {"kms:ViaService": "s3.{region}.amazonaws.com", "kms:CallerAccount": "{account}"}
BUCKET_CONTEXT = {"kms:EncryptionContext:aws:s3:arn": "{bucket_arn}"}


def _omics(operation: str, why: str, *needs: Needs) -> Call:
    return _call(
        f"handler {operation}", HANDLER_ROLE, f"omics:{operation}", STORE, ALLOWED, why, needs=needs
    )


CALLS: tuple[Call, ...] = (
    # The handler role: HealthOmics (export.py, selection.py, activation.py).
    _omics("StartReadSetExportJob", "export.py starts each batch's job"),
    _omics("GetReadSetExportJob", "export.py follows each job"),
    _omics("ListReadSetExportJobs", "export.py finds the job of a start whose answer was lost"),
    _omics("ListReadSets", "selection.py resolves a filter and pre-flights long lists"),
    _call(
        "handler GetReadSetMetadata",
        HANDLER_ROLE,
        "omics:GetReadSetMetadata",
        "{read_set_arn}",
        ALLOWED,
        "selection.py and activation.py read each read set's status",
    ),
    _omics(
        "StartReadSetActivationJob", "activation.py activates archived read sets", Needs.ACTIVATION
    ),
    _omics("GetReadSetActivationJob", "activation.py follows each activation", Needs.ACTIVATION),
    _omics(
        "ListReadSetActivationJobs",
        "activation.py finds an activation whose answer was lost",
        Needs.ACTIVATION,
    ),
    _call(
        "handler iam:PassRole to HealthOmics",
        HANDLER_ROLE,
        "iam:PassRole",
        "{export_role_arn}",
        ALLOWED,
        "StartReadSetExportJob passes the export role",
        context={"iam:PassedToService": OMICS},
    ),
    # The handler role: the state table and its key (state.py), the dead-letter queue (Lambda
    # sends failed asynchronous invocations with the function's role), its logs.
    *(
        _call(
            f"handler {action}",
            HANDLER_ROLE,
            action,
            "{table_arn}",
            ALLOWED,
            "state.py reads, claims and saves records (transactions check then update)",
        )
        for action in (
            "dynamodb:GetItem",
            "dynamodb:Query",
            "dynamodb:UpdateItem",
            "dynamodb:ConditionCheckItem",
        )
    ),
    *(
        _call(
            f"handler {action} on the service key through DynamoDB",
            HANDLER_ROLE,
            action,
            "{service_key_arn}",
            ALLOWED,
            "the table is encrypted with the service key, used with the caller's permissions",
            policy=Policy.SERVICE_KEY,
            context={"kms:ViaService": "dynamodb.{region}.amazonaws.com"},
        )
        for action in ("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey")
    ),
    _call(
        "handler kms:Decrypt of its environment",
        HANDLER_ROLE,
        "kms:Decrypt",
        "{service_key_arn}",
        ALLOWED,
        "Lambda decrypts the functions' environment with the execution role",
        policy=Policy.SERVICE_KEY,
        context={"kms:ViaService": "lambda.{region}.amazonaws.com"},
    ),
    _call(
        "handler sqs:SendMessage to the dead-letter queue",
        HANDLER_ROLE,
        "sqs:SendMessage",
        "{queue_arn}",
        ALLOWED,
        "Lambda sends an event whose every attempt failed with the function's role",
    ),
    _call(
        "handler logs:PutLogEvents",
        HANDLER_ROLE,
        "logs:PutLogEvents",
        "{handler_log_group_arn}:log-stream:2026/01/01/[$LATEST]0123",
        ALLOWED,
        "Lambda writes the functions' logs with the execution role",
    ),
    _call(
        "handler logs:CreateLogStream",
        HANDLER_ROLE,
        "logs:CreateLogStream",
        "{handler_log_group_arn}:log-stream:2026/01/01/[$LATEST]0123",
        ALLOWED,
        "Lambda creates each instance's log stream with the execution role",
    ),
    _call(
        "handler reads its read set list",
        HANDLER_ROLE,
        "s3:GetObject",
        "{read_set_list_arn}",
        ALLOWED,
        "runner.py reads a long read_set_ids from its asset",
        needs=(Needs.READ_SET_LIST,),
    ),
    # The handler role: the runner (runner.py).
    _call(
        "handler states:StartExecution",
        HANDLER_ROLE,
        "states:StartExecution",
        "{state_machine_arn}",
        ALLOWED,
        "runner.py starts the export's runner execution",
    ),
    _call(
        "handler states:DescribeExecution",
        HANDLER_ROLE,
        "states:DescribeExecution",
        "{execution_arn}",
        ALLOWED,
        "runner.py follows its execution",
    ),
    # The handler role: manifests and status events (reporting.py).
    _call(
        "handler writes a manifest with the bucket's default key",
        HANDLER_ROLE,
        "s3:PutObject",
        MANIFEST,
        ALLOWED,
        "reporting.py writes the manifest without SSE headers when the export has no key",
        policy=Policy.DESTINATION_BUCKET,
        needs=(Needs.BUCKET_DEFAULT_KEY,),
    ),
    _call(
        "handler writes a manifest naming the export's key",
        HANDLER_ROLE,
        "s3:PutObject",
        MANIFEST,
        ALLOWED,
        "reporting.py names the export's key (SSEKMSKeyId) when it has one",
        policy=Policy.DESTINATION_BUCKET,
        context={SSE: "aws:kms", SSE_KEY: "{destination_key_arn}"},
        needs=(Needs.DESTINATION_KEY,),
    ),
    _call(
        "handler kms:GenerateDataKey for its manifest",
        HANDLER_ROLE,
        "kms:GenerateDataKey",
        "{destination_key_arn}",
        ALLOWED,
        "S3 encrypts the manifest with the export's key on the writer's behalf",
        policy=Policy.DESTINATION_KEY,
        context={**KMS_VIA_S3, **BUCKET_CONTEXT},
        needs=(Needs.DESTINATION_KEY,),
    ),
    _call(
        "handler events:PutEvents of a status change",
        HANDLER_ROLE,
        "events:PutEvents",
        "{bus_arn}",
        ALLOWED,
        "reporting.py publishes status changes to the service's bus",
        policy=Policy.BUS,
        context={
            "events:source": (rules.EVENT_SOURCE,),
            "events:detail-type": (rules.EVENT_DETAIL_TYPE,),
        },
    ),
    # The runner role and its trust.
    _call(
        "runner lambda:InvokeFunction of its step",
        RUNNER_ROLE,
        "lambda:InvokeFunction",
        "{step_function_arn}",
        ALLOWED,
        "the runner's Step task calls RunnerHandler",
        policy=Policy.STEP_FUNCTION,
    ),
    _call(
        "runner logs:CreateLogDelivery",
        RUNNER_ROLE,
        "logs:CreateLogDelivery",
        "*",
        ALLOWED,
        "Step Functions sets up the execution logs with the state machine's role",
    ),
    _call(
        "states assumes the runner role",
        STATES,
        "sts:AssumeRole",
        "{runner_role_arn}",
        ALLOWED,
        "Step Functions runs the runner as its role",
        policy=Policy.TRUST,
        context={"aws:SourceAccount": "{account}", "aws:SourceArn": "{state_machine_arn}"},
    ),
    _call(
        "lambda assumes the handler role",
        LAMBDA,
        "sts:AssumeRole",
        "{handler_role_arn}",
        ALLOWED,
        "Lambda runs both functions as the handler role",
        policy=Policy.TRUST,
    ),
    # HealthOmics, as the export role (read-set-exports, permissions-service pages).
    _call(
        "omics assumes the export role",
        OMICS,
        "sts:AssumeRole",
        "{export_role_arn}",
        ALLOWED,
        "HealthOmics takes the passed role, with the confused-deputy keys AWS sets",
        policy=Policy.TRUST,
        context={"aws:SourceAccount": "{account}", "aws:SourceArn": "{store_arn}"},
    ),
    _call(
        "export role writes a file with the bucket's default encryption",
        EXPORT_ROLE,
        "s3:PutObject",
        EXPORTED,
        ALLOWED,
        "HealthOmics writes each exported file (multipart steps are authorized as PutObject)",
        policy=Policy.DESTINATION_BUCKET,
    ),
    _call(
        "export role writes a file naming the bucket's key",
        EXPORT_ROLE,
        "s3:PutObject",
        EXPORTED,
        ALLOWED,
        "a write that names the export's key in the SSE key-id header",
        policy=Policy.DESTINATION_BUCKET,
        context={SSE: "aws:kms", SSE_KEY: "{destination_key_arn}"},
        needs=(Needs.DESTINATION_KEY,),
    ),
    _call(
        "export role s3:GetBucketLocation",
        EXPORT_ROLE,
        "s3:GetBucketLocation",
        "{bucket_arn}",
        ALLOWED,
        "HealthOmics checks the destination's Region",
        policy=Policy.DESTINATION_BUCKET,
    ),
    *(
        _call(
            f"export role {action} on the export's key",
            EXPORT_ROLE,
            action,
            "{destination_key_arn}",
            ALLOWED,
            "S3 encrypts (and, for multipart uploads, decrypts) with the export's key",
            policy=Policy.DESTINATION_KEY,
            context={**KMS_VIA_S3, **BUCKET_CONTEXT},
            needs=(Needs.DESTINATION_KEY,),
        )
        for action in ("kms:GenerateDataKey", "kms:Decrypt")
    ),
    # CloudWatch Logs encrypts the service's two log groups with the service key.
    *(
        _call(
            f"logs {action} for the {group} log group",
            LOGS,
            action,
            "{service_key_arn}",
            ALLOWED,
            "CloudWatch Logs encrypts and reads the log group's events with the service key",
            policy=Policy.SERVICE_KEY,
            context={
                "kms:EncryptionContext:aws:logs:arn": "{" + group + "_log_group_arn}",
                "aws:SourceAccount": "{account}",
            },
        )
        for group in ("handler", "runner")
        for action in ("kms:GenerateDataKey", "kms:Encrypt", "kms:Decrypt")
    ),
    # EventBridge: the watchdog rule invokes the step, a status rule publishes to the topic.
    _call(
        "events invokes the step for the watchdog",
        EVENTS,
        "lambda:InvokeFunction",
        "{step_function_arn}",
        ALLOWED,
        "the watchdog rule restarts a failed runner execution",
        policy=Policy.STEP_FUNCTION,
        context={"aws:SourceArn": "{watchdog_rule_arn}", "aws:SourceAccount": "{account}"},
    ),
    _call(
        "events publishes a status change to the topic",
        EVENTS,
        "sns:Publish",
        "{topic_arn}",
        ALLOWED,
        "the export's status rule targets the notification topic",
        policy=Policy.TOPIC,
        needs=(Needs.TOPIC,),
    ),
    *(
        _call(
            f"events {action} on the topic's key",
            EVENTS,
            action,
            "{topic_key_arn}",
            ALLOWED,
            "SNS encrypts a message with the publisher's use of the topic's key",
            policy=Policy.TOPIC_KEY,
            needs=(Needs.TOPIC, Needs.TOPIC_KEY),
        )
        for action in ("kms:GenerateDataKey", "kms:Decrypt")
    ),
    # S3 server access logging of the created bucket.
    _call(
        "S3 delivers the bucket's access logs",
        S3_LOGGING,
        "s3:PutObject",
        ACCESS_LOG,
        ALLOWED,
        "S3 log delivery writes with the target bucket's policy (SSE-S3 target)",
        policy=Policy.ACCESS_LOGS_BUCKET,
        context={"aws:SourceArn": "{bucket_arn}", "aws:SourceAccount": "{account}"},
    ),
    # What must be refused.
    _call(
        "handler starts a job of another store",
        HANDLER_ROLE,
        "omics:StartReadSetExportJob",
        "{other_store_arn}",
        IMPLICIT,
        "the grant names the export's store only",
    ),
    _call(
        "handler passes the export role to another service",
        HANDLER_ROLE,
        "iam:PassRole",
        "{export_role_arn}",
        IMPLICIT,
        "the role is passed to HealthOmics only (iam:PassedToService)",
        context={"iam:PassedToService": LAMBDA},
    ),
    _call(
        "handler writes outside the manifest folder",
        HANDLER_ROLE,
        "s3:PutObject",
        EXPORTED,
        IMPLICIT,
        "the handler writes manifests, never the exported data",
        policy=Policy.DESTINATION_BUCKET,
    ),
    _call(
        "handler publishes another source",
        HANDLER_ROLE,
        "events:PutEvents",
        "{bus_arn}",
        IMPLICIT,
        "only the service's source and detail type may be put",
        policy=Policy.BUS,
        context={
            "events:source": ("aws.omics",),
            "events:detail-type": (rules.EVENT_DETAIL_TYPE,),
        },
    ),
    _call(
        "runner invokes the on-event function",
        RUNNER_ROLE,
        "lambda:InvokeFunction",
        "{on_event_function_arn}",
        IMPLICIT,
        "the runner calls its step only",
    ),
    _call(
        "export role writes outside the prefix",
        EXPORT_ROLE,
        "s3:PutObject",
        "{bucket_arn}/elsewhere/file.bam",
        IMPLICIT,
        "HealthOmics may write under the export's prefix only",
        policy=Policy.DESTINATION_BUCKET,
        needs=(Needs.PREFIX,),
    ),
    _call(
        "export role writes into the manifest folder",
        EXPORT_ROLE,
        "s3:PutObject",
        MANIFEST,
        EXPLICIT,
        "manifests are the service's word (ManifestsByTheServiceOnly)",
        policy=Policy.DESTINATION_BUCKET,
    ),
    _call(
        "another principal writes into the manifest folder",
        ANOTHER_ROLE,
        "s3:PutObject",
        MANIFEST,
        EXPLICIT,
        "no principal but the handler role writes manifests, whatever its own grants",
        policy=Policy.DESTINATION_BUCKET,
    ),
    _call(
        "export role writes to another bucket",
        EXPORT_ROLE,
        "s3:PutObject",
        "{other_bucket_arn}/{prefix}file.bam",
        IMPLICIT,
        "the grant names the destination bucket only",
    ),
    _call(
        "export role names another key in the header",
        EXPORT_ROLE,
        "s3:PutObject",
        EXPORTED,
        EXPLICIT,
        "DenyOtherKmsKeys: data stays under the key its readers were granted",
        policy=Policy.DESTINATION_BUCKET,
        context={SSE: "aws:kms", SSE_KEY: "{other_key_arn}"},
    ),
    _call(
        "export role uses another key",
        EXPORT_ROLE,
        "kms:GenerateDataKey",
        "{other_key_arn}",
        IMPLICIT,
        "the grant names the export's key only",
        context={**KMS_VIA_S3, **BUCKET_CONTEXT},
    ),
    _call(
        "omics from another account assumes the export role",
        OMICS,
        "sts:AssumeRole",
        "{export_role_arn}",
        IMPLICIT,
        "confused deputy: aws:SourceAccount must be the stack's account",
        policy=Policy.TRUST,
        context={
            "aws:SourceAccount": "{other_account}",
            "aws:SourceArn": "arn:{partition}:omics:{region}:{other_account}:sequenceStore/1",
        },
    ),
    _call(
        "states for another account assumes the runner role",
        STATES,
        "sts:AssumeRole",
        "{runner_role_arn}",
        IMPLICIT,
        "confused deputy: aws:SourceAccount must be the stack's account",
        policy=Policy.TRUST,
        context={
            "aws:SourceAccount": "{other_account}",
            "aws:SourceArn": "arn:{partition}:states:{region}:{other_account}:stateMachine:x",
        },
    ),
    _call(
        "another principal forges a status event",
        ANOTHER_ROLE,
        "events:PutEvents",
        "{bus_arn}",
        EXPLICIT,
        "the bus refuses PutEvents from all but the handler role (OnlyTheServicePutsEvents)",
        policy=Policy.BUS,
        context={
            "events:source": (rules.EVENT_SOURCE,),
            "events:detail-type": (rules.EVENT_DETAIL_TYPE,),
        },
    ),
    _call(
        "logs uses the service key for another log group",
        LOGS,
        "kms:GenerateDataKey",
        "{service_key_arn}",
        IMPLICIT,
        "the key serves the service's two log groups, not every group of the account",
        policy=Policy.SERVICE_KEY,
        context={
            "kms:EncryptionContext:aws:logs:arn": "{other_log_group_arn}",
            "aws:SourceAccount": "{account}",
        },
    ),
    _call(
        "events invokes the step for another rule",
        EVENTS,
        "lambda:InvokeFunction",
        "{step_function_arn}",
        IMPLICIT,
        "the function's permission names the watchdog rule",
        policy=Policy.STEP_FUNCTION,
        context={"aws:SourceArn": "{other_rule_arn}", "aws:SourceAccount": "{account}"},
    ),
    _call(
        "S3 delivers another bucket's access logs",
        S3_LOGGING,
        "s3:PutObject",
        ACCESS_LOG,
        IMPLICIT,
        "log delivery is allowed for the logged buckets of the stack's account",
        policy=Policy.ACCESS_LOGS_BUCKET,
        context={
            "aws:SourceArn": "{other_bucket_arn}",
            "aws:SourceAccount": "{other_account}",
        },
    ),
)
