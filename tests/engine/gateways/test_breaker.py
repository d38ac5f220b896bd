"""A process's cached view of the circuits: reads are memory only, reports travel with the
next sync, a half-open circuit lets this process through once when it holds the probe, and an
unreachable board leaves the view as it was and keeps the reports for later."""

from __future__ import annotations

import pytest

from engine.config import Settings
from engine.gateways.base import GatewayError, GatewayResult
from engine.gateways.breaker import CircuitBreakers, local_breakers
from engine.gateways.circuit import (
    CircuitBoard,
    CircuitPolicy,
    CircuitReport,
    CircuitState,
    CircuitView,
)
from tests.waiting import wait_until

POLICY = CircuitPolicy(failure_threshold=5, window_s=10.0, reset_s=60.0)
DOWN = GatewayError("connection refused", ambiguous=False)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Board:
    """A board reached as a remote one is: through an awaitable sync that may fail."""

    def __init__(self) -> None:
        self.clock = Clock()
        self.board = CircuitBoard(POLICY, self.clock)
        self.reachable = True
        self.syncs = 0

    async def sync(
        self, holder: str | None, reports: list[CircuitReport]
    ) -> dict[str, CircuitView]:
        self.syncs += 1
        if not self.reachable:
            raise ConnectionError("board unreachable")
        return self.board.sync(holder, reports)


def breakers(board: Board, holder: str | None) -> CircuitBreakers:
    return CircuitBreakers(holder=holder, sync=board.sync, refresh_s=0.05)


async def test_failures_reported_in_one_process_open_the_circuit_in_another() -> None:
    board = Board()
    shard, replica = breakers(board, "shard"), breakers(board, None)
    for _ in range(5):
        shard.report("sandbox", DOWN)
    shard.report("sandbox", GatewayResult(False, "x", "generic_decline"))
    assert shard.allows("sandbox")
    assert board.syncs == 0  # reporting and reading never call out

    await shard.refresh()
    await replica.refresh()

    assert not shard.allows("sandbox")
    assert replica.states(["sandbox", "other"]) == {"sandbox": "open", "other": "closed"}


async def test_only_the_holder_of_the_probe_gets_through_once() -> None:
    board = Board()
    first, second = breakers(board, "shard-0"), breakers(board, "shard-1")
    for _ in range(5):
        first.report("sandbox", DOWN)
    await first.refresh()
    board.clock.now += 60

    await first.refresh()
    await second.refresh()
    assert (first.allows("sandbox"), second.allows("sandbox")) == (True, False)
    assert not first.allows("sandbox")  # one probe, not one per call

    first.report("sandbox", GatewayResult(True, "ch_1"))
    await first.refresh()
    await second.refresh()
    assert first.allows("sandbox")
    assert second.allows("sandbox")


async def test_an_unreachable_board_keeps_the_view_and_the_reports() -> None:
    board = Board()
    shard = breakers(board, "shard")
    for _ in range(5):
        shard.report("sandbox", DOWN)
    board.reachable = False

    with pytest.raises(ConnectionError):
        await shard.refresh()
    assert shard.allows("sandbox")

    board.reachable = True
    await shard.refresh()
    assert not shard.allows("sandbox")


async def test_the_background_sync_picks_up_a_change_without_a_call() -> None:
    board = Board()
    shard, replica = breakers(board, "shard"), breakers(board, "replica")
    replica.start()
    try:
        for _ in range(5):
            shard.report("sandbox", DOWN)
        await shard.refresh()

        async def replica_sees_it_open() -> bool:
            return replica.state("sandbox") is CircuitState.OPEN

        await wait_until(replica_sees_it_open, timeout_s=5.0, what="the replica to see it open")
    finally:
        await replica.close()


async def test_breakers_turned_off_allow_everything_and_count_nothing() -> None:
    breakers = local_breakers(Settings(circuit_breaker_enabled=False, circuit_failure_threshold=1))
    breakers.start()
    for _ in range(10):
        breakers.report("sandbox", DOWN)
    await breakers.refresh()

    assert breakers.allows("sandbox")
    assert breakers.state("sandbox") is CircuitState.CLOSED
    await breakers.close()
