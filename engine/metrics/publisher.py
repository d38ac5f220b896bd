"""Publishes one process's registry to the metrics store every interval. What a failed push
carried is kept and added to the next one, so a Redis outage delays counts instead of losing
them (gauges are simply current again at the next push)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from redis.exceptions import RedisError

from engine.metrics.recorder import Registry, Sample
from engine.metrics.store import MetricsStore
from engine.shared_state import push_every

log = logging.getLogger("paygrid.metrics")


class Publisher:
    def __init__(
        self, registry: Registry, store: MetricsStore, *, source: str, interval_s: float
    ) -> None:
        self._registry = registry
        self._store = store
        self._source = source
        self._interval_s = interval_s
        self._unsent = Sample()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def publish(self) -> None:
        """Push what was recorded since the last push (and whatever that one failed to)."""
        self._unsent.merge(self._registry.take())
        sample, self._unsent = self._unsent, Sample()
        try:
            await self._store.push(self._source, sample)
        except (RedisError, OSError):
            self._unsent = sample
            raise

    async def close(self) -> None:
        """Stop, after a last push (best effort)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(RedisError, OSError):
            await self.publish()

    async def _run(self) -> None:
        await push_every(
            self._interval_s, self.publish, log=log, failed="metrics not published; kept for later"
        )
