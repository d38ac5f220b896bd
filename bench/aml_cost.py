"""What the AML rules cost a purchase: the defaults row (sandbox 0 ms, c=32) with the rules on
and off, alternating, on one embedded PostgreSQL and Redis seeded once.

Besides req/s, which a shared machine makes noisy, each run reports CPU per purchase: the ledger
shards' own CPU time (where screening runs), the API replica's, and the whole machine's busy
time, each divided by the purchases answered 200 in the run. The shard's figure is the direct
cost of the rules; it is barely moved by other load on the box, since it counts only the shard
process's own time.

    python -m bench.aml_cost [--duration 20] [--repeat 2] [--customers 10000]

The same "off" row is `PAYGRID_AML_ENABLED=0 python -m bench.purchase_load --shards ''`.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import psutil

from bench import multiload, report, workload
from bench.stack import instance, save, serving
from bench.workload import Seeded
from engine.cards import CardDetails
from engine.compliance.monitor import AmlMonitor
from engine.config import Settings
from engine.money import Money
from engine.payments.commands import CreatePayment, RequestContext
from engine.payments.states import TransactionType

CONCURRENCY = 32


def _processes(marker: str) -> list[psutil.Process]:
    """This bench's own Ray workers named `marker` (the driver started Ray, so they descend
    from it; other people's clusters on the box are not counted)."""
    found = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if marker in " ".join(proc.cmdline()):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def _cpu_s(procs: list[psutil.Process]) -> float:
    total = 0.0
    for proc in procs:
        try:
            times = proc.cpu_times()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        total += times.user + times.system
    return total


def _busy_s() -> float:
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


@dataclass(frozen=True)
class CpuRun:
    """One run of the purchase load: its rate and CPU per purchase answered 200."""

    rps: float
    ok: int
    errors: int
    shard_ms: float
    replica_ms: float
    machine_ms: float


def cpu_means(runs: Sequence[CpuRun]) -> dict[str, float]:
    """Mean req/s and ms of CPU per purchase (replica, shard, machine) of `runs`; 0 for none."""
    fields = {"rps": "rps", "replica": "replica_ms", "shard": "shard_ms", "machine": "machine_ms"}
    return {
        key: statistics.fmean(getattr(r, name) for r in runs) if runs else 0.0
        for key, name in fields.items()
    }


CPU_HEADER = ("runs", "req/s", "per run", "replica CPU ms", "shard CPU ms", "machine CPU ms")
"""The headers of `cpu_cells`."""


def cpu_cells(runs: Sequence[CpuRun], means: Mapping[str, float]) -> list[str]:
    """A table row's cells for one setting: runs, mean req/s, each run's req/s, then replica,
    shard and machine CPU ms per purchase."""
    return [
        str(len(runs)),
        report.rate(means["rps"]),
        " / ".join(report.rate(r.rps) for r in runs),
        f"{means['replica']:.3f}",
        f"{means['shard']:.3f}",
        f"{means['machine']:.3f}",
    ]


@dataclass(frozen=True)
class Run(CpuRun):
    """A run with the rules on or off."""

    aml: bool = True


def measure_cpu(
    deployment: Settings,
    seeded: Seeded,
    name: str,
    args: argparse.Namespace,
    n: int,
    probe: Callable[[str], None] | None = None,
) -> CpuRun:
    """Serve `deployment` (sandbox 0 ms), warm it up, and measure one run at c=32: req/s and
    ms of CPU per purchase of the shards, the replicas and the whole machine. `probe`, when
    given, is called with the API's URL between the warm-up and the run (to check what is
    being measured)."""
    deployment = deployment.model_copy(update={"sandbox_latency_ms": 0})
    load = workload.paygrid(seeded, 100 + n)
    with serving(deployment) as served:
        multiload.run(
            f"{name} warm-up",
            served.url,
            dataclasses.replace(load, seed=load.seed + 999),
            concurrency=CONCURRENCY,
            duration_s=args.warmup,
            max_requests=args.max_requests,
            processes=args.processes,
        )
        if probe is not None:
            probe(served.url)
        shards, replicas = _processes("LedgerShard"), _processes("ServeReplica")
        before = (_cpu_s(shards), _cpu_s(replicas), _busy_s())
        result = multiload.run(
            name,
            served.url,
            load,
            concurrency=CONCURRENCY,
            duration_s=args.duration,
            max_requests=args.max_requests,
            processes=args.processes,
        )
        after = (_cpu_s(shards), _cpu_s(replicas), _busy_s())
    ok = max(1, result.requests - result.errors)
    shard, replica, machine = (1000 * (a - b) / ok for a, b in zip(after, before, strict=True))
    run = CpuRun(result.rps, ok, result.errors, shard, replica, machine)
    print(
        f"  {name}: {run.rps:,.0f} req/s, shard {shard:.3f} ms, replica {replica:.3f} ms, "
        f"machine {machine:.3f} ms CPU per purchase, errors {run.errors}",
        flush=True,
    )
    return run


def measure(settings: Settings, seeded: Seeded, aml: bool, args: argparse.Namespace, n: int) -> Run:
    cpu = measure_cpu(
        settings.model_copy(update={"aml_enabled": aml}),
        seeded,
        f"aml {'on' if aml else 'off'}",
        args,
        n,
    )
    return Run(**dataclasses.asdict(cpu), aml=aml)


def screening_us(settings: Settings, customers: int, purchases: int = 100_000) -> float:
    """Microseconds of CPU per purchase for the rules alone, in process: screen a purchase and
    remember it, as the shard's begin and finalize steps do, over `customers` customers with
    the load's amounts. Free of the machine's noise, and comparable to the shard's CPU per
    purchase above."""
    monitor = AmlMonitor.from_settings(settings.model_copy(update={"aml_enabled": True}))
    ctx = RequestContext(uuid4(), "bench")
    card = CardDetails("4242424242424242", 12, 2034)
    ids = [uuid4() for _ in range(customers)]
    rng = random.Random(1)
    commands = [
        CreatePayment(
            ctx,
            TransactionType.PURCHASE,
            Money(100 + i % 9000, "USD"),
            rng.choice(ids),
            card,
        )
        for i in range(purchases)
    ]
    now = datetime.now(UTC)
    times = [now + timedelta(milliseconds=i) for i in range(purchases)]
    payment_ids = [uuid4() for _ in range(purchases)]
    started = time.process_time()
    for command, payment_id, at in zip(commands, payment_ids, times, strict=True):
        monitor.screen([(command, payment_id)], now=at)
        monitor.finished(command, payment_id, now=at)
    return 1e6 * (time.process_time() - started) / purchases


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def render(runs: list[Run], args: argparse.Namespace, seeded: Seeded, micro_us: float) -> str:
    rows = []
    means: dict[bool, dict[str, float]] = {}
    for aml in (True, False):
        mine = [r for r in runs if r.aml is aml]
        means[aml] = {
            "rps": _mean([r.rps for r in mine]),
            "shard": _mean([r.shard_ms for r in mine]),
            "replica": _mean([r.replica_ms for r in mine]),
            "machine": _mean([r.machine_ms for r in mine]),
        }
        rows.append(
            [
                "on" if aml else "off",
                str(len(mine)),
                report.rate(means[aml]["rps"]),
                " / ".join(report.rate(r.rps) for r in mine),
                f"{means[aml]['shard']:.3f}",
                f"{means[aml]['replica']:.3f}",
                f"{means[aml]['machine']:.3f}",
                f"{means[aml]['shard'] / means[aml]['replica']:.3f}"
                if means[aml]["replica"]
                else "-",
                str(sum(r.errors for r in mine)),
            ]
        )
    on, off = means[True], means[False]

    def cost(key: str) -> str:
        return f"{100 * (on[key] / off[key] - 1):+.1f} %" if off[key] else "-"

    for means_of in (on, off):
        means_of["ratio"] = means_of["shard"] / means_of["replica"] if means_of["replica"] else 0
    rows.append(
        [
            "on vs off",
            "-",
            cost("rps"),
            "-",
            cost("shard"),
            cost("replica"),
            cost("machine"),
            cost("ratio"),
            "-",
        ]
    )
    listed = report.facts(
        {
            "durations": f"{args.duration:g} s per run after a {args.warmup:g} s warm-up, "
            f"{args.repeat} run(s) per setting, on and off alternating",
            "load": f"c={CONCURRENCY}, sandbox 0 ms, {len(seeded.customers):,} customers, "
            "defaults (counts fitted to the CPUs)",
            "cpu": "ms of CPU per purchase answered 200: shard and replica processes' own "
            "time; machine = all busy CPU time on the box (others' load included)",
            "shard ÷ replica": "the shard's CPU per purchase over the replica's, which the "
            "rules do not touch: contention inflates both alike, so their ratio is the steadier "
            "measure of the rules' cost on a shared box",
            "rules alone": f"{micro_us:.1f} µs of CPU per purchase (screen + remember, in "
            "process, 100,000 purchases over the same customers)",
        }
    )
    header = [
        "AML rules",
        "runs",
        "req/s",
        "per run",
        "shard CPU ms",
        "replica CPU ms",
        "machine CPU ms",
        "shard ÷ replica",
        "errors",
    ]
    return report.markdown("AML rules on vs off (purchase defaults row)", listed, header, rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per run")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds before each run")
    parser.add_argument("--repeat", type=int, default=2, help="runs per setting")
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--max-requests", type=int, default=200_000, help="per run")
    parser.add_argument("--processes", type=int, default=min(4, os.cpu_count() or 1))
    args = parser.parse_args()
    if args.repeat < 1 or args.processes < 1 or args.duration <= 0:
        parser.error("--repeat and --processes must be at least 1, --duration positive")
    with instance() as settings:
        seeded = asyncio.run(workload.seed(settings, args.customers))
        runs = [
            measure(settings, seeded, aml, args, n)
            for n in range(args.repeat)
            for aml in (True, False)
        ]
        micro_us = screening_us(settings, len(seeded.customers))
        print(f"rules alone: {micro_us:.1f} µs of CPU per purchase", flush=True)
        save("aml-cost", render(runs, args, seeded, micro_us))
    return 0


if __name__ == "__main__":
    sys.exit(main())
