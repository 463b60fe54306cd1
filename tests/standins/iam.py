"""IAM policy evaluation for the stand-ins (test code, never shipped).

Follows the IAM User Guide's evaluation logic for one account: an explicit Deny wins, otherwise
some statement must Allow. Condition operators follow the "Condition operators" reference,
including the rule that a *negated* operator (StringNotEquals, ArnNotLike, ...) is true when its
key is absent from the request: that is what makes the common "Deny PutObject unless
s3:x-amz-server-side-encryption is aws:kms" bucket policy deny a request without the header.
Anything this module does not implement raises `UnsupportedPolicy` instead of guessing, so a
policy it cannot judge never lets a rehearsal pass.
"""

from __future__ import annotations

import base64
import functools
import ipaddress
import re
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

ContextValue = str | list[str]
Context = Mapping[str, ContextValue]
Document = Mapping[str, Any]


class Decision(StrEnum):
    ALLOW = "Allow"
    IMPLICIT_DENY = "ImplicitDeny"
    EXPLICIT_DENY = "ExplicitDeny"


class UnsupportedPolicy(ValueError):
    """The policy uses something this evaluator does not model; it must not be guessed."""


@dataclass(frozen=True)
class Caller:
    """Who makes a request, for the Principal element of resource-based policies."""

    arn: str  # aws:PrincipalArn: the role's ARN for a role session, the user's ARN for a user
    account: str


_STATEMENT_KEYS = {
    "Sid",
    "Effect",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Principal",
    "NotPrincipal",
    "Condition",
}
_VARIABLE = re.compile(r"\$\{([^}]*)\}")


def evaluate(
    documents: Iterable[Document],
    action: str,
    resource: str,
    context: Context | None = None,
    *,
    principal: Caller | None = None,
    unmodelled_keys: Collection[str] = (),
) -> Decision:
    """The decision of a set of policies on one request.

    Without `principal` the documents are identity policies (Principal is ignored); with it
    they are resource-based policies, whose statements apply only to the principals they name.
    `unmodelled_keys` names condition keys AWS would put in the request that the caller cannot
    supply (a trailing "/" matches a family such as aws:ResourceTag/); a condition on one of
    them, absent from `context`, raises rather than being judged as if the key were absent.
    """
    decision = Decision.IMPLICIT_DENY
    lookup = _Context(context or {}, unmodelled_keys)
    for document in documents:
        version = str(document.get("Version", "2008-10-17"))
        for statement in _statements(document):
            if not _statement_applies(
                statement, action, resource, lookup, version, principal=principal
            ):
                continue
            if statement["Effect"] == "Deny":
                return Decision.EXPLICIT_DENY
            decision = Decision.ALLOW
    return decision


def allowed(
    identity_documents: Iterable[Document],
    boundary: Document | None,
    action: str,
    resource: str,
    context: Context | None = None,
) -> bool:
    """Same-account request with identity policies and an optional permissions boundary."""
    if evaluate(identity_documents, action, resource, context) is not Decision.ALLOW:
        return False
    return boundary is None or evaluate([boundary], action, resource, context) is Decision.ALLOW


def trusts(trust_policy: Document, service_principal: str, context: Context | None = None) -> bool:
    """Whether a role's trust policy lets a service principal call sts:AssumeRole on it."""
    version = str(trust_policy.get("Version", "2008-10-17"))
    lookup = _Context(context or {}, ())
    verdict = False
    for statement in _statements(trust_policy):
        _check_statement(statement, resource_policy=True)
        if "NotPrincipal" in statement:
            raise UnsupportedPolicy("NotPrincipal in a trust policy is not modelled")
        if not _names_service(statement["Principal"], service_principal):
            continue
        if not _action_matches(statement, "sts:AssumeRole"):
            continue
        if not _conditions_hold(statement.get("Condition", {}), lookup, version):
            continue
        if statement["Effect"] == "Deny":
            return False
        verdict = True
    return verdict


# Statements


def _statements(document: Document) -> list[Mapping[str, Any]]:
    statements = document.get("Statement")
    if statements is None:
        raise UnsupportedPolicy(f"policy document without Statement: {document!r}")
    return [statements] if isinstance(statements, Mapping) else list(statements)


def _check_statement(statement: Mapping[str, Any], *, resource_policy: bool) -> None:
    unknown = set(statement) - _STATEMENT_KEYS
    if unknown:
        raise UnsupportedPolicy(f"MalformedPolicyDocument: unknown statement keys {unknown}")
    if statement.get("Effect") not in {"Allow", "Deny"}:
        raise UnsupportedPolicy(f"MalformedPolicyDocument: Effect {statement.get('Effect')!r}")
    if ("Action" in statement) == ("NotAction" in statement):
        raise UnsupportedPolicy("MalformedPolicyDocument: exactly one of Action and NotAction")
    if "Resource" in statement and "NotResource" in statement:
        raise UnsupportedPolicy("MalformedPolicyDocument: both Resource and NotResource")
    if not resource_policy and "Resource" not in statement and "NotResource" not in statement:
        # IAM rejects such an identity policy at deploy time; a rehearsal must not accept it.
        raise UnsupportedPolicy("MalformedPolicyDocument: an identity policy needs Resource")
    if resource_policy and "Principal" not in statement and "NotPrincipal" not in statement:
        raise UnsupportedPolicy("MalformedPolicyDocument: a resource policy needs Principal")


def _statement_applies(
    statement: Mapping[str, Any],
    action: str,
    resource: str,
    context: _Context,
    version: str,
    *,
    principal: Caller | None,
) -> bool:
    _check_statement(statement, resource_policy=principal is not None)
    if principal is not None and not _principal_matches(statement, principal):
        return False
    if not _action_matches(statement, action):
        return False
    if "Resource" in statement:
        if not any(_like(p, resource, context, version) for p in _strings(statement["Resource"])):
            return False
    elif "NotResource" in statement and any(
        _like(p, resource, context, version) for p in _strings(statement["NotResource"])
    ):
        return False
    return _conditions_hold(statement.get("Condition", {}), context, version)


def _action_matches(statement: Mapping[str, Any], action: str) -> bool:
    if "Action" in statement:
        return any(_action_like(p, action) for p in _strings(statement["Action"]))
    return not any(_action_like(p, action) for p in _strings(statement["NotAction"]))


def _action_like(pattern: str, action: str) -> bool:
    return _wildcard(pattern, re.IGNORECASE).fullmatch(action) is not None


def _principal_matches(statement: Mapping[str, Any], caller: Caller) -> bool:
    if "NotPrincipal" in statement:
        raise UnsupportedPolicy("NotPrincipal is not modelled")
    principal = statement["Principal"]
    if principal == "*":
        return True
    if not isinstance(principal, Mapping):
        raise UnsupportedPolicy(f"Principal {principal!r}")
    unknown = set(principal) - {"AWS", "Service", "Federated", "CanonicalUser"}
    if unknown:
        raise UnsupportedPolicy(f"Principal types {unknown}")
    for name in _strings(principal.get("AWS", [])):
        if name == "*" or name in {
            caller.arn,
            caller.account,
            f"arn:{_partition(caller.arn)}:iam::{caller.account}:root",
        }:
            return True
    # Service, Federated and CanonicalUser principals never match a role or user session.
    return False


def _names_service(principal: Any, service: str) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, Mapping):
        raise UnsupportedPolicy(f"Principal {principal!r}")
    if "*" in _strings(principal.get("AWS", [])):
        return True
    return service in _strings(principal.get("Service", []))


def _partition(arn: str) -> str:
    parts = arn.split(":")
    return parts[1] if len(parts) > 1 else "aws"


# Conditions


class _Context:
    """Condition keys are case-insensitive; values are lists (single values become one item)."""

    def __init__(self, context: Context, unmodelled: Collection[str]) -> None:
        self.values = {
            key.lower(): [value] if isinstance(value, str) else list(value)
            for key, value in context.items()
        }
        self.unmodelled = [k.lower() for k in unmodelled]

    def get(self, key: str) -> list[str] | None:
        values = self.values.get(key.lower())
        if values is None and any(
            key.lower() == k or (k.endswith("/") and key.lower().startswith(k))
            for k in self.unmodelled
        ):
            raise UnsupportedPolicy(
                f"condition key {key} is not modelled by the stand-in and was not supplied in "
                "the request context"
            )
        return values

    def variable(self, name: str) -> str | None:
        values = self.values.get(name.lower())
        return values[0] if values and len(values) == 1 else None


Matcher = Callable[[str, str, _Context, str], bool]


def _conditions_hold(block: Mapping[str, Any], context: _Context, version: str) -> bool:
    if not isinstance(block, Mapping):
        raise UnsupportedPolicy(f"Condition {block!r}")
    return all(
        _operator_holds(operator, keys, context, version) for operator, keys in block.items()
    )


def _operator_holds(
    operator: str, keys: Mapping[str, Any], context: _Context, version: str
) -> bool:
    set_operator, _, name = operator.rpartition(":")
    if set_operator not in {"", "ForAnyValue", "ForAllValues"}:
        raise UnsupportedPolicy(f"condition set operator {set_operator!r}")
    if_exists = name.endswith("IfExists") and name != "IfExists"
    base = name.removesuffix("IfExists") if if_exists else name
    if base == "Null":
        if set_operator or if_exists:
            raise UnsupportedPolicy(f"condition operator {operator}")
        return all(
            any((context.get(key) is None) == _truth(v) for v in _values(values))
            for key, values in keys.items()
        )
    if base not in _OPERATORS:
        raise UnsupportedPolicy(f"condition operator {operator} is not implemented")
    matcher, negated = _OPERATORS[base]
    if not isinstance(keys, Mapping):
        raise UnsupportedPolicy(f"Condition {operator}: {keys!r}")
    for key, policy_values in keys.items():
        wanted = _values(policy_values)
        present = context.get(key)

        def one(value: str, wanted: list[str] = wanted) -> bool:
            hit = any(matcher(value, w, context, version) for w in wanted)
            return not hit if negated else hit

        if set_operator == "ForAnyValue":
            holds = bool(present) and any(one(v) for v in present or [])
        elif set_operator == "ForAllValues":
            holds = all(one(v) for v in present or [])
        elif present is None:
            holds = if_exists or negated
        elif negated:
            # Every request value must avoid every policy value (logical NOR).
            holds = all(one(v) for v in present)
        else:
            holds = any(one(v) for v in present)
        if not holds:
            return False
    return True


def _values(values: Any) -> list[str]:
    items = values if isinstance(values, list) else [values]
    out = []
    for item in items:
        if isinstance(item, bool):
            out.append("true" if item else "false")
        elif isinstance(item, int | float | str):
            out.append(str(item))
        else:
            raise UnsupportedPolicy(f"condition value {item!r}")
    return out


def _truth(value: str) -> bool:
    if value.lower() not in {"true", "false"}:
        raise UnsupportedPolicy(f"boolean condition value {value!r}")
    return value.lower() == "true"


def _string_equals(value: str, wanted: str, context: _Context, version: str) -> bool:
    expanded = _expand_literal(wanted, context, version)
    return expanded is not None and value == expanded


def _string_equals_ignore_case(value: str, wanted: str, context: _Context, version: str) -> bool:
    expanded = _expand_literal(wanted, context, version)
    return expanded is not None and value.casefold() == expanded.casefold()


def _string_like(value: str, wanted: str, context: _Context, version: str) -> bool:
    return _like(wanted, value, context, version)


def _arn_like(value: str, wanted: str, context: _Context, version: str) -> bool:
    # Each of the six colon-separated parts is matched on its own, so * never spans a colon
    # before the resource part.
    got, want = value.split(":", 5), wanted.split(":", 5)
    if len(got) != 6 or len(want) != 6:
        return False
    return all(_like(w, g, context, version) for w, g in zip(want, got, strict=True))


def _bool(value: str, wanted: str, context: _Context, version: str) -> bool:
    return value.lower() == wanted.lower()


def _numeric(compare: Callable[[float, float], bool]) -> Matcher:
    def match(value: str, wanted: str, context: _Context, version: str) -> bool:
        try:
            return compare(float(value), float(wanted))
        except ValueError:
            return False

    return match


def _date(compare: Callable[[datetime, datetime], bool]) -> Matcher:
    def match(value: str, wanted: str, context: _Context, version: str) -> bool:
        try:
            return compare(_timestamp(value), _timestamp(wanted))
        except ValueError:
            return False

    return match


def _timestamp(value: str) -> datetime:
    if re.fullmatch(r"\d+", value):
        return datetime.fromtimestamp(int(value), UTC)
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _ip_address(value: str, wanted: str, context: _Context, version: str) -> bool:
    try:
        return ipaddress.ip_address(value) in ipaddress.ip_network(wanted, strict=False)
    except ValueError:
        return False


def _binary_equals(value: str, wanted: str, context: _Context, version: str) -> bool:
    return base64.b64decode(value) == base64.b64decode(wanted)


_OPERATORS: dict[str, tuple[Matcher, bool]] = {
    "StringEquals": (_string_equals, False),
    "StringNotEquals": (_string_equals, True),
    "StringEqualsIgnoreCase": (_string_equals_ignore_case, False),
    "StringNotEqualsIgnoreCase": (_string_equals_ignore_case, True),
    "StringLike": (_string_like, False),
    "StringNotLike": (_string_like, True),
    "ArnEquals": (_arn_like, False),
    "ArnLike": (_arn_like, False),
    "ArnNotEquals": (_arn_like, True),
    "ArnNotLike": (_arn_like, True),
    "Bool": (_bool, False),
    "NumericEquals": (_numeric(lambda a, b: a == b), False),
    "NumericNotEquals": (_numeric(lambda a, b: a == b), True),
    "NumericLessThan": (_numeric(lambda a, b: a < b), False),
    "NumericLessThanEquals": (_numeric(lambda a, b: a <= b), False),
    "NumericGreaterThan": (_numeric(lambda a, b: a > b), False),
    "NumericGreaterThanEquals": (_numeric(lambda a, b: a >= b), False),
    "DateEquals": (_date(lambda a, b: a == b), False),
    "DateNotEquals": (_date(lambda a, b: a == b), True),
    "DateLessThan": (_date(lambda a, b: a < b), False),
    "DateLessThanEquals": (_date(lambda a, b: a <= b), False),
    "DateGreaterThan": (_date(lambda a, b: a > b), False),
    "DateGreaterThanEquals": (_date(lambda a, b: a >= b), False),
    "IpAddress": (_ip_address, False),
    "NotIpAddress": (_ip_address, True),
    "BinaryEquals": (_binary_equals, False),
}


# Wildcards and policy variables


def _like(pattern: str, value: str, context: _Context, version: str) -> bool:
    compiled = _compile(pattern, context, version)
    return compiled is not None and compiled.fullmatch(value) is not None


def _compile(pattern: str, context: _Context, version: str) -> re.Pattern[str] | None:
    """A wildcard pattern with its policy variables filled in; None if one has no value."""
    if version != "2012-10-17" or "${" not in pattern:
        return _wildcard(pattern, 0)
    parts: list[str] = []
    position = 0
    for match in _VARIABLE.finditer(pattern):
        parts.append(_wildcard_source(pattern[position : match.start()]))
        value = _variable(match.group(1), context)
        if value is None:
            return None
        parts.append(re.escape(value))
        position = match.end()
    parts.append(_wildcard_source(pattern[position:]))
    return re.compile("".join(parts), re.DOTALL)


def _expand_literal(text: str, context: _Context, version: str) -> str | None:
    if version != "2012-10-17" or "${" not in text:
        return text
    out: list[str] = []
    position = 0
    for match in _VARIABLE.finditer(text):
        out.append(text[position : match.start()])
        value = _variable(match.group(1), context)
        if value is None:
            return None
        out.append(value)
        position = match.end()
    out.append(text[position:])
    return "".join(out)


def _variable(name: str, context: _Context) -> str | None:
    if name in {"*", "?", "$"}:
        return name
    key, _, default = name.partition(",")
    value = context.variable(key.strip())
    if value is None and default:
        return default.strip().strip("'")
    return value


@functools.lru_cache(maxsize=4096)
def _wildcard(pattern: str, flags: int) -> re.Pattern[str]:
    return re.compile(_wildcard_source(pattern), flags | re.DOTALL)


def _wildcard_source(pattern: str) -> str:
    return "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)


def _strings(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    for item in items:
        if not isinstance(item, str):
            raise UnsupportedPolicy(f"expected strings, got {item!r} (an unresolved intrinsic?)")
    return list(items)


def statements_of(documents: Iterable[Document]) -> Iterator[Mapping[str, Any]]:
    """Every statement of some documents, for assertions in tests."""
    for document in documents:
        yield from _statements(document)
