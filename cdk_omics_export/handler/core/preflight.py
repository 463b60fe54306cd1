"""What the selection and the pre-flight decide and say: which read sets a filter selects
(and asks ListReadSets for), whether a read set can be exported (ACTIVE, or with activation
archived or being activated), what is kept of it for the manifest (never a sample, subject or
name), and the messages of a selection or pre-flight that cannot go on. Pure."""

from __future__ import annotations

from typing import Any, Literal

from . import records as st
from .model import MAX_NAMED, SELECTABLE, clip

try:  # imported as cdk_omics_export.handler.core.preflight (tests, the construct)
    from .. import rules
except ImportError:  # Lambda: the asset's root is on sys.path
    import rules  # type: ignore[import-not-found,no-redef]

Standing = Literal["EXPORTABLE", "ARCHIVED", "ACTIVATING", "PROBLEM"]


def filter_asked(read_set_filter: dict[str, str], activates: bool) -> dict[str, str]:
    """What ListReadSets is asked for: without activation only ACTIVE read sets are selected;
    with it, archived ones too (ListReadSets filters on one status at most)."""
    wanted = {**read_set_filter}
    if "status" not in wanted and not activates:
        wanted["status"] = "ACTIVE"
    return wanted


def selects(read_set_filter: dict[str, str], status: str) -> bool:
    """Whether a listed read set is selected: a status asked for is checked by the pre-flight;
    without one, read sets being deleted or that failed to upload are not selected."""
    return "status" in read_set_filter or status in SELECTABLE


def standing(status: str, activates: bool) -> Standing:
    """An ACTIVE read set is exportable; with activation, an archived one will be."""
    if status == "ACTIVE":
        return "EXPORTABLE"
    if activates and status in ("ARCHIVED", "ACTIVATING"):
        return "ARCHIVED" if status == "ARCHIVED" else "ACTIVATING"
    return "PROBLEM"


def facts_of(item: dict[str, Any]) -> st.ReadSetFacts:
    """What lets a consumer check the exported files later: the file type and HealthOmics'
    ETag. Never a sample, subject or name."""
    facts: st.ReadSetFacts = {}
    if item.get("fileType"):
        facts["fileType"] = str(item["fileType"])
    etag = item.get("etag")
    if isinstance(etag, dict):
        tag: st.ETag = {}
        for key in ("algorithm", "source1", "source2"):
            if etag.get(key):
                tag[key] = str(etag[key])
        facts["etag"] = tag
    return facts


def with_problem(preflight: st.Preflight, text: str, status: str) -> st.Preflight:
    """The pre-flight with one more read set that cannot be exported (the first few named)."""
    problems = preflight["problems"]
    if len(problems) < MAX_NAMED:
        problems = [*problems, text]
    return {
        **preflight,
        "problemCount": preflight["problemCount"] + 1,
        "problems": problems,
        "archived": preflight["archived"] or status == "ARCHIVED",
    }


def too_many(read_set_filter: dict[str, str], store: str) -> str:
    return (
        f"read_set_filter selected more than {rules.MAX_READ_SETS} read sets "
        f"in sequence store {store} (the filter on {rules.filter_fields(read_set_filter)}); "
        "one export takes at most that many. Narrow the filter (created_after, sample_id, "
        "...) or split the cohort across several ReadSetExport constructs."
    )


def none_selected(read_set_filter: dict[str, str], store: str) -> str:
    return (
        f"read_set_filter selected no read set in sequence store {store} (the filter on "
        f"{rules.filter_fields(read_set_filter)}); nothing was exported. Set "
        "allow_empty_selection=True to accept this."
    )


def refused(preflight: st.Preflight, to_export: int, store: str) -> str | None:
    """Why the pre-flight stops the run (None: every read set can be exported)."""
    if not preflight["problemCount"]:
        return None
    hint = (
        " Archived read sets can be restored with StartReadSetActivationJob."
        if preflight["archived"]
        else ""
    )
    named = rules.first_of(preflight["problems"], MAX_NAMED)
    if preflight["problemCount"] > len(preflight["problems"]):
        named += f" and {preflight['problemCount'] - len(preflight['problems'])} more"
    return clip(
        f"Pre-flight: {preflight['problemCount']} of {to_export} read sets to export "
        f"from sequence store {store} cannot be exported: {named}. No export job was "
        f"started.{hint}"
    )


def activation_notice(archived: int, to_export: int, store: str, wait: bool) -> str:
    """What the pre-flight tells of archived read sets, in the log and the reasons."""
    notice = (
        f"{archived} of {to_export} read sets to export from sequence store {store} are "
        "archived: they are activated first (StartReadSetActivationJob), and each is exported "
        "once active. Activation can take hours"
    )
    if wait:
        notice += (
            "; the deploy waits for it (wait_for_completion=True). With "
            "wait_for_completion=False the deploy ends once the read sets are checked, and "
            "the export carries on after it"
        )
    return notice + "."
