"""This process's cached view of every gateway's circuit (`engine/gateways/circuit.py`).

The hot path only reads memory: `allows` and `state` never wait, and `report` only appends.
A background task syncs with the shared board every `refresh_s`: one call that sends what this
process's calls reported and brings back every circuit as this process should see it (with the
probe of a half-open one, when granted to it). So a circuit opened by five failures anywhere is
seen open everywhere within about two refreshes. If the board cannot be reached, the view stays
as last seen and the reports wait (bounded) for the next sync: the breaker fails open, never
blocking payments on its own trouble.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable

from engine.config import Settings
from engine.gateways.base import GatewayError, GatewayResult
from engine.gateways.circuit import (
    CircuitBoard,
    CircuitPolicy,
    CircuitReport,
    CircuitState,
    CircuitView,
)

log = logging.getLogger("paygrid.gateways")

CircuitSync = Callable[[str | None, list[CircuitReport]], Awaitable[dict[str, CircuitView]]]

_MAX_PENDING = 10_000
_CLOSED = CircuitView()


def circuit_policy(settings: Settings) -> CircuitPolicy:
    """The breaker's thresholds from the settings."""
    return CircuitPolicy(
        failure_threshold=settings.circuit_failure_threshold,
        window_s=settings.circuit_window_s,
        reset_s=settings.circuit_reset_s,
        probe_lease_s=settings.circuit_probe_lease_s,
    )


class CircuitBreakers:
    """The circuits as this process last saw them, and what its calls reported since.
    `holder` names a process that sends payments (and so may be granted a probe); None, one
    that only watches (an API replica)."""

    def __init__(self, *, holder: str | None, sync: CircuitSync, refresh_s: float) -> None:
        self._holder = holder
        self._sync = sync
        self._refresh_s = refresh_s
        self._views: dict[str, CircuitView] = {}
        self._pending: list[CircuitReport] = []
        # Half-open circuits whose probe this process has sent and not yet heard back about.
        self._probing: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    def allows(self, gateway: str) -> bool:
        """Whether a new payment may go to `gateway` now: closed, or half open with the probe
        granted to this process and not yet used (using it)."""
        view = self._views.get(gateway, _CLOSED)
        if view.state is CircuitState.CLOSED:
            return True
        if view.state is CircuitState.HALF_OPEN and view.probe and gateway not in self._probing:
            self._probing.add(gateway)
            return True
        return False

    def state(self, gateway: str) -> CircuitState:
        return self._views.get(gateway, _CLOSED).state

    def states(self, gateways: Iterable[str]) -> dict[str, CircuitState]:
        """The state of each of `gateways`, as last seen."""
        return {name: self.state(name) for name in gateways}

    def report(self, gateway: str, outcome: GatewayResult | GatewayError) -> None:
        """Count a call's outcome at the next sync; never waits."""
        failed = isinstance(outcome, GatewayError) and not outcome.ambiguous
        ambiguous = isinstance(outcome, GatewayError) and outcome.ambiguous
        if len(self._pending) < _MAX_PENDING:
            self._pending.append(CircuitReport(gateway, failed, ambiguous))

    async def refresh(self) -> None:
        """Send the reports and take the board's view; on failure the reports wait."""
        reports, self._pending = self._pending, []
        try:
            views = await self._sync(self._holder, reports)
        except BaseException:
            self._pending = (reports + self._pending)[:_MAX_PENDING]
            raise
        self._views = views
        self._probing = {
            name for name in self._probing if (v := views.get(name)) is not None and v.probe
        }

    def start(self) -> None:
        """Sync in the background from now on."""
        self._task = asyncio.get_running_loop().create_task(self._sync_forever())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _sync_forever(self) -> None:
        failing = False
        while True:
            try:
                await self.refresh()
                failing = False
            except Exception:  # logged once per outage; the view stays as last seen
                if not failing:
                    log.warning("could not sync the gateway circuits; retrying", exc_info=True)
                failing = True
            await asyncio.sleep(self._refresh_s)


class DisabledBreakers(CircuitBreakers):
    """No breakers (`circuit_breaker_enabled` false): every gateway always allowed, nothing
    counted, nothing synced. Only to measure what the breakers cost."""

    def __init__(self) -> None:
        super().__init__(holder=None, sync=_no_sync, refresh_s=1.0)

    def allows(self, gateway: str) -> bool:
        return True

    def report(self, gateway: str, outcome: GatewayResult | GatewayError) -> None:
        return

    def start(self) -> None:
        return


async def _no_sync(holder: str | None, reports: list[CircuitReport]) -> dict[str, CircuitView]:
    return {}


def local_breakers(settings: Settings, *, holder: str = "local") -> CircuitBreakers:
    """Breakers of this process alone (no cluster to share them with): a board of its own."""
    if not settings.circuit_breaker_enabled:
        return DisabledBreakers()
    board = CircuitBoard(circuit_policy(settings), time.monotonic)

    async def sync(who: str | None, reports: list[CircuitReport]) -> dict[str, CircuitView]:
        return board.sync(who, reports)

    return CircuitBreakers(holder=holder, sync=sync, refresh_s=settings.circuit_refresh_s)
