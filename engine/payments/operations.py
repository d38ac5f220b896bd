"""Capture, void and refund: one command at a time, each against its payment's locked row.

begin locks the payment, checks the transition and the amount, and writes the operation
`processing` (a refund also holds its amount on the payment); finalize settles the operation and
the payment, and returns the ledger entries; the caller stores them and the idempotency answer.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from engine.compliance.monitor import AmlMonitor, compliance_block
from engine.errors import Conflict, NotFound, PaygridError, StateError
from engine.events.outbox import Event, Outbox
from engine.gateways.base import GatewayResult
from engine.idempotency.repository import Claim, IdempotencyRepository
from engine.ledger.entries import Account, Entry
from engine.payments.commands import (
    RECORDED_GATEWAY,
    CapturePayment,
    CommandResult,
    RefundPayment,
    VoidPayment,
)
from engine.payments.models import Payment
from engine.payments.repository import PaymentRepository
from engine.payments.results import (
    Finished,
    GatewayOutcome,
    Started,
    answer_for,
    failure,
    held_result,
)
from engine.payments.states import (
    REFUNDABLE,
    OperationStatus,
    PaymentStatus,
    RefundStatus,
    TransactionType,
)
from engine.principal import Principal

Operation = CapturePayment | VoidPayment | RefundPayment


class OperationSteps:
    def __init__(
        self,
        *,
        payments: PaymentRepository,
        idempotency: IdempotencyRepository,
        outbox: Outbox,
        aml: AmlMonitor,
        idempotency_ttl_h: int,
        clock: Callable[[], datetime],
        bank_settlement_delay: timedelta,
    ) -> None:
        self._bank_delay = bank_settlement_delay
        self._aml = aml
        self._payments = payments
        self._idempotency = idempotency
        self._outbox = outbox
        self._idempotency_ttl_h = idempotency_ttl_h
        self._clock = clock

    async def begin(self, conn: asyncpg.Connection, command: Operation) -> Started | CommandResult:
        """Claim the key, lock the payment, check the transition and write the operation
        `processing`; or the refusal (stored under the key) or replay when it must not proceed."""
        op_id = uuid4()
        if isinstance(command, RefundPayment) and command.refund_id is not None:
            op_id = command.refund_id
        ctx = command.ctx
        if ctx.idempotency_key is not None:
            claim = Claim(ctx.api_key_id, ctx.idempotency_key, ctx.request_hash, op_id)
            held = await self._idempotency.claim_many(
                conn, claims=[claim], ttl_h=self._idempotency_ttl_h
            )
            if held:
                return held_result(next(iter(held.values())), ctx.request_hash)
        try:
            chosen = isinstance(command, RefundPayment) and command.refund_id is not None
            if chosen and await self._payments.existing_ids(conn, payment_ids=[op_id]):
                raise Conflict(f"a refund {op_id} exists already", code="refund_exists")
            payment = await self._payments.get(conn, payment_id=command.payment_id, for_update=True)
            if payment is None:
                raise NotFound(f"no payment {command.payment_id}", param="payment_id")
            if isinstance(command, CapturePayment):
                return await self._begin_capture(conn, command, payment, op_id)
            if isinstance(command, VoidPayment):
                return await self._begin_void(conn, command, payment, op_id)
            return await self._begin_refund(conn, command, payment, op_id)
        except PaygridError as refusal:
            result = CommandResult.from_error(refusal)
            if (answer := answer_for(command, result)) is not None:
                await self._idempotency.complete_many(conn, answers=[answer])
            return result

    async def finalize(
        self, conn: asyncpg.Connection, started: Started, outcome: GatewayOutcome
    ) -> Finished:
        """Settle the operation and its payment with the gateway's (known) outcome."""
        if isinstance(started.command, RefundPayment):
            return await self._finalize_refund(conn, started, outcome)
        return await self._finalize_settlement(conn, started, outcome)

    async def expire(self, conn: asyncpg.Connection, payment: Payment) -> list[Entry]:
        """Mark an authorization whose window has passed `expired` and release its hold. Its
        void at the gateway is a job queued beside (engine/payments/expiry_voids.py)."""
        principal = Principal(None, "authorization-expiry")
        final = await self._payments.settle(
            conn,
            payment_id=payment.id,
            from_status=PaymentStatus.AUTHORIZED,
            status=PaymentStatus.EXPIRED,
            amount_capturable=0,
            amount_captured=0,
            principal=principal,
        )
        await self._event(conn, "payment.expired", final, final.public(), principal)
        return [
            Entry(
                final.customer_id,
                final.id,
                Account.HELD,
                final.currency,
                -payment.amount,
                principal.correlation_id,
            )
        ]

    async def _begin_capture(
        self, conn: asyncpg.Connection, command: CapturePayment, payment: Payment, op_id: UUID
    ) -> Started:
        if payment.status is PaymentStatus.EXPIRED:
            # Expired by the sweep or only by its window: the same answer either way.
            raise _expired(payment)
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
        await self._payments.insert_operation(
            conn,
            operation_id=op_id,
            payment=payment,
            kind=TransactionType.CAPTURE,
            amount=amount,
            principal=command.ctx.principal,
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
        await self._payments.insert_operation(
            conn,
            operation_id=op_id,
            payment=payment,
            kind=TransactionType.VOID,
            amount=payment.amount,
            principal=command.ctx.principal,
        )
        return Started(command, payment, op_id, payment.amount)

    async def _begin_refund(
        self, conn: asyncpg.Connection, command: RefundPayment, payment: Payment, op_id: UUID
    ) -> Started:
        recorded = payment.gateway == RECORDED_GATEWAY
        if recorded and command.settlement is None:
            # No gateway holds its money: giving it back is settled outside paygrid too.
            raise StateError(
                f"payment {payment.id} was settled outside paygrid and cannot be refunded "
                "through a gateway; record its refund with POST "
                f"/api/database/transactions/{payment.id}/refunds",
                code="payment_recorded_externally",
                param="payment_id",
            )
        if not recorded and command.settlement is not None:
            # A gateway holds this payment's money: a refund recorded here would never reach
            # the card, and the books would say it had.
            raise StateError(
                f"payment {payment.id} was paid through {payment.gateway}; refund it with "
                "POST /api/payments/refund",
                code="payment_not_recorded",
                param="payment_id",
            )
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
        now = self._clock()
        # A bank's return is not the merchant's refund: no AML refund rule applies to it.
        hit = (
            None if command.return_code is not None else self._aml.refund(payment, amount, now=now)
        )
        if hit is not None and hit.blocks:
            # The refusal commits, so the alert stays while nothing of the refund is written.
            await self._aml.write_refund_alert(conn, hit, payment, command.ctx, now=now)
            raise compliance_block()
        reserved = await self._payments.reserve_refund(
            conn, payment_id=payment.id, amount=amount, principal=command.ctx.principal
        )
        if reserved is None:
            raise StateError(
                "the refund no longer fits the captured amount",
                code="amount_too_large",
                param="amount",
            )
        await self._payments.insert_operation(
            conn,
            operation_id=op_id,
            payment=payment,
            kind=TransactionType.REFUND,
            amount=amount,
            principal=command.ctx.principal,
            metadata=command.metadata,
            bank_check_at=await self._credit_settles(conn, command, payment, now),
            payment_method=None if command.settlement is None else command.settlement.stored(),
        )
        await self._payments.insert_refund(
            conn,
            refund_id=op_id,
            payment=payment,
            amount=amount,
            reason=command.reason,
            principal=command.ctx.principal,
        )
        if hit is not None:
            await self._aml.write_refund_alert(conn, hit, payment, command.ctx, now=now)
        return Started(command, reserved, op_id, amount)

    async def _credit_settles(
        self, conn: asyncpg.Connection, command: RefundPayment, payment: Payment, now: datetime
    ) -> datetime | None:
        """When a refund of a bank debit (a credit to the account) is expected to settle, on
        the customer's clock; None for any other refund, and for a bank's return (settled
        already)."""
        method = payment.payment_method or {}
        if method.get("type") != "bank" or command.return_code is not None:
            return None
        times = await self._payments.customer_times(
            conn, customer_ids=[payment.customer_id], now=now
        )
        return times.get(payment.customer_id, now) + self._bank_delay

    def _check_not_expired(self, payment: Payment) -> None:
        expires = payment.authorization_expires_at
        if expires is not None and expires <= self._clock():
            raise _expired(payment)

    async def _finalize_settlement(
        self, conn: asyncpg.Connection, started: Started, outcome: GatewayOutcome
    ) -> Finished:
        """Capture or void: settle the authorization and release its whole hold; a capture
        books what it took (the uncaptured rest of a partial capture is simply released)."""
        payment, op_id = started.payment, started.operation_id
        assert op_id is not None
        if not (isinstance(outcome, GatewayResult) and outcome.approved):
            return await self._operation_failed(conn, started, outcome)
        principal = started.command.ctx.principal
        capture = isinstance(started.command, CapturePayment)
        await self._payments.finalize_operation(
            conn,
            principal=principal,
            operation_id=op_id,
            status=OperationStatus.SUCCEEDED,
            gateway_transaction_id=outcome.gateway_transaction_id,
        )
        final = await self._payments.settle(
            conn,
            principal=principal,
            payment_id=payment.id,
            from_status=PaymentStatus.AUTHORIZED,
            status=PaymentStatus.CAPTURED if capture else PaymentStatus.VOIDED,
            amount_capturable=0,
            amount_captured=started.amount if capture else 0,
        )
        cid = principal.correlation_id
        entries = [
            Entry(final.customer_id, op_id, Account.HELD, final.currency, -payment.amount, cid)
        ]
        if capture:
            entries.append(
                Entry(
                    final.customer_id, op_id, Account.CAPTURED, final.currency, started.amount, cid
                )
            )
        body = final.public()
        event_type = "payment.captured" if capture else "payment.voided"
        await self._event(conn, event_type, final, body, principal)
        return Finished(CommandResult(200, body), entries)

    async def _finalize_refund(
        self, conn: asyncpg.Connection, started: Started, outcome: GatewayOutcome
    ) -> Finished:
        payment, op_id = started.payment, started.operation_id
        assert op_id is not None
        approved = isinstance(outcome, GatewayResult) and outcome.approved
        await self._payments.finalize_refund(
            conn,
            refund_id=op_id,
            status=RefundStatus.SUCCEEDED if approved else RefundStatus.FAILED,
            principal=started.command.ctx.principal,
        )
        final = await self._payments.settle_refund(
            conn,
            payment_id=payment.id,
            amount=started.amount,
            succeeded=approved,
            principal=started.command.ctx.principal,
        )
        if not approved:
            return await self._operation_failed(conn, started, outcome, final)
        await self._payments.finalize_operation(
            conn,
            principal=started.command.ctx.principal,
            operation_id=op_id,
            status=OperationStatus.SUCCEEDED,
            gateway_transaction_id=outcome.gateway_transaction_id
            if isinstance(outcome, GatewayResult)
            else None,
        )
        command = started.command
        assert isinstance(command, RefundPayment)
        event_type = "payment.refunded"
        if command.return_code is not None:
            final = await self._payments.mark_returned(
                conn,
                payment_id=payment.id,
                return_code=command.return_code,
                principal=command.ctx.principal,
            )
            event_type = "payment.returned"
        refunds = await self._payments.refunds_of(conn, payment_id=payment.id)
        body = final.public(refunds)
        await self._event(conn, event_type, final, body, command.ctx.principal)
        entries = [
            Entry(
                final.customer_id,
                op_id,
                Account.REFUNDED,
                final.currency,
                started.amount,
                started.command.ctx.correlation_id,
            )
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
        error = failure(outcome)
        await self._payments.finalize_operation(
            conn,
            principal=started.command.ctx.principal,
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

    async def _event(
        self,
        conn: asyncpg.Connection,
        event_type: str,
        payment: Payment,
        body: dict[str, Any],
        principal: Principal,
    ) -> None:
        await self._outbox.add(
            conn,
            events=[
                Event(
                    event_type,
                    "payment",
                    payment.id,
                    body,
                    principal.api_key_id,
                    principal.correlation_id,
                )
            ],
        )


def _expired(payment: Payment) -> StateError:
    return StateError(
        f"the authorization of payment {payment.id} has expired",
        code="authorization_expired",
        param="payment_id",
    )
