"""Purchase throughput: paygrid's full path, per configuration, beside a plain uvicorn + FastAPI +
asyncpg process measured in the same invocation, so the ratio survives a noisy box.

paygrid's path: API-key auth, pydantic validation, Idempotency-Key (a fresh one per request),
routing to the customer's ledger shard, the `processing` write, the sandbox gateway, the
finalizing transaction with ledger entry, outbox event, audit rows and idempotency record.

Two phases per configuration (each its own deployment, since the sandbox latency is a setting):
- c=32 with the sandbox at 0 ms, ratio to the baseline at c=32 (its CPU cost per payment);
- c=256 with the sandbox at 300 ms, ratio to the Little's-law bound c / 0.3 s (how well it
  overlaps slow gateway calls).
Configurations: the defaults (counts fitted to the CPUs Ray sees), then 1 replica with each of
`--shards` ledger shards; one that equals the fitted defaults is measured once. Each through
every gateway of `--gateways`: the sandbox, and `authorizenet`, the Authorize.Net adapter against
the fake server run as its own process on 127.0.0.1 with the phase's latency (so the adapter's
own cost per request shows beside the sandbox's). `--breaker-cost [PAIRS]` adds the defaults at 0 ms
with the circuit breakers off, then on again (PAIRS times), to show what the breaker check costs.

    python -m bench.purchase_load [--duration 20] [--repeat 1] [--shards 1,2,8]
        [--gateways sandbox,authorizenet] [--breaker-cost [PAIRS]]
    python -m bench.purchase_load --scale [--duration 20]     # see bench.scaling
    python -m bench.purchase_load --shards '' --tracing off,memory --phase 0   # tracing's cost

`--tracing` measures the defaults once per tracing mode (`PAYGRID_TRACING`: off, memory,
console, otlp), each row labelled with its mode, at the sampler the environment gives
(`OTEL_TRACES_SAMPLER`; by default every request is traced). `--phase 0` keeps only the
sandbox 0 ms phase, where a per-request cost shows.

One embedded PostgreSQL and Redis, seeded once, serve every row. Traffic goes only to
127.0.0.1; every run is bounded in time and request count.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from dataclasses import dataclass

from bench import measure, report, scaling, workload
from bench.load import Summary
from bench.measure import Deployment, Measured, Plan
from bench.stack import instance, machine, save
from bench.workload import Seeded
from engine.config import Settings

BASELINE = "uvicorn + FastAPI + asyncpg, 1 worker"
GATEWAYS = ("sandbox", "authorizenet")


@dataclass(frozen=True)
class Phase:
    concurrency: int
    sandbox_ms: int

    @property
    def bound_rps(self) -> float:
        """Little's law: with every request waiting `sandbox_ms`, at most c / latency finish
        per second."""
        return self.concurrency / (self.sandbox_ms / 1000)


PHASES = (Phase(concurrency=32, sandbox_ms=0), Phase(concurrency=256, sandbox_ms=300))


@dataclass(frozen=True)
class Row:
    label: str
    phase: Phase
    measured: Measured
    gateway: str = "sandbox"
    breaker: bool = True


def baselines(settings: Settings, seeded: Seeded, plan: Plan) -> dict[int, Summary]:
    """The one-worker baseline at each concurrency of a 0 ms phase."""
    fast = sorted({p.concurrency for p in PHASES if not p.sandbox_ms})
    load = workload.baseline(seeded, 2)
    return {c: measure.baseline(settings.database_dsn, 1, load, c, plan) for c in fast}


def tracing_rows(
    settings: Settings, seeded: Seeded, plan: Plan, modes: list[str], phases: tuple[Phase, ...]
) -> list[Row]:
    """The defaults deployed once per tracing mode, in every phase of `phases`."""
    rows: list[Row] = []
    for phase in phases:
        for mode in modes:
            base = settings.model_copy(update={"tracing": mode})
            deployment = Deployment(None, None, phase.sandbox_ms)
            load = workload.paygrid(seeded, 1)
            measured = measure.paygrid(base, deployment, load, phase.concurrency, plan)
            rows.append(Row(f"paygrid (defaults, tracing {mode})", phase, measured))
    return rows


def paygrid_rows(
    settings: Settings,
    seeded: Seeded,
    plan: Plan,
    shards: list[int],
    gateways: list[str],
    breaker_pairs: int,
) -> tuple[list[Row], list[str]]:
    """Every configuration in every phase, through each of `gateways`: the defaults first,
    then 1 replica with each of `shards`. A configuration equal to the fitted defaults is
    skipped, and named in the notes returned beside the rows. Then `breaker_pairs` times the
    defaults at 0 ms through the first gateway with the circuit breakers off and then on again
    (adjacent deployments, compared with each other)."""
    rows: list[Row] = []
    notes: list[str] = []
    for gateway in gateways:
        defaults: tuple[int, int] | None = None
        for replicas, count in [(None, None), *((1, s) for s in shards)]:
            if (replicas, count) == defaults:
                notes.append(f"1 replica x {count} shard(s) is the defaults here, measured once")
                continue
            for phase in PHASES:
                rows.append(_row(settings, seeded, plan, phase, replicas, count, gateway, True))
            if replicas is None:
                defaults = rows[-1].measured.counts
    fast = next(p for p in PHASES if not p.sandbox_ms)
    for _ in range(breaker_pairs):
        for breaker in (False, True):
            rows.append(_row(settings, seeded, plan, fast, None, None, gateways[0], breaker))
    return rows, notes


def _row(
    settings: Settings,
    seeded: Seeded,
    plan: Plan,
    phase: Phase,
    replicas: int | None,
    shards: int | None,
    gateway: str,
    breaker: bool,
) -> Row:
    deployment = Deployment(replicas, shards, phase.sandbox_ms, gateway, breaker)
    load = workload.paygrid(seeded, 1)
    measured = measure.paygrid(settings, deployment, load, phase.concurrency, plan)
    label = "paygrid (defaults)" if replicas is None else "paygrid"
    return Row(label, phase, measured, gateway, breaker)


def _ratio(row: Row, references: dict[int, Summary]) -> str:
    rps = row.measured.summary.median_rps
    if row.phase.sandbox_ms:
        return report.ratio(rps / row.phase.bound_rps)
    reference = references[row.phase.concurrency].median_rps
    return report.ratio(rps / reference) if reference else "-"


def _versus(row: Row, rows: list[Row]) -> str:
    """An Authorize.Net row: its req/s ÷ the sandbox row of the same configuration and phase.
    A breakers-off row: the breakers-on row measured right after it ÷ it."""
    if not row.breaker:
        after = rows[rows.index(row) + 1 :]
        on = next((r for r in after if r.breaker and r.phase == row.phase), None)
        if on is None or not row.measured.summary.median_rps:
            return "-"
        return report.ratio(on.measured.summary.median_rps / row.measured.summary.median_rps)
    if row.gateway == "sandbox":
        return "-"
    same = next(
        (
            r
            for r in rows
            if r.gateway == "sandbox"
            and r.breaker
            and r.phase == row.phase
            and r.measured.counts == row.measured.counts
        ),
        None,
    )
    if same is None or not same.measured.summary.median_rps:
        return "-"
    return report.ratio(row.measured.summary.median_rps / same.measured.summary.median_rps)


def render(
    rows: list[Row],
    notes: list[str],
    references: dict[int, Summary],
    seeded: Seeded,
    plan: Plan,
    phases: tuple[Phase, ...] = PHASES,
) -> str:
    """The purchase table, grouped by phase, each 0 ms group followed by its baseline."""
    table: list[list[str]] = []
    for phase in phases:
        for row in (r for r in rows if r.phase == phase):
            replicas, shards = row.measured.counts
            cells = report.latency_cells(row.measured.summary)
            table.append(
                [
                    row.label,
                    row.gateway,
                    "on" if row.breaker else "off",
                    str(replicas),
                    str(shards),
                    str(phase.sandbox_ms),
                    str(phase.concurrency),
                    *cells,
                    _ratio(row, references),
                    _versus(row, rows),
                ]
            )
        if not phase.sandbox_ms:
            cells = report.latency_cells(references[phase.concurrency])
            table.append(
                [BASELINE, "-", "-", "-", "-", "-", str(phase.concurrency), *cells, "-", "-"]
            )
    defaults = rows[0].measured
    listed = report.facts(
        {
            "durations": plan.describe(),
            "customers": f"{len(seeded.customers):,}, a fresh Idempotency-Key per request",
            "defaults": f"{defaults.settings.describe_counts()}, fitted to {defaults.cpus} CPUs",
            "environment": _overrides(),
            "ratio": "0 ms rows: req/s ÷ the baseline's at the same concurrency in "
            "this run; 300 ms rows: req/s ÷ the Little's-law bound, concurrency ÷ 0.3 s",
            "vs": "authorizenet rows: req/s ÷ the sandbox row of the same configuration and "
            "phase; breaker off: the breaker-on row measured right after ÷ it (1 - vs is "
            "what the breaker costs)",
            "gateway ms": "the sandbox's latency, or the fake Authorize.Net server's (its own "
            "process on 127.0.0.1, bench/authorizenet_server.py)",
            "spread": "req/s is the median of the runs, min-max beside it; p50/p99 over every "
            "request of every run; errors (non-200) summed",
            **{f"note {n}": note for n, note in enumerate(notes, 1)},
        }
    )
    header = [
        "target",
        "gateway",
        "breaker",
        "replicas",
        "shards",
        "gateway ms",
        "concurrency",
        "req/s",
        "min-max",
        "p50 ms",
        "p99 ms",
        "errors",
        "ratio",
        "vs",
    ]
    return report.markdown("POST /api/payments/purchase", listed, header, table)


def _overrides() -> str:
    names = sorted(name for name in os.environ if name.startswith("PAYGRID_"))
    return ("PAYGRID_* set: " + ", ".join(names)) if names else "no PAYGRID_* overrides"


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def _names(text: str) -> list[str]:
    names = [x for x in text.split(",") if x]
    unknown = [n for n in names if n not in GATEWAYS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"gateways must be among {list(GATEWAYS)}")
    return names


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per run")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds before each row")
    parser.add_argument("--repeat", type=int, default=1, help="runs per row, for the spread")
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--max-requests", type=int, default=200_000, help="per run")
    parser.add_argument(
        "--processes",
        type=int,
        default=min(4, os.cpu_count() or 1),
        help="load generator processes (each drives concurrency / processes workers)",
    )
    parser.add_argument("--shards", type=_ints, default=[1, 2, 8], help="with 1 replica")
    parser.add_argument(
        "--gateways",
        type=_names,
        default=["sandbox"],
        help="gateways measured, each in every row: sandbox, authorizenet (the adapter "
        "against a local fake server)",
    )
    parser.add_argument(
        "--breaker-cost",
        type=int,
        nargs="?",
        const=1,
        default=0,
        metavar="PAIRS",
        help="add the defaults at 0 ms with the circuit breakers off, then on again (PAIRS "
        "times, 1 if not given)",
    )
    parser.add_argument(
        "--tracing", default="", help="comma-separated PAYGRID_TRACING modes: the defaults per mode"
    )
    parser.add_argument(
        "--phase", type=_ints, default=None, help="sandbox ms of the phases to run (0, 300)"
    )
    parser.add_argument("--scale", action="store_true", help="the replicas x shards table")
    parser.add_argument("--scale-concurrency", type=int, default=scaling.CONCURRENCY)
    parser.add_argument("--scale-replicas", type=_ints, default=None, help="override the grid")
    parser.add_argument("--scale-shards", type=_ints, default=None, help="override the grid")
    args = parser.parse_args()
    if args.repeat < 1 or args.processes < 1 or args.duration <= 0 or args.breaker_cost < 0:
        parser.error(
            "--repeat and --processes must be at least 1, --duration positive, "
            "--breaker-cost not negative"
        )
    plan = Plan(args.duration, args.warmup, args.repeat, args.max_requests, args.processes)

    with instance() as settings:
        seeded = asyncio.run(workload.seed(settings, args.customers))
        print(f"seeded {len(seeded.customers):,} customers; {machine()}", flush=True)
        if args.scale:
            grid = scaling.Grid(args.scale_concurrency, args.scale_replicas, args.scale_shards)
            save("purchase-scale", scaling.run(settings, seeded, plan, grid))
        else:
            phases = tuple(p for p in PHASES if args.phase is None or p.sandbox_ms in args.phase)
            references = baselines(settings, seeded, plan)
            modes = [m for m in args.tracing.split(",") if m]
            notes: list[str] = []
            if modes:
                rows = tracing_rows(settings, seeded, plan, modes, phases)
            else:
                rows, notes = paygrid_rows(
                    settings, seeded, plan, args.shards, args.gateways, args.breaker_cost
                )
            save("purchase", render(rows, notes, references, seeded, plan, phases))
    return 0


if __name__ == "__main__":
    sys.exit(main())
