"""Mutation scores of the handler's pure modules, one module at a time (``make mutate``).

The modules are those of ``[tool.mutmut] only_mutate`` in pyproject.toml (a file, or
``folder/*`` for every module under a folder); a pattern that matches no file is skipped.

    tools/mutation_report.py run [--threshold 90] [MODULE ...]
        one ``mutmut run`` per module (its mutants only, each against the tests that call the
        mutated function), then the report; mutmut's own output goes to mutants/<module>.log
    tools/mutation_report.py report [--threshold 90] [MODULE ...]
        the report of the last run, from mutants/

The report gives each module's killed / total (a mutant that made its tests time out counts
as killed), its score, the time its run took, and the id of every mutant not killed
(``.venv/bin/mutmut show <id>`` prints its diff). The exit code is 1 when a module scores below
the threshold (percent), or when mutmut fails.
"""

from __future__ import annotations

import argparse
import ast
import fnmatch
import json
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

from mutmut.stats import status_by_exit_code

ROOT = Path(__file__).resolve().parent.parent
MUTANTS = ROOT / "mutants"
TIMES = MUTANTS / "module-seconds.json"
# What counts as killed: a test failed, or the tests ran out of time (an endless loop).
KILLED = frozenset({"killed", "timeout"})


@dataclass(frozen=True)
class Score:
    module: str
    killed: int
    total: int
    not_killed: dict[str, str]  # mutant id -> mutmut's status (survived, no tests, ...)

    @property
    def percent(self) -> float:
        return 100.0 * self.killed / self.total if self.total else 100.0


def patterns(pyproject: Path = ROOT / "pyproject.toml") -> list[str]:
    """``[tool.mutmut] only_mutate``: the modules to mutate."""
    config = tomllib.loads(pyproject.read_text())["tool"]["mutmut"]
    return list(config.get("only_mutate", []))


def modules(wanted: list[str], only_mutate: list[str], root: Path = ROOT) -> list[str]:
    """The module files, relative to ``root``, that ``wanted`` names (all when empty): files
    or folders, each matched by a pattern of ``only_mutate``. Paths that do not exist are
    skipped; an existing one that mutmut would not mutate is an error."""
    files: list[str] = []
    for entry in wanted or only_mutate:
        path = root / entry.removesuffix("*")
        found = sorted(path.rglob("*.py")) if path.is_dir() else [path] if path.is_file() else []
        for file in found:
            name = file.relative_to(root).as_posix()
            if "__pycache__" in name or name in files:
                continue
            if not any(fnmatch.fnmatch(name, pattern) for pattern in only_mutate):
                raise SystemExit(f"{name} is not in [tool.mutmut] only_mutate (pyproject.toml)")
            files.append(name)
    return files


def dotted(module: str) -> str:
    """mutmut's name of a module: its path with dots, a package by its own name."""
    return module.removesuffix(".py").replace("/", ".").removesuffix(".__init__")


def has_functions(source: str) -> bool:
    """mutmut mutates functions and methods only: a module without any has no mutants."""
    tree = ast.parse(source)
    return any(isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) for n in ast.walk(tree))


def exit_codes(module: str, mutants: Path = MUTANTS) -> dict[str, int | None]:
    """Each mutant of ``module`` and the exit code of its tests (None: not run)."""
    meta = mutants / f"{module}.meta"
    if not meta.is_file():
        return {}
    codes: dict[str, int | None] = json.loads(meta.read_text())["exit_code_by_key"]
    return codes


def score(module: str, codes: dict[str, int | None]) -> Score:
    statuses = {key: status_by_exit_code[code] for key, code in codes.items()}
    not_killed = {key: status for key, status in statuses.items() if status not in KILLED}
    return Score(module, len(statuses) - len(not_killed), len(statuses), not_killed)


def run_module(module: str, mutmut: Path) -> bool:
    """One ``mutmut run`` for the mutants of ``module``; False when mutmut failed."""
    name = dotted(module)
    log = MUTANTS / f"{module}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as output:
        # Top-level functions are x_<name>, methods x<U+01C1><class><U+01C1><name>.
        command = [str(mutmut), "run", f"{name}.x_*", f"{name}.x\u01c1*"]
        done = subprocess.run(
            command, check=False, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT
        )
    if done.returncode == 0:
        return True
    if (MUTANTS / f"{module}.meta").is_file() and not exit_codes(module):
        return True  # nothing to mutate: mutmut refuses a run that matches no mutant
    tail = log.read_text().replace("\r", "\n").strip().splitlines()[-20:]
    print(f"mutmut failed on {module} (exit {done.returncode}); the end of {log}:")
    print("\n".join(tail))
    return False


def report(files: list[str], threshold: float, seconds: dict[str, float]) -> int:
    width = max([len(f) for f in files] + [len("module")])
    print(f"{'module':<{width}}  {'killed / total':>14}  {'score':>6}  {'time':>7}")
    below: list[str] = []
    scores: list[Score] = []
    for module in files:
        if not (MUTANTS / f"{module}.meta").is_file():
            print(f"{module:<{width}}  {'not run':>14}")
            below.append(module)
            continue
        codes = exit_codes(module)
        if not codes:
            print(f"{module:<{width}}  {'no mutants':>14}")
            continue
        result = score(module, codes)
        scores.append(result)
        took = f"{seconds[module]:.0f} s" if module in seconds else ""
        fraction = f"{result.killed} / {result.total}"
        print(f"{module:<{width}}  {fraction:>14}  {result.percent:5.1f}%  {took:>7}")
        if result.percent < threshold:
            below.append(module)
    for result in scores:
        unchecked = [key for key, status in result.not_killed.items() if status == "not checked"]
        listed = {k: v for k, v in result.not_killed.items() if v != "not checked"}
        if listed or unchecked:
            print(f"\nnot killed in {result.module}:")
        for key, status in sorted(listed.items(), key=lambda pair: _order(pair[0])):
            print(f"  {key}  ({status})")
        if unchecked:
            print(f"  and {len(unchecked)} not checked (the run was cut short)")
    if below:
        print(f"\nbelow {threshold:g}%: {', '.join(below)}")
        return 1
    return 0


def _order(key: str) -> tuple[str, int]:
    """Mutant ids in their function's order, mutant 2 before mutant 10."""
    function, _, number = key.rpartition("__mutmut_")
    return function, int(number) if number.isdigit() else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["run", "report"])
    parser.add_argument("modules", nargs="*", help="files or folders (default: only_mutate)")
    parser.add_argument("--threshold", type=float, default=90.0, help="percent (default 90)")
    args = parser.parse_intermixed_args(argv)
    files = modules(args.modules, patterns())
    if not files:
        print("no module to mutate: none of [tool.mutmut] only_mutate exists")
        return 0
    seconds: dict[str, float] = json.loads(TIMES.read_text()) if TIMES.is_file() else {}
    if args.command == "run":
        mutmut = Path(sys.executable).parent / "mutmut"
        for module in files:
            if not has_functions((ROOT / module).read_text()):
                continue
            print(f"mutmut: {module} ...", flush=True)
            start = time.monotonic()
            if not run_module(module, mutmut):
                return 1
            seconds[module] = time.monotonic() - start
            TIMES.write_text(json.dumps(seconds, indent=2))
        print()
    return report(files, args.threshold, seconds)


if __name__ == "__main__":
    sys.exit(main())
