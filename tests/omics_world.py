"""HealthOmics for the stateful properties: read sets, export and activation jobs whose
progress the properties' rules decide (test code, never shipped).

It answers the handler's own omics client (``clients.omics()``, with its pacer hook and
botocore's standard retries) at botocore's ``before-send`` event, with the HTTP response the
service would send: requests are routed and checked against botocore's omics model as
tests/omics_endpoint.py does (its routes, its validation of every request and response, its
paging and creation-time filters are reused), errors carry the model's HTTP status, so
botocore retries a ThrottlingException as it would and raises the modeled exception class.

Unlike the rehearsals' endpoint, nothing here moves on its own: a job is SUBMITTED until a
rule says it is IN_PROGRESS or ended, with an outcome per read set; an activation likewise.
Client tokens are remembered forever (a start with a known token returns its job, or is
refused if it asks for other work); an export of a read set that is not ACTIVE, or an
activation of one that is not ARCHIVED, is refused with a ValidationException (the real
service's behaviour there is not published; the handler must never ask).
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from botocore.awsrequest import AWSPreparedRequest, AWSResponse

from . import omics_endpoint as endpoint

TERMINAL = frozenset({"COMPLETED", "COMPLETED_WITH_FAILURES", "FAILED", "CANCELLED"})


@dataclass
class ReadSet:
    id: str
    sample_id: str
    status: str  # ACTIVE, ARCHIVED or ACTIVATING
    created: datetime
    # The world's change counter when its status last changed (or it was added), and the
    # export whose job changed it ("" for anyone else).
    changed: int = 0
    changed_by: str = ""

    def item(self, store: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "arn": f"arn:aws:omics:us-east-1:111122223333:sequenceStore/{store}/readSet/{self.id}",
            "sequenceStoreId": store,
            "sampleId": self.sample_id,
            "subjectId": "SUBJECT-" + self.sample_id,
            "status": self.status,
            "fileType": "CRAM",
            "creationTime": self.created,
        }


@dataclass
class Job:
    """An export job, or (``activation``) an activation job, as HealthOmics holds it."""

    id: str
    store: str
    read_set_ids: list[str]
    client_token: str | None
    created: datetime
    activation: bool = False
    destination: str = ""
    role_arn: str = ""
    status: str = "SUBMITTED"
    # read set id -> (FINISHED or FAILED, message), once the job ended
    outcomes: dict[str, tuple[str, str]] = field(default_factory=dict)
    completed: datetime | None = None
    status_message: str = ""
    # Who asked, as the world saw it: the invocation, the export it served and that export's
    # run then. Empty for someone else's jobs.
    invocation: int = 0
    export_id: str = ""
    run: int = -1
    accepted_at: float = 0.0

    @property
    def ended(self) -> bool:
        return self.status in TERMINAL

    def finished(self, read_set_id: str) -> bool:
        return self.ended and self.outcomes.get(read_set_id, ("", ""))[0] == "FINISHED"

    def read_set_status(self, read_set_id: str) -> dict[str, Any]:
        if not self.ended:
            status = "NOT_STARTED" if self.status == "SUBMITTED" else "IN_PROGRESS"
            return {"status": status}
        status, message = self.outcomes.get(read_set_id, ("FAILED", "Job did not complete"))
        return {"status": status, **({"statusMessage": message} if message else {})}

    def summary(self) -> dict[str, Any]:
        summary: dict[str, Any] = {
            "id": self.id,
            "sequenceStoreId": self.store,
            "status": self.status,
            "creationTime": self.created,
        }
        if not self.activation:
            summary["destination"] = self.destination
        if self.completed is not None:
            summary["completionTime"] = self.completed
        return summary


class _Raw:
    """The body of a response, as botocore reads it from urllib3."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data


class FakeOmics:
    """One sequence store's read sets and jobs; ``serve`` answers the handler's requests."""

    def __init__(self, store: str, clock: Callable[[], float]) -> None:
        self.store = store
        self.read_sets: dict[str, ReadSet] = {}
        self.jobs: dict[str, Job] = {}  # export jobs, by id
        self.activations: dict[str, Job] = {}
        # operation -> error codes answered to its next requests, in order
        self.faults: dict[str, deque[str]] = {}
        self.max_concurrent_jobs: int | None = None
        self._clock = clock
        self._ids = iter(range(5_000_000_001, 6_000_000_000))
        self._activation_ids = iter(range(7_000_000_001, 8_000_000_000))
        # Told of every job the service accepts and of every request it refuses for what it
        # asked (not for an injected fault); the world attributes and checks them.
        self.on_accepted: Callable[[Job], None] = lambda _: None
        self.on_refused: Callable[[str, list[str], str], None] = lambda *_: None
        self.on_request: Callable[[str], None] = lambda _: None
        # Told of every change of a read set's status by a job: its id and the job.
        self.on_changed: Callable[[str, Job], None] = lambda *_: None
        # What the handler sent that the model refuses, or what the fake got wrong: a fault to
        # report, never to raise into the handler (which may catch it).
        self.problems: list[str] = []

    # Rules of the world

    def add_read_set(self, read_set_id: str, sample_id: str, status: str, changed: int) -> None:
        created = datetime(2026, 1, 1, tzinfo=UTC)
        self.read_sets[read_set_id] = ReadSet(read_set_id, sample_id, status, created, changed)

    def inject(self, operation: str, code: str, times: int) -> None:
        endpoint.MODEL.shape_for(code)  # only the model's errors
        self.faults.setdefault(operation, deque()).extend([code] * times)

    def running(self, *, activation: bool = False) -> list[Job]:
        jobs = self.activations if activation else self.jobs
        return [job for job in jobs.values() if not job.ended]

    def progress(self, job: Job) -> None:
        if job.status == "SUBMITTED":
            job.status = "IN_PROGRESS"

    def end(self, job: Job, failing: set[str], message: str = "") -> None:
        """End the job: the read sets in ``failing`` fail, the others finish."""
        for read_set_id in job.read_set_ids:
            if read_set_id in failing:
                job.outcomes[read_set_id] = ("FAILED", message or "Injected failure")
            else:
                job.outcomes[read_set_id] = ("FINISHED", "")
        failed = [r for r in job.read_set_ids if r in failing]
        if not failed:
            job.status = "COMPLETED"
        elif len(failed) == len(job.read_set_ids):
            job.status = "FAILED"
            job.status_message = message or "Every read set failed"
        else:
            job.status = "COMPLETED_WITH_FAILURES"
            job.status_message = "Some read sets failed"
        job.completed = self._now()
        if job.activation:
            for read_set_id in job.read_set_ids:
                known = self.read_sets.get(read_set_id)
                if known is not None and known.status == "ACTIVATING":
                    known.status = "ARCHIVED" if read_set_id in failing else "ACTIVE"
                    self.on_changed(read_set_id, job)

    def activate_for_someone_else(self, read_set_id: str) -> Job:
        """Someone else's activation of an archived read set (no token, no export)."""
        return self._new_activation([read_set_id], None, by_handler=False)

    # The service

    def serve(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        """botocore's ``before-send`` handler: the HTTP response to one attempt."""
        url = urlsplit(request.url)
        routed = [
            (name, match.groupdict())
            for name, (method, pattern) in endpoint.ROUTES.items()
            if method == request.method and (match := pattern.match(url.path))
        ]
        if len(routed) != 1:
            self.problems.append(f"no HealthOmics operation at {request.method} {url.path}")
            return self._response(request, *endpoint._error("InternalServerException", "route"))
        ((operation, path_params),) = routed
        self.on_request(operation)
        body = request.body if isinstance(request.body, bytes | str) else b""
        status, payload = self._dispatch(operation, path_params, url.query, body)
        return self._response(request, status, payload)

    @staticmethod
    def _response(request: AWSPreparedRequest, status: int, payload: dict[str, Any]) -> AWSResponse:
        headers = {"Content-Type": "application/json"}
        if status >= 300:
            headers["x-amzn-ErrorType"] = payload["__type"]
        data = json.dumps(payload, default=endpoint._iso8601).encode()
        return AWSResponse(request.url, status, headers, _Raw(data))  # type: ignore[arg-type]

    def _dispatch(
        self, operation: str, path_params: dict[str, str], query: str, body: bytes | str
    ) -> tuple[int, dict[str, Any]]:
        queued = self.faults.get(operation)
        if queued:
            code = queued.popleft()
            return endpoint._error(code, f"Injected {code}")
        params: dict[str, Any] = dict(path_params)
        params.update({k: v[0] for k, v in parse_qs(query).items()})
        if "maxResults" in params:
            params["maxResults"] = int(params["maxResults"])
        if body:
            params.update(json.loads(body))
        model = endpoint.MODEL.operation_model(operation)
        problem = endpoint._invalid(model.input_shape, params)  # type: ignore[arg-type]
        if problem is not None:
            self.problems.append(f"the handler sent an invalid {operation}: {problem}")
            return endpoint._error("ValidationException", problem)
        if params["sequenceStoreId"] != self.store:
            return endpoint._error("ResourceNotFoundException", "Sequence store not found")
        handlers: dict[str, Callable[[dict[str, Any]], tuple[int, dict[str, Any]]]] = {
            "ListReadSets": self._list_read_sets,
            "GetReadSetMetadata": self._read_set_metadata,
            "StartReadSetExportJob": self._start_export,
            "GetReadSetExportJob": self._get_export,
            "ListReadSetExportJobs": self._list_exports,
            "StartReadSetActivationJob": self._start_activation,
            "GetReadSetActivationJob": self._get_activation,
            "ListReadSetActivationJobs": self._list_activations,
        }
        status, payload = handlers[operation](params)
        if status < 300:
            problem = endpoint._invalid(model.output_shape, payload)  # type: ignore[arg-type]
            if problem is not None:
                self.problems.append(f"the fake's own {operation} response is invalid: {problem}")
        return status, payload

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC).replace(microsecond=0)

    def _refuse(self, operation: str, ids: list[str], code: str, why: str) -> tuple[int, Any]:
        self.on_refused(operation, ids, why)
        return endpoint._error(code, why)

    def _list_read_sets(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        wanted = params.get("filter", {})
        items = [
            read_set.item(self.store)
            for read_set in sorted(self.read_sets.values(), key=lambda r: r.id)
            if ("sampleId" not in wanted or read_set.sample_id == wanted["sampleId"])
            and ("status" not in wanted or read_set.status == wanted["status"])
        ]
        unsupported = set(wanted) - {"sampleId", "status"}
        if unsupported:
            self.problems.append(f"the fake filters on sampleId and status only: {unsupported}")
        return 200, endpoint._page(params, "readSets", items)

    def _read_set_metadata(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        read_set = self.read_sets.get(params["id"])
        if read_set is None:
            return endpoint._error(
                "ResourceNotFoundException", f"Read set {params['id']} not found"
            )
        return 200, read_set.item(self.store)

    def _start_export(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        ids = [s["readSetId"] for s in params["sources"]]
        token = params.get("clientToken")
        for job in self.jobs.values():
            if token is not None and job.client_token == token:
                same = (job.destination, job.role_arn, job.read_set_ids) == (
                    params["destination"],
                    params["roleArn"],
                    ids,
                )
                if not same:
                    return self._refuse(
                        "StartReadSetExportJob", ids, "ValidationException", "clientToken reused"
                    )
                return 200, job.summary()
        for read_set_id in ids:
            known = self.read_sets.get(read_set_id)
            if known is None:
                return self._refuse(
                    "StartReadSetExportJob", [read_set_id], "ResourceNotFoundException", "missing"
                )
            if known.status != "ACTIVE":
                return self._refuse(
                    "StartReadSetExportJob",
                    [read_set_id],
                    "ValidationException",
                    f"read set is {known.status}, not ACTIVE",
                )
        if self.max_concurrent_jobs is not None and len(self.running()) >= self.max_concurrent_jobs:
            return endpoint._error(
                "ServiceQuotaExceededException", "Too many concurrent export jobs"
            )
        job = Job(
            id=str(next(self._ids)),
            store=self.store,
            read_set_ids=ids,
            client_token=token,
            created=self._now(),
            destination=params["destination"],
            role_arn=params["roleArn"],
        )
        self.jobs[job.id] = job
        self.on_accepted(job)
        return 200, job.summary()

    def _get_export(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        job = self.jobs.get(params["id"])
        if job is None:
            return endpoint._error("ResourceNotFoundException", f"Export job {params['id']}")
        detail = job.summary()
        if job.status_message:
            detail["statusMessage"] = job.status_message
        detail["readSets"] = [{"id": r, **job.read_set_status(r)} for r in job.read_set_ids]
        return 200, detail

    def _listed(self, jobs: list[Job], params: dict[str, Any], key: str) -> dict[str, Any]:
        wanted = params.get("filter", {})
        shown = [
            job.summary()
            for job in jobs
            if endpoint._created_within(job.created, wanted)
            and ("status" not in wanted or job.status == wanted["status"])
        ]
        return endpoint._page(params, key, shown)

    def _list_exports(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return 200, self._listed(list(self.jobs.values()), params, "exportJobs")

    def _start_activation(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        ids = [s["readSetId"] for s in params["sources"]]
        token = params.get("clientToken")
        for job in self.activations.values():
            if token is not None and job.client_token == token:
                if job.read_set_ids != ids:
                    return self._refuse(
                        "StartReadSetActivationJob", ids, "ValidationException", "token reused"
                    )
                return 200, job.summary()
        for read_set_id in ids:
            known = self.read_sets.get(read_set_id)
            if known is None:
                return self._refuse(
                    "StartReadSetActivationJob",
                    [read_set_id],
                    "ResourceNotFoundException",
                    "missing",
                )
            if known.status != "ARCHIVED":
                return self._refuse(
                    "StartReadSetActivationJob",
                    [read_set_id],
                    "ValidationException",
                    f"read set is {known.status}, not ARCHIVED",
                )
        job = self._new_activation(ids, token, by_handler=True)
        return 200, job.summary()

    def _new_activation(self, ids: list[str], token: str | None, *, by_handler: bool) -> Job:
        job = Job(
            id=str(next(self._activation_ids)),
            store=self.store,
            read_set_ids=ids,
            client_token=token,
            created=self._now(),
            activation=True,
        )
        self.activations[job.id] = job
        if by_handler:
            self.on_accepted(job)  # attributed before its read sets change
        for read_set_id in ids:
            self.read_sets[read_set_id].status = "ACTIVATING"
            self.on_changed(read_set_id, job)
        return job

    def _get_activation(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        job = self.activations.get(params["id"])
        if job is None:
            return endpoint._error("ResourceNotFoundException", f"Activation job {params['id']}")
        detail = job.summary()
        if job.status_message:
            detail["statusMessage"] = job.status_message
        detail["sources"] = [{"readSetId": r, **job.read_set_status(r)} for r in job.read_set_ids]
        return 200, detail

    def _list_activations(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return 200, self._listed(list(self.activations.values()), params, "activationJobs")
