"""The example app: a snapshot of its template, and its context handling."""

from __future__ import annotations

import base64
import hashlib
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

from .support import synth, template_json

ROOT = Path(__file__).parent.parent
# Asset hashes change with every handler edit; the template around them is the contract.
ASSET_HASH = re.compile(r"[0-9a-f]{64}")


def cdk_json_context() -> dict[str, Any]:
    context: dict[str, Any] = json.loads((ROOT / "cdk.json").read_text())["context"]
    return context


def example_template(outdir: Path | None = None, **context: Any) -> dict[str, Any]:
    app = App(context={**cdk_json_context(), **context}, outdir=outdir and str(outdir))
    return template_json(synth(example.build(app)))


def scrub(template: dict[str, Any]) -> Any:
    return json.loads(ASSET_HASH.sub("<asset-hash>", json.dumps(template)))


@pytest.fixture(scope="module")
def outdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cdk.out")


@pytest.fixture(scope="module")
def template(outdir: Path) -> dict[str, Any]:
    """The example app as `cdk synth` builds it (cdk.json's context), written to outdir."""
    return example_template(outdir)


def test_example_template_snapshot(template: dict[str, Any], snapshot: SnapshotAssertion) -> None:
    assert scrub(template) == snapshot(extension_class=JSONSnapshotExtension)


def test_scrubbing_hides_only_asset_hashes(template: dict[str, Any]) -> None:
    text = json.dumps(scrub(template))
    assert "<asset-hash>.zip" in text
    assert not ASSET_HASH.search(text)


def test_demo_defaults(template: dict[str, Any]) -> None:
    (resource,) = Template.from_json(template).find_resources("Custom::OmicsReadSetExport").values()
    props = resource["Properties"]
    assert props["ConstructPath"] == "OmicsReadSetExportExample/Export"
    assert props["ExportGeneration"] == 0
    assert props["SequenceStoreId"] == "1234567890"
    assert props["ReadSetIds"] == ["1111111111", "2222222222"]
    assert props["WaitForCompletion"] is True
    assert props["TimeoutSeconds"] == 3000
    assert props["ServiceTimeout"] == "3300"
    assert sorted(template["Outputs"]) == [
        "ExportJobId5605F428",
        "ExportJobStatus100CA25E",
        "ExportManifestUriA51BFD51",
        "ReadSetExportServiceRunnerStateMachineArn84EEB7CB",
        "ReadSetExportServiceStateTableName94926865",
    ]


def test_example_stack_has_one_service(template: dict[str, Any]) -> None:
    types = [resource["Type"] for resource in template["Resources"].values()]
    assert types.count("AWS::DynamoDB::Table") == 1
    assert types.count("AWS::KMS::Key") == 1
    pythons = [
        r
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function" and r["Properties"]["Runtime"].startswith("python")
    ]
    assert sorted(r["Properties"]["Handler"] for r in pythons) == [
        "index.on_event",
        "index.run_step",
    ]
    assert types.count("AWS::Lambda::Function") == 2  # no Node.js function
    # The runner alone: it answers CloudFormation itself.
    assert types.count("AWS::StepFunctions::StateMachine") == 1


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


def test_synthesis_is_byte_identical_across_processes(
    template: dict[str, Any], outdir: Path, tmp_path: Path
) -> None:
    """Teams snapshot their own stacks: this library must not churn them. `python app.py`
    in a process of its own, given cdk.json's context the way the CDK CLI passes it, writes
    the same bytes as the synthesis of the module's template in this process (another hash
    seed, another jsii runtime, another temp dir)."""
    process = subprocess.run(
        [sys.executable, str(ROOT / "app.py")],
        cwd=ROOT,
        env={
            **os.environ,
            "CDK_OUTDIR": str(tmp_path),
            "CDK_CONTEXT_JSON": json.dumps(cdk_json_context()),
        },
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert process.returncode == 0, process.stderr.decode()
    runs = [tmp_path, outdir]
    first, second = ({p.name: p.read_bytes() for p in run.glob("*.json")} for run in runs)
    assert "OmicsReadSetExportExample.template.json" in first
    for name in (
        "OmicsReadSetExportExample.template.json",
        "OmicsReadSetExportExample.assets.json",
    ):
        assert first[name] == second[name], name
    assert json.loads(first["OmicsReadSetExportExample.template.json"]) == template
    assert sorted(p.name for p in runs[0].glob("asset.*")) == sorted(
        p.name for p in runs[1].glob("asset.*")
    )


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def test_the_pinned_cdk_cli_reads_what_the_locked_library_writes(
    template: dict[str, Any], outdir: Path
) -> None:
    """`make synth` runs the CLI pinned in package.json on the assembly that the locked
    aws-cdk-lib writes: the CLI must be at least the version the assembly asks for (an older
    one refuses it), and package-lock.json must hold that same version."""
    manifest = json.loads((outdir / "manifest.json").read_text())
    wanted = manifest["minimumCliVersion"]
    pinned = json.loads((ROOT / "package.json").read_text())["devDependencies"]["aws-cdk"]
    locked = json.loads((ROOT / "package-lock.json").read_text())
    assert locked["packages"]["node_modules/aws-cdk"]["version"] == pinned
    assert _version(pinned) >= _version(wanted), (pinned, wanted)


def test_no_file_of_the_environment_is_left_to_install_order() -> None:
    """Two locked packages ship aws_cdk/cloud_assembly_schema/__init__.py; the Makefile
    installs aws-cdk-lib last so its file is the one present, as pip's order would give.
    (With the other, jsii cannot resolve aws-cdk-lib's cloud assembly types.)"""
    import aws_cdk  # noqa: PLC0415 - the installed package itself is under test

    site = Path(aws_cdk.__file__).parent.parent
    owners: dict[str, list[tuple[str, str]]] = {}
    for record in site.glob("*.dist-info/RECORD"):
        for line in record.read_text().splitlines():
            path, digest, _ = line.rsplit(",", 2)
            if digest and not path.endswith(".pyc"):
                owners.setdefault(path, []).append((record.parent.name, digest))
    for path, claims in owners.items():
        if len(claims) < 2:
            continue
        content = (site / path).read_bytes()
        present = "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(content).digest()).decode()
        winners = [name for name, digest in claims if digest == present.rstrip("=")]
        assert winners and winners[0].startswith("aws_cdk_lib-"), (path, claims, winners)
