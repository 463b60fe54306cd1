"""One local endpoint for S3, DynamoDB and HealthOmics that enforces IAM (test code, never shipped).

Every request is authenticated by the access key id in its SigV4 credential scope (whose
service name also says which service is called) and authorized against the caller's policies,
its permissions boundary, the bucket's policy and the bucket's KMS key before anything else
happens. Allowed S3 and DynamoDB requests are forwarded verbatim to a moto server; HealthOmics
requests go to an `OmicsEndpoint`, whose jobs, when they end, write their files into moto as
the role passed to them, through the same authorization. Denials answer with each service's own
error format, so the handler under test sees what it would see in AWS.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import http.client
import itertools
import json
import logging
import re
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import parse_qs, quote, unquote, urlsplit
from xml.etree import ElementTree
from xml.sax.saxutils import escape

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from ..iam_evaluator import ContextValue, Decision, Document, Evaluator, Request
from ..moto_runner import MotoRunner
from ..moto_runner import ServiceError as StatesError
from ..moto_runner import Unmodelled as UnmodelledStates
from ..omics_endpoint import ROUTES, Job, OmicsEndpoint, _error, _iso8601
from . import eventbridge
from .clock import SimulatedClock
from .deployed import DeployedStack
from .eventbridge import EventBridgeStandIn

OMICS_PRINCIPAL = "omics.amazonaws.com"
# Keys AWS would put in a request that the gateway cannot know; a policy conditioned on one
# raises unless the principal's context supplies it (add_principal(..., context=...)).
UNMODELLED_KEYS = (
    "aws:SourceIp",
    "aws:SourceVpc",
    "aws:SourceVpce",
    "aws:VpcSourceIp",
    "aws:PrincipalOrgID",
    "aws:PrincipalOrgPaths",
    "aws:ResourceOrgID",
    "aws:ResourceOrgPaths",
    "aws:PrincipalTag/",
    "aws:ResourceTag/",
    "aws:RequestTag/",
    "aws:TagKeys",
    "s3:ExistingObjectTag/",
    "s3:RequestObjectTag/",
    "s3:RequestObjectTagKeys",
    "dynamodb:LeadingKeys",
    "dynamodb:Attributes",
)
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "expect",
    "content-length",
}
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request")
_EXPORT_MESSAGE_LIMIT = 127  # the omics model's JobStatusMessage maximum length


@dataclass(frozen=True)
class Record:
    """One request as the gateway saw it (the primary action when it needs several)."""

    time: float  # time.monotonic()
    principal: str
    service: str
    action: str
    resource: str
    decision: Decision
    status: int
    message: str = ""


@dataclass
class Principal:
    name: str
    arn: str  # aws:PrincipalArn: the role's ARN for a role
    caller_arn: str  # as AccessDenied messages name it: the assumed-role session for a role
    account: str
    documents: list[Document]
    boundary: Document | None = None
    trust: Document | None = None
    context: dict[str, ContextValue] = field(default_factory=dict)
    admin: bool = False

    @property
    def is_role(self) -> bool:
        return ":role/" in self.arn


@dataclass(frozen=True)
class Check:
    """One authorization a request needs: an action on a resource with its context keys."""

    action: str
    resource: str
    context: Mapping[str, ContextValue]
    bucket: str | None = None  # also evaluate this bucket's policy
    kms: bool = False  # a KMS permission S3 uses on the caller's behalf


@dataclass(frozen=True)
class Verdict:
    decision: Decision
    check: Check
    message: str = ""

    @property
    def allowed(self) -> bool:
        return self.decision is Decision.ALLOW


@dataclass
class _Request:
    method: str
    path: str  # as sent, percent-encoded
    query: str
    headers: list[tuple[str, str]]
    body: bytes
    region: str = "us-east-1"
    # When the request reached the gateway: the moment a service counts it for its rate.
    arrived: float | None = None

    def header(self, name: str) -> str | None:
        return _header(self.headers, name)


@dataclass
class _Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return _header(self.headers, name)


def _header(headers: list[tuple[str, str]], name: str) -> str | None:
    """A header's value, its name compared without case, as HTTP does."""
    return next((value for key, value in headers if key.lower() == name.lower()), None)


@dataclass
class _S3Operation:
    checks: list[Check]
    kind: str  # read, head, put, copy, create-upload, upload-part, complete-upload, delete, ...
    bucket: str | None = None
    key: str | None = None
    write_key_arn: str | None = None  # the KMS key the written object will be encrypted with
    delete_keys: list[tuple[str, str | None]] = field(default_factory=list)


@dataclass
class _Target:
    """An S3 request's object and what its checks share."""

    bucket: str
    key: str
    params: dict[str, str]
    subresources: set[str]
    context: dict[str, ContextValue]
    partition: str = "aws"

    @property
    def arn(self) -> str:
        return f"arn:{self.partition}:s3:::{self.bucket}/{self.key}"

    def check(self, action: str) -> Check:
        return Check(f"s3:{action}", self.arn, self.context, bucket=self.bucket)

    def operation(self, kind: str, *checks: Check, write_key: str | None = None) -> _S3Operation:
        return _S3Operation(
            list(checks), kind, bucket=self.bucket, key=self.key, write_key_arn=write_key
        )


class Unmodelled(Exception):
    """A request the gateway does not know how to authorize: it answers loudly, never guesses."""


class UnsupportedPolicy(ValueError):
    """The evaluator refused a policy or request (malformed, an unknown action or ARN), or a
    policy is conditioned on a key the gateway cannot know: never judged as if it were absent."""


# Every decision comes from @cloud-copilot/iam-simulate, in one Node.js process for the whole
# test session, started at the first request that needs one.
EVALUATOR = Evaluator()
atexit.register(EVALUATOR.close)


class Gateway:
    """S3 and DynamoDB (moto) and HealthOmics behind one endpoint that enforces IAM."""

    def __init__(
        self,
        omics: OmicsEndpoint | None = None,
        *,
        region: str = "us-east-1",
        account: str = "111122223333",
        partition: str = "aws",
        clock: SimulatedClock | None = None,
    ) -> None:
        self.region = region
        self.account = account
        self.partition = partition
        self.admin_key = "AKIAREHEARSALADMIN00"
        self.admin_secret = "rehearsal-admin"
        self.requests: list[Record] = []
        self._lock = threading.RLock()
        self._keys: dict[str, Principal] = {}
        self._roles: dict[str, Principal] = {}  # by role ARN
        self._bucket_policies: dict[str, Document] = {}
        self._bucket_keys: dict[str, str] = {}
        self._key_policies: dict[str, Document] = {}
        self._object_keys: dict[tuple[str, str], str | None] = {}
        self._upload_keys: dict[str, str | None] = {}
        self._pending: dict[str, int] = {}  # role ARN -> requests still to deny
        self._key_numbers = itertools.count(1)
        self._moto: Any = None
        self._moto_address: tuple[str, int] = ("127.0.0.1", 0)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.omics = omics or OmicsEndpoint()
        self.omics.writer = self._write_export
        self._register_admin()
        # Step Functions and EventBridge run on simulated time, shared with the code rehearsed.
        self.clock = clock or SimulatedClock(time.time())
        # When a request arrived, as the HealthOmics stand-in counts its rate: real time, or
        # the simulated clock for a rehearsal that runs on it (set_simulated).
        self.arrival_clock: Callable[[], float] = time.monotonic
        # The runner's state machines run in moto's interpreter (tests/moto_runner.py).
        self.stepfunctions = MotoRunner(
            self.clock, region=region, account=account, partition=partition, authority=self
        )
        self.events = EventBridgeStandIn(
            self.clock, region=region, account=account, partition=partition
        )

    # Lifecycle

    def __enter__(self) -> Gateway:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        from moto.moto_server.threaded_moto_server import ThreadedMotoServer

        # werkzeug logs every request moto serves to stderr.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._moto.start()
        host, port = self._moto.get_host_and_port()
        self._moto_address = (host, port)
        self._server = _Server(("127.0.0.1", 0), _Handler, self)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._moto is not None:
            self._moto.stop()
            self._moto = None
        self.stepfunctions.close()

    @property
    def url(self) -> str:
        assert self._server is not None, "start the gateway first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def reset(self, omics: OmicsEndpoint | None = None) -> None:
        """Forget every principal, policy, record and moto resource; a fresh HealthOmics."""
        with self._lock:
            self.requests.clear()
            self._keys.clear()
            self._roles.clear()
            self._bucket_policies.clear()
            self._bucket_keys.clear()
            self._key_policies.clear()
            self._object_keys.clear()
            self._upload_keys.clear()
            self._pending.clear()
            self._register_admin()
            self.omics = omics or OmicsEndpoint()
            self.omics.writer = self._write_export
            self.stepfunctions.reset()
            self.events.reset()
            self.arrival_clock = time.monotonic
        connection = http.client.HTTPConnection(*self._moto_address, timeout=30)
        try:
            connection.request("POST", "/moto-api/reset")
            connection.getresponse().read()
        finally:
            connection.close()

    # Principals and resources

    def add_principal(
        self,
        access_key_id: str,
        documents: Sequence[Document],
        *,
        boundary: Document | None = None,
        name: str | None = None,
        arn: str | None = None,
        context: Mapping[str, ContextValue] | None = None,
    ) -> str:
        """A caller with these identity policies; returns a secret to sign with.

        `arn` defaults to an IAM user of the gateway's account named `name`; give a role ARN
        (or another account's) to be judged as that. `context` adds condition keys to every
        request of this caller (aws:SourceVpce, aws:SourceIp, ...).
        """
        name = name or access_key_id
        arn = arn or f"arn:{self.partition}:iam::{self.account}:user/{name}"
        principal = Principal(
            name=name,
            arn=arn,
            caller_arn=_caller_arn(arn),
            account=arn.split(":")[4],
            documents=list(documents),
            boundary=boundary,
            context=dict(context or {}),
        )
        with self._lock:
            self._keys[access_key_id] = principal
            if principal.is_role:
                self._roles.setdefault(arn, principal)
        return "rehearsal-" + hashlib.sha256(access_key_id.encode()).hexdigest()[:20]

    def add_role(
        self,
        deployed: DeployedStack,
        role_logical_id: str,
        *,
        context: Mapping[str, ContextValue] | None = None,
    ) -> tuple[str, str]:
        """Credentials of a session of one of the template's roles: (access key id, secret)."""
        principal = self._register_role(deployed, role_logical_id)
        if context:
            principal.context.update(context)
        with self._lock:
            access_key_id = f"ASIAREHEARSAL{next(self._key_numbers):07d}"
            self._keys[access_key_id] = principal
        return access_key_id, secrets.token_hex(20)

    def add_stack(self, deployed: DeployedStack) -> None:
        """Deploy what the gateway models: roles (for PassRole and the export), buckets with
        their policies and keys, and DynamoDB tables, created in moto under their names."""
        for logical in deployed.resources("AWS::IAM::Role"):
            self._register_role(deployed, logical)
        s3 = self.client("s3")
        for logical in deployed.resources("AWS::S3::Bucket"):
            name = deployed.physical_name(logical)
            arguments: dict[str, Any] = {"Bucket": name}
            if self.region != "us-east-1":
                arguments["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
            with _ignoring("BucketAlreadyOwnedByYou"):
                s3.create_bucket(**arguments)
            policy = deployed.bucket_policy(logical)
            if policy is not None:
                self.set_bucket_policy(name, policy)
            key = deployed.bucket_key_arn(logical)
            if key is not None:
                self.set_bucket_key(name, key)
        for logical in deployed.resources("AWS::KMS::Key"):
            self.set_key_policy(str(deployed.get_att(logical, "Arn")), deployed.key_policy(logical))
        dynamodb = self.client("dynamodb")
        for logical, resource in deployed.resources("AWS::DynamoDB::Table").items():
            with _ignoring("ResourceInUseException"):
                dynamodb.create_table(**_table_arguments(deployed, logical, resource))
        # Lambda functions' timeouts and the state machines (their roles are registered above),
        # and the event rules.
        self.stepfunctions.register_stack(deployed)
        self.events.register_stack(deployed)

    def set_simulated(self) -> None:
        """Count HealthOmics' requests and run its jobs on the simulated clock (until reset)."""
        with self._lock:
            self.arrival_clock = self.clock.now
            self.omics.clock = self.clock.now
            self.omics.epoch = self.clock.now

    def set_bucket_policy(self, bucket: str, document: Document | None) -> None:
        with self._lock:
            if document is None:
                self._bucket_policies.pop(bucket, None)
            else:
                self._bucket_policies[bucket] = document

    def set_bucket_key(self, bucket: str, key_arn: str | None) -> None:
        """The bucket's default SSE-KMS key, when it is a customer managed one."""
        with self._lock:
            if key_arn is None:
                self._bucket_keys.pop(bucket, None)
            else:
                self._bucket_keys[bucket] = key_arn

    def set_key_policy(self, key_arn: str, document: Document | None) -> None:
        """A KMS key's policy; a key without one here has KMS's default policy."""
        with self._lock:
            if document is None:
                self._key_policies.pop(key_arn, None)
            else:
                self._key_policies[key_arn] = document

    def not_yet_usable(self, role_arn: str, requests: int = 1) -> None:
        """Deny the next `requests` requests made with or as this role, as IAM's eventual
        consistency may for a role that was just created or changed."""
        with self._lock:
            self._pending[role_arn] = self._pending.get(role_arn, 0) + requests

    # Records

    def denied(self) -> list[Record]:
        with self._lock:
            return [r for r in self.requests if r.decision is not Decision.ALLOW]

    def calls(self, action: str) -> list[Record]:
        with self._lock:
            return [r for r in self.requests if r.action.lower() == action.lower()]

    # Clients

    def client(
        self, service: str, access_key_id: str | None = None, secret: str | None = None
    ) -> Any:
        """A boto3 client of the gateway, as the admin unless credentials are given."""
        return boto3.client(
            service,  # type: ignore[call-overload]
            endpoint_url=self.url,
            region_name=self.region,
            aws_access_key_id=access_key_id or self.admin_key,
            aws_secret_access_key=secret or self.admin_secret,
            config=Config(
                s3={"addressing_style": "path"},
                inject_host_prefix=False,
                retries={"max_attempts": 1, "mode": "standard"},
            ),
        )

    def environment(self, access_key_id: str, secret: str) -> dict[str, str]:
        """What a default boto3 client (the handler's) needs to call the gateway as a principal."""
        return {
            "AWS_ENDPOINT_URL_S3": self.url,
            "AWS_ENDPOINT_URL_DYNAMODB": self.url,
            "AWS_ENDPOINT_URL_OMICS": self.url,
            # boto3 derives the variable from the service id: "SFN" and "EventBridge".
            "AWS_ENDPOINT_URL_SFN": self.url,
            "AWS_ENDPOINT_URL_EVENTBRIDGE": self.url,
            "AWS_DISABLE_HOST_PREFIX_INJECTION": "true",
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "AWS_ACCESS_KEY_ID": access_key_id,
            "AWS_SECRET_ACCESS_KEY": secret,
        }

    # Dispatch

    def handle(
        self,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes,
        arrived: float | None = None,
    ) -> _Reply:
        url = urlsplit(target)
        request = _Request(method, url.path, url.query, headers, body, arrived=arrived)
        credential = _credential(request)
        if credential is None:
            self._record(
                "anonymous",
                "unknown",
                method,
                url.path,
                decision=Decision.IMPLICIT_DENY,
                status=403,
            )
            return _s3_error(
                request, 403, "AccessDenied", "Anonymous requests are not modelled by the gateway"
            )
        access_key_id, request.region, service = credential
        with self._lock:
            principal = self._keys.get(access_key_id)
        if service == "s3":
            return self._s3(principal, access_key_id, request)
        if service == "dynamodb":
            return self._dynamodb(principal, access_key_id, request)
        if service == "omics":
            return self._omics(principal, access_key_id, request)
        json_service = {"states": self._states, "events": self._events}.get(service)
        if json_service is not None:
            return json_service(principal, access_key_id, request)
        self._record(
            access_key_id, service, "?", url.path, decision=Decision.IMPLICIT_DENY, status=501
        )
        return _json_reply(
            501,
            {"__type": "NotImplemented", "message": f"the gateway does not model {service}"},
        )

    def _register_admin(self) -> None:
        self._keys[self.admin_key] = Principal(
            name="admin",
            arn=f"arn:{self.partition}:iam::{self.account}:user/admin",
            caller_arn=f"arn:{self.partition}:iam::{self.account}:user/admin",
            account=self.account,
            documents=[],
            admin=True,
        )

    def _register_role(self, deployed: DeployedStack, logical: str) -> Principal:
        arn = deployed.role_arn(logical)
        with self._lock:
            known = self._roles.get(arn)
        if known is not None:
            # A stack update replaces the role's policies; its sessions see the new ones.
            known.documents = list[Document](deployed.role_policies(logical))
            known.boundary = deployed.permissions_boundary(logical)
            known.trust = deployed.trust_policy(logical)
            return known
        principal = Principal(
            name=logical,
            arn=arn,
            caller_arn=_caller_arn(arn),
            account=deployed.account,
            documents=list[Document](deployed.role_policies(logical)),
            boundary=deployed.permissions_boundary(logical),
            trust=deployed.trust_policy(logical),
        )
        with self._lock:
            return self._roles.setdefault(arn, principal)

    # Authorization

    def _authorize(
        self, principal: Principal, checks: Sequence[Check], *, consume: bool = True
    ) -> Verdict:
        """The first check that fails, or an Allow; every check of a request must pass."""
        if principal.admin:
            return Verdict(Decision.ALLOW, checks[0])
        with self._lock:
            pending = self._pending.get(principal.arn, 0)
            if consume and pending > 0:
                self._pending[principal.arn] = pending - 1
        if consume and pending > 0:
            return Verdict(
                Decision.IMPLICIT_DENY,
                checks[0],
                _denial(principal, checks[0], "because no identity-based policy allows"),
            )
        for check in checks:
            verdict = self._judge(principal, check)
            if not verdict.allowed:
                return verdict
        return Verdict(Decision.ALLOW, checks[0])

    def _judge(self, principal: Principal, check: Check) -> Verdict:
        context = {**self._common_context(principal), **principal.context, **check.context}
        with self._lock:
            if check.kms:
                policy: Document | None = self._key_policy(check.resource)
            elif check.bucket is None:
                policy = None
            else:
                policy = self._bucket_policies.get(check.bucket)
        if check.action.startswith("events:"):
            policy = self.events.bus_policy(check.resource)
        boundaries = [] if principal.boundary is None else [principal.boundary]
        _refuse_unmodelled_keys([*principal.documents, *boundaries, policy], context)
        answer = EVALUATOR.ask(
            Request(
                principal=principal.arn,
                action=check.action,
                resource=check.resource,
                resource_account=self._account_of(check.resource),
                identity_policies=principal.documents,
                resource_policy=policy,
                permission_boundaries=boundaries,
                context=context,
            )
        )
        if answer.decision is Decision.ERROR:
            raise UnsupportedPolicy(f"{check.action} on {check.resource}: {answer.explanation}")
        if answer.decision is Decision.ALLOW:
            return Verdict(Decision.ALLOW, check)
        return self._deny(principal, check, answer.decision, _reason(answer.denials))

    def _account_of(self, arn: str) -> str:
        """The resource's owner: the ARN's account, else (S3) the gateway's."""
        parts = arn.split(":")
        return parts[4] if len(parts) > 4 and parts[4] else self.account

    def _key_policy(self, key_arn: str) -> Document:
        """The key's policy: the template's, or KMS's default policy for a key of no deployed
        stack (the account's principals may use it as their IAM policies allow)."""
        known = self._key_policies.get(key_arn)
        if known is not None:
            return known
        root = f"arn:{self.partition}:iam::{self._account_of(key_arn)}:root"
        return {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "Enable IAM User Permissions",
                    "Effect": "Allow",
                    "Principal": {"AWS": root},
                    "Action": "kms:*",
                    "Resource": "*",
                }
            ],
        }

    def _deny(self, principal: Principal, check: Check, decision: Decision, reason: str) -> Verdict:
        return Verdict(decision, check, _denial(principal, check, reason))

    def _common_context(self, principal: Principal) -> dict[str, ContextValue]:
        now = datetime.now(UTC)
        return {
            "aws:SecureTransport": "true",  # the gateway stands for HTTPS endpoints
            "aws:PrincipalArn": principal.arn,
            "aws:PrincipalAccount": principal.account,
            "aws:PrincipalType": "AssumedRole" if principal.is_role else "User",
            "aws:PrincipalIsAWSService": "false",
            "aws:ViaAWSService": "false",
            "aws:RequestedRegion": self.region,
            "aws:CurrentTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "aws:EpochTime": str(int(now.timestamp())),
        }

    def _record(
        self,
        principal: str,
        service: str,
        action: str,
        resource: str,
        *,
        decision: Decision,
        status: int,
        message: str = "",
    ) -> None:
        record = Record(
            time.monotonic(), principal, service, action, resource, decision, status, message
        )
        with self._lock:
            self.requests.append(record)

    # S3

    def _s3(self, principal: Principal | None, access_key_id: str, request: _Request) -> _Reply:
        if principal is None:
            self._record(
                access_key_id, "s3", "?", request.path, decision=Decision.IMPLICIT_DENY, status=403
            )
            return _s3_error(
                request,
                403,
                "InvalidAccessKeyId",
                "The AWS Access Key Id you provided does not exist in our records.",
            )
        try:
            operation = self._s3_operation(principal, request)
        except Unmodelled as problem:
            self._record(
                principal.name, "s3", "?", request.path, decision=Decision.IMPLICIT_DENY, status=501
            )
            return _s3_error(request, 501, "NotImplemented", str(problem))
        primary = operation.checks[0]
        if operation.kind == "delete-objects":
            return self._s3_delete_objects(principal, request, operation)
        verdict = self._authorize(principal, operation.checks)
        if not verdict.allowed:
            self._record(
                principal.name,
                "s3",
                primary.action,
                primary.resource,
                decision=verdict.decision,
                status=403,
                message=verdict.message,
            )
            return _s3_error(request, 403, "AccessDenied", verdict.message)
        reply = self._forward(request)
        decision, message = Decision.ALLOW, ""
        if (
            operation.kind in {"read", "head"}
            and reply.status == 404
            and self._is_missing_key(request, reply, operation)
        ):
            # S3 tells a caller that may not list the bucket "403", so that nobody can probe
            # for keys (GetObject reference, "Permissions").
            assert operation.bucket is not None and operation.key is not None
            listing = Check(
                "s3:ListBucket",
                self._bucket_arn(operation.bucket),
                {"s3:prefix": operation.key},
                bucket=operation.bucket,
            )
            may_list = self._authorize(principal, [listing], consume=False)
            if not may_list.allowed:
                decision, message = may_list.decision, may_list.message
                reply = _s3_error(request, 403, "AccessDenied", message)
        elif operation.kind == "read" and reply.status in {200, 206}:
            assert operation.bucket is not None and operation.key is not None
            with self._lock:
                key_arn = self._object_keys.get(
                    (operation.bucket, operation.key), self._bucket_keys.get(operation.bucket)
                )
            if key_arn is not None:
                decrypt = self._authorize(
                    principal,
                    [self._kms_check("kms:Decrypt", key_arn, operation.bucket)],
                    consume=False,
                )
                if not decrypt.allowed:
                    decision, message = decrypt.decision, decrypt.message
                    reply = _s3_error(request, 403, "AccessDenied", message)
        elif 200 <= reply.status < 300:
            self._remember_encryption(operation, reply)
        self._record(
            principal.name,
            "s3",
            primary.action,
            primary.resource,
            decision=decision,
            status=reply.status,
            message=message,
        )
        return reply

    def _is_missing_key(self, request: _Request, reply: _Reply, operation: _S3Operation) -> bool:
        if request.method == "GET":
            return b"<Code>NoSuchKey</Code>" in reply.body
        # HEAD answers carry no body: a 404 is a missing key unless the bucket is missing.
        head = _Request(
            "HEAD",
            f"/{quote(operation.bucket or '')}",
            "",
            _admin_headers(self, request.region),
            b"",
            request.region,
        )
        return self._forward(head).status == 200

    def _remember_encryption(self, operation: _S3Operation, reply: _Reply) -> None:
        bucket, key = operation.bucket, operation.key
        if bucket is None or key is None:
            return
        with self._lock:
            if operation.kind in {"put", "copy"}:
                self._object_keys[(bucket, key)] = operation.write_key_arn
            elif operation.kind == "create-upload":
                found = re.search(rb"<UploadId>([^<]+)</UploadId>", reply.body)
                if found:
                    self._upload_keys[found.group(1).decode()] = operation.write_key_arn
            elif operation.kind == "complete-upload":
                self._object_keys[(bucket, key)] = operation.write_key_arn
            elif operation.kind == "delete":
                self._object_keys.pop((bucket, key), None)

    def _s3_delete_objects(
        self, principal: Principal, request: _Request, operation: _S3Operation
    ) -> _Reply:
        """DeleteObjects answers per key: denied keys are errors in a 200 answer, as in S3."""
        allowed: list[tuple[str, str | None]] = []
        errors: list[str] = []
        for check, (key, version) in zip(operation.checks, operation.delete_keys, strict=True):
            verdict = self._authorize(principal, [check])
            self._record(
                principal.name,
                "s3",
                check.action,
                check.resource,
                decision=verdict.decision,
                status=200 if verdict.allowed else 403,
                message=verdict.message,
            )
            if verdict.allowed:
                allowed.append((key, version))
            else:
                errors.append(
                    f"<Error><Key>{escape(key)}</Key><Code>AccessDenied</Code>"
                    f"<Message>{escape(verdict.message)}</Message></Error>"
                )
        if not errors:
            return self._forward(request)
        if allowed:
            objects = "".join(
                f"<Object><Key>{escape(k)}</Key>"
                + (f"<VersionId>{escape(v)}</VersionId>" if v else "")
                + "</Object>"
                for k, v in allowed
            )
            body = f'<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/">{objects}</Delete>'
            headers = [
                (k, v)
                for k, v in request.headers
                if not k.lower().startswith(("content-md5", "x-amz-checksum", "x-amz-sdk-checksum"))
            ]
            reply = self._forward(
                _Request(
                    request.method,
                    request.path,
                    request.query,
                    headers,
                    body.encode(),
                    request.region,
                )
            )
        else:
            reply = _Reply(
                200,
                [("Content-Type", "application/xml")],
                b'<?xml version="1.0" encoding="UTF-8"?><DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"></DeleteResult>',
            )
        reply.body = reply.body.replace(
            b"</DeleteResult>", "".join(errors).encode() + b"</DeleteResult>"
        )
        return reply

    def _s3_operation(self, principal: Principal, request: _Request) -> _S3Operation:
        params = {k: v[0] for k, v in parse_qs(request.query, keep_blank_values=True).items()}
        subresources = set(params) - _S3_PLAIN_PARAMETERS
        bucket, _, raw_key = request.path.lstrip("/").partition("/")
        bucket, key = unquote(bucket), unquote(raw_key)
        context = self._s3_context(request)
        method = request.method
        if not bucket:
            if method == "GET" and not subresources:
                return _S3Operation([Check("s3:ListAllMyBuckets", "*", context)], "other")
            raise Unmodelled(f"S3 {method} / with {sorted(subresources)}")
        bucket_arn = self._bucket_arn(bucket)

        def on_bucket(action: str, extra: Mapping[str, ContextValue] | None = None) -> _S3Operation:
            check = Check(f"s3:{action}", bucket_arn, {**context, **(extra or {})}, bucket=bucket)
            return _S3Operation([check], "other", bucket=bucket)

        if not key:
            listing = {
                "s3:prefix": params.get("prefix", ""),
                **({"s3:delimiter": params["delimiter"]} if "delimiter" in params else {}),
                **({"s3:max-keys": params["max-keys"]} if "max-keys" in params else {}),
            }
            if not subresources:
                simple = {
                    "PUT": "CreateBucket",
                    "DELETE": "DeleteBucket",
                    "HEAD": "ListBucket",
                    "GET": "ListBucket",
                }
                if method in simple:
                    return on_bucket(simple[method], listing if method in {"GET", "HEAD"} else None)
            elif method == "POST" and subresources == {"delete"}:
                return self._delete_objects_operation(bucket, request, context)
            elif len(subresources) == 1:
                (name,) = subresources
                table = {"GET": _BUCKET_GET, "PUT": _BUCKET_PUT, "DELETE": _BUCKET_DELETE}.get(
                    method, {}
                )
                if name in table:
                    return on_bucket(
                        table[name], listing if name in {"versions", "uploads"} else None
                    )
            raise Unmodelled(f"S3 {method} on a bucket with {sorted(subresources)}")
        return self._object_operation(
            request, _Target(bucket, key, params, subresources, context, self.partition)
        )

    def _object_operation(self, request: _Request, target: _Target) -> _S3Operation:
        method, subresources = request.method, target.subresources
        if not subresources:
            if method in {"GET", "HEAD"}:
                return self._object_read(request, target)
            if method == "PUT":
                return self._object_put(request, target)
            if method == "POST" and "uploadId" in target.params:
                return self._complete_upload(target)
            if method == "DELETE":
                return self._object_delete(target)
        elif method == "POST" and subresources == {"uploads"}:
            return self._create_upload(request, target)
        elif len(subresources) == 1:
            (name,) = subresources
            tables = {"GET": _OBJECT_GET, "HEAD": _OBJECT_GET, "PUT": _OBJECT_PUT}
            actions = {**tables, "DELETE": _OBJECT_DELETE}.get(method, {}).get(name)
            if actions is not None:
                if "versionId" in target.params and name in {"tagging", "acl"}:
                    actions = tuple(a.replace("Object", "ObjectVersion", 1) for a in actions)
                return target.operation("other", *(target.check(a) for a in actions))
        raise Unmodelled(f"S3 {method} on an object with {sorted(subresources)}")

    def _object_delete(self, target: _Target) -> _S3Operation:
        if "uploadId" in target.params:
            return target.operation("other", target.check("AbortMultipartUpload"))
        version = "versionId" in target.params
        action = "DeleteObjectVersion" if version else "DeleteObject"
        return target.operation("delete", target.check(action))

    def _object_read(self, request: _Request, target: _Target) -> _S3Operation:
        if "uploadId" in target.params and request.method == "GET":
            return target.operation("other", target.check("ListMultipartUploadParts"))
        action = "GetObjectVersion" if "versionId" in target.params else "GetObject"
        return target.operation("read" if request.method == "GET" else "head", target.check(action))

    def _object_put(self, request: _Request, target: _Target) -> _S3Operation:
        checks = [target.check("PutObject")]
        source = request.header("x-amz-copy-source")
        if source is not None:
            checks.extend(self._copy_source_checks(source, target.context))
        if request.header("x-amz-tagging") is not None:
            checks.append(target.check("PutObjectTagging"))
        if request.header("x-amz-acl") is not None or any(
            k.lower().startswith("x-amz-grant-") for k, _ in request.headers
        ):
            checks.append(target.check("PutObjectAcl"))
        upload = target.params.get("uploadId")
        if upload is not None:
            # A part is encrypted with the data key the upload was created with.
            upload_key = self._upload_key(upload, target.bucket)
            if upload_key is not None:
                checks.append(self._kms_check("kms:Decrypt", upload_key, target.bucket))
            return target.operation("upload-part", *checks, write_key=upload_key)
        write_key = self._write_key(request, target.bucket)
        if write_key is not None:
            checks.append(self._kms_check("kms:GenerateDataKey", write_key, target.bucket))
        return target.operation("copy" if source else "put", *checks, write_key=write_key)

    def _create_upload(self, request: _Request, target: _Target) -> _S3Operation:
        write_key = self._write_key(request, target.bucket)
        checks = [target.check("PutObject")]
        if write_key is not None:
            checks.append(self._kms_check("kms:GenerateDataKey", write_key, target.bucket))
        return target.operation("create-upload", *checks, write_key=write_key)

    def _complete_upload(self, target: _Target) -> _S3Operation:
        upload_key = self._upload_key(target.params["uploadId"], target.bucket)
        checks = [target.check("PutObject")]
        if upload_key is not None:
            checks.append(self._kms_check("kms:Decrypt", upload_key, target.bucket))
        return target.operation("complete-upload", *checks, write_key=upload_key)

    def _upload_key(self, upload: str, bucket: str) -> str | None:
        with self._lock:
            return self._upload_keys.get(upload, self._bucket_keys.get(bucket))

    def _delete_objects_operation(
        self, bucket: str, request: _Request, context: dict[str, ContextValue]
    ) -> _S3Operation:
        root = ElementTree.fromstring(request.body)
        keys: list[tuple[str, str | None]] = []
        for item in root.iter():
            if item.tag.rsplit("}", 1)[-1] != "Object":
                continue
            fields = {child.tag.rsplit("}", 1)[-1]: child.text or "" for child in item}
            keys.append((fields["Key"], fields.get("VersionId")))
        checks = [
            Check(
                "s3:DeleteObjectVersion" if version else "s3:DeleteObject",
                f"{self._bucket_arn(bucket)}/{key}",
                context,
                bucket=bucket,
            )
            for key, version in keys
        ]
        if not checks:
            raise Unmodelled("DeleteObjects without objects")
        return _S3Operation(checks, "delete-objects", bucket=bucket, delete_keys=keys)

    def _copy_source_checks(self, source: str, context: dict[str, ContextValue]) -> list[Check]:
        path, _, query = unquote(source).lstrip("/").partition("?")
        source_bucket, _, source_key = path.partition("/")
        version = parse_qs(query).get("versionId")
        checks = [
            Check(
                "s3:GetObjectVersion" if version else "s3:GetObject",
                f"{self._bucket_arn(source_bucket)}/{source_key}",
                context,
                bucket=source_bucket,
            )
        ]
        with self._lock:
            key_arn = self._object_keys.get(
                (source_bucket, source_key), self._bucket_keys.get(source_bucket)
            )
        if key_arn is not None:
            checks.append(self._kms_check("kms:Decrypt", key_arn, source_bucket))
        return checks

    def _write_key(self, request: _Request, bucket: str) -> str | None:
        """The customer managed key a write will use: the request's, else the bucket's."""
        algorithm = request.header("x-amz-server-side-encryption")
        if algorithm is not None and not algorithm.startswith("aws:kms"):
            return None  # SSE-S3 (AES256): no KMS permission of the caller's
        key = request.header("x-amz-server-side-encryption-aws-kms-key-id")
        if key is None:
            # Whether "aws:kms" without a key id means aws/s3 or the bucket's default key when
            # that is a customer managed one is not settled here; the stricter reading (the
            # bucket's key) keeps a rehearsal from passing where S3 might refuse.
            with self._lock:
                return self._bucket_keys.get(bucket)
        if key.startswith("arn:"):
            return key
        return f"arn:{self.partition}:kms:{self.region}:{self.account}:key/{key}"

    def _kms_check(self, action: str, key_arn: str, bucket: str) -> Check:
        return Check(
            action,
            key_arn,
            {
                "kms:ViaService": f"s3.{self.region}.amazonaws.com",
                "kms:CallerAccount": self.account,
                "kms:EncryptionContext:aws:s3:arn": self._bucket_arn(bucket),
            },
            kms=True,
        )

    def _s3_context(self, request: _Request) -> dict[str, ContextValue]:
        context: dict[str, ContextValue] = {
            "s3:signatureversion": "AWS4-HMAC-SHA256",
            "s3:authType": "REST-HEADER",
            "s3:TlsVersion": "1.3",
            "s3:ResourceAccount": self.account,
        }
        for header in _S3_CONDITION_HEADERS:
            value = request.header(header)
            if value is not None:
                context[f"s3:{header}"] = value
        return context

    def _bucket_arn(self, bucket: str) -> str:
        return f"arn:{self.partition}:s3:::{bucket}"

    # DynamoDB

    def _dynamodb(
        self, principal: Principal | None, access_key_id: str, request: _Request
    ) -> _Reply:
        if principal is None:
            self._record(
                access_key_id, "dynamodb", "?", "?", decision=Decision.IMPLICIT_DENY, status=400
            )
            return _dynamodb_error(
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            )
        target = request.header("x-amz-target") or ""
        operation = target.rpartition(".")[2]
        try:
            checks = self._dynamodb_checks(
                operation, json.loads(request.body or b"{}"), request.region
            )
        except Unmodelled as problem:
            self._record(
                principal.name,
                "dynamodb",
                f"dynamodb:{operation}",
                "?",
                decision=Decision.IMPLICIT_DENY,
                status=501,
            )
            return _json_reply(501, {"__type": "NotImplemented", "message": str(problem)})
        verdict = self._authorize(principal, checks)
        primary = checks[0]
        if not verdict.allowed:
            self._record(
                principal.name,
                "dynamodb",
                primary.action,
                primary.resource,
                decision=verdict.decision,
                status=400,
                message=verdict.message,
            )
            return _dynamodb_error("AccessDeniedException", verdict.message)
        reply = self._forward(request)
        self._record(
            principal.name,
            "dynamodb",
            primary.action,
            primary.resource,
            decision=Decision.ALLOW,
            status=reply.status,
        )
        return reply

    def _dynamodb_checks(self, operation: str, body: dict[str, Any], region: str) -> list[Check]:
        def table(name: str) -> str:
            if name.startswith("arn:"):
                return name
            return f"arn:{self.partition}:dynamodb:{region}:{self.account}:table/{name}"

        context: dict[str, ContextValue] = {
            f"dynamodb:{key}": str(body[key])
            for key in ("ReturnValues", "ReturnConsumedCapacity", "Select")
            if key in body
        }
        if operation in {"BatchGetItem", "BatchWriteItem"}:
            return [
                Check(f"dynamodb:{operation}", table(name), context)
                for name in body["RequestItems"]
            ]
        if operation in {"TransactWriteItems", "TransactGetItems"}:
            # IAM authorizes each item's own action (PutItem, UpdateItem, ..., GetItem).
            actions = {
                "Put": "PutItem",
                "Update": "UpdateItem",
                "Delete": "DeleteItem",
                "ConditionCheck": "ConditionCheckItem",
                "Get": "GetItem",
            }
            return [
                Check(f"dynamodb:{actions[kind]}", table(item[kind]["TableName"]), context)
                for item in body["TransactItems"]
                for kind in item
            ]
        if "TableName" in body:
            arn = table(body["TableName"])
            if "IndexName" in body and operation in {"Query", "Scan"}:
                arn = f"{arn}/index/{body['IndexName']}"
            return [Check(f"dynamodb:{operation}", arn, context)]
        if operation in {
            "ListTables",
            "DescribeLimits",
            "DescribeEndpoints",
            "ListBackups",
            "ListGlobalTables",
            "ListExports",
            "ListImports",
        }:
            return [Check(f"dynamodb:{operation}", "*", context)]
        raise Unmodelled(f"DynamoDB {operation} is not modelled by the gateway")

    # HealthOmics

    def _omics(self, principal: Principal | None, access_key_id: str, request: _Request) -> _Reply:
        if principal is None:
            self._record(
                access_key_id,
                "omics",
                "?",
                request.path,
                decision=Decision.IMPLICIT_DENY,
                status=403,
            )
            return _omics_reply(
                403,
                {
                    "__type": "UnrecognizedClientException",
                    "message": "The security token included in the request is invalid.",
                },
            )
        routed = [
            (name, match.groupdict())
            for name, (method, pattern) in ROUTES.items()
            if method == request.method and (match := pattern.match(request.path))
        ]
        if not routed:
            status, payload = self.omics.handle(
                request.method, request.path, request.query, request.body, request.arrived
            )
            self._record(
                principal.name,
                "omics",
                "?",
                request.path,
                decision=Decision.IMPLICIT_DENY,
                status=status,
            )
            return _omics_reply(status, payload)
        ((operation, params),) = routed
        store_arn = self._store_arn(unquote(params["sequenceStoreId"]))
        resource = (
            f"{store_arn}/readSet/{unquote(params['id'])}"
            if operation == "GetReadSetMetadata"
            else store_arn
        )
        context = dict[str, ContextValue]()
        checks = [Check(f"omics:{operation}", resource, context)]
        if operation == "StartReadSetExportJob":
            with contextlib.suppress(ValueError, AttributeError):
                role_arn = json.loads(request.body).get("roleArn")
                if isinstance(role_arn, str):
                    checks.append(
                        Check("iam:PassRole", role_arn, {"iam:PassedToService": OMICS_PRINCIPAL})
                    )
        verdict = self._authorize(principal, checks)
        if not verdict.allowed:
            self._record(
                principal.name,
                "omics",
                checks[0].action,
                resource,
                decision=verdict.decision,
                status=403,
                message=verdict.message,
            )
            status, payload = _error("AccessDeniedException", verdict.message)
            return _omics_reply(status, payload)
        status, payload = self.omics.handle(
            request.method, request.path, request.query, request.body, request.arrived
        )
        self._record(
            principal.name,
            "omics",
            checks[0].action,
            resource,
            decision=Decision.ALLOW,
            status=status,
        )
        return _omics_reply(status, payload)

    def _store_arn(self, store: str) -> str:
        return f"arn:{self.partition}:omics:{self.region}:{self.account}:sequenceStore/{store}"

    # Step Functions and EventBridge

    def service_role_call(
        self, role_arn: str, action: str, resource: str, *, service: str
    ) -> str | None:
        """A service acting as one of the template's roles (Step Functions invoking a Lambda
        function as the state machine's role): None when IAM allows it, else the AccessDenied
        message. Recorded like any request."""
        with self._lock:
            principal = self._roles.get(role_arn)
        if principal is None:
            raise Unmodelled(f"{role_arn} is not a role of a deployed stack")
        check = Check(action, resource, {})
        verdict = self._authorize(principal, [check])
        self._record(
            principal.name,
            service,
            action,
            resource,
            decision=verdict.decision,
            status=200 if verdict.allowed else 403,
            message=verdict.message,
        )
        return None if verdict.allowed else verdict.message

    def role_trusts(
        self, role_arn: str, service_principal: str, context: Mapping[str, str]
    ) -> bool:
        """Whether one of the template's roles lets a service principal assume it."""
        with self._lock:
            principal = self._roles.get(role_arn)
        if principal is None or principal.trust is None:
            raise Unmodelled(f"{role_arn} is not a role of a deployed stack")
        return self._trusts(principal.trust, role_arn, service_principal, context)

    def _trusts(
        self,
        trust: Document,
        role_arn: str,
        service_principal: str,
        context: Mapping[str, ContextValue],
    ) -> bool:
        """Whether a trust policy lets a service principal call sts:AssumeRole on the role."""
        full = {
            "aws:PrincipalServiceName": service_principal,
            "aws:PrincipalIsAWSService": "true",
            "aws:SecureTransport": "true",
            **context,
        }
        _refuse_unmodelled_keys([trust], full)
        answer = EVALUATOR.ask(
            Request(
                principal=service_principal,
                action="sts:AssumeRole",
                resource=role_arn,
                resource_account=self._account_of(role_arn),
                resource_policy=trust,
                context=full,
            )
        )
        if answer.decision is Decision.ERROR:
            raise UnsupportedPolicy(f"the trust policy of {role_arn}: {answer.explanation}")
        return answer.decision is Decision.ALLOW

    def _states(self, principal: Principal | None, access_key_id: str, request: _Request) -> _Reply:
        """The Step Functions JSON 1.0 API: IAM on the state machine or execution ARN."""
        operation = (request.header("X-Amz-Target") or "").rpartition(".")[2]
        if principal is None:
            self._record(
                access_key_id, "states", "?", "?", decision=Decision.IMPLICIT_DENY, status=400
            )
            return _aws_json_error(
                "1.0",
                400,
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            )
        try:
            body = json.loads(request.body or b"{}")
            action, resource = self.stepfunctions.authorization(operation, body)
        except (UnmodelledStates, ValueError) as problem:
            self._record(
                principal.name,
                "states",
                f"states:{operation}",
                "?",
                decision=Decision.IMPLICIT_DENY,
                status=501,
            )
            return _json_reply(501, {"__type": "NotImplemented", "message": str(problem)})
        verdict = self._authorize(principal, [Check(action, resource, {})])
        if not verdict.allowed:
            self._record(
                principal.name,
                "states",
                action,
                resource,
                decision=verdict.decision,
                status=400,
                message=verdict.message,
            )
            return _aws_json_error("1.0", 400, "AccessDeniedException", verdict.message)
        try:
            status, payload = 200, self.stepfunctions.handle(operation, body)
        except StatesError as error:
            status, payload = error.status, {"__type": error.code, "message": error.message}
        self._record(
            principal.name, "states", action, resource, decision=Decision.ALLOW, status=status
        )
        return _aws_json_reply("1.0", status, payload)

    def _events(self, principal: Principal | None, access_key_id: str, request: _Request) -> _Reply:
        """EventBridge's PutEvents (JSON 1.1): events:PutEvents on each entry's bus, once per
        entry with its events:source and events:detail-type, judged with the bus's policy.

        A denied entry fails the whole call with AccessDeniedException. The API reference also
        lists per-entry codes NotAuthorizedForSourceException and
        NotAuthorizedForDetailTypeException ("You do not have permissions to publish events with
        this source onto this event bus"); which of the two an IAM condition on events:source
        produces could not be confirmed, so the stand-in takes the one a caller cannot overlook.
        """
        operation = (request.header("X-Amz-Target") or "").rpartition(".")[2]
        if principal is None:
            self._record(
                access_key_id, "events", "?", "?", decision=Decision.IMPLICIT_DENY, status=400
            )
            return _aws_json_error(
                "1.1",
                400,
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            )
        action = f"events:{operation}"
        try:
            if operation != "PutEvents":
                raise eventbridge.Unmodelled(f"EventBridge {operation} is not modelled")
            body = json.loads(request.body or b"{}")
            targets = self.events.authorization(body)
        except (eventbridge.Unmodelled, ValueError) as problem:
            self._record(
                principal.name, "events", action, "?", decision=Decision.IMPLICIT_DENY, status=501
            )
            return _json_reply(501, {"__type": "NotImplemented", "message": str(problem)})
        checks = [Check(action, bus, context) for bus, context in targets]
        verdict = self._authorize(principal, checks)
        if not verdict.allowed:
            self._record(
                principal.name,
                "events",
                action,
                verdict.check.resource,
                decision=verdict.decision,
                status=400,
                message=verdict.message,
            )
            return _aws_json_error("1.1", 400, "AccessDeniedException", verdict.message)
        try:
            status, payload = 200, self.events.put_events(body)
        except eventbridge.ServiceError as error:
            status, payload = error.status, {"__type": error.code, "message": error.message}
        self._record(
            principal.name,
            "events",
            action,
            verdict.check.resource,
            decision=Decision.ALLOW,
            status=status,
        )
        return _aws_json_reply("1.1", status, payload)

    def _write_export(self, job: Job, read_set_ids: list[str]) -> dict[str, str]:
        """HealthOmics writing a job's files as its role: the OmicsEndpoint's writer hook."""
        if not read_set_ids:
            return {}
        store_arn = self._store_arn(job.sequence_store_id)
        with self._lock:
            role = self._roles.get(job.role_arn)
        if role is None or role.trust is None:
            return dict.fromkeys(read_set_ids, _short(f"Unable to assume role {job.role_arn}"))
        context = {"aws:SourceAccount": self.account, "aws:SourceArn": store_arn}
        if not self._trusts(role.trust, job.role_arn, OMICS_PRINCIPAL, context):
            message = f"HealthOmics is not authorized to perform sts:AssumeRole on {job.role_arn}"
            return dict.fromkeys(read_set_ids, _short(message))
        bucket, _, prefix = job.destination.removeprefix("s3://").partition("/")
        prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        failures: dict[str, str] = {}
        for read_set_id in read_set_ids:
            item = self.omics.read_sets.get(job.sequence_store_id, {}).get(read_set_id, {})
            extension = str(item.get("fileType", "CRAM")).lower()
            key = f"{prefix}{read_set_id}/{read_set_id}.{extension}"
            body = f"exported read set {read_set_id} of job {job.id}\n".encode()
            headers = [
                *_admin_headers(self, self.region, access_key_id="ASIAHEALTHOMICSEXPORT"),
                ("Content-Type", "application/octet-stream"),
            ]
            request = _Request(
                "PUT", f"/{quote(bucket)}/{quote(key)}", "", headers, body, self.region
            )
            reply = self._s3(role, "ASIAHEALTHOMICSEXPORT", request)
            if reply.status >= 300:
                failures[read_set_id] = _export_failure(reply)
        return failures

    # Forwarding

    def _forward(self, request: _Request) -> _Reply:
        headers = [(k, v) for k, v in request.headers if k.lower() not in _HOP_BY_HOP]
        headers.append(("x-moto-account-id", self.account))
        body: bytes | None = request.body
        if not request.body and request.method not in {"POST", "PUT"}:
            body = None
        else:
            headers.append(("Content-Length", str(len(request.body))))
        connection = http.client.HTTPConnection(*self._moto_address, timeout=60)
        try:
            connection.connect()
            assert connection.sock is not None
            connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            target = request.path + (f"?{request.query}" if request.query else "")
            connection.putrequest(request.method, target, skip_host=True, skip_accept_encoding=True)
            for key, value in headers:
                connection.putheader(key, value)
            connection.endheaders(body)
            response = connection.getresponse()
            data = response.read()
            reply_headers = [
                (k, v)
                for k, v in response.getheaders()
                if k.lower() not in _HOP_BY_HOP | {"date", "server"}
                or (k.lower() == "content-length" and request.method == "HEAD")
            ]
            return _Reply(response.status, reply_headers, data)
        finally:
            connection.close()


# HTTP server


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], gateway: Gateway
    ) -> None:
        super().__init__(address, handler)
        self.gateway = gateway


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 answers S3's "Expect: 100-continue" at once (1.0 makes the client wait).
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without this, Nagle and delayed ACKs
    # add about 40 ms to every answer.
    disable_nagle_algorithm = True

    def _answer(self) -> None:
        gateway = cast(_Server, self.server).gateway
        arrived = gateway.arrival_clock()
        body = self._body()
        reply = gateway.handle(self.command, self.path, list(self.headers.items()), body, arrived)
        self.send_response(reply.status)
        for key, value in reply.headers:
            self.send_header(key, value)
        if self.command != "HEAD" or reply.header("Content-Length") is None:
            self.send_header(
                "Content-Length", str(len(reply.body) if self.command != "HEAD" else 0)
            )
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)

    def _body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in {b"\r\n", b"\n", b""}:
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _answer  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:
        pass


# Helpers

_S3_PLAIN_PARAMETERS = {
    "prefix",
    "delimiter",
    "max-keys",
    "marker",
    "list-type",
    "continuation-token",
    "start-after",
    "fetch-owner",
    "encoding-type",
    "versionId",
    "partNumber",
    "uploadId",
    "x-id",
    "key-marker",
    "version-id-marker",
    "upload-id-marker",
    "max-uploads",
    "max-parts",
    "part-number-marker",
    "response-content-type",
    "response-content-language",
    "response-expires",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
}
_BUCKET_GET = {
    "location": "GetBucketLocation",
    "policy": "GetBucketPolicy",
    "policyStatus": "GetBucketPolicyStatus",
    "versioning": "GetBucketVersioning",
    "encryption": "GetEncryptionConfiguration",
    "tagging": "GetBucketTagging",
    "acl": "GetBucketAcl",
    "cors": "GetBucketCORS",
    "lifecycle": "GetLifecycleConfiguration",
    "notification": "GetBucketNotification",
    "object-lock": "GetBucketObjectLockConfiguration",
    "ownershipControls": "GetBucketOwnershipControls",
    "publicAccessBlock": "GetBucketPublicAccessBlock",
    "logging": "GetBucketLogging",
    "website": "GetBucketWebsite",
    "replication": "GetReplicationConfiguration",
    "versions": "ListBucketVersions",
    "uploads": "ListBucketMultipartUploads",
}
_BUCKET_PUT = {
    "policy": "PutBucketPolicy",
    "versioning": "PutBucketVersioning",
    "encryption": "PutEncryptionConfiguration",
    "tagging": "PutBucketTagging",
    "acl": "PutBucketAcl",
    "cors": "PutBucketCORS",
    "lifecycle": "PutLifecycleConfiguration",
    "notification": "PutBucketNotification",
    "object-lock": "PutBucketObjectLockConfiguration",
    "ownershipControls": "PutBucketOwnershipControls",
    "publicAccessBlock": "PutBucketPublicAccessBlock",
    "logging": "PutBucketLogging",
    "website": "PutBucketWebsite",
    "replication": "PutReplicationConfiguration",
}
_BUCKET_DELETE = {
    "policy": "DeleteBucketPolicy",
    "encryption": "PutEncryptionConfiguration",
    "tagging": "PutBucketTagging",
    "cors": "PutBucketCORS",
    "lifecycle": "PutLifecycleConfiguration",
    "ownershipControls": "PutBucketOwnershipControls",
    "publicAccessBlock": "PutBucketPublicAccessBlock",
    "website": "DeleteBucketWebsite",
    "replication": "PutReplicationConfiguration",
}
_OBJECT_GET: dict[str, tuple[str, ...]] = {
    "tagging": ("GetObjectTagging",),
    "acl": ("GetObjectAcl",),
    "retention": ("GetObjectRetention",),
    "legal-hold": ("GetObjectLegalHold",),
    "attributes": ("GetObject", "GetObjectAttributes"),
}
_OBJECT_PUT: dict[str, tuple[str, ...]] = {
    "tagging": ("PutObjectTagging",),
    "acl": ("PutObjectAcl",),
    "retention": ("PutObjectRetention",),
    "legal-hold": ("PutObjectLegalHold",),
}
_OBJECT_DELETE: dict[str, tuple[str, ...]] = {"tagging": ("DeleteObjectTagging",)}
_S3_CONDITION_HEADERS = (
    "x-amz-server-side-encryption",
    "x-amz-server-side-encryption-aws-kms-key-id",
    "x-amz-acl",
    "x-amz-copy-source",
    "x-amz-metadata-directive",
    "x-amz-storage-class",
    "x-amz-content-sha256",
    "x-amz-object-lock-mode",
    "x-amz-object-lock-retain-until-date",
    "x-amz-object-lock-legal-hold",
    "if-none-match",
    "if-match",
)


def _credential(request: _Request) -> tuple[str, str, str] | None:
    """(access key id, region, service) from the SigV4 Authorization header or a presigned URL."""
    authorization = request.header("Authorization") or ""
    found = _CREDENTIAL.search(authorization)
    if found is None:
        presigned = parse_qs(request.query).get("X-Amz-Credential")
        found = _CREDENTIAL.search(f"Credential={presigned[0]}") if presigned else None
    if found is None:
        return None
    return found.group(1), found.group(3), found.group(4)


def _caller_arn(arn: str) -> str:
    """A role's callers are sessions: AccessDenied names the assumed-role ARN."""
    partition, account = arn.split(":")[1], arn.split(":")[4]
    if ":role/" not in arn:
        return arn
    name = arn.rsplit("/", 1)[-1]
    return f"arn:{partition}:sts::{account}:assumed-role/{name}/rehearsal"


def _denial(principal: Principal, check: Check, reason: str) -> str:
    resource = (
        f'"{check.resource}"' if check.resource.startswith("arn:aws:s3:::") else check.resource
    )
    return (
        f"User: {principal.caller_arn} is not authorized to perform: {check.action} on resource: "
        f"{resource} {reason} the {check.action} action"
        if reason.startswith("because")
        else f"User: {principal.caller_arn} is not authorized to perform: {check.action} on "
        f"resource: {resource} {reason}"
    )


def _reason(denials: Sequence[tuple[str, bool]]) -> str:
    """The AccessDenied reason, as IAM words it, from the kinds of policy that refused."""
    explicit = {kind for kind, is_explicit in denials if is_explicit}
    implicit = {kind for kind, is_explicit in denials if not is_explicit}
    for kind, reason in (
        ("identity", "with an explicit deny in an identity-based policy"),
        ("resource", "with an explicit deny in a resource-based policy"),
        ("pb", "with an explicit deny in a permissions boundary"),
    ):
        if kind in explicit:
            return reason
    if "identity" in implicit or not implicit:
        return "because no identity-based policy allows"
    if "pb" in implicit:
        return "because no permissions boundary allows"
    return "because no resource-based policy allows"


def _refuse_unmodelled_keys(
    documents: Sequence[Document | None], context: Mapping[str, ContextValue]
) -> None:
    """A condition on a key AWS would set but the gateway cannot know (UNMODELLED_KEYS), absent
    from the request, raises instead of being judged as if the key were absent."""
    supplied = {key.lower() for key in context}
    for document in documents:
        if document is None:
            continue
        statements = document.get("Statement", [])
        for statement in statements if isinstance(statements, list) else [statements]:
            for keys in dict(statement.get("Condition", {})).values():
                for key in keys:
                    lowered = str(key).lower()
                    if lowered in supplied:
                        continue
                    for unmodelled in UNMODELLED_KEYS:
                        family = unmodelled.lower()
                        if lowered == family or (
                            family.endswith("/") and lowered.startswith(family)
                        ):
                            raise UnsupportedPolicy(
                                f"condition key {key} is not modelled by the stand-in and was "
                                "not supplied in the request context"
                            )


def _admin_headers(
    gateway: Gateway, region: str, *, access_key_id: str | None = None
) -> list[tuple[str, str]]:
    """Headers of a request the gateway makes itself; moto routes by the credential scope."""
    stamp = datetime.now(UTC)
    key = access_key_id or gateway.admin_key
    return [
        ("Host", urlsplit(gateway.url).netloc),
        ("X-Amz-Date", stamp.strftime("%Y%m%dT%H%M%SZ")),
        ("X-Amz-Content-SHA256", "UNSIGNED-PAYLOAD"),
        (
            "Authorization",
            f"AWS4-HMAC-SHA256 Credential={key}/{stamp:%Y%m%d}/{region}/s3/aws4_request, "
            "SignedHeaders=host;x-amz-date, Signature=0",
        ),
    ]


def _s3_error(request: _Request, status: int, code: str, message: str) -> _Reply:
    request_id = uuid.uuid4().hex[:16].upper()
    headers = [("Content-Type", "application/xml"), ("x-amz-request-id", request_id)]
    if request.method == "HEAD":
        return _Reply(status, headers, b"")
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{escape(message)}</Message>"
        f"<RequestId>{request_id}</RequestId><HostId>rehearsal</HostId></Error>"
    )
    return _Reply(status, headers, body.encode())


def _dynamodb_error(code: str, message: str) -> _Reply:
    payload = {"__type": f"com.amazon.coral.service#{code}", "message": message}
    return _Reply(
        400,
        [("Content-Type", "application/x-amz-json-1.0"), ("x-amzn-RequestId", uuid.uuid4().hex)],
        json.dumps(payload).encode(),
    )


def _omics_reply(status: int, payload: dict[str, Any]) -> _Reply:
    headers = [("Content-Type", "application/json")]
    if status >= 300:
        headers.append(("x-amzn-ErrorType", payload["__type"]))
    return _Reply(status, headers, json.dumps(payload, default=_iso8601).encode())


def _json_reply(status: int, payload: dict[str, Any]) -> _Reply:
    return _Reply(status, [("Content-Type", "application/json")], json.dumps(payload).encode())


def _aws_json_reply(version: str, status: int, payload: Mapping[str, Any]) -> _Reply:
    """An answer of an AWS JSON protocol service (Step Functions 1.0, EventBridge 1.1)."""
    headers = [
        ("Content-Type", f"application/x-amz-json-{version}"),
        ("x-amzn-RequestId", str(uuid.uuid4())),
    ]
    return _Reply(status, headers, json.dumps(payload).encode())


def _aws_json_error(version: str, status: int, code: str, message: str) -> _Reply:
    return _aws_json_reply(version, status, {"__type": code, "message": message})


def _xml_message(body: bytes) -> str | None:
    found = re.search(rb"<Message>(.*?)</Message>", body, re.DOTALL)
    if found is None:
        return None
    text = found.group(1).decode()
    return (
        text.replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    )


def _export_failure(reply: _Reply) -> str:
    """A denied export write as a read set's statusMessage, which the model caps at 127
    characters: the action and resource first, so that truncation keeps what matters."""
    message = _xml_message(reply.body) or f"S3 answered {reply.status}"
    found = re.search(r'perform: (\S+) on resource: "?([^"\s]+)"? (?:because |with )?(.*)', message)
    if found is None:
        return _short(message)
    action, resource, reason = found.groups()
    reason = reason.removesuffix(f" the {action} action")
    return _short(f"Access Denied: {action} on {resource} ({reason})")


def _short(message: str) -> str:
    return (
        message
        if len(message) <= _EXPORT_MESSAGE_LIMIT
        else message[: _EXPORT_MESSAGE_LIMIT - 3] + "..."
    )


def _table_arguments(
    deployed: DeployedStack, logical: str, resource: Mapping[str, Any]
) -> dict[str, Any]:
    properties = deployed.resolve(resource.get("Properties", {}))
    arguments: dict[str, Any] = {
        "TableName": deployed.physical_name(logical),
        "KeySchema": properties["KeySchema"],
        "AttributeDefinitions": properties["AttributeDefinitions"],
    }
    billing = properties.get("BillingMode", "PROVISIONED")
    arguments["BillingMode"] = billing
    if billing == "PROVISIONED":
        arguments["ProvisionedThroughput"] = _throughput(properties.get("ProvisionedThroughput"))
    for name in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        if name in properties:
            indexes = []
            for given in properties[name]:
                index = dict(given)
                if billing == "PROVISIONED" and name == "GlobalSecondaryIndexes":
                    index["ProvisionedThroughput"] = _throughput(index.get("ProvisionedThroughput"))
                else:
                    index.pop("ProvisionedThroughput", None)
                indexes.append(index)
            arguments[name] = indexes
    return arguments


def _throughput(value: Mapping[str, Any] | None) -> dict[str, int]:
    value = value or {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
    return {k: int(v) for k, v in value.items()}


@contextlib.contextmanager
def _ignoring(code: str) -> Iterator[None]:
    try:
        yield
    except ClientError as error:
        if error.response["Error"]["Code"] != code:
            raise
