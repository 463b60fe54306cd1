"""What the compliance packs say of two stacks: the example app's, and one with a notification
topic, an on_status_change rule, a key of the user's and a filter.

For each, cdk-nag's AwsSolutions, HIPAA Security and NIST 800-53 rev 5 packs (findings left
open, and findings the construct acknowledges with a reason) and, when ``CHECKOV`` names a
checkov executable, checkov's passed and failed checks on the synthesized template.

    python benchmarks/compliance_report.py
    CHECKOV=/path/to/checkov python benchmarks/compliance_report.py

checkov is not a dependency of the project: install it in a virtualenv of its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aws_cdk import App, Stack, Validations
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from cdk_nag import AwsSolutionsChecks, HIPAASecurityChecks, NIST80053R5Checks

ROOT = Path(__file__).parent.parent
sys.path.insert(0, str(ROOT))

import app as example  # noqa: E402
from cdk_omics_export import ReadSetExport, ReadSetFilter  # noqa: E402


def everything(app: App) -> Stack:
    stack = Stack(app, "Everything")
    key = kms.Key(stack, "DataKey", enable_key_rotation=True)
    topic = sns.Topic(stack, "OnCall", master_key=key, enforce_ssl=True)
    export = ReadSetExport(
        stack,
        "Export",
        sequence_store_id="1234567890",
        read_set_filter=ReadSetFilter(sample_id="S1"),
        encryption_key=key,
        notification_topic=topic,
    )
    export.on_status_change("Watch")
    return stack


STACKS: dict[str, Callable[[App], Stack]] = {"example": example.build, "everything": everything}


def report(name: str, build: Callable[[App], Stack], outdir: Path) -> dict[str, Any]:
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    app = App(context=context, outdir=str(outdir))
    Validations.of(app).add_plugins(
        AwsSolutionsChecks(app), HIPAASecurityChecks(app), NIST80053R5Checks(app)
    )
    stack = build(app)
    try:
        app.synth()
    except RuntimeError:
        pass  # open findings fail the synthesis; the report lists them
    nag = json.loads((outdir / "validation-report.json").read_text())
    result: dict[str, Any] = {"stack": name, "cdk-nag": {}}
    for plugin in nag["pluginReports"]:
        count = Counter[str]()
        for kind in ("violations", "suppressedViolations"):
            for violation in plugin[kind]:
                count[kind] += len(violation["violatingConstructs"])
        result["cdk-nag"][plugin["pluginName"]] = {
            "open": count["violations"],
            "acknowledged": count["suppressedViolations"],
        }
    checkov = os.environ.get("CHECKOV")
    if checkov:
        template = outdir / stack.template_file
        ran = subprocess.run(
            [checkov, "-f", str(template), "--framework", "cloudformation", "-o", "json"],
            capture_output=True,
            text=True,
            check=False,
        )
        found = json.loads(ran.stdout)
        summary = found["summary"]
        result["checkov"] = {
            "passed": summary["passed"],
            "failed": summary["failed"],
            "failed checks": sorted(
                f"{c['check_id']} {c['resource']}" for c in found["results"]["failed_checks"]
            ),
        }
    return result


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        for name, build in STACKS.items():
            outdir = Path(folder) / name
            print(json.dumps(report(name, build, outdir), indent=1))


if __name__ == "__main__":
    main()
