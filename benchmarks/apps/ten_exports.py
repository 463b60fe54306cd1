"""Whole-app synthesis: one stack with 10 ReadSetExports (listed ids, each its own bucket).

Run as ``python benchmarks/apps/ten_exports.py [outdir]``: synthesizes into ``outdir`` (a new
temporary directory by default) and prints its phase timings (imports, construction,
synthesis) as one JSON line. `make bench` times it as a fresh process.
"""

import time

STARTED = time.perf_counter()

import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402

from aws_cdk import App, Stack  # noqa: E402

from cdk_omics_export import ReadSetExport  # noqa: E402

IMPORTED = time.perf_counter()
# BENCH_EXPORTS=1 makes the one-export app of the same comparison.
EXPORTS = int(os.environ.get("BENCH_EXPORTS", "10"))
STORE = "1234567890"


def read_sets(export: int) -> list[str]:
    return [str(4000000000 + export * 10 + n) for n in range(3)]


def main(outdir: str) -> dict[str, float]:
    began = time.perf_counter()
    app = App(outdir=outdir)
    stack = Stack(app, "TenExports")
    for n in range(EXPORTS):
        ReadSetExport(stack, f"Export{n}", sequence_store_id=STORE, read_set_ids=read_sets(n))
    constructed = time.perf_counter()
    app.synth()
    synthesized = time.perf_counter()
    return {"construction": constructed - began, "synth": synthesized - constructed}


if __name__ == "__main__":
    phases = main(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="ten-exports-"))
    print(json.dumps({"imports": IMPORTED - STARTED, **phases}))
