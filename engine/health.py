"""Whether the dependencies answer: PostgreSQL and Redis, for `/health`."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.exceptions import RedisError

from engine.db.database import Database
from engine.errors import DatabaseUnavailable


class HealthService:
    def __init__(self, db: Database, redis: Redis) -> None:
        self._db = db
        self._redis = redis

    async def check(self) -> dict[str, str]:
        """`ok` or `unavailable` per dependency; reports, never raises."""
        checks: dict[str, str] = {}
        try:
            await self._db.ping()
            checks["database"] = "ok"
        except DatabaseUnavailable:
            checks["database"] = "unavailable"
        try:
            await self._redis.ping()
            checks["redis"] = "ok"
        except (RedisError, OSError):
            # Redis holds only loss-tolerant state; report it all the same.
            checks["redis"] = "unavailable"
        return checks
