"""Test doubles for the money path: a scriptable gateway and a clock the test moves by hand.

`FakeGateway` speaks the `Gateway` protocol. Each call takes the next scripted `Act` (when the
script is empty: approve, or decline a card listed in `declining_cards`). It keeps what it
decided per reference, as a real gateway does, so `lookup` finds it, and records every call made
to it, so a test can show nothing was charged twice. It is idempotent on the reference like a
real gateway: a repeat gets the first decision.

`FakeClock` gives the service and its steps a `now()` and the ledger book a `monotonic()`, both
moved only by `advance`, so expiry, recovery grace and idle eviction need no waiting.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from uuid import UUID, uuid4

from engine.cards import CardDetails, CardSummary
from engine.gateways.base import (
    ChargeRequest,
    GatewayError,
    GatewayResult,
    LookupHint,
    OperationRequest,
    VerifyRequest,
)
from engine.gateways.breaker import CircuitBreakers
from engine.gateways.circuit import CircuitBoard, CircuitPolicy, CircuitReport, CircuitView

TOKEN_CARD = CardSummary("visa", "424242", "4242", 12, 2034)


class FakeClock:
    """Wall time and a monotonic reading that move together, only when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime.now(UTC)
        self._monotonic = 1_000.0

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._monotonic

    def advance(self, delta: timedelta) -> None:
        self._now += delta
        self._monotonic += delta.total_seconds()


class Kind(StrEnum):
    APPROVE = "approve"
    DECLINE = "decline"
    # Nothing reached the gateway: a transport failure that is known not to have acted.
    TIMEOUT = "timeout"
    # The gateway acted (approved or declined) and the answer was lost on the way back.
    DROP = "drop"
    # The request was lost on the way there: an ambiguous error, and the gateway never saw it.
    LOSE = "lose"
    # Held for review: neither approved nor declined until `records` says otherwise.
    REVIEW = "review"


@dataclass(frozen=True, slots=True)
class Act:
    """What the gateway does with one call."""

    kind: Kind
    decline_code: str | None = None


APPROVE = Act(Kind.APPROVE)
TIMEOUT = Act(Kind.TIMEOUT)
DROP = Act(Kind.DROP)
LOSE = Act(Kind.LOSE)
REVIEW = Act(Kind.REVIEW)


def decline(code: str = "insufficient_funds") -> Act:
    return Act(Kind.DECLINE, code)


def drop_decline(code: str = "generic_decline") -> Act:
    """Decline, record it, then lose the answer."""
    return Act(Kind.DROP, code)


@dataclass(frozen=True, slots=True)
class Call:
    """One call the gateway got."""

    method: str
    reference: UUID
    amount: int
    currency: str
    gateway_transaction_id: str | None = None


@dataclass
class FakeGateway:
    """A `Gateway` whose every call follows the script; see the module docstring."""

    lookup_grace_s: float = 60.0
    name: str = "fake"
    calls: list[Call] = field(default_factory=list)
    lookups: list[UUID] = field(default_factory=list)
    records: dict[UUID, GatewayResult] = field(default_factory=dict)
    # Card number → decline code, for charges the script says nothing about.
    declining_cards: dict[str, str] = field(default_factory=dict)
    # References whose lookup fails with a transport error (the lookup endpoint is down).
    failing_lookups: set[UUID] = field(default_factory=set)
    # When set, every call waits for it after it has been counted in `arrived`.
    gate: asyncio.Event | None = None
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    # Amount → event: a call of that amount waits for its event (a slow call to one customer).
    held: dict[int, asyncio.Event] = field(default_factory=dict)
    # When set, lookups wait for it (a gateway slow to answer recovery's questions).
    lookup_gate: asyncio.Event | None = None
    # Each call takes up to this long, drawn from `jitter` (a slow, uneven gateway).
    latency_s: float = 0.0
    jitter: random.Random = field(default_factory=lambda: random.Random(7))
    _script: list[Act] = field(default_factory=list)

    def script(self, *acts: Act) -> None:
        """Queue what the next calls do, in call order."""
        self._script.extend(acts)

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def references(self, method: str) -> list[UUID]:
        return [c.reference for c in self.calls_to(method)]

    async def charge(self, request: ChargeRequest) -> GatewayResult:
        source = request.source
        card = source.summary() if isinstance(source, CardDetails) else TOKEN_CARD
        method = "purchase" if request.capture else "authorize"
        call = Call(method, request.reference, request.money.amount, request.money.currency)
        unscripted = APPROVE
        if isinstance(source, CardDetails) and source.number in self.declining_cards:
            unscripted = decline(self.declining_cards[source.number])
        return await self._act(call, f"fk_ch_{uuid4().hex[:20]}", card, unscripted)

    async def verify(self, request: VerifyRequest) -> GatewayResult:
        card = request.card
        call = Call("verify", request.reference, 0, "")
        unscripted = APPROVE
        if card.number in self.declining_cards:
            unscripted = decline(self.declining_cards[card.number])
        return await self._act(call, f"fk_vf_{uuid4().hex[:20]}", card.summary(), unscripted)

    async def capture(self, request: OperationRequest) -> GatewayResult:
        return await self._operation("capture", request, request.gateway_transaction_id)

    async def void(self, request: OperationRequest) -> GatewayResult:
        return await self._operation("void", request, request.gateway_transaction_id)

    async def refund(self, request: OperationRequest) -> GatewayResult:
        return await self._operation("refund", request, f"fk_re_{uuid4().hex[:20]}")

    async def lookup(self, reference: UUID, hint: LookupHint | None = None) -> GatewayResult | None:
        self.lookups.append(reference)
        if self.lookup_gate is not None:
            await self.lookup_gate.wait()
        if reference in self.failing_lookups:
            raise GatewayError("fake: the lookup endpoint is down", ambiguous=False)
        return self.records.get(reference)

    async def _operation(
        self, method: str, request: OperationRequest, gateway_id: str
    ) -> GatewayResult:
        call = Call(
            method,
            request.reference,
            request.money.amount,
            request.money.currency,
            request.gateway_transaction_id,
        )
        return await self._act(call, gateway_id, None, APPROVE)

    async def _act(
        self, call: Call, gateway_id: str, card: CardSummary | None, unscripted: Act
    ) -> GatewayResult:
        # Taken before the first await, so concurrent calls of one batch follow call order.
        act = self._script.pop(0) if self._script else unscripted
        self.calls.append(call)
        self.arrived.set()
        if self.gate is not None:
            await self.gate.wait()
        if call.amount in self.held:
            await self.held[call.amount].wait()
        if self.latency_s:
            # Simulated network time of a remote gateway, not a wait for a condition.
            await asyncio.sleep(self.jitter.uniform(0, self.latency_s))
        if act.kind in (Kind.TIMEOUT, Kind.LOSE):
            raise GatewayError(f"fake: {act.kind}", ambiguous=act.kind is Kind.LOSE)
        if act.kind is Kind.REVIEW:
            result = GatewayResult(False, gateway_id, card=card, review=True)
        elif act.decline_code is None:
            result = GatewayResult(True, gateway_id, card=card)
        else:
            message = f"declined: {act.decline_code}"
            result = GatewayResult(False, gateway_id, act.decline_code, message, card)
        # Idempotent on the reference: the first decision stands.
        result = self.records.setdefault(call.reference, result)
        if act.kind is Kind.DROP:
            raise GatewayError("fake: the answer was lost after the gateway acted", ambiguous=True)
        return result


class ManualCircuits:
    """Circuit breakers whose shared board runs on a clock the test moves (`now`); `sync`
    stands for the background sync of a real process."""

    def __init__(self, policy: CircuitPolicy | None = None) -> None:
        self.now = 0.0
        self.board = CircuitBoard(policy or CircuitPolicy(), lambda: self.now)
        self.breakers = CircuitBreakers(holder="shard", sync=self._sync, refresh_s=1.0)

    async def _sync(
        self, holder: str | None, reports: list[CircuitReport]
    ) -> dict[str, CircuitView]:
        return self.board.sync(holder, reports)

    async def open(self, gateway: str) -> None:
        """Open `gateway`'s circuit as its failures would, and let this process see it."""
        down = GatewayError("down", ambiguous=False)
        for _ in range(CircuitPolicy().failure_threshold):
            self.breakers.report(gateway, down)
        await self.breakers.refresh()

    async def sync(self) -> None:
        await self.breakers.refresh()
