"""Fail when a lock in requirements/ no longer matches pyproject.toml's dependency groups.

Each lock is resolved again by uv with its own pins preferred (uv keeps the pins of an existing
output file), so the same packages and versions come back unless pyproject.toml asks for
something the lock does not hold. Hashes are left out of the comparison: a release may gain a
wheel (a new Python's, say) without its version changing. Usage:
``check_locks.py <uv> <group> [<group> ...]``; the Makefile's ``check-locks`` runs it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FLAGS = ["--universal", "--python-version", "3.11", "--generate-hashes", "--quiet"]
FLAGS += ["--custom-compile-command", "make lock"]


def pins(lock: Path) -> list[str]:
    """The `name==version ; marker` lines of a lock, without hashes or comments."""
    lines = []
    for line in lock.read_text().splitlines():
        text = line.split("#", 1)[0].strip().rstrip("\\").strip()
        if text and not text.startswith("--hash"):
            lines.append(text)
    return sorted(lines)


def check(uv: str, group: str) -> list[str]:
    lock = ROOT / "requirements" / f"{group}.txt"
    if not lock.exists():
        return [f"requirements/{group}.txt is missing: run `make lock`"]
    with tempfile.TemporaryDirectory() as scratch:
        again = Path(scratch) / lock.name
        shutil.copy(lock, again)
        command = [uv, "pip", "compile", "--group", f"pyproject.toml:{group}", *FLAGS]
        result = subprocess.run(
            [*command, "-o", str(again)], cwd=ROOT, capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            return [f"requirements/{group}.txt: uv could not resolve it:\n{result.stderr}"]
        old, new = set(pins(lock)), set(pins(again))
    if old == new:
        return []
    changes = [f"  - {pin}" for pin in sorted(old - new)] + [
        f"  + {pin}" for pin in sorted(new - old)
    ]
    return [
        f"requirements/{group}.txt is out of date with pyproject.toml's `{group}` group "
        "(run `make lock`, review the diff and commit it):\n" + "\n".join(changes)
    ]


def main(argv: list[str]) -> int:
    uv, groups = argv[0], argv[1:]
    problems = [problem for group in groups for problem in check(uv, group)]
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print(f"{len(groups)} locks match pyproject.toml: {', '.join(groups)}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
