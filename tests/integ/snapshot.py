#!/usr/bin/env python3
"""Check (or, with ``--update``, rewrite) the snapshot of the integration test app.

``python tests/integ/snapshot.py`` synthesizes ``integ_read_set_export.py`` in a process of
its own, with ``cdk.json``'s context the way the CDK CLI passes it, into a temporary folder,
and compares its templates and ``integ.json`` with ``integ_read_set_export.py.snapshot/``.
Nothing is deployed and no AWS credentials are needed.

As integ-runner does, the comparison ignores asset hashes (they change with every handler
edit) and, in the assertion stack, the ``salt`` that integ-tests sets to the synthesis time so
that the assertion runs on every deploy. The snapshot keeps the real values.

integ-runner's own snapshot check (``integ-runner --directory tests/integ --language
python``) is the convention, but its latest release (2.197.10) cannot read the cloud assembly
of aws-cdk-lib 2.275 (schema 55; it reads up to 53). The snapshot folder has integ-runner's
name and layout so that it can take over once a release reads this assembly.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
APP = HERE / "integ_read_set_export.py"
SNAPSHOT = HERE / f"{APP.name}.snapshot"
# The settings the app reads from the environment: the check always uses the demo values.
SETTINGS = ("OMICS_INTEG_SEQUENCE_STORE_ID", "OMICS_INTEG_READ_SET_IDS")
ASSET_HASH = re.compile(r"[0-9a-f]{64}")
SALT = re.compile(r'("salt": )"\d+"')


def synthesize(outdir: Path) -> None:
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    env = {key: value for key, value in os.environ.items() if key not in SETTINGS}
    env.update(CDK_OUTDIR=str(outdir), CDK_CONTEXT_JSON=json.dumps(context))
    process = subprocess.run(
        [sys.executable, str(APP)], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if process.returncode != 0:
        sys.exit(f"{APP.name} failed to synthesize:\n{process.stderr}")


def snapshot_files(assembly: Path) -> dict[str, str]:
    """What the snapshot keeps: the templates, the test cases and the assembly's manifest."""
    names = ["integ.json", "manifest.json"]
    names += sorted(p.name for p in assembly.glob("*.template.json"))
    return {name: (assembly / name).read_text() for name in names}


def normalized(name: str, text: str) -> str:
    if name == "manifest.json":
        # Only the stacks, their dependencies and outputs matter; metadata holds source paths.
        manifest: dict[str, Any] = json.loads(text)
        for artifact in manifest.get("artifacts", {}).values():
            artifact.pop("metadata", None)
        text = json.dumps(manifest, indent=1, sort_keys=True)
    return SALT.sub(r'\1"<salt>"', ASSET_HASH.sub("<asset-hash>", text))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--update", action="store_true", help="rewrite the snapshot")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cdk-omics-export-integ-") as tmp:
        synthesize(Path(tmp))
        actual = snapshot_files(Path(tmp))
    if args.update:
        shutil.rmtree(SNAPSHOT, ignore_errors=True)
        SNAPSHOT.mkdir()
        for name, text in actual.items():
            (SNAPSHOT / name).write_text(text)
        print(
            f"{APP.name}: snapshot written to {SNAPSHOT.relative_to(ROOT)}/ ({len(actual)} files)"
        )
        return 0
    if not SNAPSHOT.is_dir():
        print(f"{APP.name}: no snapshot; run `make integ-update`", file=sys.stderr)
        return 1
    expected = {p.name: p.read_text() for p in SNAPSHOT.iterdir() if p.is_file()}
    problems: list[str] = []
    for name in sorted(expected.keys() | actual.keys()):
        if name not in actual:
            problems.append(f"{name}: in the snapshot, not synthesized")
        elif name not in expected:
            problems.append(f"{name}: synthesized, not in the snapshot")
        else:
            old, new = normalized(name, expected[name]), normalized(name, actual[name])
            if old != new:
                diff = difflib.unified_diff(
                    old.splitlines(), new.splitlines(), "snapshot", "synthesized", lineterm="", n=2
                )
                problems.append(f"{name} changed:\n" + "\n".join(list(diff)[:60]))
    if problems:
        print(f"{APP.name}: snapshot differs\n" + "\n".join(problems), file=sys.stderr)
        print("Review the change, then `make integ-update` to accept it.", file=sys.stderr)
        return 1
    print(f"{APP.name}: snapshot matches ({len(expected)} files, asset hashes and salt aside)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
