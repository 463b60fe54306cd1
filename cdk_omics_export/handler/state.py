"""The export state: one typed schema, kept in the service's DynamoDB table.

Every export of a stack's ``ReadSetExportService`` is a handful of items under one partition
key, the export id:

- ``export``: the export's record (:class:`ExportRecord`): what it exports where, its status,
  whether it was cancelled, and the current run (the CloudFormation request being served);
- ``run#NNNN#selection``: the read sets a run selected (:class:`SelectionRecord`), compressed,
  because a cohort of 10,000 ids of 36 digits would not fit an item otherwise;
- ``batch#NNNN#NNNN``: one batch of at most 100 read sets (:class:`BatchRecord`), the job that
  carries it and each read set's outcome.

Each CloudFormation request has an item of its own, under ``request#<RequestId>``
(:class:`RequestRecord`): where its answer goes (the pre-signed ResponseURL, a credential kept
nowhere else and removed once the answer is claimed) and whether it was answered, so that
every request is answered exactly once, whichever invocation gets there first.

A read set's state is the state of the latest batch that holds it, so a new selection exports
only what is neither exported nor in flight. Every write is conditional on the version that was
read (optimistic locking, as Powertools' idempotency records do): overlapping invocations never
lose an update, the loser reloads. The status command (``cdk-omics-export status``) reads the
same records through the manifest, which is written from them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

try:  # imported as cdk_omics_export.handler.state (tests, the construct)
    from .core.records import *  # noqa: F403  (the records are state's vocabulary too)
    from .core.records import (
        STARTING,
        ActivationRecord,
        BatchRecord,
        Cancelled,
        Conflict,
        ExportRecord,
        FactsRecord,
        RequestRecord,
        SelectionRecord,
        Snapshot,
        StateError,
        request_key,
        selection_key,
    )
except ImportError:  # Lambda: the asset's root is on sys.path
    from core.records import *  # type: ignore[import-not-found]  # noqa: F403
    from core.records import (  # type: ignore[no-redef]
        STARTING,
        ActivationRecord,
        BatchRecord,
        Cancelled,
        Conflict,
        ExportRecord,
        FactsRecord,
        RequestRecord,
        SelectionRecord,
        Snapshot,
        StateError,
        request_key,
        selection_key,
    )

EXPORT_SK = "export"
REQUEST_SK = "request"
PACER_KEY = "service#pacer"


class Coordination:
    """What invocations of the service agree on through the table: one at a time advances an
    export (its lease), and all of them share the account's HealthOmics request budget."""

    def __init__(
        self, client: DynamoDBClient, table: str, clock: Callable[[], float] = time.time
    ) -> None:
        self.client = client
        self.table = table
        # The handler's clock (clients.now), so a lease expires on a rehearsal's clock too.
        self.clock = clock

    # Leases: one invocation at a time advances an export

    def acquire_lease(
        self, export_id: str, owner: str, seconds: float, *, force: bool = False
    ) -> bool:
        now = self.clock()
        request: dict[str, Any] = {
            "TableName": self.table,
            "Key": {"pk": {"S": export_id}, "sk": {"S": EXPORT_SK}},
            "UpdateExpression": "SET leaseOwner = :owner, leaseUntil = :until",
            "ExpressionAttributeValues": {
                ":owner": {"S": owner},
                ":until": {"N": repr(now + seconds)},
            },
        }
        if not force:
            request["ConditionExpression"] = (
                "attribute_exists(pk) AND (attribute_not_exists(leaseUntil) "
                "OR leaseUntil < :now OR leaseOwner = :owner)"
            )
            request["ExpressionAttributeValues"][":now"] = {"N": repr(now)}
        try:
            self.client.update_item(**request)
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def release_lease(self, export_id: str, owner: str) -> None:
        try:
            self.client.update_item(
                TableName=self.table,
                Key={"pk": {"S": export_id}, "sk": {"S": EXPORT_SK}},
                UpdateExpression="REMOVE leaseOwner, leaseUntil",
                ConditionExpression="leaseOwner = :owner",
                ExpressionAttributeValues={":owner": {"S": owner}},
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            pass  # taken over by a newer request: it is theirs now

    # The service's request budget

    def reserve_request_slot(self, interval: float, now: float) -> float:
        """The time at which the caller may send its next request, shared by every export of
        the service: slots are handed out ``interval`` apart through conditional updates."""
        key = {"pk": {"S": PACER_KEY}, "sk": {"S": PACER_KEY}}
        while True:
            try:
                # The next free slot is in the future: take it and push it one interval on.
                answer = self.client.update_item(
                    TableName=self.table,
                    Key=key,
                    UpdateExpression="SET nextAt = nextAt + :interval",
                    ConditionExpression="nextAt >= :now",
                    ExpressionAttributeValues={
                        ":interval": {"N": repr(interval)},
                        ":now": {"N": repr(now)},
                    },
                    ReturnValues="UPDATED_OLD",
                )
                return float(answer["Attributes"]["nextAt"]["N"])
            except self.client.exceptions.ConditionalCheckFailedException:
                pass
            try:
                # The budget is idle: go now, the next slot is one interval away.
                self.client.update_item(
                    TableName=self.table,
                    Key=key,
                    UpdateExpression="SET nextAt = :next",
                    ConditionExpression="attribute_not_exists(nextAt) OR nextAt < :now",
                    ExpressionAttributeValues={
                        ":next": {"N": repr(now + interval)},
                        ":now": {"N": repr(now)},
                    },
                )
                return now
            except self.client.exceptions.ConditionalCheckFailedException:
                continue  # another invocation took the idle slot first


class StateStore(Coordination):
    """The export records in DynamoDB: load, and versioned saves that never lose an update."""

    # Reading

    def load(self, export_id: str) -> Snapshot:
        record: ExportRecord | None = None
        batches: dict[str, BatchRecord] = {}
        selections: dict[int, SelectionRecord] = {}
        activations: dict[str, ActivationRecord] = {}
        facts: dict[str, FactsRecord] = {}
        for item in self._query(export_id):
            sk = item["sk"]["S"]
            body = json.loads(item["body"]["S"])
            body["version"] = int(item["version"]["N"])
            if sk == EXPORT_SK:
                body["cancelled"] = item.get("cancelled", {}).get("BOOL", False)
                record = body
            elif sk.startswith("batch#"):
                batches[sk] = body
            elif sk.endswith("#selection"):
                selections[body["run"]] = body
            elif sk.startswith("activation#"):
                activations[sk] = body
            elif sk.startswith("facts#"):
                facts[sk] = body
        return Snapshot(record, batches, selections, activations, facts)

    def _query(self, export_id: str) -> Iterator[dict[str, Any]]:
        request: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": export_id}},
            "ConsistentRead": True,
        }
        while True:
            page = self.client.query(**request)
            yield from page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def is_current(self, export_id: str, run: int) -> bool:
        """Whether the export is neither cancelled nor served by a later run, as of now."""
        item = self.client.get_item(
            TableName=self.table,
            Key={"pk": {"S": export_id}, "sk": {"S": EXPORT_SK}},
            ConsistentRead=True,
            ProjectionExpression="cancelled, runNumber",
        ).get("Item")
        if item is None:
            return False
        cancelled = item.get("cancelled", {}).get("BOOL", False)
        return not cancelled and int(item.get("runNumber", {}).get("N", "-1")) == run

    # Writing

    def save_record(self, record: ExportRecord) -> None:
        """Write the record if nobody wrote it since it was read; bump its version."""
        self._put(
            record["exportId"],
            EXPORT_SK,
            record,
            extra={
                "cancelled": {"BOOL": record["cancelled"]},
                "runNumber": {"N": str(record["run"]["number"])},
            },
        )

    def save_batch(self, export_id: str, batch: BatchRecord) -> None:
        self._put(export_id, batch["key"], batch)

    def save_selection(self, export_id: str, selection: SelectionRecord) -> None:
        self._put(export_id, selection_key(selection["run"]), selection)

    def save_activation(self, export_id: str, activation: ActivationRecord) -> None:
        self._put(export_id, activation["key"], activation)

    def save_facts(self, export_id: str, facts: FactsRecord) -> None:
        self._put(export_id, facts["key"], facts)

    def claim_start(self, export_id: str, run: int, batch: BatchRecord | ActivationRecord) -> None:
        """Mark a batch STARTING, only while the export is not cancelled and is still this
        run's: the check and the mark are one transaction, so a Delete or a newer request
        that lands first stops the start."""
        claimed: Any = {**batch, "status": STARTING}
        try:
            self.client.transact_write_items(
                TransactItems=[
                    {
                        "ConditionCheck": {
                            "TableName": self.table,
                            "Key": {"pk": {"S": export_id}, "sk": {"S": EXPORT_SK}},
                            "ConditionExpression": "cancelled = :false AND runNumber = :run",
                            "ExpressionAttributeValues": {
                                ":false": {"BOOL": False},
                                ":run": {"N": str(run)},
                            },
                        }
                    },
                    {"Update": self._put_request(export_id, batch["key"], claimed)},  # type: ignore[typeddict-item]
                ]
            )
        except self.client.exceptions.TransactionCanceledException as error:
            reasons = [r.get("Code") for r in error.response.get("CancellationReasons", [])]
            if reasons and reasons[0] == "ConditionalCheckFailed":
                raise Cancelled(f"export {export_id} was cancelled or superseded") from error
            raise Conflict(f"batch {batch['key']} of export {export_id} changed") from error
        batch.update(claimed)
        batch["version"] += 1

    def cancel(self, export_id: str, *, attempts: int = 5) -> bool:
        """Mark the export cancelled; False when there is no such export."""
        for _ in range(attempts):
            record = self.load_record(export_id)
            if record is None:
                return False
            if record["cancelled"]:
                return True
            record["cancelled"] = True
            record["updatedAt"] = self.clock()
            try:
                self.save_record(record)
                return True
            except Conflict:
                continue
        raise StateError(f"export {export_id}: could not mark it cancelled after {attempts} tries")

    # CloudFormation's requests

    def register_request(self, request: RequestRecord) -> RequestRecord:
        """Record a request the first time it arrives; a redelivery gets the stored one."""
        try:
            self._put(request_key(request["requestId"]), REQUEST_SK, request)
            return request
        except Conflict:
            stored = self.load_request(request["requestId"])
            if stored is None:
                raise StateError(f"request {request['requestId']}: its record vanished") from None
            return stored

    def load_request(self, request_id: str) -> RequestRecord | None:
        item = self.client.get_item(
            TableName=self.table,
            Key={"pk": {"S": request_key(request_id)}, "sk": {"S": REQUEST_SK}},
            ConsistentRead=True,
        ).get("Item")
        if item is None:
            return None
        record: RequestRecord = json.loads(item["body"]["S"])
        record["version"] = int(item["version"]["N"])
        return record

    def claim_answer(self, request: RequestRecord, status: str, at: float) -> str | None:
        """Claim the right to answer: the ResponseURL if this caller answers, None if the
        request was answered already. The URL leaves the table with the claim."""
        for _ in range(5):
            if "answer" in request:
                return None
            url = request["responseUrl"]
            claimed: RequestRecord = {
                **request,
                "responseUrl": "",
                "answer": status,
                "answeredAt": at,
            }
            try:
                self._put(request_key(request["requestId"]), REQUEST_SK, claimed)
                request.update(claimed)
                return url
            except Conflict:
                fresh = self.load_request(request["requestId"])
                if fresh is None:
                    return None
                for key in list(request):
                    del request[key]  # type: ignore[misc]
                request.update(fresh)
        raise StateError(f"request {request['requestId']}: its record kept changing")

    def load_record(self, export_id: str) -> ExportRecord | None:
        item = self.client.get_item(
            TableName=self.table,
            Key={"pk": {"S": export_id}, "sk": {"S": EXPORT_SK}},
            ConsistentRead=True,
        ).get("Item")
        if item is None:
            return None
        record: ExportRecord = json.loads(item["body"]["S"])
        record["version"] = int(item["version"]["N"])
        record["cancelled"] = item.get("cancelled", {}).get("BOOL", False)
        return record

    # Items

    def _put(
        self, export_id: str, sk: str, body: Any, *, extra: dict[str, Any] | None = None
    ) -> None:
        request = self._put_request(export_id, sk, body, extra=extra)
        try:
            self.client.update_item(**request)
        except self.client.exceptions.ConditionalCheckFailedException as error:
            raise Conflict(f"{sk} of export {export_id} changed since it was read") from error
        body["version"] += 1

    def _put_request(
        self, export_id: str, sk: str, body: Any, *, extra: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """An UpdateItem (not a PutItem: the record's lease lives beside it) conditional on
        the version that was read; version 0 means the item must not exist yet."""
        version = int(body["version"])
        stored = {k: v for k, v in body.items() if k != "version"}
        values: dict[str, Any] = {
            ":next": {"N": str(version + 1)},
            ":body": {"S": json.dumps(stored, separators=(",", ":"))},
        }
        names = {"#version": "version", "#body": "body"}
        assignments = ["#version = :next", "#body = :body"]
        for n, (name, value) in enumerate((extra or {}).items()):
            names[f"#x{n}"] = name
            values[f":x{n}"] = value
            assignments.append(f"#x{n} = :x{n}")
        if version == 0:
            condition = "attribute_not_exists(pk)"
        else:
            condition = "#version = :version"
            values[":version"] = {"N": str(version)}
        return {
            "TableName": self.table,
            "Key": {"pk": {"S": export_id}, "sk": {"S": sk}},
            "UpdateExpression": "SET " + ", ".join(assignments),
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
