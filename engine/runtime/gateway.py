"""The payment gateway a process talks to, built from its settings: the built-in sandbox, with
the latency and faults configured for it, every call timed."""

from __future__ import annotations

from redis.asyncio import Redis

from engine.config import Settings
from engine.gateways.base import Gateway
from engine.gateways.metered import MeteredGateway
from engine.gateways.sandbox import SandboxGateway
from engine.metrics.recorder import NO_METRICS, Metrics


def open_gateway(settings: Settings, redis: Redis, *, metrics: Metrics = NO_METRICS) -> Gateway:
    """The configured gateway, keeping its records in `redis`, its calls timed in `metrics`."""
    sandbox = SandboxGateway(
        redis,
        latency_ms=settings.sandbox_latency_ms,
        timeout_rate=settings.sandbox_timeout_rate,
    )
    return MeteredGateway(sandbox, metrics)
