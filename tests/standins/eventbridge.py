"""An EventBridge stand-in: PutEvents to the default bus or a template's `AWS::Events::EventBus`,
matched against that bus's rules (test code, never shipped). A bus's `AWS::Events::EventBusPolicy`
statements are its resource policy, which the gateway evaluates with the caller's identity
policies (an explicit Deny there refuses the caller whatever its own policies allow).

Events are validated as PutEvents validates them, wrapped in the envelope EventBridge delivers
(version, id, detail-type, source, account, time, region, resources, detail) with the time taken
from the simulated clock, and matched against every enabled `AWS::Events::Rule` of the default bus
of the deployed stacks. Matching follows the event pattern rules of aws/event-ruler, EventBridge's
matching library (its README: "Ruler by Example", "$or", "JSON Array Matching"): exact values
(strings, numbers compared as numbers, booleans, null), prefix, suffix, equals-ignore-case,
wildcard, anything-but (value, list, prefix, suffix, equals-ignore-case, wildcard), exists,
numeric, cidr, and $or. Anything else raises `Unmodelled`. Every match is also asked of moto's
event pattern matcher (`moto.events.models.EventPattern`, a third party's reading of the same
rules): where the two disagree on a delivery, the rehearsal fails (`PatternDisagreement`), so a
rule can't pass on a reading only this module holds. moto is known to differ from EventBridge's
documentation in two cases (`false` matching `0`; a nested pattern against an array of
objects); `tests/test_standins_runner.py` keeps both as evidence.

What a rule's Targets do is not modelled: a delivery is recorded per rule
(`deliveries(rule)`), and nothing is invoked.
"""

from __future__ import annotations

import ipaddress
import json
import re
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from moto.events.models import EventPattern

from .clock import SimulatedClock

JSON = Any
ENTRIES_LIMIT = 10
SIZE_LIMIT = 262_144  # bytes of the request's entries (PutEvents: "256 KB")
_MISSING: Any = object()
_OPERATORS = {
    "prefix",
    "suffix",
    "equals-ignore-case",
    "wildcard",
    "anything-but",
    "exists",
    "numeric",
    "cidr",
}


class Unmodelled(Exception):
    """Something the stand-in does not model: it refuses loudly rather than guess."""


class PatternDisagreement(AssertionError):
    """This module and moto's matcher decide an event's delivery differently."""


class InvalidEventPattern(ValueError):
    """A pattern PutRule (so the stack's deployment) would refuse."""


class ServiceError(Exception):
    """An error answer of the EventBridge API (JSON 1.1: `__type` and `message`)."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


@dataclass
class Rule:
    logical_id: str
    name: str
    arn: str
    pattern: dict[str, JSON] | None
    enabled: bool
    bus: str
    targets: list[JSON] = field(default_factory=list)


class EventBridgeStandIn:
    """The default event bus and the stacks' buses, their rules and policies, and what PutEvents
    published and delivered."""

    def __init__(
        self,
        clock: SimulatedClock,
        *,
        region: str = "us-east-1",
        account: str = "111122223333",
        partition: str = "aws",
    ) -> None:
        self.clock = clock
        self.region = region
        self.account = account
        self.partition = partition
        self._lock = threading.RLock()
        self._rules: dict[str, Rule] = {}  # by logical id
        self._buses: dict[str, str] = {"default": self.bus_arn}  # name -> ARN
        self._policies: dict[str, list[dict[str, JSON]]] = {}  # bus ARN -> statements
        self._published: list[dict[str, JSON]] = []
        self._published_on: list[str] = []  # the bus ARN of each published event
        self._deliveries: dict[str, list[dict[str, JSON]]] = {}

    @property
    def bus_arn(self) -> str:
        return f"arn:{self.partition}:events:{self.region}:{self.account}:event-bus/default"

    def reset(self) -> None:
        with self._lock:
            self._rules.clear()
            self._buses = {"default": self.bus_arn}
            self._policies.clear()
            self._published.clear()
            self._published_on.clear()
            self._deliveries.clear()

    # Deploying

    def register_stack(self, deployed: Any) -> None:
        """The buses, bus policies and `AWS::Events::Rule`s of a `DeployedStack` (PutRule:
        patterns are checked)."""
        for logical in deployed.resources("AWS::Events::EventBus"):
            with self._lock:
                self._buses[str(deployed.ref(logical))] = str(deployed.get_att(logical, "Arn"))
        for resource in deployed.resources("AWS::Events::EventBusPolicy").values():
            properties = resource.get("Properties", {})
            if "Statement" not in properties:
                raise Unmodelled("an EventBusPolicy without Statement (Action/Principal form)")
            bus = self.bus_arn_of(deployed.resolve(properties.get("EventBusName", "default")))
            statement = deployed.resolve(properties["Statement"])
            with self._lock:
                self._policies.setdefault(bus, []).append(statement)
        for logical, resource in deployed.resources("AWS::Events::Rule").items():
            properties = resource.get("Properties", {})
            pattern = deployed.resolve(properties.get("EventPattern"))
            if isinstance(pattern, str):
                pattern = json.loads(pattern)
            bus = deployed.resolve(properties.get("EventBusName", "default"))
            self.add_rule(
                logical,
                name=str(deployed.ref(logical)),
                arn=str(deployed.get_att(logical, "Arn")),
                pattern=pattern,
                enabled=deployed.resolve(properties.get("State", "ENABLED")) != "DISABLED",
                bus=str(bus),
                targets=deployed.resolve(properties.get("Targets", [])),
            )

    def add_rule(
        self,
        logical_id: str,
        *,
        pattern: Mapping[str, JSON] | None,
        name: str | None = None,
        arn: str | None = None,
        enabled: bool = True,
        bus: str = "default",
        targets: Sequence[JSON] = (),
    ) -> Rule:
        if pattern is not None:
            validate_pattern(pattern)
        name = name or logical_id
        rule = Rule(
            logical_id,
            name,
            arn or f"arn:{self.partition}:events:{self.region}:{self.account}:rule/{name}",
            None if pattern is None else dict(pattern),
            enabled,
            bus,
            list(targets),
        )
        with self._lock:
            self._rules[logical_id] = rule
            self._deliveries.setdefault(logical_id, [])
        return rule

    def bus_arn_of(self, name_or_arn: JSON) -> str:
        """A bus's ARN from its name or ARN (PutEvents and rules take either)."""
        with self._lock:
            if name_or_arn in (None, "default"):
                return self.bus_arn
            if name_or_arn in self._buses:
                return self._buses[name_or_arn]
            if name_or_arn in self._buses.values():
                return str(name_or_arn)
        raise Unmodelled(f"event bus {name_or_arn}: no such bus was deployed")

    def bus_policy(self, bus_arn: str) -> dict[str, JSON] | None:
        """The bus's resource policy, if it has statements."""
        with self._lock:
            found = self._policies.get(bus_arn)
            return None if not found else {"Version": "2012-10-17", "Statement": list(found)}

    # Records

    @property
    def published(self) -> list[dict[str, JSON]]:
        """Every event PutEvents accepted, as its envelope, in order."""
        with self._lock:
            return list(self._published)

    def published_on(self, bus: str) -> list[dict[str, JSON]]:
        """The events PutEvents accepted onto one bus (name or ARN), in order."""
        arn = self.bus_arn_of(bus)
        with self._lock:
            return [
                e for e, on in zip(self._published, self._published_on, strict=True) if on == arn
            ]

    def deliveries(self, rule: str) -> list[dict[str, JSON]]:
        """The envelopes a rule (logical id or name) matched, in order."""
        with self._lock:
            for logical, known in self._rules.items():
                if rule in {logical, known.name}:
                    return list(self._deliveries[logical])
        raise KeyError(f"no rule {rule}")

    # The API

    def authorization(self, body: Mapping[str, JSON]) -> list[tuple[str, dict[str, str]]]:
        """PutEvents' IAM checks: events:PutEvents on the bus, one per entry, with the entry's
        events:source and events:detail-type."""
        entries = body.get("Entries")
        checks: list[tuple[str, dict[str, str]]] = []
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, dict):
                continue
            context = {
                key: entry[field_name]
                for key, field_name in (
                    ("events:source", "Source"),
                    ("events:detail-type", "DetailType"),
                )
                if isinstance(entry.get(field_name), str)
            }
            checks.append((self._bus(entry), context))
        return checks or [(self.bus_arn, {})]

    def put_events(self, body: Mapping[str, JSON]) -> dict[str, JSON]:
        """An authorized PutEvents: the request validated, per-entry results, and the accepted
        events delivered."""
        entries = body.get("Entries")
        if not isinstance(entries, list) or not 1 <= len(entries) <= ENTRIES_LIMIT:
            count = len(entries) if isinstance(entries, list) else 0
            relation = "less" if count > ENTRIES_LIMIT else "greater"
            bound = ENTRIES_LIMIT if count > ENTRIES_LIMIT else 1
            raise ServiceError(
                "ValidationException",
                "1 validation error detected: Value '[PutEventsRequestEntry]' at 'entries' "
                f"failed to satisfy constraint: Member must have length {relation} than or "
                f"equal to {bound}",
            )
        if sum(_entry_size(e) for e in entries) > SIZE_LIMIT:
            raise ServiceError(
                "ValidationException", "Total size of the entries in the request is over the limit."
            )
        results: list[dict[str, JSON]] = []
        for entry in entries:
            problem = _entry_problem(entry)
            if problem is not None:
                results.append({"ErrorCode": problem[0], "ErrorMessage": problem[1]})
                continue
            envelope = self._envelope(entry)
            results.append({"EventId": envelope["id"]})
            self._deliver(envelope, self._bus(entry))
        failed = sum(1 for r in results if "ErrorCode" in r)
        return {"FailedEntryCount": failed, "Entries": results}

    def _bus(self, entry: Mapping[str, JSON]) -> str:
        return self.bus_arn_of(entry.get("EventBusName", "default"))

    def _envelope(self, entry: Mapping[str, JSON]) -> dict[str, JSON]:
        moment = entry.get("Time")
        moment = self.clock.now() if moment is None else float(moment)
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": entry["DetailType"],
            "source": entry["Source"],
            "account": self.account,
            "time": datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": self.region,
            "resources": list(entry.get("Resources") or []),
            "detail": json.loads(entry["Detail"]),
        }

    def _deliver(self, envelope: dict[str, JSON], bus: str) -> None:
        with self._lock:
            self._published.append(envelope)
            self._published_on.append(bus)
            for logical, rule in self._rules.items():
                if not rule.enabled or rule.pattern is None:
                    continue
                if self.bus_arn_of(rule.bus) != bus:
                    continue
                if matches_as_moto_does(rule.pattern, envelope, rule=logical):
                    self._deliveries[logical].append(envelope)


def _entry_size(entry: JSON) -> int:
    """EventBridge's entry size: Time 14 bytes, then the UTF-8 of Source, DetailType, Detail and
    each of Resources ("Calculating PutEvents event entry size")."""
    if not isinstance(entry, dict):
        return 0
    size = 14 if entry.get("Time") is not None else 0
    for key in ("Source", "DetailType", "Detail"):
        if isinstance(entry.get(key), str):
            size += len(entry[key].encode())
    return size + sum(len(str(r).encode()) for r in entry.get("Resources") or [])


def _entry_problem(entry: Mapping[str, JSON]) -> tuple[str, str] | None:
    """Why PutEvents refuses an entry (answered in the entry, not as an exception)."""
    for key in ("Source", "DetailType", "Detail"):
        if not entry.get(key):
            return (
                "InvalidArgument",
                f"Parameter {key} is not valid. Reason: {key} is a required argument.",
            )
    try:
        detail = json.loads(entry["Detail"])
    except ValueError:
        return "MalformedDetail", "Detail is malformed."
    if not isinstance(detail, dict):
        # Only a JSON object is a valid detail; the stand-in refuses anything else (stricter
        # than accepting and dropping it, which is what moto says AWS does).
        return "MalformedDetail", "Detail is malformed."
    if str(entry["Source"]).startswith("aws."):
        # Observed: a custom event with source aws.* fails this entry with
        # NotAuthorizedForSourceException (aws-samples/serverless-patterns#3089).
        return "NotAuthorizedForSourceException", "Not authorized for the source."
    return None


# Event patterns


def validate_pattern(pattern: JSON, where: str = "") -> None:
    """What PutRule checks: objects down to arrays of values or of operator objects."""
    if not isinstance(pattern, Mapping) or not pattern:
        raise InvalidEventPattern(
            f"Event pattern is not valid at {where or 'the top'}: {pattern!r}"
        )
    for key, value in pattern.items():
        if key == "$or" and _is_or(value):
            for branch in value:
                validate_pattern(branch, f"{where}$or")
        elif isinstance(value, Mapping):
            validate_pattern(value, f"{where}{key}.")
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, Mapping):
                    _validate_operator(item)
                elif isinstance(item, list):
                    raise InvalidEventPattern(f"{where}{key}: a list in a list")
        else:
            raise InvalidEventPattern(f"Event pattern is not valid at {where}{key}: not an array")


def _validate_operator(item: Mapping[str, JSON]) -> None:
    if len(item) != 1:
        raise InvalidEventPattern(f"one operator per object: {dict(item)!r}")
    ((name, _),) = item.items()
    if name not in _OPERATORS:
        raise Unmodelled(f"event pattern operator {name!r} is not modelled")


def _is_or(value: JSON) -> bool:
    """$or is an OR only as an array of 2+ objects whose keys are not operators (event-ruler)."""
    return (
        isinstance(value, list)
        and len(value) >= 2
        and all(isinstance(v, Mapping) and not (_OPERATORS & set(v)) for v in value)
    )


def matches_as_moto_does(pattern: Mapping[str, JSON], event: JSON, *, rule: str = "") -> bool:
    """``matches``, which must agree with moto's matcher on this event."""
    ours = matches(pattern, event)
    theirs = EventPattern(None, dict(pattern)).matches_event(event)
    if ours != theirs:
        raise PatternDisagreement(
            f"rule {rule or '?'}: this stand-in says {ours}, moto's matcher {theirs}, for "
            f"pattern {json.dumps(pattern)} and event {json.dumps(event, default=str)[:300]}"
        )
    return ours


def matches(pattern: Mapping[str, JSON], event: JSON) -> bool:
    """Whether an event (an envelope) matches an event pattern."""
    if not isinstance(event, dict):
        return False
    for key, wanted in pattern.items():
        if key == "$or" and _is_or(wanted):
            if not any(matches(branch, event) for branch in wanted):
                return False
            continue
        value = event.get(key, _MISSING)
        if not _field_matches(wanted, value):
            return False
    return True


def _field_matches(wanted: JSON, value: JSON) -> bool:
    if isinstance(wanted, Mapping):
        # A nested pattern: an array in the event is "crushed out", and all the pattern's
        # fields must match within one element (rulesForJSONEvent).
        if isinstance(value, list):
            return any(_field_matches(wanted, item) for item in value)
        return isinstance(value, dict) and matches(wanted, value)
    assert isinstance(wanted, list)
    values = value if isinstance(value, list) else [value]
    if value is _MISSING:
        values = []
    for item in wanted:
        if isinstance(item, Mapping) and "exists" in item:
            if _exists(item["exists"], value):
                return True
            continue
        if any(_value_matches(item, v) for v in values):
            return True
    return False


def _exists(wanted: JSON, value: JSON) -> bool:
    # Exists applies to leaves: an object or an empty array is not a present leaf.
    present = value is not _MISSING and not isinstance(value, dict) and value != []
    return present == bool(wanted)


def _value_matches(item: JSON, value: JSON) -> bool:
    if isinstance(value, dict | list):
        return False
    if not isinstance(item, Mapping):
        return _equal(item, value)
    ((name, argument),) = item.items()
    if name == "numeric":
        return _is_number(value) and _numeric(argument, value)
    if name == "anything-but":
        return _anything_but(argument, value)
    if name == "cidr":
        return isinstance(value, str) and _in_network(argument, value)
    return isinstance(value, str) and _string_operator(name, argument, value)


def _string_operator(name: str, argument: JSON, value: str) -> bool:
    if name == "equals-ignore-case":
        return isinstance(argument, str) and value.casefold() == argument.casefold()
    if name == "wildcard":
        return isinstance(argument, str) and star_match(argument, value)
    if name in {"prefix", "suffix"}:
        ignore_case = isinstance(argument, Mapping)
        if ignore_case:
            ((inner, argument),) = argument.items()
            if inner != "equals-ignore-case":
                raise Unmodelled(f"{name} with {inner}")
        if not isinstance(argument, str):
            raise InvalidEventPattern(f"{name} takes a string")
        subject, argument = (
            (value.casefold(), argument.casefold())
            if ignore_case
            else (
                value,
                argument,
            )
        )
        return subject.startswith(argument) if name == "prefix" else subject.endswith(argument)
    raise Unmodelled(f"event pattern operator {name!r} is not modelled")


def _anything_but(argument: JSON, value: JSON) -> bool:
    if isinstance(argument, Mapping):
        ((inner, operand),) = argument.items()
        if inner not in {"prefix", "suffix", "equals-ignore-case", "wildcard"}:
            raise Unmodelled(f"anything-but with {inner}")
        if not isinstance(value, str):
            return False
        operands = operand if isinstance(operand, list) else [operand]
        return not any(_string_operator(inner, o, value) for o in operands)
    excluded = argument if isinstance(argument, list) else [argument]
    return not any(_equal(e, value) for e in excluded)


def _equal(wanted: JSON, value: JSON) -> bool:
    if isinstance(wanted, bool) or isinstance(value, bool) or wanted is None or value is None:
        return type(wanted) is type(value) and wanted == value
    if _is_number(wanted) and _is_number(value):
        return float(wanted) == float(value)
    return isinstance(wanted, str) and isinstance(value, str) and wanted == value


def _is_number(value: JSON) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


_RELATIONS = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    "=": lambda a, b: a == b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _numeric(argument: JSON, value: float) -> bool:
    if not isinstance(argument, list) or len(argument) % 2:
        raise InvalidEventPattern(f"numeric takes operator/value pairs: {argument!r}")
    for operator, bound in zip(argument[::2], argument[1::2], strict=True):
        if operator not in _RELATIONS or not _is_number(bound):
            raise InvalidEventPattern(f"numeric: {operator!r} {bound!r}")
        if not _RELATIONS[operator](float(value), float(bound)):
            return False
    return True


def _in_network(network: JSON, value: str) -> bool:
    try:
        return ipaddress.ip_address(value) in ipaddress.ip_network(str(network), strict=False)
    except ValueError:
        return False


def star_match(pattern: str, value: str) -> bool:
    """`*` for any run of characters, a backslash escaping the next one (EventBridge's
    wildcard, Step Functions' StringMatches)."""
    regex, index = "", 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern):
            regex += re.escape(pattern[index + 1])
            index += 2
            continue
        regex += ".*" if char == "*" else re.escape(char)
        index += 1
    return re.fullmatch(regex, value, re.DOTALL) is not None
