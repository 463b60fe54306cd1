"""Where one whole-app synthesis spends its time, in one fresh process.

Run as a script (``make bench`` does, when whole-app synthesis misses its target)::

    python -X importtime benchmarks/profile_app.py <app script> <report.json>

with ``NODE_OPTIONS=--cpu-prof --cpu-prof-dir=<dir>`` so that jsii's Node.js process writes a
CPU profile too. The app's module is loaded (its imports), then its ``main(outdir)`` runs (the
constructs, then ``app.synth()``), all under cProfile. Every jsii round trip to Node.js is
timed and attributed to the innermost frame of ``cdk_omics_export`` (or of the app script)
that made it, and every callback from Node.js into Python (Lazy producers, aspects,
validations) is timed by the Python method it calls. The report is JSON; ``bench.py`` prints
it with the summaries of ``-X importtime`` (:func:`import_times`) and of the Node.js profile
(:func:`node_phases`).
"""

from __future__ import annotations

import cProfile
import importlib.util
import json
import pstats
import re
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import jsii._kernel as kernel
from jsii import _reference_map
from jsii._kernel.providers import process

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = str(ROOT / "cdk_omics_export") + "/"


class _Recorder:
    """jsii round trips and callbacks, by phase and by the code that caused them."""

    def __init__(self, app: Path) -> None:
        self.app = str(app)
        self.phase = "imports"
        # phase -> site -> [round trips, seconds]
        self.sends: dict[str, dict[str, list[float]]] = defaultdict(
            lambda: defaultdict(lambda: [0, 0.0])
        )
        # callback -> [count, seconds (inclusive), round trips made inside]
        self.callbacks: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0])
        self._in_callback: list[str] = []
        self.phase_seconds: dict[str, float] = {}

    def site(self, frame: FrameType | None) -> str:
        while frame is not None:
            name = frame.f_code.co_filename
            if name.startswith(PACKAGE):
                return f"{name.removeprefix(str(ROOT) + '/')}:{frame.f_code.co_name}"
            if name == self.app:
                return f"{Path(name).name}:{frame.f_code.co_name}"
            frame = frame.f_back
        return "(jsii and aws_cdk, outside any app frame)"

    def wrap_send(self, send: Callable[..., Any]) -> Callable[..., Any]:
        def timed(process: Any, request: Any, response_type: Any) -> Any:
            started = time.perf_counter()
            try:
                return send(process, request, response_type)
            finally:
                elapsed = time.perf_counter() - started
                entry = self.sends[self.phase][self.site(sys._getframe(1))]
                entry[0] += 1
                entry[1] += elapsed
                if self._in_callback:
                    self.callbacks[self._in_callback[-1]][2] += 1

        return timed

    def wrap_callback(self, handle: Callable[..., Any]) -> Callable[..., Any]:
        def timed(kernel: Any, callback: Any) -> Any:
            label = _callback_label(callback)
            self._in_callback.append(label)
            started = time.perf_counter()
            try:
                return handle(kernel, callback)
            finally:
                self._in_callback.pop()
                entry = self.callbacks[label]
                entry[0] += 1
                entry[1] += time.perf_counter() - started

        return timed


def _callback_label(callback: Any) -> str:
    request = callback.invoke or callback.get or callback.set
    kind = "invoke" if callback.invoke else "get" if callback.get else "set"
    try:
        target = _reference_map.resolve_id(request.objref.ref)
        owner = f"{type(target).__module__}.{type(target).__qualname__}"
    except Exception:  # noqa: BLE001
        owner = "?"
    return f"{owner}.{callback.cookie} ({kind})"


def profile(app: Path, outdir: str) -> dict[str, Any]:
    recorder = _Recorder(app)
    process._NodeProcess.send = recorder.wrap_send(process._NodeProcess.send)  # type: ignore[method-assign]
    kernel._handle_callback = recorder.wrap_callback(kernel._handle_callback)

    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    spec = importlib.util.spec_from_file_location("bench_app", app)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    imported = time.perf_counter()

    aws_cdk = sys.modules["aws_cdk"]  # imported by the app
    synth = aws_cdk.App.synth
    synth_seconds = [0.0]

    def timed_synth(self: Any, *args: Any, **kwargs: Any) -> Any:
        recorder.phase = "synth"
        began = time.perf_counter()
        try:
            return synth(self, *args, **kwargs)
        finally:
            synth_seconds[0] += time.perf_counter() - began

    aws_cdk.App.synth = timed_synth
    recorder.phase = "construction"
    module.main(outdir)
    profiler.disable()
    ended = time.perf_counter()

    stats = pstats.Stats(profiler)
    return {
        "app": app.name,
        "seconds": {
            "imports": imported - started,
            "construction": ended - imported - synth_seconds[0],
            "synth": synth_seconds[0],
            "total": ended - started,
        },
        "sends": {phase: dict(sites) for phase, sites in recorder.sends.items()},
        "callbacks": dict(recorder.callbacks),
        "functions": _our_functions(stats),
        "modules": _module_imports(stats),
    }


def _entries(stats: pstats.Stats) -> dict[tuple[str, int, str], tuple[Any, ...]]:
    entries: dict[tuple[str, int, str], tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]
    return entries


def _our_functions(stats: pstats.Stats) -> list[dict[str, Any]]:
    rows = []
    for (filename, line, name), (_, calls, own, cumulative, _) in _entries(stats).items():
        if filename.startswith(PACKAGE) and name != "<module>":
            rows.append(
                {
                    "function": f"{filename.removeprefix(str(ROOT) + '/')}:{line}:{name}",
                    "calls": calls,
                    "own": own,
                    "cumulative": cumulative,
                }
            )
    return sorted(rows, key=lambda r: -float(r["cumulative"]))


def _module_imports(stats: pstats.Stats) -> list[dict[str, Any]]:
    """Cumulative seconds of each module body (cProfile sees the imports that
    ``importlib.import_module`` makes, which ``-X importtime`` does not)."""
    rows = []
    for (filename, _, name), (_, _, _, cumulative, _) in _entries(stats).items():
        if name != "<module>":
            continue
        if filename.startswith(PACKAGE):
            module = filename.removeprefix(str(ROOT) + "/")
        elif "/site-packages/" in filename:
            module = filename.split("/site-packages/", 1)[1]
        else:
            continue
        rows.append({"module": module.removesuffix(".py"), "cumulative": cumulative})
    return sorted(rows, key=lambda r: -float(r["cumulative"]))


# Reading what the profilers wrote


def import_times(stderr: str) -> list[tuple[str, int, int]]:
    """``-X importtime`` lines as (module with its indentation, self µs, cumulative µs)."""
    rows = []
    for line in stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)$", line)
        if match:
            own, cumulative, indent, name = match.groups()
            rows.append((indent + name, int(own), int(cumulative)))
    return rows


SYNTH_PHASES = (
    ("validateTemplates", "template validation (CDK's CloudFormation validator), all of it"),
    ("_singletonInstance", "  of which the validator's WASM engine start-up (both apps pay it)"),
    ("doInvokeValidationPlugins", "  of which validating this template (grows with its size)"),
    ("invokeAspectsV2", "aspects (Python callbacks, e.g. the service's _BuildAtSynthesis)"),
    ("prepareApp", "prepareApp (references, dependencies)"),
    ("validateTree", "construct validations (node.add_validation callbacks)"),
    ("synthesizeTree", "writing the template, assets and metadata"),
)


def node_phases(profile_path: Path) -> dict[str, float]:
    """Seconds of Node.js's ``synthesize`` and its phases, from a ``--cpu-prof`` profile.

    Time Node.js spends blocked on Python (a callback) is sampled inside the phase that asked
    for it, so callbacks show up where they were made.
    """
    profile = json.loads(profile_path.read_text())
    nodes = {node["id"]: node for node in profile["nodes"]}
    own: Counter[int] = Counter()
    for sample, delta in zip(profile["samples"], profile["timeDeltas"], strict=True):
        own[sample] += delta
    inclusive: dict[int, float] = {}

    def total(node_id: int) -> float:
        if node_id not in inclusive:
            children = nodes[node_id].get("children", [])
            inclusive[node_id] = own[node_id] + sum(total(c) for c in children)
        return inclusive[node_id]

    def name(node_id: int) -> str:
        return str(nodes[node_id]["callFrame"]["functionName"])

    found: dict[str, float] = defaultdict(float)

    def walk(node_id: int, inside: frozenset[str]) -> None:
        label = name(node_id)
        wanted = {"synthesize"} | {phase for phase, _ in SYNTH_PHASES}
        if label in wanted and label not in inside:
            found[label] += total(node_id) / 1e6
            inside = inside | {label}
        for child in nodes[node_id].get("children", []):
            walk(child, inside)

    sys.setrecursionlimit(100_000)
    root = profile["nodes"][0]["id"]
    walk(root, frozenset())
    return dict(found)


def largest_profile(directory: Path) -> Path | None:
    profiles = sorted(directory.glob("*.cpuprofile"), key=lambda p: p.stat().st_size)
    return profiles[-1] if profiles else None


def main() -> None:
    app, report = Path(sys.argv[1]).resolve(), Path(sys.argv[2])
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as outdir:
        result = profile(app, outdir)
    report.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
