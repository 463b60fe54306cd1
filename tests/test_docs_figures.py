"""The figures the README and docs/ state about the templates come from the templates: each is
computed here from a synthesis and must appear, as stated, on its page. (Figures measured by
`make bench` are checked there.)"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_s3 as s3

from cdk_omics_export import ReadSetExport

from .support import state_machine_definition

ROOT = Path(__file__).parent.parent


def _template(exports: int, *, own_bucket: bool = False) -> dict[str, Any]:
    app = App()
    stack = Stack(app, "Figures")
    lake = s3.Bucket.from_bucket_name(stack, "Lake", "genomics-data-lake") if own_bucket else None
    for n in range(exports):
        ReadSetExport(
            stack,
            f"Export{n}",
            sequence_store_id="1234567890",
            read_set_ids=["1111111111"],
            destination_prefix="exports/",
            destination_bucket=lake,
        )
    template: dict[str, Any] = app.synth().get_stack_by_name("Figures").template
    return template


@pytest.fixture(scope="module")
def counts() -> dict[str, Any]:
    one, two, fifty = (_template(n) for n in (1, 2, 50))
    own_one, own_two = (_template(n, own_bucket=True) for n in (1, 2))
    resources = {name: len(t["Resources"]) for name, t in locals().items() if isinstance(t, dict)}
    per_export = resources["two"] - resources["one"]
    per_own_export = resources["own_two"] - resources["own_one"]
    service = resources["own_one"] - per_own_export
    (machine,) = (
        r for r in one["Resources"].values() if r["Type"] == "AWS::StepFunctions::StateMachine"
    )
    definition = state_machine_definition(machine["Properties"]["DefinitionString"])
    lambda_retry, step_retry = definition["States"]["Step"]["Retry"]
    return {
        "lambda_retry": lambda_retry,
        "step_retry": step_retry,
        "one": resources["one"],
        "fifty": resources["fifty"],
        "fifty_outputs": len(fifty["Outputs"]),
        "per_export": per_export,
        "per_own_export": per_own_export,
        "service": service,
        "access_logs": resources["one"] - per_export - service,
    }


def page(name: str) -> str:
    """A page's text with line breaks folded, as a reader sees it."""
    return re.sub(r"\s+", " ", (ROOT / name).read_text())


def test_resource_counts_in_the_readme(counts: dict[str, Any]) -> None:
    readme = page("README.md")
    assert f"{counts['service']} resources, plus {counts['access_logs']}." in readme
    assert f"One export is {counts['one']} resources" in readme


def test_resource_counts_in_what_it_provisions(counts: dict[str, Any]) -> None:
    text = page("docs/provisioning.md")
    assert f"| the service (once per stack, default options) | {counts['service']}," in text
    assert f"(+{counts['access_logs']}, the access log bucket and its policy" in text
    assert f"| each further export with a created bucket | {counts['per_export']} (" in text
    assert f"| each further export into your bucket | {counts['per_own_export']} |" in text
    assert f"one export with a created bucket is {counts['one']} resources" in text
    assert (
        f"50 fit one stack ({counts['fifty']} resources, {counts['fifty_outputs']} outputs)" in text
    )


def _total_wait(retry: dict[str, Any]) -> float:
    attempts, rate, cap = retry["MaxAttempts"], retry["BackoffRate"], retry["MaxDelaySeconds"]
    return float(sum(min(retry["IntervalSeconds"] * rate**n, cap) for n in range(attempts)))


def test_retry_figures(counts: dict[str, Any]) -> None:
    """The runner's retry figures: Lambda's own errors, then the step's own (at the default
    poll interval, 30 s)."""
    lambda_retry, step_retry = counts["lambda_retry"], counts["step_retry"]
    lambda_minutes = round(_total_wait(lambda_retry) / 60)
    stated = (
        f"{lambda_retry['MaxAttempts']} times from {lambda_retry['IntervalSeconds']} s, "
        f"doubling, at most {lambda_retry['MaxDelaySeconds']} s apart"
    )
    step_stated = (
        f"{step_retry['MaxAttempts']} times from the poll interval, doubling, at most "
        f"{step_retry['MaxDelaySeconds'] // 60} minutes apart"
    )
    assert step_retry["IntervalSeconds"] == 30 and lambda_retry["BackoffRate"] == 2
    for name in ("docs/provisioning.md", "docs/long-exports.md"):
        text = page(name)
        assert stated in text and f"about {lambda_minutes} minutes" in text, name
        assert step_stated in text and "about two hours" in text, name
    assert round(_total_wait(step_retry) / 3600) == 2
