"""Lambda code of the ReadSetExport custom resource: standard library and boto3 only."""
