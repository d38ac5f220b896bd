"""Purchase and authorize, a batch at a time: each step is a fixed number of statements however
many payments the batch holds, so a busy shard pays per batch, not per payment.

begin: claim the idempotency keys, create inline customers (their profiles sealed under their
own data keys: three statements for any number, none when the batch creates no customer),
check the others exist, lock the orders named and check the payments fit them (the
customer's, in their currency, pending, within what is left to pay), screen them for AML
(`engine/compliance`, memory only), write the payments `processing` (or `failed`, when a
blocking rule declined them).
finalize: every outcome, ledger entry, outbox event and idempotency answer, one statement each
(the orders the payments name follow in `engine/payments/steps.py`, with the operations').
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from engine.bank_accounts import BankAccount
from engine.cards import CardDetails, CardSummary, WalletToken
from engine.compliance.monitor import AmlMonitor, compliance_block
from engine.config import Settings
from engine.customers.repository import CustomerRepository
from engine.customers.sealing import ProfileSealer
from engine.errors import (
    Conflict,
    InvalidRequest,
    NotFound,
    PaygridError,
    StateError,
)
from engine.events.outbox import Event, Outbox
from engine.gateways.base import GatewayResult
from engine.idempotency.repository import Answer, Claim, IdempotencyRepository
from engine.keys.keyring import Keyring
from engine.ledger.entries import Account, Entry
from engine.orders.repository import OrderRepository
from engine.orders.states import PAYABLE
from engine.payment_methods.fingerprints import fingerprints
from engine.payments.commands import (
    CommandResult,
    CreatePayment,
    ExternalSettlement,
)
from engine.payments.repository import NewPayment, PaymentOutcome, PaymentRepository
from engine.payments.results import (
    Finished,
    GatewayOutcome,
    Started,
    answer_for,
    failure,
    held_result,
)
from engine.payments.states import PaymentStatus, TransactionType

_KNOWN_CUSTOMERS_MAX = 100_000


class CreationSteps:
    def __init__(
        self,
        *,
        settings: Settings,
        payments: PaymentRepository,
        customers: CustomerRepository,
        orders: OrderRepository,
        sealer: ProfileSealer,
        idempotency: IdempotencyRepository,
        outbox: Outbox,
        aml: AmlMonitor,
        shard: int,
        keyring: Keyring,
        route: Callable[[CreatePayment], str | None],
        unroutable: Callable[[CreatePayment], PaygridError],
        clock: Callable[[], datetime],
    ) -> None:
        """`route` picks the gateway a new payment goes to; None if none may take it now."""
        self._settings = settings
        self._aml = aml
        self._payments = payments
        self._customers = customers
        self._orders = orders
        self._sealer = sealer
        self._idempotency = idempotency
        self._outbox = outbox
        self._shard = shard
        self._keyring = keyring
        self._route = route
        self._unroutable = unroutable
        self._clock = clock
        self._bank_delay = timedelta(seconds=settings.bank_settlement_delay_s)
        self._bank_window = timedelta(days=settings.bank_return_window_days)
        # Customers are never deleted (erasure pseudonymizes), so a committed sighting stays
        # true.
        self._known_customers: set[UUID] = set()

    async def begin(
        self, conn: asyncpg.Connection, commands: list[CreatePayment]
    ) -> list[Started | CommandResult]:
        """Begin every command; a refused one gets its answer (also stored under its key)."""
        ids = [c.payment_id or uuid4() for c in commands]
        # Where each would go; none when every gateway it may use has its circuit open: that
        # one is refused (503) before its key is claimed or anything written, so a retry
        # with the key runs afresh.
        routed = [self._route(c) for c in commands]
        gateways = {i: g for i, g in enumerate(routed) if g is not None}
        answers: dict[int, CommandResult] = {
            i: CommandResult.from_error(self._unroutable(commands[i]))
            for i in range(len(commands))
            if i not in gateways
        }
        claims = [
            Claim(c.ctx.api_key_id, c.ctx.idempotency_key, c.ctx.request_hash, ids[i])
            for i, c in enumerate(commands)
            if c.ctx.idempotency_key is not None and i not in answers
        ]
        held = await self._idempotency.claim_many(
            conn, claims=claims, ttl_h=self._settings.idempotency_ttl_h
        )
        for i, c in enumerate(commands):
            scope = c.ctx.idempotency_scope
            if scope is not None and scope in held and i not in answers:
                answers[i] = held_result(held[scope], c.ctx.request_hash)
        live = [i for i in range(len(commands)) if i not in answers]

        new_customers = []
        for i in live:
            customer = commands[i].new_customer
            if customer is not None:
                new_customers.append((customer, commands[i].ctx.principal))
        if new_customers:
            sealed = await self._sealer.seal(conn, {c.id: c.profile for c, _ in new_customers})
            await self._customers.insert_many(conn, customers=new_customers, sealed=sealed)
        refusals = await self._refusals(conn, {i: commands[i] for i in live})
        for i, error in refusals.items():
            answers[i] = CommandResult.from_error(error)
        go = [i for i in live if i not in refusals]
        # AML screening reads memory only; a blocked payment is written `failed` by the same
        # insert, and its answer stored with the refusals'.
        now = self._clock()
        screening = self._aml.screen([(commands[i], ids[i]) for i in go], now=now)
        blocked = screening.blocked
        for i in go:
            if ids[i] in blocked:
                answers[i] = CommandResult.from_error(compliance_block(), payment_id=str(ids[i]))
        await self._idempotency.complete_many(
            conn,
            answers=[
                a
                for i in answers
                if i in refusals or ids[i] in blocked
                if (a := answer_for(commands[i], answers[i])) is not None
            ],
        )

        printable = {i: v for i in go if (v := _fingerprinted(commands[i])) is not None}
        prints: dict[int, str | None] = dict.fromkeys(go)
        prints.update(
            zip(
                printable,
                await fingerprints(self._keyring, conn, values=list(printable.values())),
                strict=True,
            )
        )
        # A bank debit settles, and may be returned, on its customer's clock: a test clock's
        # time moves its settlement along when the clock is advanced.
        debtors = [
            commands[i].customer_id for i in go if isinstance(commands[i].source, BankAccount)
        ]
        times = (
            await self._payments.customer_times(conn, customer_ids=debtors, now=now)
            if debtors
            else {}
        )
        written = await self._payments.insert_payments(
            conn,
            payments=[
                _new_payment(
                    commands[i],
                    ids[i],
                    ids[i] in blocked,
                    gateways[i],
                    prints[i],
                    bank_due=self._bank_due(times.get(commands[i].customer_id, now)),
                )
                for i in go
            ],
            shard=self._shard,
        )
        await self._aml.write(conn, screening, written, now=now)
        return [
            answers[i]
            if i in answers
            else Started(c, written[ids[i]], amount=c.money.amount, fingerprint=prints[i])
            for i, c in enumerate(commands)
        ]

    def _bank_due(self, debited_at: datetime) -> tuple[datetime, datetime]:
        """When a bank debit made at `debited_at` (its customer's time) is expected to settle,
        and until when it may be returned."""
        settles = debited_at + self._bank_delay
        return settles, settles + self._bank_window

    async def _refusals(
        self, conn: asyncpg.Connection, commands: dict[int, CreatePayment]
    ) -> dict[int, PaygridError]:
        """Commands (by index) naming a customer or an order that does not fit, and why."""
        refusals = await self._taken_ids(conn, commands)
        refusals.update(await self._unknown_customers(conn, commands))
        fitting = {i: c for i, c in commands.items() if i not in refusals}
        refusals.update(await self._unfit_orders(conn, fitting))
        return refusals

    async def _taken_ids(
        self, conn: asyncpg.Connection, commands: dict[int, CreatePayment]
    ) -> dict[int, PaygridError]:
        """Commands naming a payment id that a payment (or an earlier command of the batch)
        already has."""
        chosen = {i: c.payment_id for i, c in commands.items() if c.payment_id is not None}
        if not chosen:
            return {}
        taken = await self._payments.existing_ids(conn, payment_ids=list(chosen.values()))
        refusals: dict[int, PaygridError] = {}
        for i, payment_id in sorted(chosen.items()):
            if payment_id in taken:
                refusals[i] = Conflict(
                    f"a payment {payment_id} exists already", code="payment_exists"
                )
            taken.add(payment_id)
        return refusals

    async def _unknown_customers(
        self, conn: asyncpg.Connection, commands: dict[int, CreatePayment]
    ) -> dict[int, PaygridError]:
        unknown = {
            c.customer_id
            for c in commands.values()
            if c.new_customer is None and c.customer_id not in self._known_customers
        }
        if not unknown:
            return {}
        found = await self._customers.existing(conn, customer_ids=list(unknown))
        # Only customers committed before this transaction are sure to outlive it: one
        # created inline in this very batch vanishes if the batch rolls back.
        created_here = {c.new_customer.id for c in commands.values() if c.new_customer}
        if len(self._known_customers) + len(found) > _KNOWN_CUSTOMERS_MAX:
            self._known_customers.clear()
        self._known_customers |= found - created_here
        return {
            i: NotFound(f"no customer {c.customer_id}", param="customer_id")
            for i, c in commands.items()
            if c.customer_id in unknown and c.customer_id not in found
        }

    async def _unfit_orders(
        self, conn: asyncpg.Connection, commands: dict[int, CreatePayment]
    ) -> dict[int, PaygridError]:
        """Commands naming an order that is not theirs, not in their currency, not pending,
        or without room left for their amount. The orders stay locked until the batch's
        `processing` rows commit, so what concurrent batches hold is counted here."""
        with_orders = {i: c.order_id for i, c in commands.items() if c.order_id is not None}
        if not with_orders:
            return {}
        orders = await self._orders.payable(conn, order_ids=list(set(with_orders.values())))
        taken = {order_id: order.committed for order_id, order in orders.items()}
        refusals: dict[int, PaygridError] = {}
        for i, order_id in with_orders.items():
            c, order = commands[i], orders.get(order_id)
            if order is None:
                refusals[i] = NotFound(f"no order {order_id}", param="order_id")
            elif order.customer_id != c.customer_id:
                refusals[i] = InvalidRequest(
                    "the order belongs to another customer", param="order_id"
                )
            elif order.currency != c.money.currency:
                refusals[i] = InvalidRequest(
                    f"the order is in {order.currency}, the payment in {c.money.currency}",
                    param="currency",
                )
            elif order.status is not PAYABLE:
                refusals[i] = StateError(
                    f"the order is {order.status}", code="order_not_pending", param="order_id"
                )
            elif c.money.amount > order.amount - taken[order_id]:
                refusals[i] = StateError(
                    f"amount {c.money.amount} exceeds what the order has left to pay "
                    f"({order.amount - taken[order_id]})",
                    code="amount_too_large",
                    param="amount",
                )
            else:
                taken[order_id] += c.money.amount
        return refusals

    async def finalize(
        self,
        conn: asyncpg.Connection,
        started: list[Started],
        outcomes: list[GatewayOutcome],
    ) -> tuple[list[Finished], list[Answer]]:
        """Write every outcome; returns what finished and the idempotency answers to store
        (the caller stores them with those of other commands in the same transaction)."""
        if not started:
            return [], []
        plans = [self._outcome(s, o) for s, o in zip(started, outcomes, strict=True)]
        final = await self._payments.finalize_payments(conn, outcomes=[p for p, _ in plans])
        finished: list[Finished] = []
        events: list[Event] = []
        answers: list[Answer] = []
        for item, (plan, error) in zip(started, plans, strict=True):
            payment = final[plan.payment_id]
            body = payment.public()
            command = item.command
            assert isinstance(command, CreatePayment)
            self._aml.finished(command, payment.id, now=self._clock())
            if error is None:
                purchase = command.kind is TransactionType.PURCHASE
                account = Account.CAPTURED if purchase else Account.HELD
                entry = Entry(
                    payment.customer_id,
                    payment.id,
                    account,
                    payment.currency,
                    payment.amount,
                    command.ctx.correlation_id,
                )
                result = CommandResult(200, body)
                event_type = "payment.succeeded" if purchase else "payment.authorized"
                finished.append(Finished(result, [entry]))
            else:
                result = CommandResult.from_error(error, payment_id=str(payment.id))
                event_type = "payment.failed"
                finished.append(Finished(result))
            events.append(
                Event(
                    event_type,
                    "payment",
                    payment.id,
                    body,
                    command.ctx.api_key_id,
                    command.ctx.correlation_id,
                )
            )
            if (answer := answer_for(command, result)) is not None:
                answers.append(answer)
        await self._outbox.add(conn, events=events)
        return finished, answers

    def _outcome(
        self, started: Started, outcome: GatewayOutcome
    ) -> tuple[PaymentOutcome, PaygridError | None]:
        payment, command = started.payment, started.command
        assert isinstance(command, CreatePayment)
        principal = command.ctx.principal
        card = outcome.card if isinstance(outcome, GatewayResult) else None
        method = _method_summary(started, card)
        gateway_id = outcome.gateway_transaction_id if isinstance(outcome, GatewayResult) else None
        if isinstance(outcome, GatewayResult) and outcome.approved:
            purchase = command.kind is TransactionType.PURCHASE
            window = timedelta(hours=self._settings.authorization_window_h)
            return PaymentOutcome(
                payment_id=payment.id,
                status=PaymentStatus.SUCCEEDED if purchase else PaymentStatus.AUTHORIZED,
                amount_capturable=0 if purchase else payment.amount,
                amount_captured=payment.amount if purchase else 0,
                gateway_transaction_id=gateway_id,
                payment_method=method,
                principal=principal,
                authorization_expires_at=None if purchase else self._clock() + window,
            ), None
        error = failure(outcome)
        return PaymentOutcome(
            payment_id=payment.id,
            status=PaymentStatus.FAILED,
            amount_capturable=0,
            amount_captured=0,
            gateway_transaction_id=gateway_id,
            payment_method=method,
            principal=principal,
            failure_code=error.code,
            failure_message=error.message,
            decline_code=error.decline_code,
        ), error


def _method_summary(started: Started, card: CardSummary | None) -> dict[str, Any] | None:
    """The payment method summary to store once the gateway has named the card (None: keep
    what the payment holds). A wallet payment's summary, written with the payment, gains the
    brand and last4 of the card its token stands for."""
    stored = started.payment.payment_method
    if card is None:
        return None
    if stored is None:
        return card.stored(started.fingerprint)
    if stored.get("type") == "wallet" and stored.get("last4") is None:
        return stored | {"brand": card.brand, "last4": card.last4}
    return None


def _fingerprinted(command: CreatePayment) -> str | None:
    """What a payment's fingerprint is made of: the card number, the bank account (routing
    and account number), or the gateway's or wallet's token; none for a payment settled
    outside paygrid."""
    source = command.source
    if isinstance(source, ExternalSettlement):
        return None
    if isinstance(source, BankAccount):
        return f"bank:{source.routing_number}:{source.account_number}"
    return source.number if isinstance(source, CardDetails) else source.token


def _new_payment(
    command: CreatePayment,
    payment_id: UUID,
    blocked: bool,
    gateway: str,
    fingerprint: str | None,
    *,
    bank_due: tuple[datetime, datetime],
) -> NewPayment:
    """The row of a new payment; a bank debit's names when its settlement is expected (before
    which recovery does not ask the gateway about it) and until when it may be returned."""
    source = command.source
    block = compliance_block() if blocked else None
    method = None
    if isinstance(source, CardDetails):
        method = source.summary().stored(fingerprint)
    elif isinstance(source, BankAccount):
        method = source.stored(fingerprint)
    elif isinstance(source, WalletToken):
        method = source.stored(None, fingerprint)
    elif isinstance(source, ExternalSettlement):
        method = source.stored()
    return NewPayment(
        id=payment_id,
        kind=command.kind,
        amount=command.money.amount,
        currency=command.money.currency,
        customer_id=command.customer_id,
        order_id=command.order_id,
        payment_method=method,
        description=command.description,
        metadata=command.metadata,
        principal=command.ctx.principal,
        gateway=gateway,
        status=PaymentStatus.PROCESSING if block is None else PaymentStatus.FAILED,
        failure_code=None if block is None else block.code,
        failure_message=None if block is None else block.message,
        decline_code=None if block is None else block.decline_code,
        bank_check_at=bank_due[0] if isinstance(source, BankAccount) else None,
        bank_returns_until=bank_due[1] if isinstance(source, BankAccount) else None,
    )
