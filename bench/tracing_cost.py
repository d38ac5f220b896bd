"""What tracing costs a purchase: the defaults row (sandbox 0 ms, c=32) with tracing off and
on, alternating, on one embedded PostgreSQL and Redis seeded once; CPU per purchase beside
req/s, as `bench.aml_cost` measures it (the steadier figure on a shared box).

    python -m bench.tracing_cost [--modes off,memory] [--duration 15] [--repeat 2]

"On" is `--modes`' tracing mode (memory: spans exported to the Redis store on the same box, so
the exporter's work is counted) at the default sampling (`PAYGRID_TRACING_SAMPLE_RATIO`, 0.1)
unless `--ratio` is given.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from bench import report, workload
from bench.aml_cost import CPU_HEADER, CpuRun, cpu_cells, cpu_means, measure_cpu
from bench.stack import instance, save


def render(runs: dict[str, list[CpuRun]], args: argparse.Namespace) -> str:
    rows = []
    base = cpu_means(runs.get("off", []))
    for mode, mine in runs.items():
        means = cpu_means(mine)

        def vs(key: str, means: dict[str, float] = means) -> str:
            return f"{means[key] / base[key]:.2f}" if base[key] else "-"

        rows.append(
            [
                mode,
                *cpu_cells(mine, means),
                vs("rps"),
                vs("machine"),
                str(sum(r.errors for r in mine)),
            ]
        )
    listed = report.facts(
        {
            "durations": f"{args.duration:g} s per run after a {args.warmup:g} s warm-up, "
            f"{args.repeat} run(s) per mode, modes alternating",
            "sampling": f"ratio {args.ratio:g}" if args.ratio is not None else "the default",
            "cpu": "ms of CPU per purchase answered 200: replica and shard processes' own "
            "time; machine = all busy CPU time on the box (others' load included)",
        }
    )
    header = [
        "tracing",
        *CPU_HEADER,
        "req/s vs off",
        "machine CPU vs off",
        "errors",
    ]
    return report.markdown("Tracing off vs on (purchase defaults row)", listed, header, rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--modes", default="off,memory", help="PAYGRID_TRACING modes")
    parser.add_argument("--ratio", type=float, default=None, help="sample ratio when on")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per run")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds before each run")
    parser.add_argument("--repeat", type=int, default=2, help="runs per mode")
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--max-requests", type=int, default=200_000, help="per run")
    parser.add_argument("--processes", type=int, default=min(4, os.cpu_count() or 1))
    args = parser.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    if args.repeat < 1 or args.processes < 1 or args.duration <= 0 or not modes:
        parser.error("--repeat and --processes at least 1, --duration positive, a mode")
    with instance() as settings:
        seeded = asyncio.run(workload.seed(settings, args.customers))
        runs: dict[str, list[CpuRun]] = {}
        for n in range(args.repeat):
            for mode in modes:
                update: dict[str, object] = {"tracing": mode}
                if args.ratio is not None:
                    update["tracing_sample_ratio"] = args.ratio
                deployment = settings.model_copy(update=update)
                run = measure_cpu(deployment, seeded, f"tracing {mode}", args, n)
                runs.setdefault(mode, []).append(run)
        save("tracing-cost", render(runs, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
