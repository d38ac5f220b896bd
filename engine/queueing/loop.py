"""The loop a queue worker runs: rounds back to back while they find work, otherwise a wait
until a wake-up (a NOTIFY, a finished item) or the poll interval passes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from engine.errors import DatabaseUnavailable

log = logging.getLogger("paygrid.queueing")


async def run_woken(
    round_: Callable[[], Awaitable[int]], wake: asyncio.Event, *, poll_s: float, name: str
) -> None:
    """Run `round_` forever; it returns how much work it found. Cancel to stop."""
    while True:
        # Cleared before the round, so a wake-up during it triggers the next one.
        wake.clear()
        try:
            if await round_():
                continue
        except DatabaseUnavailable:
            pass  # the Database seam logs an outage once; the next round retries
        except Exception:  # keep working; leases return what a failed round held
            log.exception("%s: round failed", name)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), timeout=poll_s)
