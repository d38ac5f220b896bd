"""The payment gateways a process talks to, built from its settings through the registry,
every call timed, the calls safe to repeat retried (engine/gateways/retry.py)."""

from __future__ import annotations

from redis.asyncio import Redis

from engine.config import Settings
from engine.gateways.metered import MeteredGateway
from engine.gateways.registry import GatewayResources, Gateways, builtin_registry
from engine.gateways.retry import RetryingGateway, gateway_retry_policy
from engine.metrics.recorder import NO_METRICS, Metrics


async def open_gateways(
    settings: Settings, redis: Redis, *, metrics: Metrics = NO_METRICS
) -> Gateways:
    """The gateways `PAYGRID_GATEWAYS` names, keeping their records in `redis`, their calls
    timed in `metrics`; `aclose` them when done."""
    built = await builtin_registry().build(settings, GatewayResources(redis))
    policy = gateway_retry_policy(settings)
    # Each try is timed on its own; the retry wraps the meter.
    return built.wrapped(
        lambda gateway, capabilities: RetryingGateway(
            MeteredGateway(gateway, metrics),
            policy,
            deduplicates=capabilities.deduplicates,
            budget_s=settings.gateway_retry_budget_s,
        )
    )
