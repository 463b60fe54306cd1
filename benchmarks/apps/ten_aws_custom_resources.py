"""Whole-app synthesis: one stack with 10 ``AwsCustomResource``s, each making the call a
ReadSetExport makes (StartReadSetExportJob): the baseline CDK itself offers.

Each one has what the call needs to work on AWS, as a user writing it by hand would give it:
a destination bucket (public access blocked, TLS only, SSE-KMS, versioned, retained), an
export role that HealthOmics assumes with s3:PutObject under the prefix, and a policy that
lets the custom resource start the job and pass that role.

Run as ``python benchmarks/apps/ten_aws_custom_resources.py [outdir]``: synthesizes into
``outdir`` (a new temporary directory by default) and prints its phase timings (imports,
construction, synthesis) as one JSON line. `make bench` times it as a fresh process.
"""

import time

STARTED = time.perf_counter()

import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402

from aws_cdk import App, RemovalPolicy, Stack  # noqa: E402
from aws_cdk import aws_iam as iam  # noqa: E402
from aws_cdk import aws_s3 as s3  # noqa: E402
from aws_cdk import custom_resources as cr  # noqa: E402

IMPORTED = time.perf_counter()
# BENCH_EXPORTS=1 makes the one-export app of the same comparison.
EXPORTS = int(os.environ.get("BENCH_EXPORTS", "10"))
STORE = "1234567890"


def read_sets(export: int) -> list[str]:
    return [str(4000000000 + export * 10 + n) for n in range(3)]


def main(outdir: str) -> dict[str, float]:
    began = time.perf_counter()
    app = App(outdir=outdir)
    stack = Stack(app, "TenAwsCustomResources")
    store_arn = stack.format_arn(service="omics", resource="sequenceStore", resource_name=STORE)
    for n in range(EXPORTS):
        bucket = s3.Bucket(
            stack,
            f"Bucket{n}",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            encryption=s3.BucketEncryption.KMS_MANAGED,
            versioned=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        role = iam.Role(
            stack,
            f"ExportRole{n}",
            assumed_by=iam.ServicePrincipal("omics.amazonaws.com"),
            managed_policies=[
                iam.ManagedPolicy(
                    stack,
                    f"ExportPolicy{n}",
                    statements=[
                        iam.PolicyStatement(
                            actions=["s3:PutObject"],
                            resources=[bucket.arn_for_objects("exports/*")],
                        )
                    ],
                )
            ],
        )
        cr.AwsCustomResource(
            stack,
            f"Export{n}",
            on_create=cr.AwsSdkCall(
                service="Omics",
                action="StartReadSetExportJob",
                parameters={
                    "sequenceStoreId": STORE,
                    "destination": f"s3://{bucket.bucket_name}/exports/",
                    "roleArn": role.role_arn,
                    "sources": [{"readSetId": r} for r in read_sets(n)],
                },
                physical_resource_id=cr.PhysicalResourceId.from_response("id"),
            ),
            policy=cr.AwsCustomResourcePolicy.from_statements(
                [
                    iam.PolicyStatement(
                        actions=["omics:StartReadSetExportJob"], resources=[store_arn]
                    ),
                    iam.PolicyStatement(actions=["iam:PassRole"], resources=[role.role_arn]),
                ]
            ),
        )
    constructed = time.perf_counter()
    app.synth()
    synthesized = time.perf_counter()
    return {"construction": constructed - began, "synth": synthesized - constructed}


if __name__ == "__main__":
    phases = main(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="ten-acr-"))
    print(json.dumps({"imports": IMPORTED - STARTED, **phases}))
