"""The scaling table: purchases at c=256 with the sandbox at 0 ms over a replicas x shards grid,
beside the baseline with one uvicorn worker per CPU.

The grid follows the CPUs Ray sees: replicas in {1, 2, 4, cpus/2} up to the CPU count, shards in
{1, 2, 4, 8} up to twice the CPU count (more processes than that only trade CPU the database
needs), and always the fitted defaults, which are measured first. Each cell is its own
deployment on the same seeded instance. The table names the best cell, the defaults' ratio to
it and the best's ratio to the multi-worker baseline.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench import measure, report, workload
from bench.load import Summary
from bench.measure import Deployment, Measured, Plan
from bench.workload import Seeded
from engine.config import Settings

CONCURRENCY = 256


@dataclass(frozen=True)
class Grid:
    """What to measure; None picks the replicas or shards from the CPU count."""

    concurrency: int = CONCURRENCY
    replicas: list[int] | None = None
    shards: list[int] | None = None

    def cells(self, cpus: int) -> list[tuple[int, int]]:
        replicas = self.replicas or sorted({r for r in (1, 2, 4, cpus // 2) if 1 <= r <= cpus})
        shards = self.shards or sorted({s for s in (1, 2, 4, 8) if s <= max(2, 2 * cpus)})
        return [(r, s) for r in replicas for s in shards]


def run(settings: Settings, seeded: Seeded, plan: Plan, grid: Grid) -> str:
    """Measure every cell and the multi-worker baseline; the table."""
    cells = measure_grid(settings, seeded, plan, grid)
    defaults = next(iter(cells.values()))
    baseline = measure.baseline(
        settings.database_dsn, defaults.cpus, workload.baseline(seeded, 4), grid.concurrency, plan
    )
    return render(cells, baseline, grid, seeded, plan)


def measure_grid(
    settings: Settings, seeded: Seeded, plan: Plan, grid: Grid
) -> dict[tuple[int, int], Measured]:
    """Each cell by (replicas, shards), the fitted defaults first."""
    load = workload.paygrid(seeded, 3)
    defaults = measure.paygrid(settings, Deployment(None, None, 0), load, grid.concurrency, plan)
    cells = {defaults.counts: defaults}
    for replicas, shards in grid.cells(defaults.cpus):
        if (replicas, shards) not in cells:
            cells[(replicas, shards)] = measure.paygrid(
                settings, Deployment(replicas, shards, 0), load, grid.concurrency, plan
            )
    return cells


def _per(value: float, reference: float) -> str:
    return report.ratio(value / reference) if reference else "-"


def render(
    cells: dict[tuple[int, int], Measured],
    baseline: Summary,
    grid: Grid,
    seeded: Seeded,
    plan: Plan,
) -> str:
    defaults = next(iter(cells.values()))
    best_counts, best = max(cells.items(), key=lambda item: item[1].summary.median_rps)
    top = best.summary.median_rps
    rows = []
    for counts in sorted(cells):
        summary = cells[counts].summary
        marks = ["defaults"] if counts == defaults.counts else []
        marks += ["best"] if counts == best_counts else []
        label = f"paygrid ({', '.join(marks)})" if marks else "paygrid"
        ratio = _per(summary.median_rps, top)
        latency = report.latency_cells(summary)
        rows.append([label, str(counts[0]), str(counts[1]), *latency, ratio])
    workers = defaults.cpus
    rows.append(
        [
            f"uvicorn + FastAPI + asyncpg, {workers} workers",
            "-",
            "-",
            *report.latency_cells(baseline),
            _per(baseline.median_rps, top),
        ]
    )
    listed = report.facts(
        {
            "durations": plan.describe(),
            "concurrency": f"{grid.concurrency}, sandbox 0 ms, {len(seeded.customers):,} customers",
            "defaults": f"{defaults.settings.describe_counts()}, fitted to {defaults.cpus} CPUs",
            "baseline": f"{workers} uvicorn workers (one per CPU), one transaction per request",
            "best": f"{best_counts[0]} replica(s) x {best_counts[1]} shard(s), "
            f"{report.rate(top)} req/s",
            "defaults ÷ best": _per(defaults.summary.median_rps, top),
            "best ÷ baseline": _per(top, baseline.median_rps),
        }
    )
    header = ["target", "replicas", "shards", "req/s", "min-max", "p50 ms", "p99 ms", "errors"]
    return report.markdown(
        f"Scaling: POST /api/payments/purchase at c={grid.concurrency}",
        listed,
        [*header, "÷ best"],
        rows,
    )
