"""One row of a purchase table: deploy a configuration (or start the baseline), warm it up,
then run the load `repeat` times against it.

Each paygrid configuration gets its own Ray and Serve (`stack.serving`): counts and the sandbox
latency are settings, so a new configuration is a new deployment. The embedded PostgreSQL and
Redis, and the seeded data, are the caller's and outlive every row.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator
from dataclasses import dataclass

from bench import authorizenet_server, baseline_server, multiload
from bench.load import Result, Summary
from bench.stack import serving
from bench.workload import Purchases
from engine.config import Settings


@dataclass(frozen=True)
class Plan:
    """How each row is measured: bounded in time and request count."""

    duration_s: float
    warmup_s: float
    repeat: int
    max_requests: int
    processes: int

    def describe(self) -> str:
        return (
            f"{self.duration_s:g} s per run after a {self.warmup_s:g} s warm-up, "
            f"{self.repeat} run(s) per row on the same deployment, load from up to "
            f"{self.processes} process(es), at most {self.max_requests:,} requests per run"
        )


@dataclass(frozen=True)
class Deployment:
    """A paygrid configuration. None leaves a count to the instance's settings (0, the default,
    means fitted to the CPUs Ray sees). `gateway` None keeps the instance's gateways (the
    sandbox, answering after `sandbox_ms`); `authorizenet` is the adapter against the local
    fake, answering after `sandbox_ms`. `breaker` False turns the circuit breakers off, to
    measure what they cost."""

    replicas: int | None
    shards: int | None
    sandbox_ms: int
    gateway: str | None = None
    breaker: bool = True

    def settings(self, base: Settings) -> Settings:
        update: dict[str, object] = {
            "sandbox_latency_ms": self.sandbox_ms,
            "circuit_breaker_enabled": self.breaker,
        }
        if self.gateway is not None:
            update["gateways"] = (self.gateway,)
        if self.replicas is not None:
            update["replicas"] = self.replicas
        if self.shards is not None:
            update["ledger_shards"] = self.shards
        return base.model_copy(update=update)


@dataclass(frozen=True)
class Measured:
    """A paygrid row: its runs, the counts it was fitted to, and the CPUs Ray saw."""

    summary: Summary
    settings: Settings
    cpus: int

    @property
    def counts(self) -> tuple[int, int]:
        return self.settings.replicas, self.settings.ledger_shards


def _runs(name: str, url: str, workload: Purchases, concurrency: int, plan: Plan) -> Summary:
    if plan.warmup_s > 0:
        multiload.run(
            f"{name} warm-up",
            url,
            dataclasses.replace(workload, seed=workload.seed + 999),
            concurrency=concurrency,
            duration_s=plan.warmup_s,
            max_requests=plan.max_requests,
            processes=plan.processes,
        )
    runs: list[Result] = []
    for n in range(plan.repeat):
        result = multiload.run(
            name,
            url,
            dataclasses.replace(workload, seed=workload.seed + n),
            concurrency=concurrency,
            duration_s=plan.duration_s,
            max_requests=plan.max_requests,
            processes=plan.processes,
        )
        print(
            f"  {name} c={concurrency} run {n + 1}/{plan.repeat}: {result.rps:,.0f} req/s, "
            f"p50 {result.percentile(50):.1f} ms, p99 {result.percentile(99):.1f} ms, "
            f"errors {result.errors} {result.statuses}",
            flush=True,
        )
        for status, sample in result.samples.items():
            print(f"    first {status} answer: {sample}", flush=True)
        runs.append(result)
    return Summary(tuple(runs))


def paygrid(
    base: Settings, deployment: Deployment, workload: Purchases, concurrency: int, plan: Plan
) -> Measured:
    """Deploy `deployment` on the instance `base` and measure it at `concurrency`."""
    with contextlib.ExitStack() as stack:
        if deployment.gateway == "authorizenet":
            # Set before Ray starts: every actor inherits the environment, and the adapter
            # reads its own settings from it.
            env = stack.enter_context(authorizenet_server.running(deployment.sandbox_ms))
            for name, value in env.items():
                stack.enter_context(_environment(name, value))
        served = stack.enter_context(serving(deployment.settings(base)))
        fitted = served.settings
        print(
            f"deployed: {fitted.describe_counts()} for {served.cpus} CPUs, gateway "
            f"{','.join(fitted.gateways)} at {deployment.sandbox_ms} ms, breaker "
            f"{'on' if deployment.breaker else 'off'}",
            flush=True,
        )
        summary = _runs("paygrid", served.url, workload, concurrency, plan)
    return Measured(summary, fitted, served.cpus)


@contextlib.contextmanager
def _environment(name: str, value: str) -> Iterator[None]:
    """`name` set to `value` in this process's environment while the block runs."""
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            del os.environ[name]
        else:
            os.environ[name] = before


def baseline(dsn: str, workers: int, workload: Purchases, concurrency: int, plan: Plan) -> Summary:
    """Start the baseline with `workers` uvicorn workers on `dsn` and measure it."""
    with baseline_server.running(dsn, workers=workers) as url:
        return _runs(f"baseline ({workers} worker(s))", url, workload, concurrency, plan)
