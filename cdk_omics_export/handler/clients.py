"""The handler's AWS clients, clock and environment, in one place.

One client per service and Lambda container, created on first use with a retry ``Config``;
imports stay light, because every cold start pays for them. The clock (``now``, ``sleep``) is
looked up at each call, so a rehearsal can put the whole handler on its simulated clock.
"""

from __future__ import annotations

import contextvars
import functools
import os
import time
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

try:  # imported as cdk_omics_export.handler.clients (tests, the construct)
    from . import pacing, rules
    from . import state as st
except ImportError:  # Lambda: the asset's root is on sys.path
    import pacing  # type: ignore[import-not-found,no-redef]
    import rules  # type: ignore[import-not-found,no-redef]
    import state as st  # type: ignore[import-not-found,no-redef]

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_omics import OmicsClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_stepfunctions import SFNClient

# Throttling, 5xx and request timeouts are retried by botocore's standard retry mode, each
# attempt only while the invocation has time for it (the pacer checks).
RETRY_MAX_ATTEMPTS = 6
CONNECT_TIMEOUT_SECONDS = 5
READ_TIMEOUT_SECONDS = 15
ATTEMPT_SECONDS = CONNECT_TIMEOUT_SECONDS + READ_TIMEOUT_SECONDS


def now() -> float:
    return time.time()


def sleep(seconds: float) -> None:
    time.sleep(seconds)


def _config() -> Config:
    return Config(
        retries={"mode": "standard", "total_max_attempts": RETRY_MAX_ATTEMPTS},
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=READ_TIMEOUT_SECONDS,
        user_agent_extra="cdk-omics-export",
    )


@functools.cache
def omics() -> OmicsClient:
    """Every HTTP attempt it makes, botocore's retries included, first waits for the current
    invocation's pacer (``PACER``)."""
    client = boto3.client("omics", config=_config())
    client.meta.events.register("before-send.omics", _wait_for_the_pacer)
    return client


# The pacer of the invocation running in this context (thread); None outside one.
PACER: contextvars.ContextVar[pacing.Pacer | None] = contextvars.ContextVar(
    "cdk_omics_export_pacer", default=None
)


def _wait_for_the_pacer(**kwargs: Any) -> None:
    pacer = PACER.get()
    if pacer is not None:
        pacer.wait(**kwargs)


@functools.cache
def s3() -> S3Client:
    return boto3.client("s3", config=_config())


@functools.cache
def dynamodb() -> DynamoDBClient:
    return boto3.client("dynamodb", config=_config())


@functools.cache
def states() -> SFNClient:
    return boto3.client("stepfunctions", config=_config())


@functools.cache
def events() -> EventBridgeClient:
    return boto3.client("events", config=_config())


ALL = (omics, s3, dynamodb, states, events)


def state_store() -> st.StateStore:
    # The clock looked up at each call: a rehearsal puts the store on its simulated clock too.
    return st.StateStore(dynamodb(), os.environ[rules.TABLE_ENV], clock=lambda: now())  # noqa: PLW0108


def poll_interval() -> int:
    return int(os.environ.get(rules.POLL_ENV, rules.DEFAULT_POLL_INTERVAL_SECONDS))


def runner_arn() -> str:
    return os.environ.get(rules.RUNNER_ENV, "")


def log_group() -> str:
    return os.environ.get(rules.LOG_GROUP_ENV, "")
