"""`RetryingGateway`: lookups and deduplicated operations that never reached the gateway are
retried with exponential backoff and jitter (the seed's policy by default, configurable); a
money-moving call that may have acted is never repeated, nor is any charge.

The delays are recorded by a stand-in for `asyncio.sleep` (no test waits them out); the
gateway behind is a scripted one here and the Authorize.Net adapter on its local fake below.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID, uuid4

import pytest

from engine.bank_accounts import BankAccount
from engine.cards import CardDetails
from engine.config import Settings
from engine.gateways.authorizenet import AuthorizeNetGateway, open_authorizenet
from engine.gateways.base import (
    ChargeRequest,
    DebitRequest,
    GatewayError,
    GatewayResult,
    LookupHint,
    OperationRequest,
    VerifyRequest,
)
from engine.gateways.retry import RetryingGateway, gateway_retry_policy
from engine.money import Money
from engine.queueing.policy import RetryPolicy
from tests.engine.gateways.authorizenet_fake import FakeAuthorizeNet, adapter_settings, serving

NO_JITTER = RetryPolicy(schedule_s=(1, 2, 4, 8, 16), jitter=0.0, max_delay_s=300)
APPROVED = GatewayResult(True, "tx_1")
REFUSED = GatewayError("connection refused", ambiguous=False)
TIMED_OUT = GatewayError("no answer", ambiguous=True)


@dataclass
class Scripted:
    """A gateway that raises the scripted errors, in order, then approves; counts its calls."""

    errors: list[GatewayError] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    name: str = "scripted"
    lookup_grace_s: float = 0.0

    async def _answer(self, kind: str) -> GatewayResult:
        self.calls.append(kind)
        if self.errors:
            raise self.errors.pop(0)
        return APPROVED

    async def charge(self, request: ChargeRequest) -> GatewayResult:
        return await self._answer("charge")

    async def verify(self, request: VerifyRequest) -> GatewayResult:
        return await self._answer("verify")

    async def capture(self, request: OperationRequest) -> GatewayResult:
        return await self._answer("capture")

    async def void(self, request: OperationRequest) -> GatewayResult:
        return await self._answer("void")

    async def refund(self, request: OperationRequest) -> GatewayResult:
        return await self._answer("refund")

    async def lookup(self, reference: UUID, hint: LookupHint | None = None) -> GatewayResult | None:
        return await self._answer("lookup")


@dataclass
class Sleeps:
    delays: list[float] = field(default_factory=list)

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def _wrapped(
    inner: Any,
    policy: RetryPolicy = NO_JITTER,
    deduplicates: tuple[str, ...] = (),
    budget_s: float | None = None,
) -> tuple[RetryingGateway, Sleeps]:
    sleeps = Sleeps()
    gateway = RetryingGateway(
        inner, policy, deduplicates=deduplicates, budget_s=budget_s, sleep=sleeps
    )
    return gateway, sleeps


def _operation() -> OperationRequest:
    return OperationRequest(uuid4(), "tx_auth", Money(1000, "USD"))


def _charge() -> ChargeRequest:
    return ChargeRequest(
        uuid4(), Money(1000, "USD"), CardDetails("4111111111111111", 12, 2034, "123"), True
    )


def test_the_default_policy_is_the_seeds_and_every_part_is_configurable() -> None:
    default = gateway_retry_policy(Settings())
    assert (default.schedule_s, default.max_delay_s, default.jitter) == (
        (1, 2, 4, 8, 16),
        300,
        0.2,
    )
    longer = gateway_retry_policy(
        Settings(gateway_retries=10, gateway_retry_initial_s=0.5, gateway_retry_multiplier=3)
    )
    assert longer.schedule_s == (0.5, 1.5, 4.5, 13.5, 40.5, 121.5, 300, 300, 300, 300)
    assert gateway_retry_policy(Settings(gateway_retries=0)).delay_after(1) is None
    # Jitter spreads each delay within ±20 %, never past the cap.
    for attempt, base in enumerate(default.schedule_s, start=1):
        for _ in range(50):
            delay = default.delay_after(attempt)
            assert delay is not None
            assert base * 0.8 <= delay <= min(300, base * 1.2)
    assert default.delay_after(6) is None


async def test_a_lookup_is_retried_with_backoff_until_it_answers() -> None:
    inner = Scripted([REFUSED, TIMED_OUT, REFUSED])
    gateway, sleeps = _wrapped(inner)

    assert await gateway.lookup(uuid4()) == APPROVED

    assert inner.calls == ["lookup"] * 4
    assert sleeps.delays == [1, 2, 4]


async def test_a_lookup_gives_up_after_the_last_retry() -> None:
    inner = Scripted([REFUSED] * 7)
    gateway, sleeps = _wrapped(inner)

    with pytest.raises(GatewayError):
        await gateway.lookup(uuid4())

    assert inner.calls == ["lookup"] * 6  # the try and 5 retries
    assert sleeps.delays == [1, 2, 4, 8, 16]


@pytest.mark.parametrize("kind", ["capture", "void", "refund"])
async def test_a_deduplicated_operation_that_never_reached_the_gateway_is_retried(
    kind: str,
) -> None:
    inner = Scripted([REFUSED, REFUSED])
    gateway, sleeps = _wrapped(inner, deduplicates=("capture", "void", "refund"))

    assert await getattr(gateway, kind)(_operation()) == APPROVED

    assert inner.calls == [kind] * 3
    assert sleeps.delays == [1, 2]


@pytest.mark.parametrize("kind", ["capture", "void", "refund"])
async def test_an_operation_that_may_have_acted_is_never_repeated(kind: str) -> None:
    inner = Scripted([TIMED_OUT])
    gateway, sleeps = _wrapped(inner, deduplicates=("capture", "void", "refund"))

    with pytest.raises(GatewayError) as raised:
        await getattr(gateway, kind)(_operation())

    assert raised.value.ambiguous
    assert (inner.calls, sleeps.delays) == ([kind], [])


async def test_an_operation_the_gateway_does_not_deduplicate_is_never_repeated() -> None:
    inner = Scripted([REFUSED])
    gateway, sleeps = _wrapped(inner, deduplicates=("void",))

    with pytest.raises(GatewayError):
        await gateway.capture(_operation())

    assert (inner.calls, sleeps.delays) == (["capture"], [])


@pytest.mark.parametrize("error", [REFUSED, TIMED_OUT], ids=["refused", "timed_out"])
async def test_charges_and_verifications_are_never_repeated(error: GatewayError) -> None:
    inner = Scripted([error, error])
    gateway, sleeps = _wrapped(inner, deduplicates=("capture", "void", "refund"))

    with pytest.raises(GatewayError):
        await gateway.charge(_charge())
    with pytest.raises(GatewayError):
        await gateway.verify(VerifyRequest(uuid4(), CardDetails("4111111111111111", 12, 2034)))

    assert (inner.calls, sleeps.delays) == (["charge", "verify"], [])


async def test_a_call_stops_retrying_when_its_next_delay_would_pass_the_budget() -> None:
    # The default budget (5 s) admits the 1 s and 2 s delays, not the 4 s after them: a caller
    # on the line (an API request, the recovery sweep) waits seconds, not the policy's minutes.
    assert Settings().gateway_retry_budget_s == 5
    inner = Scripted([REFUSED] * 5)
    gateway, sleeps = _wrapped(inner, deduplicates=("capture",), budget_s=5)

    with pytest.raises(GatewayError):
        await gateway.capture(_operation())

    assert (inner.calls, sleeps.delays) == (["capture"] * 3, [1, 2])
    lookups = Scripted([REFUSED] * 2)
    gateway, sleeps = _wrapped(lookups, budget_s=5)
    assert await gateway.lookup(uuid4()) == APPROVED
    assert sleeps.delays == [1, 2]


@dataclass
class ScriptedDebits(Scripted):
    """A scripted gateway that also takes bank debits."""

    async def debit(self, request: DebitRequest) -> GatewayResult:
        return await self._answer("debit")


def _debit() -> DebitRequest:
    return DebitRequest(
        uuid4(), Money(1000, "USD"), BankAccount("011000015", "000123456789", "individual")
    )


@pytest.mark.parametrize("error", [REFUSED, TIMED_OUT], ids=["refused", "timed_out"])
async def test_a_bank_debit_passes_through_and_is_never_repeated(error: GatewayError) -> None:
    inner = ScriptedDebits([error])
    gateway, sleeps = _wrapped(inner, deduplicates=("capture", "void", "refund"))

    with pytest.raises(GatewayError):
        await gateway.debit(_debit())
    assert await gateway.debit(_debit()) == APPROVED

    assert (inner.calls, sleeps.delays) == (["debit", "debit"], [])


async def test_a_debit_through_a_gateway_that_takes_none_is_refused_before_it_moves() -> None:
    inner = Scripted()
    gateway, _ = _wrapped(inner)

    with pytest.raises(GatewayError) as refused:
        await gateway.debit(_debit())

    assert not refused.value.ambiguous
    assert inner.calls == []


# Against the Authorize.Net adapter on its local fake.


@pytest.fixture
async def fake() -> AsyncIterator[FakeAuthorizeNet]:
    async with serving() as server:
        yield server


@pytest.fixture
async def adapter(fake: FakeAuthorizeNet) -> AsyncIterator[AuthorizeNetGateway]:
    gateway = await open_authorizenet(adapter_settings(fake, timeout_s=0.5, lookup_grace_s=0.0))
    try:
        yield gateway
    finally:
        await gateway.aclose()


def _requests(fake: FakeAuthorizeNet, transaction_type: str) -> int:
    return sum(1 for body in fake.bodies if f'"{transaction_type}"'.encode() in body)


@pytest.mark.parametrize("fault", ["timeout", "dropped"])
async def test_a_charge_that_timed_out_at_authorizenet_is_not_sent_again(
    fake: FakeAuthorizeNet, adapter: AuthorizeNetGateway, fault: str
) -> None:
    gateway, sleeps = _wrapped(adapter, deduplicates=("capture", "void", "refund"))
    if fault == "timeout":
        fake.latency_s = 1.0  # the charge takes effect, its answer comes after the timeout
    else:
        fake.drop_next = 1
    request = _charge()

    with pytest.raises(GatewayError) as raised:
        await gateway.charge(request)

    assert raised.value.ambiguous
    fake.latency_s = 0.0
    assert fake.charges(request.reference) == 1
    assert _requests(fake, "authCaptureTransaction") == 1
    assert sleeps.delays == []
    # The outcome is asked for, not repeated: the lookup finds the one charge.
    found = await gateway.lookup(request.reference, LookupHint("charge"))
    assert found is not None
    assert found.approved
    assert (fake.charges(request.reference), _requests(fake, "authCaptureTransaction")) == (1, 1)


async def test_an_authorizenet_lookup_that_failed_is_retried(
    fake: FakeAuthorizeNet, adapter: AuthorizeNetGateway
) -> None:
    gateway, sleeps = _wrapped(adapter)
    request = _charge()
    charged = await gateway.charge(request)
    fake.error_next = "E00001"  # the reporting call fails once

    found = await gateway.lookup(request.reference, LookupHint("charge"))

    assert found is not None
    assert (found.approved, found.gateway_transaction_id) == (
        True,
        charged.gateway_transaction_id,
    )
    assert sleeps.delays == [1]
