"""A local HealthOmics endpoint for deploy rehearsals (test code, never shipped).

Implements StartReadSetExportJob, GetReadSetExportJob, ListReadSetExportJobs, ListReadSets,
GetReadSetMetadata and the activation operations (StartReadSetActivationJob,
GetReadSetActivationJob, ListReadSetActivationJobs) with the real API's paths, status codes
and JSON, plus S3 GetObject and PutObject (path-style) for the export's manifest. Every
request is checked against botocore's omics model (types, required members, lengths,
patterns) and every response is validated against the operation's output shape before it is
sent, so a handler that passes here speaks
the real contract. Jobs move SUBMITTED -> IN_PROGRESS -> a terminal status over successive
looks at them (a Get, or a List that shows them), or with ``job_seconds`` on the endpoint's
clock, with per-read-set statuses. The List operations filter on status and creation time
(``createdAfter``, ``createdBefore``) and page with ``maxResults`` and ``nextToken``; creation
and completion times come from ``epoch`` (the rehearsal's simulated clock when it runs on
one). Faults can be injected per operation, and a request rate and a number of concurrent jobs
can be enforced like the service's quotas.
An optional `writer` writes a job's files when it ends (tests/standins/gateway.py writes them
into S3 as the job's role), and the read sets it could not write end FAILED.

Archived read sets: an activation job of 1-20 ARCHIVED read sets makes them ACTIVATING, then,
after ``activation_seconds`` on the endpoint's clock (or over polls), ACTIVE, or ARCHIVED again
for those in ``failing_activations``; ``activation_outcome`` forces a job's end, and
``max_concurrent_activations`` plays the (unpublished) concurrent-activation quota. Exporting a
read set that is not ACTIVE is refused with a ValidationException: whether the real service
refuses it or fails the job is not published, and the handler must never send one.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import botocore.session
from botocore.model import OperationModel, Shape
from botocore.validate import ParamValidator

MODEL = botocore.session.get_session().get_service_model("omics")
OPERATIONS = (
    "StartReadSetExportJob",
    "GetReadSetExportJob",
    "ListReadSetExportJobs",
    "ListReadSets",
    "GetReadSetMetadata",
    "StartReadSetActivationJob",
    "GetReadSetActivationJob",
    "ListReadSetActivationJobs",
)
TERMINAL = {"COMPLETED", "COMPLETED_WITH_FAILURES", "FAILED", "CANCELLED"}


def _route(operation: str) -> tuple[str, re.Pattern[str]]:
    http = MODEL.operation_model(operation).http
    pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", http["requestUri"])
    return http["method"], re.compile(f"^{pattern}$")


ROUTES = {operation: _route(operation) for operation in OPERATIONS}


def _java_pattern(pattern: str) -> re.Pattern[str] | None:
    # The model's patterns are Java regexes; \p{...} classes have no `re` equivalent.
    return None if "\\p{" in pattern else re.compile(pattern)


@dataclass
class Job:
    id: str
    sequence_store_id: str
    destination: str
    role_arn: str
    read_set_ids: list[str]
    client_token: str | None
    creation_time: datetime
    polls: int = 0
    completion_time: datetime | None = None
    started_at: float = 0.0  # on the endpoint's clock
    # read set id -> why the writer could not export it; filled once, when the job ends.
    write_failures: dict[str, str] = field(default_factory=dict)
    written: bool = False

    def request_matches(self, body: dict[str, Any]) -> bool:
        return (
            self.destination == body["destination"]
            and self.role_arn == body["roleArn"]
            and self.read_set_ids == [s["readSetId"] for s in body["sources"]]
        )


@dataclass
class Activation:
    id: str
    sequence_store_id: str
    read_set_ids: list[str]
    client_token: str | None
    creation_time: datetime
    started_at: float
    polls: int = 0
    ended: str | None = None  # the final status, once reached
    completion_time: datetime | None = None


@dataclass
class Fault:
    code: str
    message: str


@dataclass
class OmicsEndpoint:
    """State and behaviour of the fake service; `serve()` puts it on a local port."""

    polls_submitted: int = 1
    polls_in_progress: int = 1
    # None: every read set finishes. Otherwise read set id -> its failure message.
    failing_read_sets: dict[str, str] = field(default_factory=dict)
    # Force the job's final status (e.g. "FAILED", "CANCELLED") and message.
    job_outcome: tuple[str, str] | None = None
    max_requests_per_second: int | None = None
    max_concurrent_jobs: int | None = None
    # How long HealthOmics remembers a client token is not published: False plays a service
    # that has forgotten it (a second start with it makes a second job).
    remembers_client_tokens: bool = True
    # Jobs progress by polls, or, with job_seconds, by the endpoint's clock (simulated time).
    job_seconds: float | None = None
    clock: Any = time.monotonic
    # Jobs' creation and completion times (epoch seconds), which the List operations filter
    # on: the handler's clock, simulated in a rehearsal that runs on one.
    epoch: Callable[[], float] = time.time
    # Activation jobs progress by polls, or, with activation_seconds, by the endpoint's clock.
    activation_seconds: float | None = None
    activation_polls: int = 2
    max_concurrent_activations: int | None = None
    # read set id -> why it fails to activate (it goes back to ARCHIVED).
    failing_activations: dict[str, str] = field(default_factory=dict)
    # Force an activation job's final status and message (e.g. ("FAILED", "Internal error")).
    activation_outcome: tuple[str, str] | None = None
    activations: dict[str, Activation] = field(default_factory=dict)
    # sequence store id -> read set id -> ListReadSets item (status, sampleId, ...)
    read_sets: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    objects: dict[tuple[str, str], bytes] = field(default_factory=dict)
    jobs: dict[str, Job] = field(default_factory=dict)
    requests: list[tuple[float, str, int]] = field(default_factory=list)
    faults: dict[str, deque[Fault]] = field(default_factory=dict)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(5000000001))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # Called once per job, when it first ends on its own (not with job_outcome), with the job
    # and the read sets it would finish; returns read set id -> failure message for those it
    # could not write. Runs under the endpoint's lock: it must not call back into the endpoint.
    writer: Callable[[Job, list[str]], dict[str, str]] | None = None

    # Test controls

    def add_read_sets(
        self, store: str, ids: list[str], status: str = "ACTIVE", **fields: Any
    ) -> None:
        for read_set_id in ids:
            self.read_sets.setdefault(store, {})[read_set_id] = {
                "id": read_set_id,
                "arn": f"arn:aws:omics:us-east-1:111122223333:sequenceStore/{store}/readSet/"
                f"{read_set_id}",
                "sequenceStoreId": store,
                "status": status,
                "fileType": "CRAM",
                "creationTime": datetime(2026, 1, 1, tzinfo=UTC),
                "etag": {"algorithm": "CRAM_MD5up", "source1": _md5(read_set_id)},
                **fields,
            }

    def exported(self) -> list[str]:
        """Every read set of every job that was started, in order (duplicates kept)."""
        return [r for job in self.jobs.values() for r in job.read_set_ids]

    def inject(self, operation: str, code: str, times: int = 1, message: str = "") -> None:
        """Answer the next `times` calls of `operation` with the error `code`."""
        MODEL.shape_for(code)  # only the model's errors
        queue = self.faults.setdefault(operation, deque())
        for _ in range(times):
            queue.append(Fault(code, message or f"Injected {code}"))

    def calls(self, operation: str | None = None) -> list[tuple[float, str, int]]:
        return [r for r in self.requests if operation is None or r[1] == operation]

    def peak_requests_per_second(self, *, omics_only: bool = False) -> int:
        """The most requests in any one-second window."""
        return peak_per_second(
            [t for t, op, _ in self.requests if not (omics_only and op.startswith("s3:"))]
        )

    # Operations

    def handle(
        self, method: str, path: str, query: str, body: bytes, arrived: float | None = None
    ) -> tuple[int, dict[str, Any]]:
        routed = [
            (name, match.groupdict())
            for name, (route_method, pattern) in ROUTES.items()
            if route_method == method and (match := pattern.match(path))
        ]
        if not routed:
            return 404, {"__type": "UnknownOperationException", "message": f"{method} {path}"}
        ((operation, path_params),) = routed
        # A request counts when it arrives, as the service counts it: dispatching may take a
        # while (a finished job writes its files), and a late record would bunch requests up.
        arrived = time.monotonic() if arrived is None else arrived
        with self._lock:
            status, payload = self._dispatch(operation, path_params, query, body, arrived)
            self.requests.append((arrived, operation, status))
        return status, payload

    def _dispatch(
        self,
        name: str,
        path_params: dict[str, str],
        query: str,
        body: bytes,
        arrived: float | None = None,
    ) -> tuple[int, dict[str, Any]]:
        operation = MODEL.operation_model(name)
        if self.max_requests_per_second is not None:
            now = arrived if arrived is not None else time.monotonic()
            recent = [
                t
                for t, op, s in self.requests
                if now - t < 1.0 and s != 429 and not op.startswith("s3:")
            ]
            if len(recent) >= self.max_requests_per_second:
                return _error("ThrottlingException", "Rate exceeded")
        queued = self.faults.get(name)
        if queued:
            fault = queued.popleft()
            return _error(fault.code, fault.message)
        params: dict[str, Any] = dict(path_params)
        params.update({k: v[0] for k, v in parse_qs(query).items()})
        if "maxResults" in params:
            params["maxResults"] = int(params["maxResults"])
        if body:
            params.update(json.loads(body))
        problem = _invalid(operation.input_shape, params)
        if problem:
            return _error("ValidationException", problem)
        self._advance_activations()
        operations = {
            "StartReadSetExportJob": self._start,
            "GetReadSetExportJob": self._get,
            "ListReadSetExportJobs": self._list,
            "ListReadSets": self._list_read_sets,
            "GetReadSetMetadata": self._read_set_metadata,
            "StartReadSetActivationJob": self._start_activation,
            "GetReadSetActivationJob": self._get_activation,
            "ListReadSetActivationJobs": self._list_activations,
        }
        return operations[name](params)

    def _read_set_metadata(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        item = self.read_sets.get(params["sequenceStoreId"], {}).get(params["id"])
        if item is None:
            return _error("ResourceNotFoundException", f"Read set {params['id']} not found")
        return self._respond("GetReadSetMetadata", dict(item))

    def _list_read_sets(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        store = params["sequenceStoreId"]
        if store not in self.read_sets:
            return _error("ResourceNotFoundException", f"Sequence store {store} not found")
        wanted = params.get("filter", {})
        names = {"name", "sampleId", "subjectId", "referenceArn", "generatedFrom", "creationType"}
        items = [
            item
            for item in self.read_sets[store].values()
            if all(item.get(k) == v for k, v in wanted.items() if k in names | {"status"})
            and (
                "createdAfter" not in wanted
                or _iso8601(item["creationTime"]) > wanted["createdAfter"]
            )
            and (
                "createdBefore" not in wanted
                or _iso8601(item["creationTime"]) < wanted["createdBefore"]
            )
        ]
        return self._respond("ListReadSets", _page(params, "readSets", items))

    # S3, for the manifest

    def s3(self, method: str, path: str, body: bytes) -> tuple[int, bytes, str]:
        bucket, _, key = path.lstrip("/").partition("/")
        key = unquote(key)
        with self._lock:
            self.requests.append((time.monotonic(), f"s3:{method}", 200))
            if method == "PUT":
                self.objects[(bucket, key)] = body
                return 200, b"", "application/xml"
            if (bucket, key) in self.objects:
                return 200, self.objects[(bucket, key)], "application/json"
        error = (
            '<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code>'
            f"<Message>The specified key does not exist.</Message><Key>{key}</Key></Error>"
        )
        return 404, error.encode(), "application/xml"

    def s3_json(self, uri: str) -> Any:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        return json.loads(self.objects[(bucket, key)])

    def _start(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        token = params.get("clientToken")
        for job in self.jobs.values() if self.remembers_client_tokens else ():
            if token is not None and job.client_token == token:
                if not job.request_matches(params):
                    return _error("ValidationException", "clientToken reused for another job")
                return self._respond("StartReadSetExportJob", self._summary(job))
        known = self.read_sets.get(params["sequenceStoreId"], {})
        for source in params["sources"]:
            item = known.get(source["readSetId"])
            if item is not None and item["status"] != "ACTIVE":
                return _error(
                    "ValidationException",
                    f"Read set {source['readSetId']} is {item['status']}, not ACTIVE",
                )
        if self.max_concurrent_jobs is not None:
            running = sum(1 for j in self.jobs.values() if self._status(j) not in TERMINAL)
            if running >= self.max_concurrent_jobs:
                return _error("ServiceQuotaExceededException", "Too many concurrent export jobs")
        job = Job(
            id=str(next(self._ids)),
            sequence_store_id=params["sequenceStoreId"],
            destination=params["destination"],
            role_arn=params["roleArn"],
            read_set_ids=[s["readSetId"] for s in params["sources"]],
            client_token=token,
            creation_time=self._now(),
            started_at=self.clock(),
        )
        self.jobs[job.id] = job
        return self._respond("StartReadSetExportJob", self._summary(job))

    def _get(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        job = self.jobs.get(params["id"])
        if job is None or job.sequence_store_id != params["sequenceStoreId"]:
            return _error("ResourceNotFoundException", f"Export job {params['id']} not found")
        job.polls += 1
        status = self._status(job)
        detail = self._summary(job)
        if self.job_outcome is not None and status == self.job_outcome[0]:
            detail["statusMessage"] = self.job_outcome[1]
        elif status == "FAILED" and job.write_failures:
            detail["statusMessage"] = next(iter(job.write_failures.values()))
        elif status == "COMPLETED_WITH_FAILURES":
            detail["statusMessage"] = "Some read sets failed to export"
        detail["readSets"] = [self._read_set(job, r) for r in job.read_set_ids]
        return self._respond("GetReadSetExportJob", detail)

    def _list(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        wanted = params.get("filter", {})
        shown = [
            j
            for j in self.jobs.values()
            if j.sequence_store_id == params["sequenceStoreId"]
            and _created_within(j.creation_time, wanted)
        ]
        for job in shown:
            job.polls += 1  # jobs that move by polls move when they are looked at
        jobs = [
            self._summary(j)
            for j in shown
            if "status" not in wanted or self._status(j) == wanted["status"]
        ]
        return self._respond("ListReadSetExportJobs", _page(params, "exportJobs", jobs))

    # Activation

    def activated(self) -> list[str]:
        """Every read set of every activation job started, in order (duplicates kept)."""
        return [r for job in self.activations.values() for r in job.read_set_ids]

    def _start_activation(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        token = params.get("clientToken")
        ids = [s["readSetId"] for s in params["sources"]]
        for job in self.activations.values() if self.remembers_client_tokens else ():
            if token is not None and job.client_token == token:
                if job.read_set_ids != ids:
                    return _error("ValidationException", "clientToken reused for another job")
                return self._respond("StartReadSetActivationJob", self._activation_summary(job))
        store = self.read_sets.get(params["sequenceStoreId"], {})
        for read_set_id in ids:
            item = store.get(read_set_id)
            if item is None:
                return _error("ResourceNotFoundException", f"Read set {read_set_id} not found")
            if item["status"] != "ARCHIVED":
                return _error("ValidationException", f"Read set {read_set_id} is {item['status']}")
        if self.max_concurrent_activations is not None:
            running = sum(1 for j in self.activations.values() if j.ended is None)
            if running >= self.max_concurrent_activations:
                return _error(
                    "ServiceQuotaExceededException", "Too many concurrent activation jobs"
                )
        job = Activation(
            id=str(next(self._ids)),
            sequence_store_id=params["sequenceStoreId"],
            read_set_ids=ids,
            client_token=token,
            creation_time=self._now(),
            started_at=self.clock(),
        )
        for read_set_id in ids:
            store[read_set_id]["status"] = "ACTIVATING"
        self.activations[job.id] = job
        return self._respond("StartReadSetActivationJob", self._activation_summary(job))

    def _get_activation(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        job = self.activations.get(params["id"])
        if job is None or job.sequence_store_id != params["sequenceStoreId"]:
            return _error("ResourceNotFoundException", f"Activation job {params['id']} not found")
        job.polls += 1
        self._advance_activations()
        detail = self._activation_summary(job)
        if job.ended is not None and self.activation_outcome is not None:
            detail["statusMessage"] = self.activation_outcome[1]
        elif job.ended == "COMPLETED_WITH_FAILURES":
            detail["statusMessage"] = "Some read sets failed to activate"
        detail["sources"] = [self._activation_source(job, r) for r in job.read_set_ids]
        return self._respond("GetReadSetActivationJob", detail)

    def _list_activations(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        wanted = params.get("filter", {})
        shown = [
            j
            for j in self.activations.values()
            if j.sequence_store_id == params["sequenceStoreId"]
            and _created_within(j.creation_time, wanted)
        ]
        for job in shown:
            job.polls += 1  # jobs that move by polls move when they are looked at
        self._advance_activations()
        jobs = [
            self._activation_summary(j)
            for j in shown
            if "status" not in wanted or self._activation_status(j) == wanted["status"]
        ]
        return self._respond("ListReadSetActivationJobs", _page(params, "activationJobs", jobs))

    def _activation_phase(self, job: Activation) -> int:
        """0: submitted, 1: in progress, 2: ended."""
        if self.activation_seconds is not None:
            elapsed = self.clock() - job.started_at
            if elapsed < 0.05 * self.activation_seconds:
                return 0
            return 1 if elapsed < self.activation_seconds else 2
        return min(2, job.polls)

    def _activation_status(self, job: Activation) -> str:
        if job.ended is not None:
            return job.ended
        return ("SUBMITTED", "IN_PROGRESS", "IN_PROGRESS")[self._activation_phase(job)]

    def _advance_activations(self) -> None:
        """Jobs whose time has come end: their read sets become ACTIVE, or ARCHIVED again."""
        for job in self.activations.values():
            if job.ended is not None or self._activation_phase(job) < 2:
                continue
            if self.activation_seconds is None and job.polls < self.activation_polls:
                continue
            store = self.read_sets.get(job.sequence_store_id, {})
            if self.activation_outcome is not None:
                job.ended = self.activation_outcome[0]
                failed = list(job.read_set_ids)
            else:
                failed = [r for r in job.read_set_ids if r in self.failing_activations]
                job.ended = (
                    "COMPLETED"
                    if not failed
                    else "FAILED"
                    if len(failed) == len(job.read_set_ids)
                    else "COMPLETED_WITH_FAILURES"
                )
            for read_set_id in job.read_set_ids:
                if read_set_id in store:
                    store[read_set_id]["status"] = "ARCHIVED" if read_set_id in failed else "ACTIVE"
            job.completion_time = self._now()

    def _activation_source(self, job: Activation, read_set_id: str) -> dict[str, Any]:
        if job.ended is None:
            phase = self._activation_phase(job)
            return {
                "readSetId": read_set_id,
                "status": ("NOT_STARTED", "IN_PROGRESS")[min(phase, 1)],
            }
        if self.activation_outcome is not None:
            return {
                "readSetId": read_set_id,
                "status": "FAILED",
                "statusMessage": self.activation_outcome[1],
            }
        if read_set_id in self.failing_activations:
            return {
                "readSetId": read_set_id,
                "status": "FAILED",
                "statusMessage": self.failing_activations[read_set_id],
            }
        return {"readSetId": read_set_id, "status": "FINISHED"}

    def _activation_summary(self, job: Activation) -> dict[str, Any]:
        summary = {
            "id": job.id,
            "sequenceStoreId": job.sequence_store_id,
            "status": self._activation_status(job),
            "creationTime": job.creation_time,
        }
        if job.completion_time is not None:
            summary["completionTime"] = job.completion_time
        return summary

    # Job state

    def _phase(self, job: Job) -> int:
        """0: submitted, 1: in progress, 2: ended."""
        if self.job_seconds is not None:
            elapsed = self.clock() - job.started_at
            return 0 if elapsed < 0.1 * self.job_seconds else 1 if elapsed < self.job_seconds else 2
        if job.polls < self.polls_submitted:
            return 0
        return 1 if job.polls < self.polls_submitted + self.polls_in_progress else 2

    def _status(self, job: Job) -> str:
        phase = self._phase(job)
        if phase < 2:
            return ("SUBMITTED", "IN_PROGRESS")[phase]
        if job.completion_time is None:
            job.completion_time = self._now()
        if self.job_outcome is not None:
            return self.job_outcome[0]
        self._write(job)
        failed = [
            r for r in job.read_set_ids if r in self.failing_read_sets or r in job.write_failures
        ]
        if not failed:
            return "COMPLETED"
        return "FAILED" if len(failed) == len(job.read_set_ids) else "COMPLETED_WITH_FAILURES"

    def _write(self, job: Job) -> None:
        if job.written:
            return
        job.written = True
        if self.writer is not None:
            finishing = [r for r in job.read_set_ids if r not in self.failing_read_sets]
            job.write_failures = dict(self.writer(job, finishing))

    def _read_set(self, job: Job, read_set_id: str) -> dict[str, Any]:
        status = self._status(job)
        if status == "SUBMITTED":
            return {"id": read_set_id, "status": "NOT_STARTED"}
        if status not in TERMINAL:
            return {"id": read_set_id, "status": "IN_PROGRESS"}
        if read_set_id in self.failing_read_sets:
            message = self.failing_read_sets[read_set_id]
            return {"id": read_set_id, "status": "FAILED", "statusMessage": message}
        if read_set_id in job.write_failures:
            message = job.write_failures[read_set_id]
            return {"id": read_set_id, "status": "FAILED", "statusMessage": message}
        if status in {"COMPLETED", "COMPLETED_WITH_FAILURES"}:
            return {"id": read_set_id, "status": "FINISHED"}
        return {"id": read_set_id, "status": "FAILED", "statusMessage": "Job did not complete"}

    def _summary(self, job: Job) -> dict[str, Any]:
        summary = {
            "id": job.id,
            "sequenceStoreId": job.sequence_store_id,
            "destination": job.destination,
            "status": self._status(job),
            "creationTime": job.creation_time,
        }
        if job.completion_time is not None:
            summary["completionTime"] = job.completion_time
        return summary

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.epoch(), UTC).replace(microsecond=0)

    def _respond(self, name: str, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        operation: OperationModel = MODEL.operation_model(name)
        problem = _invalid(operation.output_shape, payload)
        assert problem is None, f"the endpoint's own {name} response is invalid: {problem}"
        return operation.http.get("responseCode", 200), payload

    @contextmanager
    def serve(self) -> Iterator[str]:
        """Serve on 127.0.0.1 and yield the endpoint URL."""
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            # HTTP/1.1 answers S3's "Expect: 100-continue" at once (1.0 makes the client wait).
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if not url.path.startswith("/sequencestore/"):
                    self._answer_s3(url.path, body)
                    return
                status, payload = endpoint.handle(self.command, url.path, url.query, body)
                data = json.dumps(payload, default=_iso8601).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                if status >= 300:
                    self.send_header("x-amzn-ErrorType", payload["__type"])
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _answer_s3(self, path: str, body: bytes) -> None:
                status, data, content_type = endpoint.s3(self.command, path, body)
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                if status == 200:
                    self.send_header("ETag", '"0"')
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = _answer  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            server.server_close()


def peak_per_second(times: list[float]) -> int:
    """The most of these instants in any one-second window."""
    ordered = sorted(times)
    peak, start = 0, 0
    for end, instant in enumerate(ordered):
        while instant - ordered[start] >= 1.0:
            start += 1
        peak = max(peak, end - start + 1)
    return peak


def _page(params: dict[str, Any], key: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    """One page of a List operation; the next token is the next item's index."""
    start = int(params.get("nextToken", 0))
    size = params.get("maxResults", 100)
    page: dict[str, Any] = {key: items[start : start + size]}
    if start + size < len(items):
        page["nextToken"] = str(start + size)
    return page


def _created_within(created: datetime, wanted: dict[str, Any]) -> bool:
    """The List operations' filter on creation time (both bounds exclusive)."""
    after, before = wanted.get("createdAfter"), wanted.get("createdBefore")
    return (after is None or created > _instant(after)) and (
        before is None or created < _instant(before)
    )


def _instant(value: Any) -> datetime:
    """A timestamp as botocore sends it in JSON: ISO 8601 text or epoch seconds."""
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def _error(code: str, message: str) -> tuple[int, dict[str, Any]]:
    status = MODEL.shape_for(code).metadata["error"]["httpStatusCode"]
    return status, {"__type": code, "message": message}


def _iso8601(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    raise TypeError(type(value))


def _invalid(shape: Shape, params: dict[str, Any]) -> str | None:
    """Check params against a shape: botocore's validator plus the model's patterns."""
    report = ParamValidator().validate(params, shape)
    if report.has_errors():
        return str(report.generate_report())
    return _pattern_problem(shape, params, shape.name)


def _pattern_problem(shape: Shape, value: Any, where: str) -> str | None:
    if shape.type_name == "structure" and isinstance(value, dict):
        for name, member in shape.members.items():  # type: ignore[attr-defined]
            if name in value:
                problem = _pattern_problem(member, value[name], f"{where}.{name}")
                if problem:
                    return problem
    elif shape.type_name == "list" and isinstance(value, list):
        for index, item in enumerate(value):
            problem = _pattern_problem(shape.member, item, f"{where}[{index}]")  # type: ignore[attr-defined]
            if problem:
                return problem
    elif shape.type_name == "string" and "pattern" in shape.metadata:
        pattern = _java_pattern(shape.metadata["pattern"])
        if pattern is not None and not pattern.fullmatch(value):
            return f"{where}: {value!r} does not match {shape.metadata['pattern']}"
    return None
