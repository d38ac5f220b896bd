"""GatewayCircuits: the one board of every gateway's circuit breaker, shared by the cluster.

It only delegates (`engine/gateways/circuit.py`). Every ledger shard and API replica syncs with
it in the background (`engine/gateways/breaker.py`): one call per process per refresh, carrying
the outcomes its gateway calls reported and bringing back every circuit; no payment ever waits
on it.

Guarantees after a restart: none kept, by design. Circuits are memory only and start closed: a
gateway still failing opens its circuit again after its next few failures, and nothing about
money depends on a circuit (it only decides where new payments are sent first).
"""

from __future__ import annotations

import time

import ray

from actors.options import gateway_circuits_options
from engine.config import Settings
from engine.gateways.breaker import CircuitBreakers, DisabledBreakers, circuit_policy
from engine.gateways.circuit import CircuitBoard, CircuitReport, CircuitView
from schema.states import CircuitState


@ray.remote
class GatewayCircuits:
    def __init__(self, settings: Settings) -> None:
        self._fingerprint = settings.fingerprint()
        self._board = CircuitBoard(circuit_policy(settings), time.monotonic)

    async def settings_fingerprint(self) -> str:
        """Which settings this incarnation runs with (see `actors.fleet`)."""
        return self._fingerprint

    async def sync(
        self, holder: str | None, reports: list[CircuitReport]
    ) -> dict[str, CircuitView]:
        """Record `holder`'s reports; every circuit as `holder` should see it."""
        return self._board.sync(holder, reports)

    async def states(self) -> dict[str, CircuitState]:
        """Every known circuit's state, for operators and tests."""
        return self._board.states()


def shared_breakers(settings: Settings, holder: str | None) -> CircuitBreakers:
    """Breakers of this process synced with the cluster's board (created if missing); holder
    None for a process that sends no payments."""
    if not settings.circuit_breaker_enabled:
        return DisabledBreakers()
    options = gateway_circuits_options()
    board = GatewayCircuits.options(**options).remote(settings)  # type: ignore[attr-defined]

    async def sync(who: str | None, reports: list[CircuitReport]) -> dict[str, CircuitView]:
        views: dict[str, CircuitView] = await board.sync.remote(who, reports)
        return views

    return CircuitBreakers(holder=holder, sync=sync, refresh_s=settings.circuit_refresh_s)
