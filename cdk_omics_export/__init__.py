"""Export AWS HealthOmics read sets to Amazon S3 during ``cdk deploy``."""

from .read_set_export import ReadSetExport

__all__ = ["ReadSetExport"]
