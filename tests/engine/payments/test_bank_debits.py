"""Bank debits (ACH) and wallets on the money path, through the sandbox gateway on the session's
Redis and a clock the test moves: a debit stays `processing` until its settlement is due (on
its customer's clock: a test clock's time when it lives on one), then settles (`succeeded`) or
fails with the ACH return code its test account triggers; a debit returned after it succeeded
is reversed in the ledger, once, with `payment.returned`; a refund of a debit settles
asynchronously too. The account number never reaches a row; a wallet payment is charged like a
card and records its wallet."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from redis.asyncio import Redis

from engine.db.database import Database
from engine.errors import InvalidRequest
from engine.gateways.registry import GatewayCapabilities
from engine.gateways.sandbox import SandboxGateway
from engine.payments import intake
from engine.payments.commands import CommandResult, CreatePayment
from engine.payments.service import PaymentService
from engine.payments.states import TransactionType
from schema.api.payments import PaymentCreate
from tests.engine.payments import checks
from tests.engine.payments.builders import MAX_AMOUNT, Requests
from tests.engine.payments.fakes import FakeClock
from tests.engine.payments.harness import engine_settings, make_service
from tests.engine.rows import add_customer

ROUTING = "110000000"
SETTLES = "000123456789"
LATE_RETURN = "000333333335"
FAILING = {"000111111116": "R01", "000111111113": "R02", "000222222227": "R03"}
DELAY = timedelta(days=3)
WINDOW = timedelta(days=60)
EVERY = timedelta(days=1)


@dataclass
class Bank:
    """One shard on a sandbox of its own (its records deleted after the test)."""

    db: Database
    service: PaymentService
    clock: FakeClock
    requests: Requests

    async def one(self, command: CreatePayment | Any) -> CommandResult:
        [result] = await self.service.execute([command])
        return result

    def debit(
        self,
        account: str,
        amount: int = 1000,
        *,
        key: str | None = None,
        customer_id: UUID | None = None,
    ) -> CreatePayment:
        method = {
            "type": "bank",
            "routing_number": ROUTING,
            "account_number": account,
            "account_holder_type": "individual",
        }
        return self._create(method, amount, key, TransactionType.PURCHASE, customer_id)

    def wallet(self, token: str, amount: int = 1000) -> CreatePayment:
        method = {"type": "wallet", "wallet": "apple_pay", "token": token}
        return self._create(method, amount, None, TransactionType.PURCHASE)

    def _create(
        self,
        method: dict[str, Any],
        amount: int,
        key: str | None,
        kind: TransactionType,
        customer_id: UUID | None = None,
    ) -> CreatePayment:
        body: dict[str, Any] = {"amount": amount, "currency": "USD", "payment_method": method}
        if customer_id is None:
            body["customer"] = {"email": f"c-{uuid4().hex[:10]}@example.com"}
        else:
            body["customer_id"] = str(customer_id)
        ctx = self.requests.context(f"/api/payments/{kind}", body, key)
        return intake.create_payment(
            PaymentCreate.model_validate(body), kind, ctx, max_amount=MAX_AMOUNT
        )

    async def settle_due(self) -> int:
        """A recovery round at the clock's time (rows older than now)."""
        return await self.service.recover(older_than=self.clock.now())

    async def check_returns(self) -> int:
        return await self.service.check_bank_returns(every=EVERY)


@pytest.fixture
async def bank(database: Database, redis: Redis) -> AsyncIterator[Bank]:
    clock = FakeClock()
    name = f"sandbox_{uuid4().hex[:8]}"
    gateway = SandboxGateway(redis, name=name)
    settings = engine_settings()
    assert settings.bank_settlement_delay_s == DELAY.total_seconds()
    assert settings.bank_return_window_days == WINDOW.days
    service, _ = await make_service(database, gateway, clock, settings=settings)
    yield Bank(database, service, clock, Requests(uuid4()))
    keys = [k async for k in redis.scan_iter(match=f"paygrid:{name}:*")]
    if keys:
        await redis.delete(*keys)


async def _status(bank: Bank, payment: dict[str, Any]) -> str:
    return str((await checks.payment_row(bank.db, payment["id"]))["status"])


async def test_a_debit_stays_processing_until_its_settlement_is_due_then_succeeds(
    bank: Bank,
) -> None:
    answer = await bank.one(bank.debit(SETTLES, 2500, key="debit"))

    assert answer.status_code == 202
    payment = answer.body
    assert payment["status"] == "processing"
    assert payment["payment_method"] == {
        "type": "bank",
        "bank_name": "PAYGRID TEST BANK",
        "routing_number": ROUTING,
        "last4": "6789",
        "account_holder_type": "individual",
        "fingerprint": payment["payment_method"]["fingerprint"],
    }
    bank.clock.advance(DELAY - timedelta(minutes=1))
    assert await bank.settle_due() == 0
    assert await _status(bank, payment) == "processing"
    await checks.expect_ledger(bank, payment["customer_id"])

    bank.clock.advance(timedelta(minutes=2))
    assert await bank.settle_due() == 1
    assert await bank.settle_due() == 0  # a second round settles nothing again

    assert await _status(bank, payment) == "succeeded"
    await checks.expect_ledger(bank, payment["customer_id"], captured=2500)
    assert await checks.event_types(bank.db, payment["id"]) == ["payment.succeeded"]
    # The key the debit was made under now answers with the settled payment.
    stored = await checks.stored_answer(bank.db, bank.requests.api_key_id, "debit")
    assert stored.response_status == 200
    assert stored.response_body is not None
    assert stored.response_body["status"] == "succeeded"


@pytest.mark.parametrize(("account", "code"), sorted(FAILING.items()))
async def test_a_debit_fails_with_the_return_code_its_test_account_triggers(
    bank: Bank, account: str, code: str
) -> None:
    payment = (await bank.one(bank.debit(account))).body
    bank.clock.advance(DELAY + timedelta(seconds=1))

    assert await bank.settle_due() == 1

    row = await checks.payment_row(bank.db, payment["id"])
    assert (row["status"], row["failure_code"], row["decline_code"]) == (
        "failed",
        "bank_debit_failed",
        code,
    )
    await checks.expect_ledger(bank, payment["customer_id"])
    assert await checks.event_types(bank.db, payment["id"]) == ["payment.failed"]
    # A failed debit is asked no more.
    bank.clock.advance(EVERY)
    assert await bank.check_returns() == 0
    assert (await checks.payment_row(bank.db, payment["id"]))["bank_check_at"] is None


async def test_a_late_return_reverses_the_succeeded_debit_once(bank: Bank) -> None:
    payment = (await bank.one(bank.debit(LATE_RETURN, 4000))).body
    bank.clock.advance(DELAY + timedelta(seconds=1))
    assert await bank.settle_due() == 1
    assert await _status(bank, payment) == "succeeded"
    await checks.expect_ledger(bank, payment["customer_id"], captured=4000)

    # Two rounds at once (a round run twice): the debit is returned once.
    await asyncio.gather(bank.check_returns(), bank.check_returns())
    assert await bank.check_returns() == 0

    row = await checks.payment_row(bank.db, payment["id"])
    assert (row["status"], row["return_code"], row["bank_check_at"]) == ("refunded", "R01", None)
    assert await checks.operations(bank.db, payment["id"]) == [("refund", "succeeded", 4000)]
    await checks.expect_ledger(bank, payment["customer_id"], captured=4000, refunded=4000)
    assert await checks.event_types(bank.db, payment["id"]) == [
        "payment.succeeded",
        "payment.returned",
    ]
    returned = await checks.last_event_payload(bank.db, payment["id"])
    assert (returned["status"], returned["return_code"]) == ("refunded", "R01")


async def test_a_settled_debit_is_asked_about_once_per_check_interval(bank: Bank) -> None:
    payment = (await bank.one(bank.debit(SETTLES))).body
    bank.clock.advance(DELAY + timedelta(seconds=1))
    await bank.settle_due()

    assert await bank.check_returns() == 0
    row = await checks.payment_row(bank.db, payment["id"])
    assert row["bank_check_at"] == bank.clock.now() + EVERY


async def test_returns_are_asked_for_only_within_the_return_window(bank: Bank) -> None:
    payment = (await bank.one(bank.debit(SETTLES))).body
    bank.clock.advance(DELAY + timedelta(seconds=1))
    await bank.settle_due()

    bank.clock.advance(WINDOW)
    assert await bank.check_returns() == 0

    assert (await checks.payment_row(bank.db, payment["id"]))["bank_check_at"] is None


async def test_a_refund_of_a_debit_settles_asynchronously(bank: Bank) -> None:
    payment = (await bank.one(bank.debit(SETTLES, 3000))).body
    bank.clock.advance(DELAY + timedelta(seconds=1))
    await bank.settle_due()

    answer = await bank.one(bank.requests.refund(payment, 1000))

    assert answer.status_code == 202
    assert await checks.operations(bank.db, payment["id"]) == [("refund", "processing", 1000)]
    bank.clock.advance(DELAY - timedelta(minutes=1))
    assert await bank.settle_due() == 0
    bank.clock.advance(timedelta(minutes=2))
    assert await bank.settle_due() == 1
    assert await checks.operations(bank.db, payment["id"]) == [("refund", "succeeded", 1000)]
    await checks.expect_ledger(bank, payment["customer_id"], captured=3000, refunded=1000)


async def test_no_account_number_reaches_any_row(bank: Bank) -> None:
    returned = (await bank.one(bank.debit(LATE_RETURN))).body
    failed = (await bank.one(bank.debit("000111111116"))).body
    settled = (await bank.one(bank.debit(SETTLES))).body
    bank.clock.advance(DELAY + timedelta(seconds=1))
    await bank.settle_due()
    await bank.one(bank.requests.refund(settled, 100))
    await bank.check_returns()
    assert {await _status(bank, p) for p in (returned, failed, settled)} == {
        "refunded",
        "failed",
        "succeeded",
    }

    async with bank.db.connection() as conn:
        tables = await conn.fetch(
            "SELECT quote_ident(tablename) AS name FROM pg_tables WHERE schemaname = 'public'"
        )
        for table in tables:
            hits = await conn.fetchval(
                f"SELECT count(*) FROM {table['name']} AS r "
                "WHERE to_jsonb(r)::text ~ '(000333333335|000111111116|000123456789)'"
            )
            assert hits == 0, table["name"]


async def test_the_same_account_has_the_same_fingerprint(bank: Bank) -> None:
    first = (await bank.one(bank.debit(SETTLES))).body["payment_method"]["fingerprint"]
    again = (await bank.one(bank.debit(SETTLES))).body["payment_method"]["fingerprint"]
    other = (await bank.one(bank.debit(LATE_RETURN))).body["payment_method"]["fingerprint"]

    assert first == again != other


def test_a_bank_account_cannot_be_authorized() -> None:
    body = {
        "amount": 1000,
        "currency": "USD",
        "customer_id": str(uuid4()),
        "payment_method": {
            "type": "bank",
            "routing_number": ROUTING,
            "account_number": SETTLES,
            "account_holder_type": "company",
        },
    }
    ctx = Requests(uuid4()).context("/api/payments/authorize", body, None)
    with pytest.raises(InvalidRequest) as refused:
        intake.create_payment(
            PaymentCreate.model_validate(body),
            TransactionType.AUTHORIZE,
            ctx,
            max_amount=MAX_AMOUNT,
        )
    assert refused.value.param == "payment_method.type"


async def test_a_wallet_payment_is_charged_like_a_card_and_records_its_wallet(
    bank: Bank,
) -> None:
    paid = await bank.one(bank.wallet("wtok_visa"))
    declined = await bank.one(bank.wallet("wtok_declined"))

    assert paid.status_code == 200
    assert paid.body["status"] == "succeeded"
    method = paid.body["payment_method"]
    assert method == {
        "type": "wallet",
        "wallet": "apple_pay",
        "brand": "visa",
        "last4": "4242",
        "fingerprint": method["fingerprint"],
    }
    assert method["fingerprint"]
    assert declined.status_code == 402
    row = await checks.payment_row(bank.db, UUID(declined.body["payment_id"]))
    assert row["status"] == "failed"
    assert row["payment_method"]["wallet"] == "apple_pay"
    assert "token" not in row["payment_method"]


async def test_a_return_waits_while_a_refund_of_everything_settles(bank: Bank) -> None:
    payment = (await bank.one(bank.debit(LATE_RETURN, 2000))).body
    bank.clock.advance(DELAY + timedelta(seconds=1))
    await bank.settle_due()
    assert (await bank.one(bank.requests.refund(payment))).status_code == 202

    assert await bank.check_returns() == 0  # nothing left to reverse while the refund settles

    row = await checks.payment_row(bank.db, payment["id"])
    assert (row["status"], row["return_code"]) == ("succeeded", None)
    assert row["bank_check_at"] == bank.clock.now() + EVERY
    bank.clock.advance(DELAY)
    assert await bank.settle_due() == 1  # the refund
    assert await bank.check_returns() == 0
    row = await checks.payment_row(bank.db, payment["id"])
    assert (row["status"], row["bank_check_at"]) == ("refunded", None)
    await checks.expect_ledger(bank, payment["customer_id"], captured=2000, refunded=2000)


async def test_a_debit_no_configured_gateway_takes_is_refused_naming_the_method(
    database: Database, redis: Redis
) -> None:
    clock = FakeClock()
    cards_only = GatewayCapabilities(("card", "token"), ("*",), ("visa",))
    service, _ = await make_service(
        database, SandboxGateway(redis), clock, capabilities=[cards_only]
    )
    bank = Bank(database, service, clock, Requests(uuid4()))

    refused = await bank.one(bank.debit(SETTLES))

    assert refused.status_code == 400
    assert refused.body["param"] == "payment_method.type"
    assert "bank" in refused.body["message"]


async def test_a_debit_on_a_test_clock_settles_when_the_clock_passes_its_settlement(
    bank: Bank,
) -> None:
    frozen = bank.clock.now() - timedelta(days=400)
    async with bank.db.connection() as conn:
        clock_id = await conn.fetchval(
            "INSERT INTO test_clocks (id, frozen_time) VALUES ($1, $2) RETURNING id",
            uuid4(),
            frozen,
        )
        customer = await add_customer(conn)
        await conn.execute(
            "UPDATE customers SET test_clock_id = $1 WHERE id = $2", clock_id, customer
        )
    payment = (await bank.one(bank.debit(LATE_RETURN, 700, customer_id=customer))).body

    row = await checks.payment_row(bank.db, payment["id"])
    assert row["bank_check_at"] == frozen + DELAY
    assert row["bank_returns_until"] == frozen + DELAY + WINDOW
    bank.clock.advance(DELAY + timedelta(minutes=1))  # real time passes; the clock does not
    assert await bank.settle_due() == 0

    async def advance_clock(to: datetime) -> None:
        async with bank.db.connection() as conn:
            await conn.execute(
                "UPDATE test_clocks SET frozen_time = $2 WHERE id = $1", clock_id, to
            )

    await advance_clock(frozen + DELAY + timedelta(seconds=1))
    assert await bank.settle_due() == 1
    assert await _status(bank, payment) == "succeeded"
    assert await bank.check_returns() == 1
    assert (await checks.payment_row(bank.db, payment["id"]))["return_code"] == "R01"
