"""Synth-time checks of ReadSetExport's props: gather every problem, raise once."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Token
from aws_cdk import aws_s3 as s3
from constructs import Construct

from .handler import rules
from .read_set_filter import ReadSetFilter


def validate_export(
    scope: Construct,
    *,
    sequence_store_id: str,
    read_set_ids: list[str] | None,
    read_set_filter: ReadSetFilter | None,
    allow_empty_selection: bool,
    destination_prefix: str,
    destination_bucket: s3.IBucket | None,
    removal_policy: RemovalPolicy | None,
    auto_delete_objects: bool,
    timeout: Duration,
    export_generation: int,
) -> None:
    """Gather every problem with the props and raise once, naming each prop and rule."""
    problems: list[str] = []
    if not Token.is_unresolved(sequence_store_id):
        problems += rules.check_sequence_store_id(sequence_store_id)
    problems += _selection_problems(read_set_ids, read_set_filter, allow_empty_selection)
    problems += _destination_problems(
        destination_prefix, destination_bucket, removal_policy, auto_delete_objects
    )
    if not timeout.is_unresolved():
        problems += rules.check_timeout(int(timeout.to_seconds()))
    problems += rules.check_export_generation(export_generation)
    if problems:
        raise ValueError(
            f"ReadSetExport {scope.node.path}: invalid props:\n- " + "\n- ".join(problems)
        )


def _selection_problems(
    read_set_ids: list[str] | None,
    read_set_filter: ReadSetFilter | None,
    allow_empty_selection: bool,
) -> list[str]:
    problems: list[str] = []
    if (read_set_ids is None) == (read_set_filter is None):
        problems.append(
            "read_set_ids, read_set_filter: give exactly one (a list of ids, or a filter "
            "resolved at deploy time)"
        )
    if read_set_ids is not None and not is_list_token(read_set_ids):
        problems += rules.check_read_set_ids(_literal_ids(read_set_ids))
    if read_set_filter is not None:
        problems += rules.check_read_set_filter(read_set_filter.literal_fields())
    elif allow_empty_selection:
        problems.append("allow_empty_selection: applies only to read_set_filter")
    return problems


def _destination_problems(
    prefix: str,
    bucket: s3.IBucket | None,
    removal_policy: RemovalPolicy | None,
    auto_delete_objects: bool,
) -> list[str]:
    problems: list[str] = []
    if Token.is_unresolved(prefix):
        problems.append("destination_prefix: must be a literal string, not a token")
    else:
        name = bucket.bucket_name if bucket is not None else None
        known_name = name if name is not None and not Token.is_unresolved(name) else None
        problems += rules.check_destination_prefix(prefix, known_name)
    if bucket is not None:
        if removal_policy is not None:
            problems.append(
                "removal_policy: applies only to the bucket this construct creates; the "
                "lifecycle of destination_bucket is its owner's"
            )
        if auto_delete_objects:
            problems.append(
                "auto_delete_objects: applies only to the bucket this construct creates; it "
                "never empties destination_bucket"
            )
    elif auto_delete_objects and removal_policy != RemovalPolicy.DESTROY:
        problems.append(
            "auto_delete_objects: needs removal_policy=RemovalPolicy.DESTROY (exported data "
            "is kept unless you ask for both)"
        )
    return problems


def is_list_token(values: list[str]) -> bool:
    # A list token (e.g. Fn.split) is a one-element list; asking jsii about a 10,000-id list
    # would cost more than the rest of the synthesis.
    return len(values) == 1 and Token.is_unresolved(values)


def _literal_ids(values: list[str]) -> list[str | None]:
    """The ids with tokens replaced by None: one jsii call unless some id is a token."""
    if not Token.is_unresolved("\n".join(values)):
        return list(values)
    return [None if Token.is_unresolved(v) else v for v in values]
