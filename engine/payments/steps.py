"""The named steps of every money command: begin (validate, lock, durable `processing` write),
call the gateway, finalize (outcome, ledger entries, outbox event, idempotency record).

Each step runs inside a transaction the service opened; nothing here commits. A begin that
refuses the command returns a `CommandResult` and writes nothing but the idempotency record.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from engine.cards import CardDetails
from engine.config import Settings
from engine.customers.repository import CustomerRepository
from engine.errors import (
    CardDeclined,
    Conflict,
    GatewayTimeout,
    GatewayUnavailable,
    IdempotencyMismatch,
    InvalidRequest,
    NotFound,
    PaygridError,
    StateError,
)
from engine.events.outbox import Event, Outbox
from engine.gateways.base import (
    ChargeRequest,
    Gateway,
    GatewayError,
    GatewayResult,
    OperationRequest,
)
from engine.idempotency.repository import IdempotencyRepository
from engine.ledger.entries import Account, Entry, LedgerRepository
from engine.money import Money
from engine.payments.commands import (
    CapturePayment,
    Command,
    CommandResult,
    CreatePayment,
    RefundPayment,
    VoidPayment,
)
from engine.payments.models import Payment
from engine.payments.repository import PaymentRepository
from engine.payments.states import (
    REFUNDABLE,
    OperationStatus,
    PaymentStatus,
    TransactionType,
)


@dataclass(slots=True)
class Started:
    """A command whose `processing` write is durable, waiting for its gateway call."""

    command: Command
    payment: Payment
    operation_id: UUID | None = None
    amount: int = 0


@dataclass(slots=True)
class Finished:
    result: CommandResult
    entries: list[Entry] = field(default_factory=list)


GatewayOutcome = GatewayResult | GatewayError

_KNOWN_CUSTOMERS_MAX = 100_000


class PaymentSteps:
    """The per-command steps, shared by the live path and recovery."""

    def __init__(
        self,
        *,
        settings: Settings,
        gateway: Gateway,
        shard: int,
        clock: Callable[[], datetime],
    ) -> None:
        self._settings = settings
        self._gateway = gateway
        self._shard = shard
        self._clock = clock
        self.payments = PaymentRepository()
        self.customers = CustomerRepository()
        self.idempotency = IdempotencyRepository()
        self.ledger = LedgerRepository()
        self.outbox = Outbox()
        self._known_customers: set[UUID] = set()

    # -- begin ---------------------------------------------------------------------------

    async def begin(self, conn: asyncpg.Connection, command: Command) -> Started | CommandResult:
        """Claim the idempotency key, check the command against the payment's state and write
        it `processing`. Returns the refusal (or the replay) instead when it must not proceed."""
        resource_id = uuid4()
        ctx = command.ctx
        if ctx.idempotency_key is not None:
            held = await self.idempotency.claim(
                conn,
                api_key_id=ctx.api_key_id,
                key=ctx.idempotency_key,
                request_hash=ctx.request_hash,
                resource_id=resource_id,
                ttl_h=self._settings.idempotency_ttl_h,
            )
            if held is not None:
                return replay_or_refuse(
                    held.request_hash,
                    ctx.request_hash,
                    held.completed,
                    held.response_status,
                    held.response_body,
                )
        try:
            if isinstance(command, CreatePayment):
                return await self._begin_create(conn, command, resource_id)
            payment = await self.payments.get(conn, payment_id=command.payment_id, for_update=True)
            if payment is None:
                raise NotFound(f"no payment {command.payment_id}", param="payment_id")
            if isinstance(command, CapturePayment):
                return await self._begin_capture(conn, command, payment, resource_id)
            if isinstance(command, VoidPayment):
                return await self._begin_void(conn, command, payment, resource_id)
            return await self._begin_refund(conn, command, payment, resource_id)
        except PaygridError as refusal:
            result = CommandResult.from_error(refusal)
            await self.remember(conn, command, result)
            return result

    async def _begin_create(
        self, conn: asyncpg.Connection, command: CreatePayment, payment_id: UUID
    ) -> Started:
        if command.new_customer is not None:
            await self.customers.insert(
                conn, customer=command.new_customer, actor=command.ctx.actor
            )
        elif command.customer_id not in self._known_customers:
            if not await self.customers.exists(conn, customer_id=command.customer_id):
                raise NotFound(f"no customer {command.customer_id}", param="customer_id")
            # Customers are never deleted (erasure pseudonymizes), so a sighting stays true.
            if len(self._known_customers) >= _KNOWN_CUSTOMERS_MAX:
                self._known_customers.clear()
            self._known_customers.add(command.customer_id)
        if command.order_id is not None:
            order = await self.customers.order(conn, order_id=command.order_id)
            if order is None:
                raise NotFound(f"no order {command.order_id}", param="order_id")
            if order.customer_id != command.customer_id:
                raise InvalidRequest("the order belongs to another customer", param="order_id")
            if order.currency != command.money.currency:
                raise InvalidRequest(
                    f"the order is in {order.currency}, the payment in {command.money.currency}",
                    param="currency",
                )
            if order.status != "open":
                raise StateError(
                    f"the order is {order.status}", code="order_not_open", param="order_id"
                )
        source = command.source
        method = source.summary().stored() if isinstance(source, CardDetails) else None
        payment = await self.payments.insert_payment(
            conn,
            payment_id=payment_id,
            kind=command.kind,
            amount=command.money.amount,
            currency=command.money.currency,
            customer_id=command.customer_id,
            order_id=command.order_id,
            shard=self._shard,
            gateway=self._gateway.name,
            payment_method=method,
            description=command.description,
            metadata=command.metadata,
            actor=command.ctx.actor,
        )
        return Started(command, payment, amount=command.money.amount)

    async def _begin_capture(
        self, conn: asyncpg.Connection, command: CapturePayment, payment: Payment, op_id: UUID
    ) -> Started:
        if payment.status is not PaymentStatus.AUTHORIZED:
            code = (
                "payment_already_captured"
                if payment.status is PaymentStatus.CAPTURED
                else "payment_not_capturable"
            )
            raise StateError(
                f"payment {payment.id} is {payment.status}; only authorized payments can be "
                "captured",
                code=code,
                param="payment_id",
            )
        self._check_not_expired(payment)
        amount = payment.amount_capturable if command.amount is None else command.amount
        if amount > payment.amount_capturable:
            raise StateError(
                f"amount {amount} exceeds the capturable {payment.amount_capturable}",
                code="amount_too_large",
                param="amount",
            )
        await self.payments.insert_operation(
            conn,
            operation_id=op_id,
            payment=payment,
            kind=TransactionType.CAPTURE,
            amount=amount,
            actor=command.ctx.actor,
        )
        return Started(command, payment, op_id, amount)

    async def _begin_void(
        self, conn: asyncpg.Connection, command: VoidPayment, payment: Payment, op_id: UUID
    ) -> Started:
        if payment.status is not PaymentStatus.AUTHORIZED:
            raise StateError(
                f"payment {payment.id} is {payment.status}; only authorized payments can be voided",
                code="payment_not_voidable",
                param="payment_id",
            )
        await self.payments.insert_operation(
            conn,
            operation_id=op_id,
            payment=payment,
            kind=TransactionType.VOID,
            amount=payment.amount,
            actor=command.ctx.actor,
        )
        return Started(command, payment, op_id, payment.amount)

    async def _begin_refund(
        self, conn: asyncpg.Connection, command: RefundPayment, payment: Payment, op_id: UUID
    ) -> Started:
        if payment.status not in REFUNDABLE:
            code = (
                "payment_already_refunded"
                if payment.status is PaymentStatus.REFUNDED
                else "payment_not_refundable"
            )
            raise StateError(
                f"payment {payment.id} is {payment.status}; only captured or succeeded payments "
                "can be refunded",
                code=code,
                param="payment_id",
            )
        amount = payment.refundable if command.amount is None else command.amount
        if amount <= 0:
            raise StateError(
                "everything captured is refunded or being refunded",
                code="payment_already_refunded",
                param="payment_id",
            )
        if amount > payment.refundable:
            raise StateError(
                f"amount {amount} exceeds the refundable {payment.refundable}",
                code="amount_too_large",
                param="amount",
            )
        reserved = await self.payments.reserve_refund(
            conn, payment_id=payment.id, amount=amount, actor=command.ctx.actor
        )
        if reserved is None:
            raise StateError(
                "the refund no longer fits the captured amount",
                code="amount_too_large",
                param="amount",
            )
        await self.payments.insert_operation(
            conn,
            operation_id=op_id,
            payment=payment,
            kind=TransactionType.REFUND,
            amount=amount,
            actor=command.ctx.actor,
            metadata=command.metadata,
        )
        await self.payments.insert_refund(
            conn,
            refund_id=op_id,
            payment=payment,
            amount=amount,
            reason=command.reason,
            actor=command.ctx.actor,
        )
        return Started(command, reserved, op_id, amount)

    def _check_not_expired(self, payment: Payment) -> None:
        expires = payment.authorization_expires_at
        if expires is not None and expires <= self._clock():
            raise StateError(
                f"the authorization of payment {payment.id} has expired",
                code="authorization_expired",
                param="payment_id",
            )

    # -- gateway -------------------------------------------------------------------------

    async def call_gateway(self, started: Started) -> GatewayOutcome:
        """The one gateway call of a started command; transport trouble comes back as a value."""
        command, payment = started.command, started.payment
        money = Money(started.amount, payment.currency)
        try:
            if isinstance(command, CreatePayment):
                return await self._gateway.charge(
                    ChargeRequest(
                        payment.id,
                        money,
                        command.source,
                        capture=command.kind is TransactionType.PURCHASE,
                    )
                )
            assert started.operation_id is not None
            assert payment.gateway_transaction_id is not None
            request = OperationRequest(started.operation_id, payment.gateway_transaction_id, money)
            if isinstance(command, CapturePayment):
                return await self._gateway.capture(request)
            if isinstance(command, VoidPayment):
                return await self._gateway.void(request)
            return await self._gateway.refund(request)
        except GatewayError as error:
            return error

    async def lookup(self, reference: UUID) -> GatewayResult | None:
        """What the gateway recorded for `reference`; None if it never saw it."""
        return await self._gateway.lookup(reference)

    # -- finalize ------------------------------------------------------------------------

    async def finalize(
        self, conn: asyncpg.Connection, started: Started, outcome: GatewayOutcome
    ) -> Finished | None:
        """Write the outcome. None when the outcome is unknown (ambiguous gateway error): the
        command stays `processing` for recovery, and the caller answers 504."""
        if isinstance(outcome, GatewayError) and outcome.ambiguous:
            return None
        command = started.command
        if isinstance(command, CreatePayment):
            finished = await self._finalize_create(conn, started, outcome)
        elif isinstance(command, CapturePayment):
            finished = await self._finalize_capture(conn, started, outcome)
        elif isinstance(command, VoidPayment):
            finished = await self._finalize_void(conn, started, outcome)
        else:
            finished = await self._finalize_refund(conn, started, outcome)
        if finished.entries:
            await self.ledger.insert(conn, entries=finished.entries)
        await self.remember(conn, command, finished.result)
        return finished

    async def _finalize_create(
        self, conn: asyncpg.Connection, started: Started, outcome: GatewayOutcome
    ) -> Finished:
        payment, command = started.payment, started.command
        assert isinstance(command, CreatePayment)
        card = outcome.card if isinstance(outcome, GatewayResult) else None
        method = card.stored() if card is not None and payment.payment_method is None else None
        if isinstance(outcome, GatewayResult) and outcome.approved:
            purchase = command.kind is TransactionType.PURCHASE
            final = await self.payments.finalize_payment(
                conn,
                actor=command.ctx.actor,
                payment_id=payment.id,
                status=PaymentStatus.SUCCEEDED if purchase else PaymentStatus.AUTHORIZED,
                amount_capturable=0 if purchase else payment.amount,
                amount_captured=payment.amount if purchase else 0,
                gateway_transaction_id=outcome.gateway_transaction_id,
                payment_method=method,
                authorization_expires_at=None
                if purchase
                else self._clock() + timedelta(hours=self._settings.authorization_window_h),
            )
            account = Account.CAPTURED if purchase else Account.HELD
            entry = Entry(final.customer_id, final.id, account, final.currency, final.amount)
            body = final.public()
            await self._event(
                conn,
                "payment.succeeded" if purchase else "payment.authorized",
                final,
                body,
                command,
            )
            return Finished(CommandResult(200, body), [entry])
        error = _failure(outcome)
        final = await self.payments.finalize_payment(
            conn,
            actor=command.ctx.actor,
            payment_id=payment.id,
            status=PaymentStatus.FAILED,
            amount_capturable=0,
            amount_captured=0,
            gateway_transaction_id=outcome.gateway_transaction_id
            if isinstance(outcome, GatewayResult)
            else None,
            payment_method=method,
            failure_code=error.code,
            failure_message=error.message,
            decline_code=error.decline_code,
        )
        body = final.public()
        await self._event(conn, "payment.failed", final, body, command)
        return Finished(CommandResult.from_error(error, payment_id=str(final.id)))

    async def _finalize_capture(
        self, conn: asyncpg.Connection, started: Started, outcome: GatewayOutcome
    ) -> Finished:
        payment, op_id = started.payment, started.operation_id
        assert op_id is not None
        if isinstance(outcome, GatewayResult) and outcome.approved:
            await self.payments.finalize_operation(
                conn,
                actor=started.command.ctx.actor,
                operation_id=op_id,
                status=OperationStatus.SUCCEEDED,
                gateway_transaction_id=outcome.gateway_transaction_id,
            )
            final = await self.payments.settle(
                conn,
                actor=started.command.ctx.actor,
                payment_id=payment.id,
                from_status=PaymentStatus.AUTHORIZED,
                status=PaymentStatus.CAPTURED,
                amount_capturable=0,
                amount_captured=started.amount,
            )
            # The uncaptured rest of a partial capture is released with the hold.
            entries = [
                Entry(final.customer_id, op_id, Account.HELD, final.currency, -payment.amount),
                Entry(final.customer_id, op_id, Account.CAPTURED, final.currency, started.amount),
            ]
            body = final.public()
            await self._event(conn, "payment.captured", final, body, started.command)
            return Finished(CommandResult(200, body), entries)
        return await self._operation_failed(conn, started, outcome)

    async def _finalize_void(
        self, conn: asyncpg.Connection, started: Started, outcome: GatewayOutcome
    ) -> Finished:
        payment, op_id = started.payment, started.operation_id
        assert op_id is not None
        if isinstance(outcome, GatewayResult) and outcome.approved:
            await self.payments.finalize_operation(
                conn,
                actor=started.command.ctx.actor,
                operation_id=op_id,
                status=OperationStatus.SUCCEEDED,
                gateway_transaction_id=outcome.gateway_transaction_id,
            )
            final = await self.payments.settle(
                conn,
                actor=started.command.ctx.actor,
                payment_id=payment.id,
                from_status=PaymentStatus.AUTHORIZED,
                status=PaymentStatus.VOIDED,
                amount_capturable=0,
                amount_captured=0,
            )
            entries = [
                Entry(final.customer_id, op_id, Account.HELD, final.currency, -payment.amount)
            ]
            body = final.public()
            await self._event(conn, "payment.voided", final, body, started.command)
            return Finished(CommandResult(200, body), entries)
        return await self._operation_failed(conn, started, outcome)

    async def _finalize_refund(
        self, conn: asyncpg.Connection, started: Started, outcome: GatewayOutcome
    ) -> Finished:
        payment, op_id = started.payment, started.operation_id
        assert op_id is not None
        approved = isinstance(outcome, GatewayResult) and outcome.approved
        status = OperationStatus.SUCCEEDED if approved else OperationStatus.FAILED
        await self.payments.finalize_refund(
            conn, refund_id=op_id, status=status, actor=started.command.ctx.actor
        )
        final = await self.payments.settle_refund(
            conn,
            payment_id=payment.id,
            amount=started.amount,
            succeeded=approved,
            actor=started.command.ctx.actor,
        )
        if not approved:
            return await self._operation_failed(conn, started, outcome, final)
        await self.payments.finalize_operation(
            conn,
            actor=started.command.ctx.actor,
            operation_id=op_id,
            status=status,
            gateway_transaction_id=outcome.gateway_transaction_id
            if isinstance(outcome, GatewayResult)
            else None,
        )
        refunds = await self.payments.refunds_of(conn, payment_id=payment.id)
        body = final.public(refunds)
        await self._event(conn, "payment.refunded", final, body, started.command)
        entries = [
            Entry(final.customer_id, op_id, Account.REFUNDED, final.currency, started.amount)
        ]
        return Finished(CommandResult(200, body), entries)

    async def _operation_failed(
        self,
        conn: asyncpg.Connection,
        started: Started,
        outcome: GatewayOutcome,
        payment: Payment | None = None,
    ) -> Finished:
        """A declined or failed capture, void or refund: the payment keeps its state."""
        assert started.operation_id is not None
        error = _failure(outcome)
        await self.payments.finalize_operation(
            conn,
            actor=started.command.ctx.actor,
            operation_id=started.operation_id,
            status=OperationStatus.FAILED,
            gateway_transaction_id=outcome.gateway_transaction_id
            if isinstance(outcome, GatewayResult)
            else None,
            failure_code=error.code,
            failure_message=error.message,
        )
        final = payment or started.payment
        return Finished(CommandResult.from_error(error, payment_id=str(final.id)))

    # -- shared --------------------------------------------------------------------------

    async def remember(
        self, conn: asyncpg.Connection, command: Command, result: CommandResult
    ) -> None:
        """Store the answer under the command's idempotency key, if it has one."""
        ctx = command.ctx
        if ctx.idempotency_key is not None:
            await self.idempotency.complete(
                conn,
                api_key_id=ctx.api_key_id,
                key=ctx.idempotency_key,
                status_code=result.status_code,
                body=result.body,
            )

    async def _event(
        self,
        conn: asyncpg.Connection,
        event_type: str,
        payment: Payment,
        body: dict[str, Any],
        command: Command,
    ) -> None:
        await self.outbox.add(
            conn,
            events=[
                Event(
                    event_type,
                    "payment",
                    payment.id,
                    body,
                    command.ctx.api_key_id,
                    command.ctx.correlation_id,
                )
            ],
        )


def _failure(outcome: GatewayOutcome) -> PaygridError:
    if isinstance(outcome, GatewayError):
        return GatewayUnavailable(f"the gateway could not be reached: {outcome.args[0]}")
    return CardDeclined(
        outcome.message or "The card was declined.",
        decline_code=outcome.decline_code or "generic_decline",
    )


def replay_or_refuse(
    held_hash: bytes,
    request_hash: bytes,
    completed: bool,
    status: int | None,
    body: dict[str, Any] | None,
) -> CommandResult:
    """What a request whose idempotency key is already held gets back."""
    if held_hash != request_hash:
        return CommandResult.from_error(
            IdempotencyMismatch(
                "this Idempotency-Key was used with a different request", param="Idempotency-Key"
            )
        )
    if not completed or status is None or body is None:
        return CommandResult.from_error(
            Conflict(
                "a request with this Idempotency-Key is still in progress; retry later",
                param="Idempotency-Key",
            )
        )
    return CommandResult(status, body, replayed=True)


def timeout_result(started: Started) -> CommandResult:
    """The answer while a gateway outcome is unknown and left to recovery."""
    return CommandResult.from_error(
        GatewayTimeout(
            "the gateway did not answer; the outcome will be settled shortly, "
            "retry with the same Idempotency-Key"
        ),
        payment_id=str(started.payment.id),
    )
