"""The ``Custom::OmicsReadSetExport`` resource: CloudFormation's requests and their answers.

CloudFormation invokes the service's ``OnEventHandler`` asynchronously (at least once; Lambda
retries a failed invocation twice). On Create and Update it records the request, makes it the
export's current run and starts the runner, then returns: the runner answers once the export
ends or, without ``wait_for_completion``, once the read sets are selected and checked
(``runner.py``). Delete marks the export cancelled and is answered at once; it never fails.
Every request is answered exactly once: the answer is claimed in the state table
(``StateStore.claim_answer``) before it is sent, whoever sends it.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Literal, NotRequired, TypedDict

try:  # imported as cdk_omics_export.handler.resource (tests, the construct)
    from . import answer, clients, ledger, rules
    from . import export as exports
    from . import runner as runners
    from . import state as st
except ImportError:  # Lambda: the asset's root is on sys.path
    import answer  # type: ignore[import-not-found,no-redef]
    import clients  # type: ignore[import-not-found,no-redef]
    import export as exports  # type: ignore[import-not-found,no-redef]
    import ledger  # type: ignore[import-not-found,no-redef]
    import rules  # type: ignore[import-not-found,no-redef]
    import runner as runners  # type: ignore[import-not-found,no-redef]
    import state as st  # type: ignore[import-not-found,no-redef]

LOG = logging.getLogger(__name__)

ExportError = exports.ExportError
REQUEST_TYPES = ("Create", "Update", "Delete")


class ResourceProperties(TypedDict):
    ServiceToken: str
    ConstructPath: str
    ExportGeneration: NotRequired[str]
    SequenceStoreId: str
    Destination: str
    RoleArn: str
    ReadSetIds: NotRequired[list[str]]
    ReadSetList: NotRequired[str]
    ReadSetFilter: NotRequired[dict[str, str]]
    AllowEmptySelection: NotRequired[str]
    AllowPartialFailure: NotRequired[str]
    ArchivedReadSets: NotRequired[str]  # ACTIVATE when absent
    WaitForCompletion: NotRequired[str]
    TimeoutSeconds: NotRequired[str]
    # Changed by the user to have the selection evaluated again; the handler needs no value.
    SelectionRefresh: NotRequired[str]
    Encryption: NotRequired[str]
    KmsKeyArn: NotRequired[str]


class CloudFormationEvent(TypedDict):
    RequestType: Literal["Create", "Update", "Delete"]
    RequestId: str
    ResponseURL: str
    StackId: str
    LogicalResourceId: str
    ResourceType: str
    ResourceProperties: ResourceProperties
    OldResourceProperties: NotRequired[ResourceProperties]
    PhysicalResourceId: NotRequired[str]


def handle(event: CloudFormationEvent, context: Any = None) -> None:
    """Serve one delivery of a request. Never raises: whatever goes wrong is answered."""
    if not isinstance(event, dict):
        LOG.error("not a CloudFormation request (a %s, not a map): ignored", type(event).__name__)
        return
    _log_event(event)
    if not isinstance(event.get("ResponseURL"), str):
        LOG.error("not a CloudFormation request (no ResponseURL to answer): ignored")
        return
    lacking = [
        k
        for k in ("RequestId", "StackId", "LogicalResourceId")
        if not isinstance(event.get(k), str) or not event.get(k)
    ]
    if lacking:
        # Not CloudFormation's either, and no record can be kept without them: answered
        # FAILED all the same, so whoever sent it learns why nothing started.
        LOG.error("request without %s: answered FAILED", " or ".join(lacking))
        _answer_unrecorded(
            event,
            f"The request has no {' or '.join(lacking)} (a non-empty string); nothing was started.",
        )
        return
    try:
        request = _register(event)
    except Exception as error:  # noqa: BLE001 (the table is out of reach: answer anyway)
        LOG.exception("could not record request %s", event["RequestId"])
        _answer_unrecorded(event, f"The export's state table could not be reached: {error}")
        return
    if "answer" in request:
        LOG.info("request %s was answered %s already", request["requestId"], request["answer"])
        return
    try:
        request_type = event.get("RequestType", "")
        if request_type == "Delete":
            _delete(event, request)
        elif request_type in ("Create", "Update"):
            _create_or_update(event, request)
        else:
            raise ExportError(
                f"RequestType {str(request_type)[:40]!r} is not one of "
                f"{', '.join(REQUEST_TYPES)}; nothing was started."
            )
    except Exception as error:  # noqa: BLE001 (answered, never retried by Lambda)
        if not isinstance(error, ExportError | st.StateError):
            LOG.exception("request %s failed", event["RequestId"])
        failed_id = _failed_physical_id(event, request["exportId"])
        reason = rules.redact(_reason(error), _event_filter(event))
        ledger.respond(request, "FAILED", failed_id, reason=ledger.with_logs(reason))


# Create and Update


def _create_or_update(event: CloudFormationEvent, request: st.RequestRecord) -> None:
    export_request = parse(event)
    export = runners.export_for(export_request)
    replaced = export.begin(event["RequestId"], event["RequestType"], clients.now())
    if replaced is not None:
        # CloudFormation moved on from that request (it timed out, or the stack rolls back):
        # its answer, if still owed, says so.
        ledger.respond_to(
            replaced,
            "FAILED",
            reason=f"Request {replaced} of export {export.export_id} was superseded by "
            f"request {event['RequestId']}.",
        )
    runners.start_for_run(export)


def parse(event: CloudFormationEvent) -> exports.ExportRequest:
    """The export that the request's properties describe, checked; raises ExportError."""
    props = event.get("ResourceProperties")
    if not isinstance(props, dict):
        raise ExportError("The request has no ResourceProperties; nothing was started.")
    given: dict[str, Any] = dict(props)
    required = ("ConstructPath", "SequenceStoreId", "Destination", "RoleArn")
    missing = [name for name in required if given.get(name) in (None, "")]
    if missing:
        raise ExportError(f"ResourceProperties lack {', '.join(missing)}; nothing was started.")
    wrong = [
        f"{name}: expected a string, got {type(given[name]).__name__}"
        for name in required
        if not isinstance(given[name], str)
    ]
    if wrong:
        raise ExportError("; ".join(wrong) + "; nothing was started.")
    ids, read_set_filter = _selection_properties(props)
    spec: st.SelectionSpec = {"allowEmpty": _flag(props, "AllowEmptySelection", default=False)}
    if ids is not None:
        spec["readSetIds"] = list(ids)
    if props.get("ReadSetList"):
        spec["readSetList"] = str(props["ReadSetList"])
    if read_set_filter:
        spec["filter"] = {str(k): str(v) for k, v in read_set_filter.items()}
    encryption: st.Encryption = {"mode": str(props.get("Encryption", ""))}
    if props.get("KmsKeyArn"):
        encryption["keyArn"] = str(props["KmsKeyArn"])
    request = exports.ExportRequest(
        stack_id=event["StackId"],
        construct_path=props["ConstructPath"],
        destination=props["Destination"],
        generation=_number(props, "ExportGeneration", 0),
        sequence_store_id=props["SequenceStoreId"],
        role_arn=props["RoleArn"],
        selection=spec,
        encryption=encryption,
        wait=_flag(props, "WaitForCompletion"),
        allow_partial_failure=_flag(props, "AllowPartialFailure", default=False),
        timeout_seconds=_number(props, "TimeoutSeconds", rules.DEFAULT_TIMEOUT_SECONDS),
        poll_interval_seconds=clients.poll_interval(),
        archived_read_sets=_archived_read_sets(props),
    )
    # Synth time skips values that were tokens; they are resolved now.
    problems = rules.check_sequence_store_id(request.sequence_store_id)
    if ids is not None:
        problems += rules.check_read_set_ids(list(ids))
    problems += rules.check_timeout(request.timeout_seconds)
    problems += _check_request(request)
    if problems:
        raise ExportError("; ".join(problems) + "; nothing was started.")
    return request


def _selection_properties(
    props: ResourceProperties,
) -> tuple[list[str] | None, dict[str, Any] | None]:
    """The ids or the filter (or neither: a list in S3), each checked; raises ExportError."""
    ids = props.get("ReadSetIds")
    if ids is not None and (not isinstance(ids, list) or not all(isinstance(i, str) for i in ids)):
        raise ExportError("ReadSetIds: not a list of read set ids; nothing was started.")
    read_set_filter = props.get("ReadSetFilter")
    if read_set_filter is not None and not isinstance(read_set_filter, dict):
        raise ExportError("ReadSetFilter: not a map of filter fields; nothing was started.")
    read_set_list = props.get("ReadSetList")
    if read_set_list is not None and not (
        isinstance(read_set_list, str) and read_set_list.startswith("s3://")
    ):
        raise ExportError("ReadSetList: not an s3:// URL of a list of ids; nothing was started.")
    given = [
        name
        for name, value in (
            ("ReadSetIds", ids),
            ("ReadSetList", read_set_list),
            ("ReadSetFilter", read_set_filter),
        )
        if value is not None
    ]
    if not given:
        raise ExportError(
            "ResourceProperties name no read sets (ReadSetIds, ReadSetList or ReadSetFilter); "
            "nothing was started."
        )
    if len(given) > 1:
        raise ExportError(
            f"ResourceProperties give {' and '.join(given)}; an export selects its read sets "
            "one way. Nothing was started."
        )
    problems = _check_strings(props)
    if read_set_filter is not None:
        problems += _check_filter(read_set_filter)
    if problems:
        raise ExportError("; ".join(problems) + "; nothing was started.")
    return ids, read_set_filter


def _check_request(request: exports.ExportRequest) -> list[str]:
    """What the construct always sends well-formed: the destination, role and key."""
    problems = rules.check_export_generation(request.generation)
    encryption = request.encryption
    if rules.DESTINATION.fullmatch(request.destination) is None:
        problems.append(
            f"Destination: {request.destination[:80]!r} does not match the API's pattern "
            f"{rules.DESTINATION_PATTERN}"
        )
    if not (request.role_arn.startswith("arn:") and 20 <= len(request.role_arn) <= 2048):
        problems.append(f"RoleArn: {request.role_arn[:80]!r} is not an IAM role ARN")
    if encryption["mode"] not in ENCRYPTION_MODES:
        problems.append(
            f"Encryption: {encryption['mode'][:40]!r} is not one of "
            f"{', '.join(repr(m) for m in ENCRYPTION_MODES)}"
        )
    if "keyArn" in encryption and not encryption["keyArn"].startswith("arn:"):
        problems.append(f"KmsKeyArn: {encryption['keyArn'][:80]!r} is not a KMS key ARN")
    return problems


# The destination's encryption that the construct sends ("" leaves the bucket's default).
ENCRYPTION_MODES = ("", "aws:kms", "AES256")
# The properties the construct sends as strings (CloudFormation delivers numbers and flags as
# strings too); anything else is not the construct's request.
STRING_PROPERTIES = (
    "ServiceToken",
    "ConstructPath",
    "ExportGeneration",
    "SequenceStoreId",
    "Destination",
    "RoleArn",
    "ReadSetList",
    "AllowEmptySelection",
    "AllowPartialFailure",
    "ArchivedReadSets",
    "WaitForCompletion",
    "TimeoutSeconds",
    "SelectionRefresh",
    "Encryption",
    "KmsKeyArn",
)
FLAG_PROPERTIES = ("AllowEmptySelection", "AllowPartialFailure", "WaitForCompletion")
# ListReadSets' filter fields, as the construct sends them.
FILTER_FIELDS = tuple(rules.FILTER_PROPS)


def _check_strings(props: ResourceProperties) -> list[str]:
    """Properties of the wrong type (a number or a flag is a string, or a bool/int from a
    template written by hand) and flags that are neither true nor false."""
    problems: list[str] = []
    for name in STRING_PROPERTIES:
        value = props.get(name)
        if value is not None and not isinstance(value, str | int | bool):
            problems.append(f"{name}: expected a string, got {type(value).__name__}")
    for name in FLAG_PROPERTIES:
        value = props.get(name)
        if value is not None and str(value).lower() not in ("true", "false"):
            problems.append(f"{name}: {str(value)[:40]!r} is neither true nor false")
    refresh = props.get("SelectionRefresh")
    if isinstance(refresh, str) and len(refresh) > rules.SELECTION_REFRESH_MAX_LENGTH:
        problems.append(
            f"SelectionRefresh: {len(refresh)} characters; at most "
            f"{rules.SELECTION_REFRESH_MAX_LENGTH}"
        )
    return problems


def _check_filter(read_set_filter: dict[str, Any]) -> list[str]:
    """The filter as ListReadSets would take it; values are never repeated (they identify
    samples and subjects)."""
    unknown = sorted(str(k) for k in read_set_filter if k not in FILTER_FIELDS)
    if unknown:
        return [
            f"ReadSetFilter: unknown field{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(n[:40] for n in unknown)} (ListReadSets takes {', '.join(FILTER_FIELDS)})"
        ]
    wrong = sorted(k for k, v in read_set_filter.items() if not isinstance(v, str))
    if wrong:
        return [f"ReadSetFilter: {', '.join(wrong)} must be strings"]
    # Its messages repeat no identifying value, and handle() redacts every reason anyway.
    return rules.check_read_set_filter(read_set_filter, where="ReadSetFilter", api_names=True)


# Delete


def _delete(event: CloudFormationEvent, request: st.RequestRecord) -> None:
    """Mark the export cancelled and answer at once. Never fails: a Delete that failed would
    leave the stack stuck, and the API cannot cancel a job anyway (running jobs end on their
    own); the runner starts nothing more and records the running jobs' outcomes. The physical
    id stays the one CloudFormation sent."""
    physical_id = str(event.get("PhysicalResourceId") or event["RequestId"])
    if physical_id.startswith(answer.CREATE_FAILED_PREFIX):
        LOG.info("physical id %s is a failed Create's: nothing to delete", physical_id)
    elif request["exportId"]:
        runners.cancel(request["exportId"])
    ledger.respond(request, "SUCCESS", physical_id)


# Answers


def _answer_unrecorded(event: CloudFormationEvent, reason: str) -> None:
    """Answer without the state table (it could not be reached): at least once, not once.
    A Delete still succeeds: nothing can start for an export whose state is out of reach
    either, and a failed Delete would leave the stack stuck."""
    if event.get("RequestType") == "Delete":
        physical_id = str(event.get("PhysicalResourceId") or event.get("RequestId", ""))
        LOG.warning(
            "request %s: Delete answered without marking the export cancelled",
            event.get("RequestId"),
        )
        body = answer.body(event, "SUCCESS", physical_id)
    else:
        failed_id = _failed_physical_id(event, "")
        body = answer.body(event, "FAILED", failed_id, reason=ledger.with_logs(reason))
    try:
        answer.send(event["ResponseURL"], body, sleep=clients.sleep)
    except answer.AnswerLost:
        LOG.exception("request %s: the answer could not be delivered", event.get("RequestId"))


def _register(event: CloudFormationEvent) -> st.RequestRecord:
    return clients.state_store().register_request(
        {
            "requestId": event["RequestId"],
            "requestType": str(event.get("RequestType", "")),
            "stackId": event["StackId"],
            "logicalResourceId": str(event.get("LogicalResourceId", "")),
            "exportId": _export_id_or_blank(event),
            "physicalResourceId": str(event.get("PhysicalResourceId", "")),
            "responseUrl": event["ResponseURL"],
            "receivedAt": clients.now(),
            "version": 0,
        }
    )


def _export_id_or_blank(event: CloudFormationEvent) -> str:
    props = event.get("ResourceProperties")
    if not isinstance(props, dict):
        return ""
    path, destination = props.get("ConstructPath"), props.get("Destination")
    if not isinstance(path, str) or not isinstance(destination, str):
        return ""
    try:
        generation = int(props.get("ExportGeneration", "0"))
    except (TypeError, ValueError):
        return ""
    return exports.export_id_of(event["StackId"], path, destination, generation)


def _failed_physical_id(event: CloudFormationEvent, export_id: str) -> str:
    """A failed Create answers a marker that its Delete recognizes and skips; a failed Update
    or Delete keeps the physical id CloudFormation sent."""
    if event.get("RequestType") == "Create" or not event.get("PhysicalResourceId"):
        return answer.CREATE_FAILED_PREFIX + (export_id or str(event.get("RequestId", "")))
    return str(event["PhysicalResourceId"])


def _reason(error: Exception) -> str:
    if isinstance(error, ExportError | st.StateError):
        return str(error)
    return f"The export's handler failed: {type(error).__name__}: {error}"


def _flag(props: ResourceProperties, name: str, *, default: bool = True) -> bool:
    # CloudFormation delivers every property as a string.
    value = props.get(name)
    return default if value is None else str(value).lower() == "true"


def _archived_read_sets(props: ResourceProperties) -> str:
    value = str(props.get("ArchivedReadSets", rules.ArchivedReadSets.ACTIVATE.value))
    accepted = [choice.value for choice in rules.ArchivedReadSets]
    if value not in accepted:
        raise ExportError(
            f"ArchivedReadSets: {value[:40]!r} is not one of {', '.join(accepted)}; nothing was "
            "started."
        )
    return value


def _number(props: ResourceProperties, name: str, default: int) -> int:
    value = props.get(name)
    if value is None:
        return default
    try:
        return int(str(value))
    except ValueError:
        raise ExportError(
            f"{name}: {str(value)[:40]!r} is not a whole number; nothing was started."
        ) from None


def _log_event(event: CloudFormationEvent) -> None:
    # The ResponseURL is a pre-signed URL that can answer for the stack: never logged. A
    # filter's values identify samples and subjects: only its fields are.
    safe: dict[str, Any] = {
        key: event.get(key)
        for key in ("RequestType", "RequestId", "LogicalResourceId", "PhysicalResourceId")
        if key in event
    }
    for key in ("ResourceProperties", "OldResourceProperties"):
        props = event.get(key)
        if isinstance(props, dict):
            safe[key] = {name: _loggable(name, value) for name, value in props.items()}
        elif key in event:
            safe[key] = type(props).__name__
    LOG.info("request %s", " ".join(json.dumps(safe, default=str).split()))


def _loggable(name: str, value: Any) -> Any:
    if name == "ReadSetFilter":
        return sorted(value) if isinstance(value, dict) else type(value).__name__
    if name == "ReadSetIds" and isinstance(value, list) and len(value) > 10:
        return f"{len(value)} ids"
    return value


def _event_filter(event: CloudFormationEvent) -> dict[str, str] | None:
    props = event.get("ResourceProperties")
    found = props.get("ReadSetFilter") if isinstance(props, dict) else None
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else None
