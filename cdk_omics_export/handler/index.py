"""Entry points of the service's two functions (``ReadSetExportService``).

- ``on_event`` (``OnEventHandler``) serves the ``Custom::OmicsReadSetExport`` resource:
  CloudFormation invokes it asynchronously with each request (``resource.py``).
- ``run_step`` (``RunnerHandler``) is the runner's Task: each call advances one export
  (``runner.py``); it is also the target of the runner's watchdog rule.

Only the standard library and the answer module are imported here: the rest is imported inside
the try, so that even a handler that fails to import answers CloudFormation.
"""

from __future__ import annotations

import importlib
import logging
from types import ModuleType
from typing import Any

try:  # imported as cdk_omics_export.handler.index (tests, the construct)
    from . import answer
except ImportError:  # Lambda: the asset's root is on sys.path
    import answer  # type: ignore[import-not-found,no-redef]

logging.getLogger().setLevel(logging.INFO)
# botocore's DEBUG records carry request bodies, and the state table's hold ResponseURLs:
# kept out of the logs even when Lambda's log level is set to DEBUG.
for _chatty in ("botocore", "boto3", "urllib3"):
    logging.getLogger(_chatty).setLevel(logging.INFO)
LOG = logging.getLogger(__name__)

__all__ = ["on_event", "run_step"]


def _module(name: str) -> ModuleType:
    package = __package__ or ""
    return importlib.import_module(f"{package}.{name}" if package else name)


def on_event(event: dict[str, Any], context: Any = None) -> None:
    """Serve one delivery of a CloudFormation request; never raises (Lambda would retry)."""
    try:
        resource = _module("resource")
    except Exception as error:  # noqa: BLE001 (answer even when the handler cannot load)
        LOG.exception("the handler could not be loaded")
        _answer_without_handler(event, f"{type(error).__name__}: {error}")
        return
    resource.handle(event, context)


def run_step(event: dict[str, Any], context: Any = None) -> Any:
    """One step of the runner, or (an EventBridge event) the watchdog's restart."""
    runner = _module("runner")
    if "detail-type" in event:
        runner.restart(event)
        return None
    return runner.step(event, context)


def _answer_without_handler(event: dict[str, Any], error: str) -> None:
    url = event.get("ResponseURL") if isinstance(event, dict) else None
    if not isinstance(url, str):
        return
    physical_id = event.get("PhysicalResourceId") or answer.CREATE_FAILED_PREFIX + str(
        event.get("RequestId", "")
    )
    if event.get("RequestType") == "Delete":
        # A Delete must not fail: nothing could have started without the handler either.
        status: answer.Status = "SUCCESS"
        reason = ""
    else:
        status, reason = "FAILED", f"The export's handler could not be loaded: {error}"
    try:
        answer.send(url, answer.body(event, status, str(physical_id), reason=reason))
    except answer.AnswerLost:
        LOG.exception("the answer could not be delivered")
