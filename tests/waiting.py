"""Waiting on a condition instead of sleeping a fixed time: poll until it holds, or fail with
what was awaited once the deadline passes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


async def wait_until(
    condition: Callable[[], Awaitable[bool]],
    *,
    timeout_s: float = 30.0,
    what: str | Callable[[], str] = "condition",
) -> None:
    """Return as soon as `condition()` is true; AssertionError after `timeout_s`, saying what
    was awaited (`what` may be a callable, read only then, to report the last state seen)."""
    deadline = time.monotonic() + timeout_s
    while not await condition():
        if time.monotonic() > deadline:
            described = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout_s} s waiting for {described}")
        await asyncio.sleep(0.02)
