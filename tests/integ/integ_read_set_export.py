#!/usr/bin/env python3
"""Integration test: deploy the example export and check that its job completed.

An app for ``integ-runner`` (``aws-cdk.integ-tests-alpha``). ``make test`` only synthesizes
it and compares the result with the snapshot beside it (``make integ``); no account needed.
Run against an account (README, "Integration test"), it deploys the stack, asks HealthOmics
(GetReadSetExportJob) whether the export job of the deploy COMPLETED, and destroys the stacks.

The sequence store and read sets come from CDK context (``sequenceStoreId``, ``readSetIds``)
or, since integ-runner passes no context of its own, the environment
(``OMICS_INTEG_SEQUENCE_STORE_ID``, ``OMICS_INTEG_READ_SET_IDS``: ids separated by commas);
the demo values only let it synthesize. Unlike the example app, everything it creates is
removed on destroy, exported files included.

The name starts with ``integ_`` (integ-runner's Python preset), not ``test_``, so pytest does
not collect it.
"""

from __future__ import annotations

import os
from typing import Any

from aws_cdk import App, Duration, RemovalPolicy, Stack
from aws_cdk.integ_tests_alpha import ExpectedResult, IntegTest

from cdk_omics_export import ReadSetExport, ReadSetExportService

# Same settings as the example app (app.py), with demo ids that only synthesize.
DEMO_SEQUENCE_STORE_ID = "1234567890"
DEMO_READ_SET_IDS = "1111111111,2222222222"
ENV_SEQUENCE_STORE_ID = "OMICS_INTEG_SEQUENCE_STORE_ID"
ENV_READ_SET_IDS = "OMICS_INTEG_READ_SET_IDS"


def setting(app: App, key: str, env_var: str, demo: str) -> str:
    value: Any = app.node.try_get_context(key)
    if value is None:
        value = os.environ.get(env_var) or demo
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    return str(value)


def main() -> None:
    app = App()
    sequence_store_id = setting(
        app, "sequenceStoreId", ENV_SEQUENCE_STORE_ID, DEMO_SEQUENCE_STORE_ID
    )
    read_set_ids = [
        item.strip()
        for item in setting(app, "readSetIds", ENV_READ_SET_IDS, DEMO_READ_SET_IDS).split(",")
        if item.strip()
    ]

    # Environment-agnostic: deployed into the Region of the credentials (or integ-runner's).
    stack = Stack(app, "OmicsReadSetExportInteg")
    # A throwaway stack: the state table, key, log group and access logs go with it.
    ReadSetExportService(
        stack, "Exports", removal_policy=RemovalPolicy.DESTROY, auto_delete_objects=True
    )
    export = ReadSetExport(
        stack,
        "Export",
        sequence_store_id=sequence_store_id,
        read_set_ids=read_set_ids,
        destination_prefix="exports/",
        wait_for_completion=True,
        timeout=Duration.minutes(50),
        # The exported files are deleted with the stack, unlike the example app's.
        removal_policy=RemovalPolicy.DESTROY,
        auto_delete_objects=True,
    )

    integ = IntegTest(
        app,
        "ReadSetExportInteg",
        test_cases=[stack],
        # The snapshot holds the demo ids, which cannot deploy: deploy only the current app,
        # never the snapshot first.
        stack_update_workflow=False,
    )
    integ.assertions.aws_api_call(
        "Omics",
        "getReadSetExportJob",
        {"sequenceStoreId": sequence_store_id, "id": export.job_id},
    ).expect(ExpectedResult.object_like({"status": "COMPLETED"})).wait_for_assertions(
        total_timeout=Duration.minutes(30), interval=Duration.minutes(1)
    )

    app.synth()


if __name__ == "__main__":
    main()
