"""What can interrupt an export's step, shared by the modules that advance it."""

from __future__ import annotations


class ExportError(Exception):
    """A failure CloudFormation shows as the resource's status reason."""


class OutOfTime(Exception):
    """The invocation's budget cannot fit another request: save and let the next poll go on."""


class ReadSetMissing(Exception):
    """GetReadSetMetadata answered ResourceNotFoundException during the pre-flight."""


class QuotaExceeded(Exception):
    """A start (of an export or an activation job) answered ServiceQuotaExceededException:
    wait for capacity."""


class NotYetAuthorized(Exception):
    """A start answered AccessDenied while IAM may still be propagating."""
