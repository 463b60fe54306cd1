#!/usr/bin/env python3
"""Example app: one stack that exports read sets with ReadSetExport.

Configured from CDK context, e.g.
``cdk deploy -c sequenceStoreId=1234567890 -c readSetIds=1111111111,2222222222``.
The demo defaults let ``cdk synth`` run on a machine without an AWS account.
"""

from __future__ import annotations

import os
from typing import Any

from aws_cdk import App, Duration, Environment, Stack

from cdk_omics_export import ReadSetExport

DEMO_CONTEXT: dict[str, Any] = {
    "stackName": "OmicsReadSetExportExample",
    "sequenceStoreId": "1234567890",
    "readSetIds": ["1111111111", "2222222222"],
    "destinationPrefix": "exports/",
    "waitForCompletion": True,
    "timeoutMinutes": 50,
}


def context(app: App, key: str) -> Any:
    value = app.node.try_get_context(key)
    return DEMO_CONTEXT[key] if value is None else value


def as_list(value: Any) -> list[str]:
    # `-c readSetIds=a,b` arrives as a string; cdk.json may hold a list.
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return [str(item) for item in value]


def as_bool(value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).lower() == "true"


def build(app: App) -> Stack:
    env = Environment(
        account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=os.environ.get("CDK_DEFAULT_REGION")
    )
    stack = Stack(app, context(app, "stackName"), env=env)
    ReadSetExport(
        stack,
        "Export",
        sequence_store_id=str(context(app, "sequenceStoreId")),
        read_set_ids=as_list(context(app, "readSetIds")),
        destination_prefix=str(context(app, "destinationPrefix")),
        wait_for_completion=as_bool(context(app, "waitForCompletion")),
        timeout=Duration.minutes(int(context(app, "timeoutMinutes"))),
    )
    return stack


if __name__ == "__main__":
    app = App()
    build(app)
    app.synth()
