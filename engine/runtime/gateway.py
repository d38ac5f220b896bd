"""The payment gateways a process talks to, built from its settings through the registry."""

from __future__ import annotations

from redis.asyncio import Redis

from engine.config import Settings
from engine.gateways.registry import GatewayResources, Gateways, builtin_registry


async def open_gateways(settings: Settings, redis: Redis) -> Gateways:
    """The gateways `PAYGRID_GATEWAYS` names, keeping their records in `redis`; `aclose`
    them when done."""
    return await builtin_registry().build(settings, GatewayResources(redis))
