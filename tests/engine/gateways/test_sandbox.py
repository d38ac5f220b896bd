"""The sandbox gateway against the session's real Redis: Stripe's test cards and tokens decide
the outcome, every decision is kept per reference (so `lookup` answers after the fact and a
repeat of a reference gets the first decision), and `timeout_rate` makes it act and then lose
the answer, which `lookup` resolves. References are fresh UUIDs, so tests never collide; each
test deletes the records it made."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID, uuid4

import pytest
from redis.asyncio import Redis

from engine.cards import CardDetails, CardSummary, CardToken
from engine.db.database import Database, open_database
from engine.gateways.base import ChargeRequest, GatewayError, GatewayResult, OperationRequest
from engine.gateways.sandbox import DECLINING_CARDS, RECORD_TTL_S, SandboxGateway
from engine.money import Money
from engine.payments.service import PaymentService
from tests.engine.payments import checks
from tests.engine.payments.builders import Requests
from tests.engine.payments.fakes import FakeClock
from tests.engine.payments.harness import make_service

USD_10 = Money(1000, "USD")


@pytest.fixture
async def reference(redis: Redis) -> AsyncIterator[Callable[[], UUID]]:
    """Fresh references; their sandbox records are deleted after the test."""
    made: list[UUID] = []

    def new() -> UUID:
        made.append(uuid4())
        return made[-1]

    yield new
    if made:
        await redis.delete(*(SandboxGateway(redis).record_key(r) for r in made))


@pytest.fixture
def sandbox(redis: Redis) -> SandboxGateway:
    return SandboxGateway(redis)


def card(number: str) -> CardDetails:
    return CardDetails(number, 12, 2034, "123")


def charge(
    reference: UUID, source: CardDetails | CardToken, *, capture: bool = True
) -> ChargeRequest:
    return ChargeRequest(reference, USD_10, source, capture=capture)


@pytest.mark.parametrize(
    ("number", "brand"),
    [("4242424242424242", "visa"), ("5555555555554444", "mastercard"), ("378282246310005", "amex")],
)
async def test_a_good_card_is_approved(
    sandbox: SandboxGateway, reference: Callable[[], UUID], number: str, brand: str
) -> None:
    result = await sandbox.charge(charge(reference(), card(number)))

    assert result.approved
    assert (result.decline_code, result.message) == (None, None)
    assert result.gateway_transaction_id is not None
    assert result.gateway_transaction_id.startswith("sb_ch_")
    assert result.card == CardSummary(brand, number[:6], number[-4:], 12, 2034)


@pytest.mark.parametrize(("number", "decline"), sorted(DECLINING_CARDS.items()))
async def test_a_declining_test_card_is_declined(
    sandbox: SandboxGateway,
    reference: Callable[[], UUID],
    number: str,
    decline: tuple[str, str],
) -> None:
    result = await sandbox.charge(charge(reference(), card(number), capture=False))

    assert not result.approved
    assert (result.decline_code, result.message) == decline
    assert result.card is not None
    assert result.card.last4 == number[-4:]


@pytest.mark.parametrize(
    ("token", "last4", "decline_code"),
    [
        ("tok_visa", "4242", None),
        ("tok_mastercard", "4444", None),
        ("tok_amex", "0005", None),
        ("tok_chargeDeclined", "0002", "generic_decline"),
        ("tok_chargeDeclinedInsufficientFunds", "9995", "insufficient_funds"),
        ("tok_chargeDeclinedExpiredCard", "0069", "expired_card"),
        ("tok_chargeDeclinedIncorrectCvc", "0127", "incorrect_cvc"),
        ("tok_chargeDeclinedProcessingError", "0119", "processing_error"),
        ("tok_nonsense", "0000", "invalid_token"),
    ],
)
async def test_tokens_stand_for_their_cards(
    sandbox: SandboxGateway,
    reference: Callable[[], UUID],
    token: str,
    last4: str,
    decline_code: str | None,
) -> None:
    result = await sandbox.charge(charge(reference(), CardToken(token)))

    assert result.approved is (decline_code is None)
    assert result.decline_code == decline_code
    assert result.card is not None
    assert result.card.last4 == last4


async def test_lookup_finds_what_was_answered(
    sandbox: SandboxGateway, reference: Callable[[], UUID], redis: Redis
) -> None:
    approved_ref, declined_ref = reference(), reference()
    approved = await sandbox.charge(charge(approved_ref, card("4242424242424242")))
    declined = await sandbox.charge(charge(declined_ref, card("4000000000009995")))

    assert await sandbox.lookup(approved_ref) == approved
    assert await sandbox.lookup(declined_ref) == declined
    assert await sandbox.lookup(reference()) is None
    assert 0 < await redis.ttl(sandbox.record_key(approved_ref)) <= RECORD_TTL_S


async def test_operations_are_recorded_too(
    sandbox: SandboxGateway, reference: Callable[[], UUID]
) -> None:
    charged = await sandbox.charge(charge(reference(), card("4242424242424242"), capture=False))
    assert charged.gateway_transaction_id is not None
    capture_ref, void_ref, refund_ref = reference(), reference(), reference()
    request = OperationRequest(capture_ref, charged.gateway_transaction_id, USD_10)

    captured = await sandbox.capture(request)
    voided = await sandbox.void(OperationRequest(void_ref, charged.gateway_transaction_id, USD_10))
    refunded = await sandbox.refund(
        OperationRequest(refund_ref, charged.gateway_transaction_id, USD_10)
    )

    assert captured == GatewayResult(True, charged.gateway_transaction_id)
    assert voided == GatewayResult(True, charged.gateway_transaction_id)
    assert refunded.approved
    assert refunded.gateway_transaction_id is not None
    assert refunded.gateway_transaction_id.startswith("sb_re_")
    assert [await sandbox.lookup(r) for r in (capture_ref, void_ref, refund_ref)] == [
        captured,
        voided,
        refunded,
    ]


async def test_the_first_decision_on_a_reference_stands(
    sandbox: SandboxGateway, reference: Callable[[], UUID]
) -> None:
    ref = reference()
    first = await sandbox.charge(charge(ref, card("4242424242424242")))

    again = await sandbox.charge(charge(ref, card("4000000000000002")))

    assert again == first
    assert again.approved
    assert await sandbox.lookup(ref) == first


@pytest.mark.parametrize(
    ("number", "approved"), [("4242424242424242", True), ("4000000000000069", False)]
)
async def test_a_lost_answer_is_ambiguous_and_lookup_resolves_it(
    redis: Redis, reference: Callable[[], UUID], number: str, approved: bool
) -> None:
    timing_out = SandboxGateway(redis, timeout_rate=1.0)
    ref = reference()

    with pytest.raises(GatewayError) as lost:
        await timing_out.charge(charge(ref, card(number)))

    assert lost.value.ambiguous is True
    found = await timing_out.lookup(ref)
    assert found is not None
    assert found.approved is approved
    assert found.card is not None
    assert found.card.last4 == number[-4:]
    # A retry on the same reference meets the same decision (and loses it again).
    with pytest.raises(GatewayError):
        await timing_out.charge(
            charge(ref, card("4000000000000002" if approved else "4242424242424242"))
        )
    assert await timing_out.lookup(ref) == found


async def test_the_seed_decides_which_answers_are_lost(
    redis: Redis, reference: Callable[[], UUID]
) -> None:
    async def lost_pattern() -> list[bool]:
        gateway = SandboxGateway(redis, timeout_rate=0.5, seed=7)
        pattern = []
        for _ in range(12):
            try:
                await gateway.charge(charge(reference(), card("4242424242424242")))
            except GatewayError:
                pattern.append(True)
            else:
                pattern.append(False)
        return pattern

    first, second = await lost_pattern(), await lost_pattern()

    assert first == second
    assert True in first
    assert False in first


@dataclass(frozen=True, slots=True)
class SandboxShard:
    db: Database
    service: PaymentService


async def test_the_service_settles_a_lost_sandbox_answer(redis: Redis, migrated_dsn: str) -> None:
    db = await open_database(migrated_dsn, min_size=1, max_size=2)
    clock = FakeClock()
    service, _ = await make_service(db, SandboxGateway(redis, timeout_rate=1.0), clock)
    shard = SandboxShard(db, service)
    command = Requests(uuid4()).purchase(1000, key="lost")
    references: list[UUID] = []
    try:
        [result] = await service.execute([command])
        assert (result.status_code, result.body["code"]) == (504, "gateway_timeout")
        payment_id = UUID(result.body["payment_id"])
        references.append(payment_id)
        assert (await checks.payment_row(db, payment_id))["status"] == "processing"

        clock.advance(timedelta(seconds=1))
        assert await service.recover(older_than=clock.now()) == 1

        row = await checks.payment_row(db, payment_id)
        assert (row["status"], row["amount_captured"]) == ("succeeded", 1000)
        assert row["payment_method"]["last4"] == "4242"
        [replay] = await service.execute([command])
        assert (replay.status_code, replay.replayed, replay.body["status"]) == (
            200,
            True,
            "succeeded",
        )
        await checks.expect_ledger(shard, command.customer_id, captured=1000)
    finally:
        if references:
            await redis.delete(*(SandboxGateway(redis).record_key(r) for r in references))
        await db.close()
