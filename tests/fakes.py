"""In-memory AWS services for the stateful properties (test code, never shipped).

moto's DynamoDB costs about 3.3 ms of CPU a call and 0.12 s a fresh account, and a schedule of
the properties makes up to a thousand state-table calls: too slow for enough examples in `make
test`. These fakes answer in process, behind ``DirectClient``: botocore's parameter validation
and its modeled exception classes, without serializing a request.

- `FakeDynamoDB` does what `StateStore` asks of the state table, as DynamoDB does it:
  conditional `UpdateItem` (SET with `+`, REMOVE, `ReturnValues`), `GetItem` with a projection,
  paged `Query` on the partition key, `TransactWriteItems` with its cancellation reasons, the
  expression grammar those use (AND, OR, NOT, parentheses, comparisons,
  `attribute_exists`/`attribute_not_exists`), numbers normalized as DynamoDB stores them, and
  DynamoDB's refusal of unused or undefined expression names and values and of reserved words
  as names. tests/test_world.py
  runs the same operations against moto and this fake and compares every result.
- `FakeS3` holds objects (the manifests), `FakeEvents` the events put on the bus,
  `FakeStepFunctions` the runner's executions with StartExecution's documented idempotency (the
  same name and input while RUNNING returns it; closed, or another input, is
  `ExecutionAlreadyExists`).

Every call first goes to an `observer` (the world counts calls, crashes an invocation or runs
another one inside it there).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ParamValidationError
from botocore.response import StreamingBody
from botocore.validate import ParamValidator

ACCOUNT = "111122223333"
REGION = "us-east-1"

Item = dict[str, dict[str, Any]]
Observer = Callable[[str, str], None]


class ServiceError(Exception):
    """What the service answers instead of a result: botocore raises it as its ClientError."""

    def __init__(self, code: str, message: str, status: int = 400, **fields: Any) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.fields = fields


class Fake:
    """One service in memory: ``handle`` answers an operation's parameters."""

    def handle(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError


class DirectClient:
    """A client of ``service`` that calls ``fake()`` directly: botocore's parameter
    validation against the operation's input shape, without its serialization, endpoint
    resolution and signing (most of a call's cost; the state store alone makes dozens of calls
    a step). Errors are raised as botocore raises them, with its modeled exception classes
    (``client.exceptions``). That the fake DynamoDB answers as DynamoDB does is
    tests/test_world.py's differential test against moto."""

    def __init__(
        self,
        service: str,
        fake: Callable[[], Fake],
        observer: Observer = lambda *_: None,
    ) -> None:
        model = _model_client(service)
        self.exceptions = model.exceptions
        self.meta = model.meta
        self._operations = model.meta.method_to_api_mapping
        self._validator = ParamValidator()
        self._service = service
        self._fake = fake
        self._observer = observer

    def __getattr__(self, method: str) -> Callable[..., dict[str, Any]]:
        operation = self._operations.get(method)
        if operation is None:
            raise AttributeError(method)

        shape = self.meta.service_model.operation_model(operation).input_shape

        def call(**params: Any) -> dict[str, Any]:
            checked = self._validator.validate(params, shape)
            if checked.has_errors():
                raise ParamValidationError(report=checked.generate_report())
            self._observer(self._service, operation)
            try:
                return self._fake().handle(operation, params)
            except ServiceError as error:
                response: dict[str, Any] = {
                    "Error": {"Code": error.code, "Message": error.message},
                    "ResponseMetadata": {"HTTPStatusCode": error.status},
                    **error.fields,
                }
                raise self.exceptions.from_code(error.code)(response, operation) from None

        return call


@functools.cache
def _model_client(service: str) -> Any:
    return boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    ).client(service)  # type: ignore[call-overload]


# DynamoDB


# The expressions StateStore writes: names, placeholders, comparisons, + and -, parentheses.
_TOKEN = re.compile(r"\s*(?:([#:]?[A-Za-z_][A-Za-z0-9_]*)|(<=|>=|<>|[=<>+\-(),]))")
_COMPARISONS = ("=", "<", "<=", ">", ">=")
_FUNCTIONS = ("attribute_exists", "attribute_not_exists")
_KEYWORDS = ("AND", "OR", "NOT", "SET", "REMOVE")
Node = tuple[Any, ...]


def _invalid(message: str) -> ServiceError:
    return ServiceError("ValidationException", message)


@functools.cache
def _reserved_words() -> frozenset[str]:
    """DynamoDB's 573 reserved words, as moto ships them (read without importing moto, whose
    import takes seconds)."""
    spec = importlib.util.find_spec("moto")
    assert spec is not None and spec.submodule_search_locations
    words = Path(spec.submodule_search_locations[0], "dynamodb", "parsing", "reserved_keywords.txt")
    return frozenset(words.read_text().split())


@functools.cache
def _tokens(text: str) -> tuple[str, ...]:
    found: list[str] = []
    position, text = 0, text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise _invalid(f"Invalid expression: syntax error near {text[position:][:20]!r}")
        found.append(match.group(1) or match.group(2))
        position = match.end()
    return tuple(found)


class _Parser:
    """Recursive descent over DynamoDB's condition and update expression grammar (the part
    the state store uses)."""

    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.at = 0

    def peek(self) -> str | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token.upper() != expected):
            raise _invalid(f"Invalid expression: expected {expected or 'more'}, got {token!r}")
        self.at += 1
        return token

    def done(self) -> None:
        if self.peek() is not None:
            raise _invalid(f"Invalid expression: unexpected {self.peek()!r}")

    def condition(self) -> Node:
        node = self.conjunction()
        while (self.peek() or "").upper() == "OR":
            self.take()
            node = ("or", node, self.conjunction())
        return node

    def conjunction(self) -> Node:
        node = self.negation()
        while (self.peek() or "").upper() == "AND":
            self.take()
            node = ("and", node, self.negation())
        return node

    def negation(self) -> Node:
        if (self.peek() or "").upper() == "NOT":
            self.take()
            return ("not", self.negation())
        return self.primary()

    def primary(self) -> Node:
        token = self.peek()
        if token == "(":
            self.take()
            node = self.condition()
            self.take(")")
            return node
        if token in _FUNCTIONS:
            self.take()
            self.take("(")
            path = self.path()
            self.take(")")
            return (token, path)
        left = self.operand()
        comparison = self.take()
        if comparison not in _COMPARISONS:
            raise _invalid(f"Invalid expression: {comparison!r} is not a comparison")
        return ("compare", comparison, left, self.operand())

    def path(self) -> Node:
        token = self.take()
        if token.startswith(":") or token.upper() in _KEYWORDS or not token[0].isalpha():
            if not token.startswith("#"):
                raise _invalid(f"Invalid expression: {token!r} is not an attribute name")
        if not token.startswith("#") and token.upper() in _reserved_words():
            raise _invalid(
                f"Invalid expression: Attribute name is a reserved keyword; reserved keyword: "
                f"{token}"
            )
        return ("path", token)

    def operand(self) -> Node:
        token = self.peek() or ""
        if token.startswith(":"):
            self.take()
            return ("value", token)
        return self.path()

    def update(self) -> list[Node]:
        actions: list[Node] = []
        while self.peek() is not None:
            clause = self.take().upper()
            if clause not in ("SET", "REMOVE"):
                raise _invalid(f"Invalid UpdateExpression: unknown clause {clause!r}")
            while True:
                target = self.path()
                if clause == "SET":
                    self.take("=")
                    value = self.operand()
                    if self.peek() in ("+", "-"):
                        value = (self.take(), value, self.operand())
                    actions.append(("set", target, value))
                else:
                    actions.append(("remove", target))
                if self.peek() != ",":
                    break
                self.take()
        if not actions:
            raise _invalid("Invalid UpdateExpression: the expression is empty")
        return actions


@functools.cache
def _condition(text: str) -> Node:
    parser = _Parser(text)
    node = parser.condition()
    parser.done()
    return node


@functools.cache
def _projection(text: str) -> tuple[Node, ...]:
    parser = _Parser(text)
    paths = [parser.path()]
    while parser.peek() == ",":
        parser.take()
        paths.append(parser.path())
    parser.done()
    return tuple(paths)


@functools.cache
def _update(text: str) -> tuple[Node, ...]:
    return tuple(_Parser(text).update())


def _canonical(number: str) -> str:
    """A number as DynamoDB stores and returns it: no exponent, no trailing zeros."""
    value = Decimal(number).normalize()
    return "0" if value == 0 else format(value, "f")


def _size(item: Item) -> int:
    return sum(len(name) + len(json.dumps(value)) for name, value in item.items())


@dataclass
class _Expressions:
    """The names and values one request gives, and those its expressions use."""

    names: dict[str, str]
    values: dict[str, dict[str, Any]]
    used_names: set[str] = field(default_factory=set)
    used_values: set[str] = field(default_factory=set)

    def name(self, token: str) -> str:
        if token.startswith("#"):
            if token not in self.names:
                raise _invalid(
                    "An expression attribute name used in the document path is not defined; "
                    f"attribute name: {token}"
                )
            self.used_names.add(token)
            return self.names[token]
        return token

    def value(self, token: str) -> dict[str, Any]:
        if token not in self.values:
            raise _invalid(
                "An expression attribute value used in expression is not defined; "
                f"attribute value: {token}"
            )
        self.used_values.add(token)
        return self.values[token]

    def mark(self, text: str | None) -> None:
        for token in _tokens(text or ""):
            if token.startswith("#"):
                self.name(token)
            elif token.startswith(":"):
                self.value(token)

    def check_all_used(self) -> None:
        unused_names = sorted(set(self.names) - self.used_names)
        if unused_names:
            raise _invalid(
                "Value provided in ExpressionAttributeNames unused in expressions: keys: "
                f"{{{', '.join(unused_names)}}}"
            )
        unused_values = sorted(set(self.values) - self.used_values)
        if unused_values:
            raise _invalid(
                "Value provided in ExpressionAttributeValues unused in expressions: keys: "
                f"{{{', '.join(unused_values)}}}"
            )


def _operand(node: Node, item: Item, given: _Expressions) -> dict[str, Any] | None:
    if node[0] == "value":
        return given.value(node[1])
    return item.get(given.name(node[1]))


def _compare(comparison: str, left: dict[str, Any] | None, right: dict[str, Any] | None) -> bool:
    if left is None or right is None:
        return False
    ((left_type, left_value),) = left.items()
    ((right_type, right_value),) = right.items()
    if left_type != right_type:
        return False
    if left_type == "N":
        a: Any = Decimal(left_value)
        b: Any = Decimal(right_value)
    elif left_type == "S":
        a, b = left_value, right_value
    elif comparison == "=":
        return bool(left_value == right_value)
    else:
        raise _invalid(
            f"Invalid ConditionExpression: Incorrect operand type for operator or function; "
            f"operator or function: {comparison}, operand type: {left_type}"
        )
    return bool({"=": a == b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[comparison])


def _holds(node: Node, item: Item, given: _Expressions) -> bool:
    kind = node[0]
    if kind == "or":
        # Every operand is evaluated, so every name and value counts as used.
        left, right = _holds(node[1], item, given), _holds(node[2], item, given)
        return left or right
    if kind == "and":
        left, right = _holds(node[1], item, given), _holds(node[2], item, given)
        return left and right
    if kind == "not":
        return not _holds(node[1], item, given)
    if kind == "attribute_exists":
        return given.name(node[1][1]) in item
    if kind == "attribute_not_exists":
        return given.name(node[1][1]) not in item
    _, comparison, left, right = node
    return _compare(comparison, _operand(left, item, given), _operand(right, item, given))


def _updated(item: Item, actions: tuple[Node, ...], given: _Expressions, key: Item) -> Item:
    """The item after an update; every value is read from the item as it was before."""
    new = dict(item)
    for action in actions:
        target = given.name(action[1][1])
        if target in key:
            raise _invalid(
                "One or more parameter values were invalid: Cannot update attribute "
                f"{target}. This attribute is part of the key"
            )
        if action[0] == "remove":
            new.pop(target, None)
            continue
        value = action[2]
        if value[0] in ("+", "-"):
            left, right = _operand(value[1], item, given), _operand(value[2], item, given)
            if left is None or right is None:
                raise _invalid(
                    "The provided expression refers to an attribute that does not exist in the item"
                )
            if "N" not in left or "N" not in right:
                raise _invalid("An operand in the update expression has an incorrect data type")
            total = Decimal(left["N"]) + Decimal(right["N"]) * (1 if value[0] == "+" else -1)
            new[target] = {"N": _canonical(str(total))}
        else:
            found = _operand(value, item, given)
            if found is None:
                raise _invalid(
                    "The provided expression refers to an attribute that does not exist in the item"
                )
            new[target] = _stored(found)
    return new


def _stored(value: dict[str, Any]) -> dict[str, Any]:
    if "N" in value:
        return {"N": _canonical(value["N"])}
    return json.loads(json.dumps(value))  # type: ignore[no-any-return]


class FakeDynamoDB(Fake):
    """Tables keyed by a string partition key ``pk`` and sort key ``sk``, as the service's
    state table is declared."""

    # DynamoDB pages a Query at 1 MB; pages this small make every load read several.
    QUERY_PAGE_ITEMS = 16
    ITEM_LIMIT_BYTES = 400 * 1024

    def __init__(self) -> None:
        self.tables: dict[str, dict[str, dict[str, Item]]] = {}

    def create_table(self, name: str) -> None:
        self.tables[name] = {}

    def items(self, table: str) -> list[Item]:
        """Every item, in key order (for the harness's own reading)."""
        partitions = self.tables[table]
        return [partitions[pk][sk] for pk in sorted(partitions) for sk in sorted(partitions[pk])]

    def handle(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        handler = {
            "GetItem": self._get_item,
            "UpdateItem": self._update_item,
            "Query": self._query,
            "TransactWriteItems": self._transact_write_items,
        }.get(operation)
        if handler is None:
            raise NotImplementedError(f"DynamoDB {operation} is not faked")
        return handler(params)

    def _table(self, name: str) -> dict[str, dict[str, Item]]:
        if name not in self.tables:
            raise ServiceError(
                "ResourceNotFoundException", "Requested resource not found", status=400
            )
        return self.tables[name]

    @staticmethod
    def _key(key: Item) -> tuple[str, str]:
        if set(key) != {"pk", "sk"} or "S" not in key["pk"] or "S" not in key["sk"]:
            raise _invalid("The provided key element does not match the schema")
        return key["pk"]["S"], key["sk"]["S"]

    def _get_item(self, params: dict[str, Any]) -> dict[str, Any]:
        table = self._table(params["TableName"])
        pk, sk = self._key(params["Key"])
        given = _Expressions(params.get("ExpressionAttributeNames", {}), {})
        wanted = None
        if "ProjectionExpression" in params:
            wanted = [given.name(path[1]) for path in _projection(params["ProjectionExpression"])]
        given.check_all_used()
        item = table.get(pk, {}).get(sk)
        if item is None:
            return {}
        if wanted is not None:
            item = {name: value for name, value in item.items() if name in wanted}
        return {"Item": _copy(item)}

    def _update_item(self, params: dict[str, Any]) -> dict[str, Any]:
        table = self._table(params["TableName"])
        key = params["Key"]
        pk, sk = self._key(key)
        given = _Expressions(
            params.get("ExpressionAttributeNames", {}), params.get("ExpressionAttributeValues", {})
        )
        old = table.get(pk, {}).get(sk)
        new = self._apply_update(params, given, old, key)
        table.setdefault(pk, {})[sk] = new
        return self._returned(params.get("ReturnValues", "NONE"), old or {}, new, params, given)

    def _apply_update(
        self, params: dict[str, Any], given: _Expressions, old: Item | None, key: Item
    ) -> Item:
        current = old if old is not None else {}
        actions = _update(params["UpdateExpression"])
        condition = params.get("ConditionExpression")
        # The expressions are checked before the condition is: an unused or undefined name or
        # value is refused whatever the item holds.
        given.mark(params["UpdateExpression"])
        given.mark(condition)
        given.check_all_used()
        if condition is not None and not _holds(_condition(condition), current, given):
            raise ServiceError("ConditionalCheckFailedException", "The conditional request failed")
        base = dict(current) if old is not None else {"pk": key["pk"], "sk": key["sk"]}
        new = _updated(base, actions, given, {"pk": key["pk"], "sk": key["sk"]})
        if _size(new) > self.ITEM_LIMIT_BYTES:
            raise _invalid("Item size to update has exceeded the maximum allowed size")
        return new

    @staticmethod
    def _returned(
        returning: str, old: Item, new: Item, params: dict[str, Any], given: _Expressions
    ) -> dict[str, Any]:
        if returning == "NONE":
            return {}
        if returning == "ALL_OLD":
            return {"Attributes": _copy(old)} if old else {}
        if returning == "ALL_NEW":
            return {"Attributes": _copy(new)}
        targets = {given.name(action[1][1]) for action in _update(params["UpdateExpression"])}
        source = old if returning == "UPDATED_OLD" else new
        chosen = {name: value for name, value in source.items() if name in targets}
        return {"Attributes": _copy(chosen)} if chosen else {}

    def _query(self, params: dict[str, Any]) -> dict[str, Any]:
        table = self._table(params["TableName"])
        given = _Expressions(
            params.get("ExpressionAttributeNames", {}), params.get("ExpressionAttributeValues", {})
        )
        node = _condition(params["KeyConditionExpression"])
        if node[0] != "compare" or node[1] != "=" or node[2][0] != "path":
            raise _invalid("Query key condition not supported")
        if given.name(node[2][1]) != "pk":
            raise _invalid("Query condition missed key schema element: pk")
        pk = given.value(node[3][1])["S"]
        given.check_all_used()
        partition = table.get(pk, {})
        keys = sorted(partition)
        start = params.get("ExclusiveStartKey")
        if start is not None:
            keys = [k for k in keys if k > start["sk"]["S"]]
        limit = min(params.get("Limit", self.QUERY_PAGE_ITEMS), self.QUERY_PAGE_ITEMS)
        page = keys[:limit]
        answer: dict[str, Any] = {
            "Items": [_copy(partition[k]) for k in page],
            "Count": len(page),
            "ScannedCount": len(page),
        }
        if len(keys) > limit:
            answer["LastEvaluatedKey"] = {"pk": {"S": pk}, "sk": {"S": page[-1]}}
        return answer

    def _transact_write_items(self, params: dict[str, Any]) -> dict[str, Any]:
        writes = params["TransactItems"]
        seen: set[tuple[str, str, str]] = set()
        planned: list[tuple[dict[str, dict[str, Item]], str, str, Item | None]] = []
        reasons: list[dict[str, str]] = []
        for entry in writes:
            ((kind, request),) = entry.items()
            table = self._table(request["TableName"])
            pk, sk = self._key(request["Key"])
            if (request["TableName"], pk, sk) in seen:
                raise _invalid("Transaction request cannot include multiple operations on one item")
            seen.add((request["TableName"], pk, sk))
            given = _Expressions(
                request.get("ExpressionAttributeNames", {}),
                request.get("ExpressionAttributeValues", {}),
            )
            old = table.get(pk, {}).get(sk)
            try:
                if kind == "ConditionCheck":
                    given.mark(request["ConditionExpression"])
                    given.check_all_used()
                    if not _holds(_condition(request["ConditionExpression"]), old or {}, given):
                        raise ServiceError("ConditionalCheckFailedException", "")
                    planned.append((table, pk, sk, old))
                elif kind == "Update":
                    new = self._apply_update(request, given, old, request["Key"])
                    planned.append((table, pk, sk, new))
                else:
                    raise NotImplementedError(f"TransactWriteItems {kind} is not faked")
            except ServiceError as error:
                if error.code != "ConditionalCheckFailedException":
                    raise
                reasons.append(
                    {"Code": "ConditionalCheckFailed", "Message": "The conditional request failed"}
                )
                continue
            reasons.append({"Code": "None"})
        if any(r["Code"] != "None" for r in reasons):
            codes = ", ".join(r["Code"] for r in reasons)
            raise ServiceError(
                "TransactionCanceledException",
                f"Transaction cancelled, please refer cancellation reasons for specific reasons "
                f"[{codes}]",
                CancellationReasons=reasons,
            )
        for (table, pk, sk, written), entry in zip(planned, writes, strict=True):
            if "Update" in entry and written is not None:
                table.setdefault(pk, {})[sk] = written
        return {}


def _copy(item: Item) -> Item:
    return {name: dict(value) for name, value in item.items()}


# S3, EventBridge, Step Functions


class FakeS3(Fake):
    def __init__(self, buckets: list[str]) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}
        self.buckets = set(buckets)
        self.on_put: Callable[[str, str, bytes], None] = lambda *_: None

    def handle(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        bucket, key = params["Bucket"], params["Key"]
        if bucket not in self.buckets:
            raise ServiceError("NoSuchBucket", "The specified bucket does not exist", 404)
        if operation == "PutObject":
            body = params["Body"]
            data = body if isinstance(body, bytes) else body.read()
            self.objects[(bucket, key)] = data
            self.on_put(bucket, key, data)
            tag = hashlib.md5(data, usedforsecurity=False).hexdigest()
            answer: dict[str, Any] = {"ETag": f'"{tag}"'}
            if "ServerSideEncryption" in params:
                answer["ServerSideEncryption"] = params["ServerSideEncryption"]
            return answer
        if operation == "GetObject":
            data = self.objects.get((bucket, key))
            if data is None:
                raise ServiceError("NoSuchKey", "The specified key does not exist.", 404)
            return {"Body": StreamingBody(io.BytesIO(data), len(data)), "ContentLength": len(data)}
        raise NotImplementedError(f"S3 {operation} is not faked")


class FakeEvents(Fake):
    def __init__(self, bus: str) -> None:
        self.bus = bus
        self.entries: list[dict[str, Any]] = []
        self.on_put: Callable[[dict[str, Any]], None] = lambda _: None

    def handle(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        if operation != "PutEvents":
            raise NotImplementedError(f"EventBridge {operation} is not faked")
        entries = params["Entries"]
        if len(entries) > 10:
            raise _invalid("1 validation error detected: Entries must have at most 10 items")
        answered = []
        for entry in entries:
            if entry.get("EventBusName") != self.bus:
                raise ServiceError("ResourceNotFoundException", "Event bus does not exist.")
            self.entries.append(entry)
            self.on_put(entry)
            answered.append({"EventId": f"event-{len(self.entries):06d}"})
        return {"FailedEntryCount": 0, "Entries": answered}


@dataclass
class Execution:
    """One runner execution, as Step Functions runs it: its Task (the step) is called when
    ``due``, with the steps counted so far; a failed call is retried (``failed_attempts``)."""

    name: str
    input: str
    started: float
    status: str = "RUNNING"
    stopped: float | None = None
    steps: int = 0
    due: float = 0.0
    failed_attempts: int = 0

    @property
    def export_id(self) -> str:
        return str(json.loads(self.input)["exportId"])


class FakeStepFunctions(Fake):
    NAME = re.compile(r"[0-9A-Za-z_-]{1,80}")

    def __init__(self, state_machine_arn: str, clock: Callable[[], float]) -> None:
        self.state_machine_arn = state_machine_arn
        self.executions: dict[str, Execution] = {}
        self._clock = clock

    def execution_arn(self, name: str) -> str:
        return self.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"

    def handle(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        if operation == "StartExecution":
            return self._start(params)
        if operation == "DescribeExecution":
            return self._describe(params)
        raise NotImplementedError(f"Step Functions {operation} is not faked")

    def _start(self, params: dict[str, Any]) -> dict[str, Any]:
        if params["stateMachineArn"] != self.state_machine_arn:
            raise ServiceError("StateMachineDoesNotExist", "State Machine Does Not Exist")
        name, given = params["name"], params.get("input", "{}")
        if self.NAME.fullmatch(name) is None:
            raise ServiceError("InvalidName", f"Invalid Name: '{name}'")
        known = self.executions.get(name)
        if known is not None:
            # Idempotent for a STANDARD workflow: the same name and input while it runs.
            if known.status == "RUNNING" and known.input == given:
                return {"executionArn": self.execution_arn(name), "startDate": _at(known.started)}
            raise ServiceError(
                "ExecutionAlreadyExists", f"Execution Already Exists: '{self.execution_arn(name)}'"
            )
        now = self._clock()
        self.executions[name] = Execution(name=name, input=given, started=now, due=now)
        return {"executionArn": self.execution_arn(name), "startDate": _at(now)}

    def _describe(self, params: dict[str, Any]) -> dict[str, Any]:
        arn = params["executionArn"]
        name = arn.rpartition(":")[2]
        known = self.executions.get(name)
        if known is None or arn != self.execution_arn(name):
            raise ServiceError("ExecutionDoesNotExist", f"Execution Does Not Exist: '{arn}'")
        described: dict[str, Any] = {
            "executionArn": arn,
            "stateMachineArn": self.state_machine_arn,
            "name": name,
            "status": known.status,
            "startDate": _at(known.started),
            "input": known.input,
        }
        if known.stopped is not None:
            described["stopDate"] = _at(known.stopped)
        return described


def _at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)
