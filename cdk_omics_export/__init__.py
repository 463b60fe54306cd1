"""Export AWS HealthOmics read sets to Amazon S3 during ``cdk deploy``."""

from .read_set_export import ReadSetExport
from .read_set_filter import ReadSetFilter

__all__ = ["ReadSetExport", "ReadSetFilter"]
