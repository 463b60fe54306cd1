"""Export AWS HealthOmics read sets to Amazon S3 during ``cdk deploy``."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .handler.rules import ArchivedReadSets

if TYPE_CHECKING:
    from .compliance import ACKNOWLEDGED_RULES
    from .read_set_export import ReadSetExport
    from .read_set_filter import ReadSetFilter
    from .service import ReadSetExportService

__all__ = [
    "ACKNOWLEDGED_RULES",
    "ArchivedReadSets",
    "ReadSetExport",
    "ReadSetExportService",
    "ReadSetFilter",
]

# Importing aws_cdk starts Node.js through jsii; the status command (cdk_omics_export.cli)
# needs neither, so the construct is imported on first use.
_LAZY = {
    "ACKNOWLEDGED_RULES": ".compliance",
    "ReadSetExport": ".read_set_export",
    "ReadSetFilter": ".read_set_filter",
    "ReadSetExportService": ".service",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
