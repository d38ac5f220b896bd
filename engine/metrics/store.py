"""The cluster's metrics in Redis: counters summed over every process that ever published
(`HINCRBYFLOAT` of each process's deltas), gauges per live process (a hash per process that
expires when it stops publishing), the last hour's counters in per-minute windows that `/health`
reads for its thresholds, `/api/tracing/stats` for its per-route figures and the console's
overview for the last hour's traffic (folded over routes on read, `engine/metrics/traffic.py`).

Redis holds loss-tolerant state only: if it loses these, counters start again from zero, which
Prometheus reads as a counter reset, and nothing else is lost.
"""

from __future__ import annotations

import time
from collections import defaultdict

from redis.asyncio import Redis

from engine.metrics import traffic
from engine.metrics.recorder import Sample

_WINDOW_S = 60
# The longest span read back, in minutes (`/api/tracing/stats?window=1h`: the hour before the
# current minute, and that minute); a minute's window is kept until the span after it is done.
LONGEST_SPAN_MIN = 61
_WINDOW_KEEP_S = (LONGEST_SPAN_MIN + 2) * _WINDOW_S


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class MetricsStore:
    def __init__(
        self, redis: Redis, *, prefix: str = "paygrid:metrics", gauge_ttl_s: float
    ) -> None:
        self._redis = redis
        self._counters = f"{prefix}:counters"
        self._sources = f"{prefix}:sources"
        self._gauges = f"{prefix}:gauges:"
        self._window = f"{prefix}:window:"
        self._gauge_ttl_ms = max(1, int(gauge_ttl_s * 1000))

    async def push(self, source: str, sample: Sample, *, now: float | None = None) -> None:
        """Add `sample`'s counter deltas to the totals and this minute's window, and replace
        `source`'s gauges. One round trip."""
        minute = int((time.time() if now is None else now) // _WINDOW_S)
        window = f"{self._window}{minute}"
        pipe = self._redis.pipeline(transaction=False)
        for key, delta in sample.counters.items():
            pipe.hincrbyfloat(self._counters, key, delta)
            pipe.hincrbyfloat(window, key, delta)
        if sample.counters:
            pipe.expire(window, _WINDOW_KEEP_S)
        gauges = f"{self._gauges}{source}"
        pipe.delete(gauges)
        if sample.gauges:
            pipe.hset(gauges, mapping={k: repr(v) for k, v in sample.gauges.items()})
            pipe.pexpire(gauges, self._gauge_ttl_ms)
            pipe.sadd(self._sources, source)
        await pipe.execute()

    async def counters(self) -> dict[str, float]:
        """Every counter series, summed over the cluster since Redis last lost them."""
        raw = await self._redis.hgetall(self._counters)
        return {_text(k): float(v) for k, v in raw.items()}

    async def gauges(self) -> dict[str, float]:
        """Every gauge series, summed over the processes still publishing."""
        sources = sorted(_text(s) for s in await self._redis.smembers(self._sources))
        pipe = self._redis.pipeline(transaction=False)
        for source in sources:
            pipe.hgetall(f"{self._gauges}{source}")
        totals: dict[str, float] = defaultdict(float)
        gone = []
        for source, values in zip(sources, await pipe.execute(), strict=True):
            if not values:
                gone.append(source)
            for key, value in values.items():
                totals[_text(key)] += float(value)
        if gone:
            await self._redis.srem(self._sources, *gone)
        return dict(totals)

    async def recent(self, *, now: float | None = None) -> dict[str, float]:
        """Counter deltas of this minute and the one before: between one and two minutes."""
        return await self.span(2, now=now)

    async def span(self, minutes: int, *, now: float | None = None) -> dict[str, float]:
        """Counter deltas of this minute and the `minutes` - 1 before it (at most
        `LONGEST_SPAN_MIN`): between `minutes` - 1 and `minutes` minutes of history."""
        if not 1 <= minutes <= LONGEST_SPAN_MIN:
            raise ValueError(f"a span of 1 to {LONGEST_SPAN_MIN} minutes, not {minutes}")
        minute = int((time.time() if now is None else now) // _WINDOW_S)
        pipe = self._redis.pipeline(transaction=False)
        for m in range(minute - minutes + 1, minute + 1):
            pipe.hgetall(f"{self._window}{m}")
        totals: dict[str, float] = defaultdict(float)
        for values in await pipe.execute():
            for key, value in values.items():
                totals[_text(key)] += float(value)
        return dict(totals)

    async def traffic(self, *, now: float | None = None) -> list[traffic.TrafficMinute]:
        """The HTTP traffic of the last `traffic.MINUTES` minutes, oldest first, the current
        one included (its rate over the seconds it has run); a minute without requests reads
        as zero."""
        at = time.time() if now is None else now
        minute = int(at // _WINDOW_S)
        minutes = range(minute - traffic.MINUTES + 1, minute + 1)
        pipe = self._redis.pipeline(transaction=False)
        for m in minutes:
            pipe.hgetall(f"{self._window}{m}")
        return [
            traffic.minute(
                m * _WINDOW_S,
                traffic.fold({_text(k): float(v) for k, v in values.items()}),
                seconds=max(1.0, min(_WINDOW_S, at - m * _WINDOW_S)),
            )
            for m, values in zip(minutes, await pipe.execute(), strict=True)
        ]
