"""The payment gateway a process talks to, built from its settings: the built-in sandbox, with
the latency and faults configured for it."""

from __future__ import annotations

from redis.asyncio import Redis

from engine.config import Settings
from engine.gateways.base import Gateway
from engine.gateways.sandbox import SandboxGateway


def open_gateway(settings: Settings, redis: Redis) -> Gateway:
    """The configured gateway, keeping its records in `redis`."""
    return SandboxGateway(
        redis,
        latency_ms=settings.sandbox_latency_ms,
        timeout_rate=settings.sandbox_timeout_rate,
    )
