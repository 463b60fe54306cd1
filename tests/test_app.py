"""The example app: a snapshot of its template, and its context handling."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App
from aws_cdk.assertions import Template
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.json import JSONSnapshotExtension

import app as example

from .support import synth

ROOT = Path(__file__).parent.parent
# Asset hashes change with every handler edit; the template around them is the contract.
ASSET_HASH = re.compile(r"[0-9a-f]{64}")


def cdk_json_context() -> dict[str, Any]:
    context: dict[str, Any] = json.loads((ROOT / "cdk.json").read_text())["context"]
    return context


def example_template(**context: Any) -> dict[str, Any]:
    stack = example.build(App(context={**cdk_json_context(), **context}))
    return synth(stack).to_json()  # type: ignore[no-any-return]


def scrub(template: dict[str, Any]) -> Any:
    return json.loads(ASSET_HASH.sub("<asset-hash>", json.dumps(template)))


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return example_template()


def test_example_template_snapshot(template: dict[str, Any], snapshot: SnapshotAssertion) -> None:
    assert scrub(template) == snapshot(extension_class=JSONSnapshotExtension)


def test_scrubbing_hides_only_asset_hashes(template: dict[str, Any]) -> None:
    text = json.dumps(scrub(template))
    assert "<asset-hash>.zip" in text
    assert not ASSET_HASH.search(text)


def test_demo_defaults(template: dict[str, Any]) -> None:
    (resource,) = Template.from_json(template).find_resources("Custom::OmicsReadSetExport").values()
    props = resource["Properties"]
    assert props["SequenceStoreId"] == "1234567890"
    assert props["ReadSetIds"] == ["1111111111", "2222222222"]
    assert props["WaitForCompletion"] is True
    assert props["ServiceTimeout"] == "3300"


def test_context_from_the_command_line() -> None:
    # `cdk synth -c readSetIds=a,b -c waitForCompletion=false` passes strings.
    stack = example.build(
        App(
            context={
                "stackName": "Cohort",
                "sequenceStoreId": "9876543210",
                "readSetIds": "3333333333, 4444444444",
                "destinationPrefix": "cohort-7/",
                "waitForCompletion": "false",
                "timeoutMinutes": "20",
            }
        )
    )
    assert stack.stack_name == "Cohort"
    synth(stack).has_resource_properties(
        "Custom::OmicsReadSetExport",
        {
            "SequenceStoreId": "9876543210",
            "ReadSetIds": ["3333333333", "4444444444"],
            "WaitForCompletion": False,
            "ServiceTimeout": "1500",
        },
    )


def test_synthesis_is_byte_identical_across_processes(tmp_path: Path) -> None:
    """Teams snapshot their own stacks: this library must not churn them."""
    runs = [tmp_path / "first", tmp_path / "second"]
    processes = [
        subprocess.Popen(
            [sys.executable, str(ROOT / "app.py")],
            cwd=ROOT,
            env={**os.environ, "CDK_OUTDIR": str(outdir)},
            stderr=subprocess.PIPE,
        )
        for outdir in runs
    ]
    for process in processes:
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr.decode()
    first, second = ({p.name: p.read_bytes() for p in run.glob("*.json")} for run in runs)
    assert "OmicsReadSetExportExample.template.json" in first
    for name in (
        "OmicsReadSetExportExample.template.json",
        "OmicsReadSetExportExample.assets.json",
    ):
        assert first[name] == second[name], name
    assert sorted(p.name for p in runs[0].glob("asset.*")) == sorted(
        p.name for p in runs[1].glob("asset.*")
    )
