"""The transaction summary as a Ray job:

    python -m actors.jobs.transaction_summary --from 2026-11-01 --to 2026-11-30 --out DIR \
        [--partitions N]

It lives here, not in `engine/jobs/` (where the issue first named it), because it drives Ray
and `engine/` never imports Ray. The range is split into time slices (`plan_partitions`); each
slice is one Ray task running one bounded query (`engine.jobs.summary`), so the reads spread
over the cluster's CPUs; the driver merges the partial aggregates as they arrive and writes the
outputs (`engine.jobs.output`).

Run through `ray job submit` (or the reports API), Ray sets `RAY_ADDRESS` and the job joins
that cluster; run directly, it starts a local Ray on a free port. The database is the one of
the instance `paygrid serve` published in `PAYGRID_DATA_DIR` (which `paygrid serve` and the
reports API hand to their jobs), else `DATABASE_URL`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from datetime import date
from pathlib import Path

import ray
from pydantic import SecretStr
from tqdm import tqdm

from actors.options import summary_partition_options
from engine.config import Settings
from engine.errors import PaygridError
from engine.jobs.output import write_summary
from engine.jobs.partials import Summary, SummaryPartial, finish, merge
from engine.jobs.ranges import MAX_PARTITIONS, Partition, SummaryRange, plan_partitions
from engine.jobs.summary import read_partition
from engine.runtime.local import attach_instance, free_port

PARTITIONS_PER_CPU = 4


@ray.remote
def _read(dsn: SecretStr, partition: Partition) -> SummaryPartial:
    return asyncio.run(read_partition(dsn, partition))


def default_partitions() -> int:
    """A few slices per CPU of the cluster, so a slow slice does not leave the others idle."""
    cpus = int(ray.cluster_resources().get("CPU", 1))  # type: ignore[no-untyped-call]
    return min(MAX_PARTITIONS, max(1, cpus) * PARTITIONS_PER_CPU)


def summarize(
    dsn: SecretStr, span: SummaryRange, partitions: int, *, progress: bool = True
) -> Summary:
    """The summary of `span`, read in `partitions` Ray tasks on the connected cluster."""
    task = _read.options(**summary_partition_options())
    pending = [task.remote(dsn, p) for p in plan_partitions(span, partitions)]
    merged = SummaryPartial()
    with tqdm(total=len(pending), unit="partition", disable=not progress) as bar:
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            merge(merged, ray.get(done[0]))
            bar.update(1)
    return finish(merged)


def connect() -> None:
    """Join the cluster Ray named in `RAY_ADDRESS` (a submitted job), else start a local Ray
    with its GCS on a free port (its default, 6379, is Redis's)."""
    if not os.environ.get("RAY_ADDRESS"):
        os.environ.setdefault("RAY_GCS_SERVER_PORT", str(free_port()))
    ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m actors.jobs.transaction_summary",
        description="Summarize payments over whole UTC days (both ends included).",
    )
    parser.add_argument("--from", dest="first", type=date.fromisoformat, required=True)
    parser.add_argument("--to", dest="last", type=date.fromisoformat, required=True)
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument(
        "--partitions",
        type=int,
        default=0,
        help=f"time slices read in parallel (default: {PARTITIONS_PER_CPU} per cluster CPU)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the job; prints the manifest's path. Exit status 2 for bad arguments."""
    args = _parser().parse_args(argv)
    try:
        span = SummaryRange.checked(args.first, args.last)
        dsn = attach_instance(Settings()).database_url
    except (PaygridError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    connect()
    try:
        summary = summarize(dsn, span, args.partitions or default_partitions())
        write_summary(summary, span, args.out)
    finally:
        ray.shutdown()
    print(f"{summary.payments} payments summarized into {args.out.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
