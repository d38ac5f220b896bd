"""Closed-loop load from several processes, for concurrencies one Python process cannot drive.

`run` splits `concurrency` workers over up to `processes` processes, releases them together from
a barrier so their windows line up, and merges what they measured (`Result.merged`): requests
and errors add up, latencies are pooled so percentiles stay exact, and the run lasted as long as
its longest part. Processes are spawned, not forked: the parent may hold Ray's threads, which a
fork would copy mid-flight. So the workload crosses as a pickle and must be a module-level
class; each part asks it for its own request factory (`Workload.factory(part)`).

Every part is bounded like `bench.load.run` (time and request count, loopback only); a part that
fails or never reports fails the whole run instead of shrinking it silently.
"""

from __future__ import annotations

import asyncio
import math
import multiprocessing
import queue
import time
from collections.abc import Sequence
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from typing import Protocol

from bench import load

# Spawning a process and importing aiohttp takes about a second on a busy two-core box.
_START_TIMEOUT_S = 60.0


class Workload(Protocol):
    """Picklable description of the requests to send; `factory(part)` builds one part's."""

    def factory(self, part: int) -> load.RequestFactory: ...


def shares(concurrency: int, processes: int) -> list[int]:
    """`concurrency` workers over at most `processes` parts, as even as whole workers allow."""
    parts = max(1, min(processes, concurrency))
    base, extra = divmod(concurrency, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def _part(
    index: int,
    name: str,
    base_url: str,
    workload: Workload,
    concurrency: int,
    duration_s: float,
    max_requests: int,
    barrier: Barrier,
    results: Queue[load.Result | str],
) -> None:
    try:
        make_request = workload.factory(index)
        barrier.wait(_START_TIMEOUT_S)
        result = asyncio.run(
            load.run(
                name,
                base_url,
                make_request,
                concurrency=concurrency,
                duration_s=duration_s,
                max_requests=max_requests,
            )
        )
    except Exception as exc:
        results.put(f"load part {index}: {type(exc).__name__}: {exc}")
        raise
    results.put(result)


def _collect(
    results: Queue[load.Result | str], parts: Sequence[BaseProcess], timeout_s: float
) -> list[load.Result | str]:
    """One report per part. A failed part, or one that died without a report (a crash at
    start, say), ends the wait at once instead of at the timeout."""
    received: list[load.Result | str] = []
    deadline = time.monotonic() + timeout_s
    while len(received) < len(parts):
        try:
            # Read before joining: a child cannot exit while its result sits unread in the pipe.
            received.append(results.get(timeout=1))
            if isinstance(received[-1], str):
                break
        except queue.Empty:
            crashed = [p.exitcode for p in parts if p.exitcode not in (None, 0)]
            if crashed or time.monotonic() > deadline:
                missing = len(parts) - len(received)
                received.append(f"{missing} load part(s) never reported (exit codes {crashed})")
                break
    return received


def run(
    name: str,
    base_url: str,
    workload: Workload,
    *,
    concurrency: int,
    duration_s: float,
    max_requests: int,
    processes: int,
) -> load.Result:
    """Drive `workload` against `base_url` with `concurrency` workers in all, from up to
    `processes` processes; the merged result."""
    split = shares(concurrency, processes)
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(len(split))
    results: Queue[load.Result | str] = context.Queue()
    per_part = math.ceil(max_requests / len(split))
    parts = [
        context.Process(
            target=_part,
            args=(i, name, base_url, workload, c, duration_s, per_part, barrier, results),
            daemon=True,
        )
        for i, c in enumerate(split)
    ]
    for process in parts:
        process.start()
    try:
        received = _collect(results, parts, _START_TIMEOUT_S + duration_s + 60)
    finally:
        for process in parts:
            process.join(10)
            if process.is_alive():
                process.terminate()
    failures = [r for r in received if isinstance(r, str)]
    if failures:
        raise RuntimeError("; ".join(failures))
    return load.Result.merged(
        name, concurrency, [r for r in received if isinstance(r, load.Result)]
    )
