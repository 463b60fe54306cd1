"""The options that every export of a stack shares through its ``ReadSetExportService``.

Each option is settled by the first construct that sets it (the service or an export); another
construct may set the same value again, and setting a different one is an error naming both
constructs. Nothing can be set once the service is built.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from constructs import Construct, IConstruct

from .handler import rules
from .validation import Problems, check_shared_options

T = TypeVar("T")
SHARED_OPTIONS = (
    "vpc",
    "vpc_subnets",
    "security_groups",
    "log_retention",
    "max_requests_per_second",
    "poll_interval",
    "runtime",
    "reserved_concurrency",
)


class SharedOptions:
    """The settled options of one service, each with the path of the construct that set it."""

    def __init__(self, service_path: str) -> None:
        self._service_path = service_path
        self._settings: dict[str, tuple[Any, str]] = {}

    def get(self, name: str) -> Any:
        found = self._settings.get(name)
        return found[0] if found is not None else None

    def get_or(self, name: str, default: T) -> T:
        """The option as settled, else ``default`` (its checks made it of default's type)."""
        found = self._settings.get(name)
        return default if found is None else cast(T, found[0])

    def set(self, setter: IConstruct, options: Mapping[str, Any], *, built: bool) -> None:
        """Settle ``options`` on behalf of ``setter``; ``None`` leaves an option as it is."""
        for name in options:
            if name not in SHARED_OPTIONS:
                raise TypeError(f"ReadSetExportService has no shared option {name!r}")
        wrong = Problems()
        check_shared_options(wrong, options)
        wrong.raise_if_any(setter)
        conflicts: list[str] = []
        for name, value in options.items():
            conflict = None if value is None else self._settle(setter, name, value, built)
            if conflict is not None:
                conflicts.append(conflict)
        if conflicts:
            raise ValueError(
                f"ReadSetExportService {self._service_path}: conflicting options:\n- "
                + "\n- ".join(conflicts)
            )
        self._check_settled(setter)

    def _settle(self, setter: IConstruct, name: str, value: Any, built: bool) -> str | None:
        """Record one option; the conflict, if it has one."""
        current = self._settings.get(name)
        if current is not None and not _same(current[0], value):
            return (
                f"{name}: {setter.node.path} sets {_describe(value)}, but {current[1]} "
                f"set {_describe(current[0])}; the stack's exports share one "
                "ReadSetExportService, so give it once (on the service, or the same value "
                "on every export)"
            )
        if current is None and built:
            return (
                f"{name}: {setter.node.path} sets it after the stack's "
                f"ReadSetExportService was built; set it on the service, or before its "
                "functions are used"
            )
        if current is None:
            self._settings[name] = (value, setter.node.path)
        return None

    def _check_settled(self, setter: IConstruct) -> None:
        """The values as settled, which the setter's own checks could not see together."""
        problems: list[str] = []
        rate = self.get("max_requests_per_second")
        if rate is not None:
            problems += rules.check_max_requests_per_second(rate)
        interval = self.get("poll_interval")
        if interval is not None and not interval.is_unresolved():
            problems += rules.check_poll_interval(int(interval.to_seconds()))
        if self.get("vpc") is None and (
            self.get("vpc_subnets") is not None or self.get("security_groups") is not None
        ):
            problems.append("vpc_subnets, security_groups: need vpc")
        if problems:
            raise ValueError(
                f"{type(setter).__name__} {setter.node.path}: invalid props:\n- "
                + "\n- ".join(problems)
            )


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, Duration) and isinstance(b, Duration):
        return a.to_seconds() == b.to_seconds()
    # Each read of a constant such as Runtime.PYTHON_3_12 is a new proxy object.
    if isinstance(a, lambda_.Runtime) and isinstance(b, lambda_.Runtime):
        return a.name == b.name
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(x is y for x, y in zip(a, b, strict=True))
    return a is b or a == b


def _describe(value: Any) -> str:
    if isinstance(value, Duration):
        return f"{int(value.to_seconds())} s"
    if isinstance(value, Construct):
        return value.node.path
    if isinstance(value, lambda_.Runtime):
        return value.name
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_describe(v) for v in value) + "]"
    return repr(value)
