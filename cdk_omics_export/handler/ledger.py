"""The requests CloudFormation is owed an answer for, and the one way to answer them.

Whoever answers (the function CloudFormation invoked, the runner, the watchdog) claims the
answer in the request's record first (``StateStore.claim_answer``), so each request is
answered exactly once; ``answer.py`` builds and sends the body.
"""

from __future__ import annotations

import logging

try:  # imported as cdk_omics_export.handler.ledger (tests, the construct)
    from . import answer, clients
    from . import state as st
except ImportError:  # Lambda: the asset's root is on sys.path
    import answer  # type: ignore[import-not-found,no-redef]
    import clients  # type: ignore[import-not-found,no-redef]
    import state as st  # type: ignore[import-not-found,no-redef]

LOG = logging.getLogger(__name__)


def respond(
    request: st.RequestRecord,
    status: answer.Status,
    physical_id: str,
    *,
    reason: str = "",
    data: dict[str, str] | None = None,
) -> bool:
    """Answer the request unless it was answered already; True if this call answered."""
    store = clients.state_store()
    url = store.claim_answer(request, status, clients.now())
    if url is None:
        LOG.info("request %s was answered already", request["requestId"])
        return False
    body = answer.body(request, status, physical_id, reason=reason, data=data)
    try:
        answer.send(url, body, sleep=clients.sleep)
    except answer.AnswerLost:
        LOG.exception(
            "request %s of export %s: CloudFormation never heard %s; the resource fails at its "
            "ServiceTimeout",
            request["requestId"],
            request["exportId"],
            status,
        )
    return True


def respond_to(
    request_id: str,
    status: answer.Status,
    *,
    reason: str = "",
    physical_id: str | None = None,
    data: dict[str, str] | None = None,
) -> bool:
    """Answer a request known by its id (a run's), if it is recorded and still owed."""
    request = clients.state_store().load_request(request_id)
    if request is None or "answer" in request:
        return False
    if physical_id is None:
        physical_id = failed_physical_id(request) if status == "FAILED" else request["exportId"]
    return respond(request, status, physical_id, reason=reason, data=data)


def failed_physical_id(request: st.RequestRecord) -> str:
    if request["requestType"] == "Create" or not request["physicalResourceId"]:
        return answer.CREATE_FAILED_PREFIX + (request["exportId"] or request["requestId"])
    return request["physicalResourceId"]


def with_logs(message: str) -> str:
    """Point at the service's log group, where the handler and runner log."""
    group = clients.log_group()
    return f"{message} Handler logs: {group}." if group else message
