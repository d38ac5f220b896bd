"""The loop shared by queue workers: rounds back to back while they find work, otherwise sleep
until a NOTIFY (or a finished task) wakes the worker or the poll interval passes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable

import ray

log = logging.getLogger("paygrid.workers")


async def run_woken(
    round_: Callable[[], Awaitable[int]], wake: asyncio.Event, *, poll_s: float, name: str
) -> None:
    """Run `round_` forever; it returns how much work it found."""
    while True:
        # Cleared before the round, so a wake-up during it triggers the next one.
        wake.clear()
        try:
            if await round_():
                continue
        except Exception:  # keep working; leases return what a failed round held
            log.exception("%s: round failed", name)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), timeout=poll_s)


def placement(index: int) -> dict[str, object]:
    """Where the calling actor runs, for operators."""
    return {"index": index, "pid": os.getpid(), "node_id": ray.get_runtime_context().get_node_id()}
