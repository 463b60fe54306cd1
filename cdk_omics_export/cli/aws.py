"""The AWS calls of the command: its clients, and errors turned into messages a user can act
on (the IAM action a denied call needs, the Region or credentials missing)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3
import boto3.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_omics import OmicsClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_stepfunctions import SFNClient

CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 6})
DENIED = frozenset({"AccessDenied", "AccessDeniedException"})
# The IAM action each call needs, for access-denied messages a user can act on.
ACTIONS = {
    "DescribeStacks": "cloudformation:DescribeStacks",
    "GetObject": "s3:GetObject",
    "DescribeExecution": "states:DescribeExecution",
    "GetItem": "dynamodb:GetItem (and kms:Decrypt on the service's key)",
    "GetReadSetExportJob": "omics:GetReadSetExportJob",
}


class StatusError(Exception):
    """A problem the user can act on; printed without a traceback."""


@dataclass
class Clients:
    """The AWS clients the command uses, made on first use; tests hand in stubbed ones."""

    region: str | None = None
    made: dict[str, Any] = field(default_factory=dict)
    # A session of its own: credentials are looked up afresh, not from boto3's default
    # session that other code in the process may have filled.
    session: boto3.session.Session = field(default_factory=boto3.session.Session)

    def cloudformation(self) -> CloudFormationClient:
        client: CloudFormationClient = self._client("cloudformation")
        return client

    def s3(self) -> S3Client:
        client: S3Client = self._client("s3")
        return client

    def stepfunctions(self) -> SFNClient:
        client: SFNClient = self._client("stepfunctions")
        return client

    def dynamodb(self) -> DynamoDBClient:
        client: DynamoDBClient = self._client("dynamodb")
        return client

    def omics(self) -> OmicsClient:
        client: OmicsClient = self._client("omics")
        return client

    def _client(self, service: str) -> Any:
        if service not in self.made:
            make: Callable[..., Any] = self.session.client
            self.made[service] = make(service, region_name=self.region, config=CONFIG)
        return self.made[service]


def error_code(error: ClientError) -> str:
    code: str = error.response.get("Error", {}).get("Code", "")
    return code


def call_aws(operation: str, subject: str, call: Callable[[], Any]) -> Any:
    """``call()``, its failure a StatusError that says what to do (the action to allow)."""
    try:
        return call()
    except NoCredentialsError as error:
        raise StatusError(
            "No AWS credentials found: set AWS_PROFILE, run `aws sso login`, or export "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY."
        ) from error
    except NoRegionError as error:
        raise StatusError("No AWS Region: pass --region or set AWS_REGION.") from error
    except ClientError as error:
        code = error_code(error)
        message = error.response.get("Error", {}).get("Message", "")
        if code in ("AccessDenied", "AccessDeniedException"):
            action = ACTIONS.get(operation, operation)
            hint = (
                " (S3 also answers so for a manifest not written yet when s3:ListBucket is "
                "not allowed; --watch waits for it.)"
                if operation == "GetObject"
                else ""
            )
            raise StatusError(
                f"Access denied: {operation} on {subject} needs {action}.{hint}"
            ) from error
        if operation == "GetObject" and code in ("NoSuchKey", "404"):
            raise StatusError(
                f"The manifest {subject} does not exist yet: the export has not written it; "
                "--watch waits for it."
            ) from error
        if operation == "DescribeStacks" and code == "ValidationError":
            raise StatusError(
                f"Stack {subject} not found in this Region ({message}); check --region."
            ) from error
        raise StatusError(f"{operation} failed for {subject}: {code}: {message}") from error
    except BotoCoreError as error:
        raise StatusError(f"{operation} failed for {subject}: {error}") from error
