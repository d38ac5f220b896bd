"""A bounded closed-loop HTTP load generator (aiohttp, loopback only).

`concurrency` workers each send one request at a time until `duration_s` passes or `max_requests`
are sent; latencies of every finished request are kept for exact percentiles. `Result.merged`
combines the parts of one run driven from several processes, `Summary` the repeats of one row.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlparse

import aiohttp

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@dataclass
class Result:
    name: str
    concurrency: int
    requests: int = 0
    errors: int = 0
    elapsed_s: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    # The first answer of each failing status (0: no answer), shortened: what went wrong.
    samples: dict[int, str] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.requests / self.elapsed_s if self.elapsed_s else 0.0

    def percentile(self, p: float) -> float:
        return percentile(sorted(self.latencies_ms), p)

    @classmethod
    def merged(cls, name: str, concurrency: int, parts: Sequence[Result]) -> Result:
        """One run driven from several processes at once: counts add up, latencies are pooled
        (so percentiles stay exact), and the run lasted as long as its longest part."""
        merged = cls(name, concurrency)
        for part in parts:
            merged.requests += part.requests
            merged.errors += part.errors
            merged.elapsed_s = max(merged.elapsed_s, part.elapsed_s)
            merged.latencies_ms.extend(part.latencies_ms)
            for status, count in part.statuses.items():
                merged.statuses[status] = merged.statuses.get(status, 0) + count
            for status, sample in part.samples.items():
                merged.samples.setdefault(status, sample)
        return merged


def percentile(ordered: Sequence[float], p: float) -> float:
    """The `p`th percentile of sorted values (nearest rank); NaN when there are none."""
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


@dataclass(frozen=True)
class Summary:
    """The repeats of one row: req/s as median and min-max (the run-to-run spread), latency
    percentiles over every request of every repeat, errors summed."""

    runs: tuple[Result, ...]

    @property
    def median_rps(self) -> float:
        return statistics.median(r.rps for r in self.runs)

    @property
    def min_rps(self) -> float:
        return min(r.rps for r in self.runs)

    @property
    def max_rps(self) -> float:
        return max(r.rps for r in self.runs)

    @property
    def errors(self) -> int:
        return sum(r.errors for r in self.runs)

    @property
    def statuses(self) -> dict[int, int]:
        return Result.merged("", 0, self.runs).statuses

    def percentiles(self, *ps: float) -> tuple[float, ...]:
        ordered = sorted(latency for r in self.runs for latency in r.latencies_ms)
        return tuple(percentile(ordered, p) for p in ps)


RequestFactory = Callable[[int], tuple[str, dict[str, str], bytes]]


async def run(
    name: str,
    base_url: str,
    make_request: RequestFactory,
    *,
    concurrency: int,
    duration_s: float,
    max_requests: int,
    ok_statuses: frozenset[int] = frozenset({200}),
) -> Result:
    """Drive POSTs built by `make_request(i)` (path, headers, body) against `base_url`."""
    host = urlparse(base_url).hostname
    if host not in LOOPBACK:
        raise ValueError(f"benchmarks only send traffic to loopback, not {host}")
    result = Result(name, concurrency)
    counter = 0
    deadline = time.perf_counter() + duration_s
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(base_url, connector=connector, timeout=timeout) as session:

        async def worker() -> None:
            nonlocal counter
            while time.perf_counter() < deadline and counter < max_requests:
                i = counter
                counter += 1
                path, headers, body = make_request(i)
                started = time.perf_counter()
                try:
                    async with session.post(path, data=body, headers=headers) as response:
                        answer = await response.read()
                        status = response.status
                except (aiohttp.ClientError, TimeoutError) as exc:
                    answer, status = repr(exc).encode(), 0
                result.latencies_ms.append((time.perf_counter() - started) * 1000)
                result.statuses[status] = result.statuses.get(status, 0) + 1
                result.requests += 1
                if status not in ok_statuses:
                    result.errors += 1
                    result.samples.setdefault(status, answer[:300].decode(errors="replace"))

        begin = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        result.elapsed_s = time.perf_counter() - begin
    return result
