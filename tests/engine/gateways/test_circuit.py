"""The circuit breaker's state machine and its shared board, on a clock moved by hand: five
unambiguous failures within ten seconds open it; declines and ambiguous outcomes do not count;
after the reset one probe, granted to one holder only, closes it or opens it again."""

from __future__ import annotations

from engine.gateways.circuit import (
    Circuit,
    CircuitBoard,
    CircuitPolicy,
    CircuitReport,
    CircuitState,
    CircuitView,
)

POLICY = CircuitPolicy(failure_threshold=5, window_s=10.0, reset_s=60.0, probe_lease_s=30.0)
FAIL = CircuitReport("g", failed=True)
OK = CircuitReport("g", failed=False)
LOST = CircuitReport("g", failed=False, ambiguous=True)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_five_failures_within_the_window_open_it() -> None:
    circuit = Circuit(POLICY)
    for _ in range(4):
        circuit.record(FAIL, 0.0)
    assert circuit.state(0.0) is CircuitState.CLOSED
    circuit.record(FAIL, 9.9)
    assert circuit.state(9.9) is CircuitState.OPEN


def test_failures_spread_wider_than_the_window_do_not() -> None:
    circuit = Circuit(POLICY)
    for second in range(0, 50, 3):
        circuit.record(FAIL, float(second))
    assert circuit.state(50.0) is CircuitState.CLOSED


def test_declines_successes_and_ambiguous_outcomes_do_not_count() -> None:
    circuit = Circuit(POLICY)
    for _ in range(20):
        circuit.record(OK, 1.0)
        circuit.record(LOST, 1.0)
    assert circuit.state(1.0) is CircuitState.CLOSED


def test_after_the_reset_one_probe_decides() -> None:
    circuit = Circuit(POLICY)
    for _ in range(5):
        circuit.record(FAIL, 0.0)
    assert circuit.state(59.9) is CircuitState.OPEN
    assert not circuit.grant_probe("a", 59.9)
    assert circuit.state(60.0) is CircuitState.HALF_OPEN

    assert circuit.grant_probe("a", 60.0)
    assert circuit.grant_probe("a", 61.0)  # the holder keeps it
    assert not circuit.grant_probe("b", 61.0)
    circuit.record(FAIL, 62.0)
    assert circuit.state(62.0) is CircuitState.OPEN
    assert circuit.state(121.9) is CircuitState.OPEN

    assert circuit.grant_probe("b", 122.0)
    circuit.record(OK, 122.5)
    assert circuit.state(122.5) is CircuitState.CLOSED
    # Closed afresh: four new failures are not enough.
    for _ in range(4):
        circuit.record(FAIL, 123.0)
    assert circuit.state(123.0) is CircuitState.CLOSED


def test_an_ambiguous_probe_opens_it_again_and_a_lost_probe_is_granted_again() -> None:
    circuit = Circuit(POLICY)
    for _ in range(5):
        circuit.record(FAIL, 0.0)
    assert circuit.grant_probe("a", 60.0)
    circuit.record(LOST, 61.0)
    assert circuit.state(61.0) is CircuitState.OPEN

    assert circuit.grant_probe("a", 121.0)
    assert not circuit.grant_probe("b", 150.0)
    assert circuit.grant_probe("b", 151.0)  # a's lease ran out with no outcome


def test_the_board_shares_circuits_and_grants_the_probe_to_one_holder() -> None:
    clock = Clock()
    board = CircuitBoard(POLICY, clock)
    assert board.sync("shard-0", [FAIL] * 3) == {"g": CircuitView(CircuitState.CLOSED)}
    assert board.sync("shard-1", [FAIL, FAIL]) == {"g": CircuitView(CircuitState.OPEN)}
    assert board.sync("replica", []) == {"g": CircuitView(CircuitState.OPEN)}

    clock.now += 60
    # A watcher (an API replica) is never granted the probe.
    assert board.sync(None, []) == {"g": CircuitView(CircuitState.HALF_OPEN, probe=False)}
    assert board.sync("shard-1", []) == {"g": CircuitView(CircuitState.HALF_OPEN, probe=True)}
    assert board.sync("shard-0", []) == {"g": CircuitView(CircuitState.HALF_OPEN, probe=False)}
    assert board.sync("shard-1", [OK]) == {"g": CircuitView(CircuitState.CLOSED)}
    assert board.states() == {"g": CircuitState.CLOSED}
