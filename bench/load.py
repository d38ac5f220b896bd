"""A bounded closed-loop HTTP load generator (aiohttp, loopback only).

`concurrency` workers each send one request at a time until `duration_s` passes or `max_requests`
are sent; latencies of every finished request are kept for exact percentiles.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
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

    @property
    def rps(self) -> float:
        return self.requests / self.elapsed_s if self.elapsed_s else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


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
                        await response.read()
                        status = response.status
                except (aiohttp.ClientError, TimeoutError):
                    status = 0
                result.latencies_ms.append((time.perf_counter() - started) * 1000)
                result.statuses[status] = result.statuses.get(status, 0) + 1
                result.requests += 1
                if status not in ok_statuses:
                    result.errors += 1

        begin = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        result.elapsed_s = time.perf_counter() - begin
    return result


def table(results: list[Result], title: str, extra: dict[str, Any] | None = None) -> str:
    """A Markdown results table."""
    lines = [f"### {title}", ""]
    for key, value in (extra or {}).items():
        lines.append(f"- {key}: {value}")
    if extra:
        lines.append("")
    lines.append("| target | concurrency | requests | req/s | p50 ms | p99 ms | errors |")
    lines.append("|---|---|---|---|---|---|---|")
    for r in results:
        lines.append(
            f"| {r.name} | {r.concurrency} | {r.requests} | {r.rps:,.0f} | "
            f"{r.percentile(50):.1f} | {r.percentile(99):.1f} | {r.errors} |"
        )
    return "\n".join(lines)
