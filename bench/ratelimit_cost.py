"""What the rate limiter costs a purchase: the defaults row (sandbox 0 ms, c=32) with the
limiter on and off, alternating, on one embedded PostgreSQL and Redis seeded once; CPU per
purchase beside req/s, as `bench.aml_cost` measures it (the steadier figure on a shared box).

    python -m bench.ratelimit_cost [--duration 15] [--repeat 2] [--calls 20000]

"On" sends the load with a key whose own limit is 1,000,000/s (bursts to 2,000,000): high
enough never to refuse, finite, so every request runs the GCRA script. "Off" sends it with the
seeded `unlimited` key, which makes no Redis call (the key every other benchmark uses). Before
each run a sample purchase checks which it is (`X-RateLimit-*` headers present or absent), and
Redis's own command counts confirm one script call per request on and none off.

The limiter alone is also measured in process: `calls` sequential checks through the engine's
`RateLimiter` against the same Redis, beside as many plain `GET`s (the bare round trip).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import httpx
from redis.asyncio import Redis

from bench import report, workload
from bench.aml_cost import CONCURRENCY, CPU_HEADER, CpuRun, cpu_cells, cpu_means, measure_cpu
from bench.stack import instance, save
from bench.workload import Seeded
from engine.config import Settings
from engine.ratelimit.limiter import RateLimiter
from engine.ratelimit.limits import Rate

# Finite, so every request runs the script; far above what this box can send, so none is refused.
LIMIT = Rate(1_000_000, 1, 2_000_000)


@dataclass(frozen=True)
class Run(CpuRun):
    """A run with the limiter on or off, and the script calls Redis counted during it."""

    limited: bool = True
    script_calls: int = 0

    @property
    def calls_per_request(self) -> float:
        return self.script_calls / max(1, self.ok + self.errors)


@dataclass(frozen=True)
class Micro:
    """The limiter alone, in process: µs per call, wall and this process's CPU, of a check
    and of a plain GET; and Redis's own µs per script call."""

    calls: int
    check_us: float
    check_cpu_us: float
    get_us: float
    get_cpu_us: float
    server_us: float


async def _script_stats(redis: Redis) -> tuple[int, int]:
    """EVALSHA calls Redis has served, and the µs it spent on them."""
    stats = (await redis.info("commandstats")).get("cmdstat_evalsha", {})
    return int(stats.get("calls", 0)), int(stats.get("usec", 0))


def script_calls(redis_url: str) -> int:
    async def count() -> int:
        redis = Redis.from_url(redis_url)
        try:
            return (await _script_stats(redis))[0]
        finally:
            await redis.aclose()

    return asyncio.run(count())


def check_sample(url: str, seeded: Seeded, limited: bool) -> None:
    """One purchase with the load's key carries `X-RateLimit-*` headers exactly when the
    limiter is on, so a run never measures the other setting by mistake."""
    path, headers, body = workload.paygrid(seeded, 0).factory(0)(0)
    answer = httpx.post(url + path, headers=headers, content=body, timeout=30)
    limit = answer.headers.get("x-ratelimit-limit")
    if answer.status_code != 200 or (limit is not None) != limited:
        raise RuntimeError(
            f"sample purchase answered {answer.status_code} with X-RateLimit-Limit {limit!r}: "
            f"not the limiter {'on' if limited else 'off'}"
        )


def measure(
    settings: Settings, seeded: Seeded, limited: bool, args: argparse.Namespace, n: int
) -> Run:
    """One run with `seeded`'s key (limited or not), and the script calls during it."""
    counted: list[int] = []

    def before_run(url: str) -> None:
        check_sample(url, seeded, limited)
        # Redis counts the warm-up's calls too: count from here.
        counted.append(script_calls(settings.redis_dsn))

    name = f"limiter {'on' if limited else 'off'}"
    cpu = measure_cpu(settings, seeded, name, args, n, probe=before_run)
    calls = script_calls(settings.redis_dsn) - counted[0]
    run = Run(**dataclasses.asdict(cpu), limited=limited, script_calls=calls)
    print(f"  {name}: {run.calls_per_request:.2f} script calls per request", flush=True)
    return run


async def _timed(calls: int, call: Callable[[], Awaitable[object]]) -> tuple[float, float]:
    """µs per call, wall and this process's CPU, of `calls` sequential awaits of `call`."""
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(calls):
        await call()
    return (
        1e6 * (time.perf_counter() - wall) / calls,
        1e6 * (time.process_time() - cpu) / calls,
    )


async def limiter_alone(redis_url: str, calls: int) -> Micro:
    """`calls` checks of one bucket through the engine's limiter, then as many GETs of it."""
    redis = Redis.from_url(redis_url)
    try:
        limiter = RateLimiter(redis)
        bucket = f"bench:{uuid.uuid4()}"

        async def check() -> None:
            decision = await limiter.check(bucket, LIMIT)
            if decision is None or not decision.allowed:
                raise RuntimeError(f"the limiter refused or failed: {decision}")

        for _ in range(min(calls, 500)):  # loads the script, warms the connection
            await check()
        calls_before, usec_before = await _script_stats(redis)
        check_us, check_cpu_us = await _timed(calls, check)
        calls_after, usec_after = await _script_stats(redis)
        get_us, get_cpu_us = await _timed(calls, lambda: redis.get(bucket))
    finally:
        await redis.aclose()
    served = max(1, calls_after - calls_before)
    return Micro(
        calls, check_us, check_cpu_us, get_us, get_cpu_us, (usec_after - usec_before) / served
    )


def _means(runs: Sequence[Run]) -> dict[str, float]:
    means = cpu_means(runs)
    means["ratio"] = means["replica"] / means["shard"] if means["shard"] else 0.0
    means["calls"] = statistics.fmean(r.calls_per_request for r in runs) if runs else 0.0
    return means


def render(runs: Sequence[Run], args: argparse.Namespace, customers: int, micro: Micro) -> str:
    """The table: the limiter on and off (means of their runs), then on against off."""
    split = {limited: [r for r in runs if r.limited is limited] for limited in (True, False)}
    means = {limited: _means(mine) for limited, mine in split.items()}
    rows = [
        [
            "on" if limited else "off",
            *cpu_cells(mine, means[limited]),
            f"{means[limited]['ratio']:.3f}",
            f"{means[limited]['calls']:.2f}",
            str(sum(r.errors for r in mine)),
        ]
        for limited, mine in split.items()
    ]
    on, off = means[True], means[False]

    def cost(key: str) -> str:
        return f"{100 * (on[key] / off[key] - 1):+.1f} %" if off[key] else "-"

    rows.append(
        ["on vs off", "-", cost("rps"), "-"]
        + [cost(key) for key in ("replica", "shard", "machine", "ratio")]
        + ["-", "-"]
    )
    listed = report.facts(
        {
            "durations": f"{args.duration:g} s per run after a {args.warmup:g} s warm-up, "
            f"{args.repeat} run(s) per setting, on and off alternating",
            "load": f"c={CONCURRENCY}, sandbox 0 ms, {customers:,} customers, defaults "
            "(counts fitted to the CPUs)",
            "keys": f"on: the load's key limited to {LIMIT}, bursts to {LIMIT.burst:,} "
            "(never refused, so every request runs the script); off: an `unlimited` key "
            "(no Redis call)",
            "cpu": "ms of CPU per purchase answered 200: replica and shard processes' own "
            "time; machine = all busy CPU time on the box (others' load and Redis included)",
            "replica ÷ shard": "the replica's CPU per purchase (where the limiter runs) over "
            "the shard's (which it does not touch): contention inflates both alike",
            "limiter alone": f"{micro.check_us:.0f} µs per check ({micro.check_cpu_us:.0f} µs "
            f"of the caller's CPU, {micro.server_us:.1f} µs of Redis's) against "
            f"{micro.get_us:.0f} µs ({micro.get_cpu_us:.0f} µs CPU) for a plain GET; "
            f"{micro.calls:,} sequential calls each, in process",
        }
    )
    header = [
        "limiter",
        *CPU_HEADER,
        "replica ÷ shard",
        "script calls / request",
        "errors",
    ]
    return report.markdown("Rate limiter on vs off (purchase defaults row)", listed, header, rows)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per run")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds before each run")
    parser.add_argument("--repeat", type=int, default=2, help="runs per setting")
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--max-requests", type=int, default=200_000, help="per run")
    parser.add_argument("--processes", type=int, default=min(4, os.cpu_count() or 1))
    parser.add_argument("--calls", type=int, default=20_000, help="limiter checks in process")
    args = parser.parse_args(argv)
    if min(args.repeat, args.processes, args.calls, args.customers) < 1 or args.duration <= 0:
        parser.error(
            "--repeat, --processes, --calls and --customers must be at least 1, --duration positive"
        )
    return args


def main() -> int:
    args = parse_args()
    with instance() as settings:
        unlimited = asyncio.run(workload.seed(settings, args.customers))
        limited = dataclasses.replace(
            unlimited, key=asyncio.run(workload.payments_key(settings, LIMIT))
        )
        runs = [
            measure(settings, limited if on else unlimited, on, args, n)
            for n in range(args.repeat)
            for on in (True, False)
        ]
        micro = asyncio.run(limiter_alone(settings.redis_dsn, args.calls))
        print(
            f"limiter alone: {micro.check_us:.0f} µs per check, {micro.get_us:.0f} µs per GET",
            flush=True,
        )
        save("ratelimit-cost", render(runs, args, len(unlimited.customers), micro))
    return 0


if __name__ == "__main__":
    sys.exit(main())
