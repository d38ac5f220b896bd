"""A component check: a name, a probe, and what the component's failure makes of the whole.
The engine's own: PostgreSQL (without it nothing is served: `down`) and Redis (loss-tolerant
state only: `degraded`). The outer layers add theirs (the Ray cluster, replicas, actors)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from redis.asyncio import Redis

from engine.db.database import Database
from engine.health.report import Probe
from schema.states import HealthStatus


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    probe: Callable[[], Awaitable[Probe]]
    # The overall status when this component is down: `down` only for what every request needs.
    on_failure: HealthStatus = HealthStatus.DEGRADED


def database_check(db: Database) -> Check:
    """One round trip to PostgreSQL, and this process's pool."""

    async def probe() -> Probe:
        await db.ping()
        pool = db.pool_state()
        return Probe(detail={"pool_in_use": pool.in_use, "pool_max": pool.max_size})

    return Check("database", probe, on_failure=HealthStatus.DOWN)


def redis_check(redis: Redis) -> Check:
    """One PING to Redis."""

    async def probe() -> Probe:
        await redis.ping()
        return Probe()

    return Check("redis", probe)


def quorum(answered: int, expected: int) -> Probe:
    """A fleet's probe: `ok` when all of `expected` answered, `down` when none did, `degraded`
    in between."""
    if answered >= expected:
        status = HealthStatus.OK
    elif answered == 0:
        status = HealthStatus.DOWN
    else:
        status = HealthStatus.DEGRADED
    return Probe(status, {"answered": answered, "expected": expected})
