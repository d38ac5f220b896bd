"""The circuit breaker of one gateway, as a pure state machine, and the board of every
gateway's circuit that one process (the cluster's named actor) holds for all the others.

    closed ──(failure_threshold failures within window_s)──▶ open
    open ──(reset_s passed)──▶ half_open
    half_open ──(the one probe succeeds)──▶ closed
    half_open ──(the probe fails, or is lost)──▶ open (for reset_s again)

Only failures count: a `GatewayError` known not to have reached or moved anything
(`ambiguous=False`). A decline is the gateway working and counts as a success; an ambiguous
outcome counts for nothing while closed (it cannot tell a slow gateway from a dead one) and as a
failed probe when half open. Time is the caller's monotonic clock, so tests move it by hand.

Half open lets exactly one call through, cluster-wide: the board grants the probe to the first
process that asks once the reset has passed (the grant rides on that process's regular sync, so
asking costs no extra call) and holds it for `probe_lease_s`; if no outcome comes back by then,
the next process to ask gets it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from schema.states import CircuitState

__all__ = [
    "Circuit",
    "CircuitBoard",
    "CircuitPolicy",
    "CircuitReport",
    "CircuitState",
    "CircuitView",
]


@dataclass(frozen=True, slots=True)
class CircuitPolicy:
    failure_threshold: int = 5
    window_s: float = 10.0
    reset_s: float = 60.0
    probe_lease_s: float = 30.0


@dataclass(frozen=True, slots=True)
class CircuitReport:
    """One call's outcome as the breaker counts it: `failed` (an unambiguous failure), else a
    success unless `ambiguous`."""

    gateway: str
    failed: bool
    ambiguous: bool = False


@dataclass(frozen=True, slots=True)
class CircuitView:
    """A circuit as one process sees it: its state, and whether this process holds the one
    probe of a half-open circuit."""

    state: CircuitState = CircuitState.CLOSED
    probe: bool = False


class Circuit:
    """One gateway's breaker."""

    def __init__(self, policy: CircuitPolicy) -> None:
        self._policy = policy
        self._open = False
        self._opened_at = 0.0
        self._failures: deque[float] = deque()
        self._probe_holder: str | None = None
        self._probe_until = 0.0

    def state(self, now: float) -> CircuitState:
        if not self._open:
            return CircuitState.CLOSED
        if now >= self._opened_at + self._policy.reset_s:
            return CircuitState.HALF_OPEN
        return CircuitState.OPEN

    def record(self, report: CircuitReport, now: float) -> None:
        """Count one call's outcome."""
        state = self.state(now)
        if state is CircuitState.HALF_OPEN:
            if report.failed or report.ambiguous:
                self._trip(now)
            else:
                self._close()
        elif state is CircuitState.CLOSED and report.failed:
            self._failures.append(now)
            while self._failures and self._failures[0] <= now - self._policy.window_s:
                self._failures.popleft()
            if len(self._failures) >= self._policy.failure_threshold:
                self._trip(now)

    def grant_probe(self, holder: str, now: float) -> bool:
        """Whether `holder` may send the half-open circuit's one probe: the first to ask gets
        it, and keeps it (asking again) until its outcome is recorded or the lease runs out."""
        if self.state(now) is not CircuitState.HALF_OPEN:
            return False
        if self._probe_holder in (None, holder) or now >= self._probe_until:
            if self._probe_holder != holder:
                self._probe_until = now + self._policy.probe_lease_s
            self._probe_holder = holder
            return True
        return False

    def _trip(self, now: float) -> None:
        self._open, self._opened_at = True, now
        self._failures.clear()
        self._probe_holder = None

    def _close(self) -> None:
        self._open = False
        self._failures.clear()
        self._probe_holder = None


class CircuitBoard:
    """Every gateway's circuit, shared: processes send what their calls reported and get back
    the circuits as they should see them."""

    def __init__(self, policy: CircuitPolicy, clock: Callable[[], float]) -> None:
        self._policy = policy
        self._clock = clock
        self._circuits: dict[str, Circuit] = {}

    def sync(self, holder: str | None, reports: Sequence[CircuitReport]) -> dict[str, CircuitView]:
        """Record `reports` (in the order their calls ended), then every circuit as `holder`
        sees it, a half-open one's probe granted to it if free; a process that sends no
        payments (holder None) only watches and is never granted one."""
        now = self._clock()
        for report in reports:
            self._circuit(report.gateway).record(report, now)
        views = {}
        for name, circuit in self._circuits.items():
            state = circuit.state(now)
            probe = (
                holder is not None
                and state is CircuitState.HALF_OPEN
                and circuit.grant_probe(holder, now)
            )
            views[name] = CircuitView(state, probe)
        return views

    def states(self) -> dict[str, CircuitState]:
        """Every known circuit's state (a gateway never reported on is closed)."""
        now = self._clock()
        return {name: c.state(now) for name, c in self._circuits.items()}

    def _circuit(self, gateway: str) -> Circuit:
        circuit = self._circuits.get(gateway)
        if circuit is None:
            circuit = self._circuits[gateway] = Circuit(self._policy)
        return circuit
