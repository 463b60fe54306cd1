"""`make bench`: synthesis at cohort sizes, and a rehearsed 1,000-read-set deploy.

Prints figures; asserts nothing about time (shared machines vary), but exits non-zero when a
target is missed: synth at 10,000 read sets within 2x of synth at 1, the peak API rate never
above the quota, every read set exported exactly once.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"]
os.environ.setdefault("JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION", "1")

from aws_cdk import App, Stack  # noqa: E402

from cdk_omics_export import ReadSetExport  # noqa: E402
from cdk_omics_export.handler import index  # noqa: E402
from tests.omics_endpoint import OmicsEndpoint  # noqa: E402
from tests.provider_rehearsal import Rehearsal  # noqa: E402

SIZES = (1, 100, 1_000, 10_000)
RUNS = 3
STORE = "1234567890"
QUOTA_RPS = 5
QUOTA_JOBS = 5
JOB_SECONDS = 600.0
POLL_SECONDS = 30


def cohort(count: int) -> list[str]:
    return [str(4000000000 + n) for n in range(count)]


def synth_once(count: int) -> tuple[float, dict[str, Any]]:
    outdir = tempfile.mkdtemp(prefix="bench-synth-")
    started = time.perf_counter()
    app = App(outdir=outdir)
    stack = Stack(app, "Bench")
    ReadSetExport(stack, "Export", sequence_store_id=STORE, read_set_ids=cohort(count))
    app.synth()
    elapsed = time.perf_counter() - started
    template = json.loads((Path(outdir) / "Bench.template.json").read_text())
    return elapsed, template


def bench_synth() -> dict[int, float]:
    for _ in range(2):  # warm up jsii, the imports and the asset cache
        synth_once(1)
    print("Synthesis (median of 3 in-process runs after a warm-up)")
    print(
        f"{'read sets':>10} {'synth s':>8} {'template bytes':>15} {'resources':>10} {'outputs':>8}"
    )
    medians: dict[int, float] = {}
    for count in SIZES:
        times, template = [], {}
        for _ in range(RUNS):
            elapsed, template = synth_once(count)
            times.append(elapsed)
        medians[count] = statistics.median(times)
        size = len(json.dumps(template, separators=(",", ":")))
        print(
            f"{count:>10,} {medians[count]:>8.2f} {size:>15,} "
            f"{len(template['Resources']):>10} {len(template.get('Outputs', {})):>8}"
        )
    return medians


class SimulatedRehearsal(Rehearsal):
    """Each invocation takes one poll interval of simulated time."""

    def __init__(self, clock: list[float], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.clock = clock
        self.invocations = 0

    def between_polls(self) -> None:
        self.invocations += 1
        self.clock[0] += POLL_SECONDS


def bench_rehearsal(count: int = 1_000) -> dict[str, Any]:
    clock = [0.0]
    start = datetime(2026, 11, 29, tzinfo=UTC)
    endpoint = OmicsEndpoint(
        max_requests_per_second=QUOTA_RPS,
        max_concurrent_jobs=QUOTA_JOBS,
        job_seconds=JOB_SECONDS,
        clock=lambda: clock[0],
    )
    ids = cohort(count)
    endpoint.add_read_sets(STORE, ids)
    endpoint.add_read_sets(STORE, cohort(5_000)[count:])  # a store holding more than the cohort
    endpoint.objects[("cdk-assets", "ids.json")] = json.dumps(ids).encode()
    index.now = lambda: start + timedelta(seconds=clock[0])  # type: ignore[assignment]
    properties = {
        "ServiceToken": "arn:aws:lambda:us-east-1:111122223333:function:framework-onEvent",
        "SequenceStoreId": STORE,
        "ReadSetList": "s3://cdk-assets/ids.json",
        "Destination": "s3://export-bucket/exports/",
        "RoleArn": "arn:aws:iam::111122223333:role/ExportRole",
        "WaitForCompletion": True,
        "TimeoutSeconds": 3000,
        "PollIntervalSeconds": POLL_SECONDS,
        "MaxRequestsPerSecond": QUOTA_RPS,
    }
    with endpoint.serve() as url:
        os.environ.update(
            AWS_ENDPOINT_URL_OMICS=url,
            AWS_ENDPOINT_URL_S3=url,
            AWS_DISABLE_HOST_PREFIX_INJECTION="true",
            AWS_REQUEST_CHECKSUM_CALCULATION="when_required",
            AWS_DEFAULT_REGION="us-east-1",
            AWS_ACCESS_KEY_ID="AKIABENCH",
            AWS_SECRET_ACCESS_KEY="bench",
        )
        index.omics_client.cache_clear()
        index.s3_client.cache_clear()
        cfn = SimulatedRehearsal(clock, max_attempts=100)
        wall = time.perf_counter()
        response = cfn.request("Create", properties)
        wall = time.perf_counter() - wall
    omics = [r for r in endpoint.requests if not r[1].startswith("s3:")]
    exported = endpoint.exported()
    return {
        "status": response.status,
        "reason": response.reason,
        "read sets": count,
        "jobs started": len(endpoint.jobs),
        "API requests": len(omics),
        "peak requests/s": endpoint.peak_requests_per_second(omics_only=True),
        "throttled (429)": sum(1 for r in omics if r[2] == 429),
        "quota refusals (402)": sum(1 for r in omics if r[2] == 402),
        "polls": response.polls,
        "simulated deploy s": clock[0],
        "wall s": round(wall, 1),
        "exported once": sorted(exported) == sorted(ids),
        "largest event bytes": cfn.largest_event,
    }


def main() -> int:
    medians = bench_synth()
    ratio = medians[10_000] / medians[1]
    print(f"synth at 10,000 / synth at 1: {ratio:.2f}x (target: within 2x)")
    print()
    print(
        f"Rehearsed deploy: 1,000 read sets, local endpoint enforcing {QUOTA_RPS} requests/s and "
        f"{QUOTA_JOBS} concurrent jobs, jobs of {JOB_SECONDS:.0f} s simulated, polls every "
        f"{POLL_SECONDS} s"
    )
    result = bench_rehearsal()
    for key, value in result.items():
        if key != "reason" or value:
            print(f"  {key}: {value}")
    failures = []
    if ratio > 2:
        failures.append(f"synth at 10,000 is {ratio:.2f}x synth at 1")
    if result["peak requests/s"] > QUOTA_RPS:
        failures.append(f"peak {result['peak requests/s']} requests/s exceeds {QUOTA_RPS}")
    if not result["exported once"] or result["status"] != "SUCCESS":
        failures.append("not every read set was exported exactly once")
    for failure in failures:
        print(f"TARGET MISSED: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
