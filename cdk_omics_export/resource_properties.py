"""What an export's custom resource tells the handler: the export's identity, what to select
(the ids inline, an S3 asset of them, or a filter: small at any number of read sets), where to
write, as which role and under which key, and how the deploy waits."""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path
from typing import Any

from aws_cdk import Stage
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from .handler import rules
from .handler.rules import ArchivedReadSets
from .props import ExportProps
from .validation import is_list_token


def selection_properties(
    scope: Construct, props: ExportProps
) -> tuple[dict[str, Any], s3_assets.Asset | None]:
    """The custom resource's selection properties, and the asset of the ids if there is one
    (a child of ``scope``, the export)."""
    selection: dict[str, Any]
    read_set_list: s3_assets.Asset | None = None
    if props.read_set_filter is not None:
        selection = {"ReadSetFilter": props.read_set_filter.to_api()}
    else:
        assert props.read_set_ids is not None
        ids = list(props.read_set_ids)
        if len(ids) <= rules.INLINE_READ_SET_LIMIT or is_list_token(ids):
            selection = {"ReadSetIds": ids}
        else:
            read_set_list = _read_set_list_asset(scope, ids)
            selection = {"ReadSetList": read_set_list.s3_object_url}
    if props.selection_refresh is not None:
        selection["SelectionRefresh"] = props.selection_refresh
    return selection, read_set_list


def resource_properties(
    props: ExportProps,
    selection: dict[str, Any],
    *,
    construct_path: str,
    destination: str,
    role_arn: str,
    key: kms.IKey | None,
) -> dict[str, Any]:
    """Every property of the custom resource, in the template's order."""
    # Manifests are written under the export's key, named by its ARN; without one, with
    # the bucket's default encryption and no key named (which DenyOtherKmsKeys refuses).
    encryption: dict[str, Any] = {}
    if key is not None:
        encryption["Encryption"] = "aws:kms"
        encryption["KmsKeyArn"] = key.key_arn
    return {
        # With the stack, the destination and the generation: the export's identity.
        "ConstructPath": construct_path,
        "ExportGeneration": props.export_generation,
        "SequenceStoreId": props.sequence_store_id,
        **selection,
        # Only with a filter: an id list has no empty selection to allow.
        **({"AllowEmptySelection": props.allow_empty_selection} if props.read_set_filter else {}),
        "Destination": destination,
        "RoleArn": role_arn,
        **encryption,
        "WaitForCompletion": props.wait_for_completion,
        **({"AllowPartialFailure": True} if props.allow_partial_failure else {}),
        # Absent means ACTIVATE, so templates from before the prop stay as they were.
        **(
            {"ArchivedReadSets": ArchivedReadSets.FAIL.value}
            if props.archived_read_sets is ArchivedReadSets.FAIL
            else {}
        ),
        # The handler fails with the jobs' ids before the waiter's bare timeout.
        "TimeoutSeconds": int(props.timeout.to_seconds()),
    }


def _read_set_list_asset(scope: Construct, read_set_ids: list[str]) -> s3_assets.Asset:
    """More ids than an event should carry: an S3 asset whose key is the hash of the sorted
    ids, so the same ids in another order are the same property (no new run). Written into
    the cloud assembly (cdk.out), which synthesis writes anyway: nothing is left in the temp
    directory."""
    stage = Stage.of(scope)
    if stage is None:
        raise ValueError(
            f"ReadSetExport {scope.node.path}: more than {rules.INLINE_READ_SET_LIMIT} "
            "read_set_ids travel as an asset, which needs the construct in an App"
        )
    folder = Path(stage.outdir) / "cdk-omics-export"
    return s3_assets.Asset(
        scope, "ReadSetList", path=str(_read_set_list_file(read_set_ids, folder))
    )


def _read_set_list_file(read_set_ids: list[str], folder: Path) -> Path:
    """The sorted ids in a file named by its content (synthesis stages it as the asset).
    Written to a temporary name and renamed, and rewritten unless it holds exactly these ids,
    so a file that a killed or parallel synth left half-written is never shipped."""
    content = json.dumps(sorted(read_set_ids)).encode()
    digest = hashlib.sha256(content).hexdigest()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"read-set-ids-{digest}.json"
    if not path.exists() or path.read_bytes() != content:
        with tempfile.NamedTemporaryFile(dir=folder, delete=False, suffix=".part") as part:
            part.write(content)
        Path(part.name).replace(path)
    return path
