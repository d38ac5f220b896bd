"""SQL for payments and their operations. Keyword-only methods; never commits: the service owns
every transaction. Rows are mapped to domain objects here and nowhere else."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from engine.errors import ConcurrentUpdate
from engine.payments.models import UNBOUNDED, Payment, PaymentWindow, ProcessingRow, Refund
from engine.payments.states import (
    OperationStatus,
    PaymentStatus,
    RefundStatus,
    TransactionType,
    can_transition,
)
from engine.principal import Principal

_PAYMENT_COLUMNS = """
    id, transaction_type, status, amount, currency, amount_capturable, amount_captured,
    amount_refunded, amount_refund_pending, customer_id, order_id, shard, payment_method,
    gateway, gateway_transaction_id, failure_code, failure_message, decline_code, description,
    metadata, authorization_expires_at, created_at, updated_at, return_code
"""
# The same columns qualified, for statements that join transactions `t` with other rows.
_PAYMENT_COLUMNS_T = ", ".join("t." + c.strip() for c in _PAYMENT_COLUMNS.split(","))


# Joins a transaction `t` to its customer's test clock, if any (`clock.frozen_time`).
_CUSTOMER_CLOCK = """LEFT JOIN customers cust ON cust.id = t.customer_id
    LEFT JOIN test_clocks clock ON clock.id = cust.test_clock_id"""


@dataclass(frozen=True, slots=True)
class BankCheck:
    """A settled bank debit due for a return check, with its customer's time (a test clock's,
    or real time) and the end of its return window on that clock."""

    payment: Payment
    customer_now: datetime
    returns_until: datetime | None


def refund_of_row(row: asyncpg.Record) -> Refund:
    """A `refunds` row read as `id, transaction_id, amount, currency, reason, status,
    created_at`."""
    return Refund(
        row["id"],
        row["transaction_id"],
        row["amount"],
        row["currency"],
        row["reason"],
        RefundStatus(row["status"]),
        row["created_at"],
    )


def _payment(row: asyncpg.Record) -> Payment:
    return Payment(
        id=row["id"],
        type=TransactionType(row["transaction_type"]),
        status=PaymentStatus(row["status"]),
        amount=row["amount"],
        currency=row["currency"],
        amount_capturable=row["amount_capturable"],
        amount_captured=row["amount_captured"],
        amount_refunded=row["amount_refunded"],
        amount_refund_pending=row["amount_refund_pending"],
        customer_id=row["customer_id"],
        order_id=row["order_id"],
        shard=row["shard"],
        payment_method=row["payment_method"],
        gateway=row["gateway"],
        gateway_transaction_id=row["gateway_transaction_id"],
        failure_code=row["failure_code"],
        failure_message=row["failure_message"],
        decline_code=row["decline_code"],
        description=row["description"],
        metadata=row["metadata"],
        authorization_expires_at=row["authorization_expires_at"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        return_code=row["return_code"],
    )


@dataclass(frozen=True, slots=True)
class NewPayment:
    id: UUID
    kind: TransactionType
    amount: int
    currency: str
    customer_id: UUID
    order_id: UUID | None
    payment_method: dict[str, Any] | None
    description: str | None
    metadata: dict[str, str]
    principal: Principal
    # The gateway chosen for it, where recovery looks it up (`RECORDED_GATEWAY` for a payment
    # settled outside paygrid).
    gateway: str
    # A payment refused before any gateway call (an AML block) is written `failed` at once.
    status: PaymentStatus = PaymentStatus.PROCESSING
    failure_code: str | None = None
    failure_message: str | None = None
    decline_code: str | None = None
    # A bank debit: when paygrid first asks the gateway about it (its expected settlement),
    # and until when it may be returned; both on the customer's clock.
    bank_check_at: datetime | None = None
    bank_returns_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class PaymentOutcome:
    payment_id: UUID
    status: PaymentStatus
    amount_capturable: int
    amount_captured: int
    gateway_transaction_id: str | None
    payment_method: dict[str, Any] | None
    principal: Principal
    failure_code: str | None = None
    failure_message: str | None = None
    decline_code: str | None = None
    authorization_expires_at: datetime | None = None


class PaymentRepository:
    """Payments (root rows), operations (child rows) and refunds."""

    async def insert_payments(
        self, conn: asyncpg.Connection, *, payments: list[NewPayment], shard: int
    ) -> dict[UUID, Payment]:
        """Write new payments (`processing`, or `failed` when refused before the gateway),
        in one statement; returned by id."""
        rows = await conn.fetch(
            f"""INSERT INTO transactions (id, transaction_type, status, amount, currency,
                    customer_id, order_id, shard, gateway, payment_method, description,
                    metadata, api_key_id, correlation_id, failure_code, failure_message,
                    decline_code, bank_check_at, bank_returns_until)
                SELECT p.id, p.kind::transaction_type, p.status::transaction_status, p.amount,
                       p.currency, p.customer_id, p.order_id, $12, p.gateway, p.payment_method,
                       p.description, p.metadata, p.api_key_id, p.correlation_id,
                       p.failure_code, p.failure_message, p.decline_code, p.bank_check_at,
                       p.bank_returns_until
                FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::text[], $5::uuid[],
                            $6::uuid[], $7::jsonb[], $8::text[], $9::jsonb[], $10::uuid[],
                            $11::text[], $13::text[], $14::text[], $15::text[], $16::text[],
                            $17::text[], $18::timestamptz[], $19::timestamptz[])
                     AS p(id, kind, amount, currency, customer_id, order_id, payment_method,
                          description, metadata, api_key_id, correlation_id, gateway, status,
                          failure_code, failure_message, decline_code, bank_check_at,
                          bank_returns_until)
                RETURNING {_PAYMENT_COLUMNS}""",
            [p.id for p in payments],
            [p.kind.value for p in payments],
            [p.amount for p in payments],
            [p.currency for p in payments],
            [p.customer_id for p in payments],
            [p.order_id for p in payments],
            [p.payment_method for p in payments],
            [p.description for p in payments],
            [p.metadata for p in payments],
            [p.principal.api_key_id for p in payments],
            [p.principal.correlation_id for p in payments],
            shard,
            [p.gateway for p in payments],
            [p.status.value for p in payments],
            [p.failure_code for p in payments],
            [p.failure_message for p in payments],
            [p.decline_code for p in payments],
            [p.bank_check_at for p in payments],
            [p.bank_returns_until for p in payments],
        )
        return {r["id"]: _payment(r) for r in rows}

    async def existing_ids(self, conn: asyncpg.Connection, *, payment_ids: list[UUID]) -> set[UUID]:
        """Which of `payment_ids` some transaction row already has."""
        rows = await conn.fetch(
            "SELECT id FROM transactions WHERE id = ANY($1::uuid[])", payment_ids
        )
        return {r["id"] for r in rows}

    async def get(
        self, conn: asyncpg.Connection, *, payment_id: UUID, for_update: bool = False
    ) -> Payment | None:
        lock = " FOR UPDATE" if for_update else ""
        row = await conn.fetchrow(
            f"SELECT {_PAYMENT_COLUMNS} FROM transactions"
            f" WHERE id = $1 AND parent_id IS NULL{lock}",
            payment_id,
        )
        return None if row is None else _payment(row)

    async def customer_of(self, conn: asyncpg.Connection, *, payment_id: UUID) -> UUID | None:
        return await conn.fetchval(  # type: ignore[no-any-return]
            "SELECT customer_id FROM transactions WHERE id = $1 AND parent_id IS NULL", payment_id
        )

    async def finalize_payments(
        self, conn: asyncpg.Connection, *, outcomes: list[PaymentOutcome]
    ) -> dict[UUID, Payment]:
        """Move `processing` payments to their outcomes, in one statement. Conditional on
        `processing`: if any row has moved on (recovery raced a live shard), nothing is kept
        and ConcurrentUpdate is raised, so the caller retries one by one."""
        for outcome in outcomes:
            if not can_transition(PaymentStatus.PROCESSING, outcome.status):
                raise ValueError(f"processing → {outcome.status} is not a payment transition")
        rows = await conn.fetch(
            f"""UPDATE transactions t SET status = o.status::transaction_status,
                    amount_capturable = o.capturable, amount_captured = o.captured,
                    gateway_transaction_id = o.gateway_transaction_id,
                    payment_method = coalesce(o.payment_method, t.payment_method),
                    failure_code = o.failure_code, failure_message = o.failure_message,
                    decline_code = o.decline_code,
                    authorization_expires_at = o.authorization_expires_at,
                    api_key_id = o.api_key_id, correlation_id = o.correlation_id,
                    updated_at = now()
                FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::bigint[], $5::text[],
                            $6::jsonb[], $7::text[], $8::text[], $9::text[], $10::timestamptz[],
                            $11::uuid[], $12::text[])
                     AS o(id, status, capturable, captured, gateway_transaction_id,
                          payment_method, failure_code, failure_message, decline_code,
                          authorization_expires_at, api_key_id, correlation_id)
                WHERE t.id = o.id AND t.status = 'processing'
                RETURNING {_PAYMENT_COLUMNS_T}""",
            [o.payment_id for o in outcomes],
            [o.status.value for o in outcomes],
            [o.amount_capturable for o in outcomes],
            [o.amount_captured for o in outcomes],
            [o.gateway_transaction_id for o in outcomes],
            [o.payment_method for o in outcomes],
            [o.failure_code for o in outcomes],
            [o.failure_message for o in outcomes],
            [o.decline_code for o in outcomes],
            [o.authorization_expires_at for o in outcomes],
            [o.principal.api_key_id for o in outcomes],
            [o.principal.correlation_id for o in outcomes],
        )
        if len(rows) != len(outcomes):
            raise ConcurrentUpdate("a payment being finalized is no longer processing")
        return {r["id"]: _payment(r) for r in rows}

    async def settle(
        self,
        conn: asyncpg.Connection,
        *,
        payment_id: UUID,
        from_status: PaymentStatus,
        status: PaymentStatus,
        amount_capturable: int,
        amount_captured: int,
        principal: Principal,
    ) -> Payment:
        """Capture, void or expire an authorization: conditional on its current status, and only
        along the state machine's transition table."""
        if not can_transition(from_status, status):
            raise ValueError(f"{from_status} → {status} is not a payment transition")
        row = await conn.fetchrow(
            f"""UPDATE transactions SET status = $3, amount_capturable = $4, amount_captured = $5,
                    api_key_id = $6, correlation_id = $7, updated_at = now()
                WHERE id = $1 AND status = $2
                RETURNING {_PAYMENT_COLUMNS}""",
            payment_id,
            from_status.value,
            status.value,
            amount_capturable,
            amount_captured,
            principal.api_key_id,
            principal.correlation_id,
        )
        if row is None:
            raise ConcurrentUpdate(f"payment {payment_id} is not {from_status}")
        return _payment(row)

    async def switch_gateway(
        self, conn: asyncpg.Connection, *, payment_id: UUID, from_gateway: str, to: str
    ) -> Payment:
        """Move a payment still `processing` at `from_gateway` to gateway `to` (failover)."""
        row = await conn.fetchrow(
            f"""UPDATE transactions SET gateway = $3, updated_at = now()
                WHERE id = $1 AND status = 'processing' AND gateway = $2
                RETURNING {_PAYMENT_COLUMNS}""",
            payment_id,
            from_gateway,
            to,
        )
        if row is None:
            raise ConcurrentUpdate(
                f"payment {payment_id} is no longer processing at {from_gateway}"
            )
        return _payment(row)

    async def reserve_refund(
        self, conn: asyncpg.Connection, *, payment_id: UUID, amount: int, principal: Principal
    ) -> Payment | None:
        """Hold `amount` of the captured money for a refund in flight; None if it no longer
        fits (the CHECK constraint would refuse it anyway)."""
        row = await conn.fetchrow(
            f"""UPDATE transactions SET amount_refund_pending = amount_refund_pending + $2,
                    api_key_id = $3, correlation_id = $4, updated_at = now()
                WHERE id = $1 AND status IN ('captured', 'succeeded')
                  AND amount_refunded + amount_refund_pending + $2 <= amount_captured
                RETURNING {_PAYMENT_COLUMNS}""",
            payment_id,
            amount,
            principal.api_key_id,
            principal.correlation_id,
        )
        return None if row is None else _payment(row)

    async def settle_refund(
        self,
        conn: asyncpg.Connection,
        *,
        payment_id: UUID,
        amount: int,
        succeeded: bool,
        principal: Principal,
    ) -> Payment:
        """Turn a held refund into a refund (or release it), and mark the payment refunded
        once everything captured has gone back."""
        row = await conn.fetchrow(
            f"""UPDATE transactions SET
                    amount_refund_pending = amount_refund_pending - $2,
                    amount_refunded = amount_refunded + CASE WHEN $3 THEN $2 ELSE 0 END,
                    status = CASE WHEN $3 AND amount_refunded + $2 = amount_captured
                                  THEN 'refunded'::transaction_status ELSE status END,
                    api_key_id = $4, correlation_id = $5, updated_at = now()
                WHERE id = $1 AND amount_refund_pending >= $2
                RETURNING {_PAYMENT_COLUMNS}""",
            payment_id,
            amount,
            succeeded,
            principal.api_key_id,
            principal.correlation_id,
        )
        if row is None:
            raise ConcurrentUpdate(f"no refund of {amount} held on {payment_id}")
        return _payment(row)

    async def insert_operation(
        self,
        conn: asyncpg.Connection,
        *,
        operation_id: UUID,
        payment: Payment,
        kind: TransactionType,
        amount: int,
        principal: Principal,
        metadata: dict[str, str] | None = None,
        bank_check_at: datetime | None = None,
        payment_method: dict[str, Any] | None = None,
    ) -> None:
        """Write an operation `processing`; a refund of a bank debit names when it is
        expected to settle (`bank_check_at`), before which recovery does not ask about it;
        `payment_method` only for a refund settled outside paygrid (its method and
        reference), which no card was used for."""
        await conn.execute(
            """INSERT INTO transactions (id, parent_id, transaction_type, status, amount, currency,
                    customer_id, order_id, shard, gateway, metadata, api_key_id, correlation_id,
                    bank_check_at, payment_method)
               VALUES ($1, $2, $3, 'processing', $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,
                       $14)""",
            operation_id,
            payment.id,
            kind.value,
            amount,
            payment.currency,
            payment.customer_id,
            payment.order_id,
            payment.shard,
            payment.gateway,
            metadata or {},
            principal.api_key_id,
            principal.correlation_id,
            bank_check_at,
            payment_method,
        )

    async def finalize_operation(
        self,
        conn: asyncpg.Connection,
        *,
        operation_id: UUID,
        status: OperationStatus,
        gateway_transaction_id: str | None,
        principal: Principal,
        failure_code: str | None = None,
        failure_message: str | None = None,
    ) -> None:
        done = await conn.execute(
            """UPDATE transactions SET status = $2, gateway_transaction_id = $3,
                    failure_code = $4, failure_message = $5, api_key_id = $6,
                    correlation_id = $7, updated_at = now()
               WHERE id = $1 AND status = 'processing'""",
            operation_id,
            status.value,
            gateway_transaction_id,
            failure_code,
            failure_message,
            principal.api_key_id,
            principal.correlation_id,
        )
        if done != "UPDATE 1":
            raise ConcurrentUpdate(f"operation {operation_id} is not processing")

    async def insert_refund(
        self,
        conn: asyncpg.Connection,
        *,
        refund_id: UUID,
        payment: Payment,
        amount: int,
        reason: str | None,
        principal: Principal,
    ) -> None:
        await conn.execute(
            """INSERT INTO refunds (id, transaction_id, amount, currency, reason, status,
                    api_key_id, correlation_id)
               VALUES ($1, $2, $3, $4, $5, 'processing', $6, $7)""",
            refund_id,
            payment.id,
            amount,
            payment.currency,
            reason,
            principal.api_key_id,
            principal.correlation_id,
        )

    async def finalize_refund(
        self,
        conn: asyncpg.Connection,
        *,
        refund_id: UUID,
        status: RefundStatus,
        principal: Principal,
    ) -> None:
        await conn.execute(
            """UPDATE refunds SET status = $2, api_key_id = $3, correlation_id = $4,
                    updated_at = now()
               WHERE id = $1""",
            refund_id,
            status.value,
            principal.api_key_id,
            principal.correlation_id,
        )

    async def refund_succeeded(self, conn: asyncpg.Connection, *, refund_id: UUID) -> bool:
        return bool(
            await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM refunds WHERE id = $1 AND status = 'succeeded')",
                refund_id,
            )
        )

    async def refunds_of(self, conn: asyncpg.Connection, *, payment_id: UUID) -> list[Refund]:
        rows = await conn.fetch(
            """SELECT id, transaction_id, amount, currency, reason, status, created_at
               FROM refunds WHERE transaction_id = $1 ORDER BY created_at, id""",
            payment_id,
        )
        return [refund_of_row(r) for r in rows]

    async def page(
        self,
        conn: asyncpg.Connection,
        *,
        limit: int,
        starting_after: UUID | None = None,
        status: PaymentStatus | None = None,
        customer_id: UUID | None = None,
        window: PaymentWindow = UNBOUNDED,
    ) -> tuple[list[Payment], bool]:
        """Newest first; the cursor is the id of the last payment of the previous page."""
        rows = await conn.fetch(
            f"""SELECT {_PAYMENT_COLUMNS} FROM transactions t
                WHERE parent_id IS NULL
                  AND ($2::transaction_status IS NULL OR status = $2)
                  AND ($3::uuid IS NULL OR customer_id = $3)
                  AND ($4::uuid IS NULL OR (created_at, id) < (
                        SELECT created_at, id FROM transactions WHERE id = $4))
                  AND ($5::timestamptz IS NULL OR created_at >= $5)
                  AND ($6::timestamptz IS NULL OR created_at < $6)
                  AND ($7::text IS NULL OR currency = $7)
                  AND ($8::bigint IS NULL OR amount >= $8)
                  AND ($9::bigint IS NULL OR amount <= $9)
                ORDER BY created_at DESC, id DESC
                LIMIT $1""",
            limit + 1,
            status.value if status else None,
            customer_id,
            starting_after,
            window.created_from,
            window.created_before,
            window.currency,
            window.amount_min,
            window.amount_max,
        )
        payments = [_payment(r) for r in rows[:limit]]
        return payments, len(rows) > limit

    async def expiring_slots(
        self, conn: asyncpg.Connection, *, slots: list[int], now: datetime
    ) -> list[int]:
        """Which of `slots` hold authorizations whose window has passed (no locks taken)."""
        rows = await conn.fetch(
            """SELECT DISTINCT slot FROM transactions
               WHERE slot = ANY($1::int[]) AND status = 'authorized' AND parent_id IS NULL
                 AND authorization_expires_at <= $2""",
            slots,
            now,
        )
        return sorted(r["slot"] for r in rows)

    async def expiring(
        self, conn: asyncpg.Connection, *, slots: list[int], now: datetime, limit: int
    ) -> list[Payment]:
        """Authorizations in `slots` whose window has passed, locked, oldest first. Those with
        a capture or void still in flight are left for that operation to settle; those another
        transaction holds are skipped (the next sweep takes them)."""
        rows = await conn.fetch(
            f"""SELECT {_PAYMENT_COLUMNS_T} FROM transactions t
                WHERE t.slot = ANY($1::int[]) AND t.status = 'authorized' AND t.parent_id IS NULL
                  AND t.authorization_expires_at <= $2
                  AND NOT EXISTS (SELECT 1 FROM transactions o
                                  WHERE o.parent_id = t.id AND o.status = 'processing')
                ORDER BY t.authorization_expires_at
                LIMIT $3
                FOR UPDATE OF t SKIP LOCKED""",
            slots,
            now,
            limit,
        )
        return [_payment(r) for r in rows]

    async def processing(
        self, conn: asyncpg.Connection, *, slots: list[int], before: datetime
    ) -> list[ProcessingRow]:
        """Rows in `slots` left `processing` since before `before`, oldest first."""
        rows = await conn.fetch(
            f"""SELECT t.id, t.parent_id, t.transaction_type, t.amount, t.customer_id,
                      t.api_key_id, t.created_at
               FROM transactions t {_CUSTOMER_CLOCK}
               WHERE t.slot = ANY($1::int[]) AND t.status = 'processing' AND t.created_at < $2
                 AND (t.bank_check_at IS NULL OR t.bank_check_at <= coalesce(clock.frozen_time, $2))
               ORDER BY t.created_at""",
            slots,
            before,
        )
        return [
            ProcessingRow(
                id=r["id"],
                payment_id=r["parent_id"] or r["id"],
                kind=TransactionType(r["transaction_type"]),
                amount=r["amount"],
                customer_id=r["customer_id"],
                api_key_id=r["api_key_id"],
                created_at=r["created_at"],
            )
            for r in rows
        ]

    async def mark_returned(
        self,
        conn: asyncpg.Connection,
        *,
        payment_id: UUID,
        return_code: str,
        principal: Principal,
    ) -> Payment:
        """Record the ACH return code of a bank debit whose return was just refunded, and stop
        asking the gateway about it."""
        row = await conn.fetchrow(
            f"""UPDATE transactions SET return_code = $2, bank_check_at = NULL,
                    api_key_id = $3, correlation_id = $4, updated_at = now()
                WHERE id = $1 AND parent_id IS NULL
                RETURNING {_PAYMENT_COLUMNS}""",
            payment_id,
            return_code,
            principal.api_key_id,
            principal.correlation_id,
        )
        if row is None:
            raise ConcurrentUpdate(f"no payment {payment_id} to mark returned")
        return _payment(row)

    async def bank_checks_due(
        self, conn: asyncpg.Connection, *, slots: list[int], now: datetime, limit: int
    ) -> list[BankCheck]:
        """Settled bank debits in `slots` whose next return check is due on their customer's
        clock (a test clock's time, else `now`), oldest check first. Debits still
        `processing` are recovery's (`processing`), not these checks'."""
        rows = await conn.fetch(
            f"""SELECT {_PAYMENT_COLUMNS_T}, t.bank_returns_until,
                       coalesce(clock.frozen_time, $2) AS customer_now
                FROM transactions t {_CUSTOMER_CLOCK}
                WHERE t.slot = ANY($1::int[]) AND t.parent_id IS NULL
                  AND t.status <> 'processing'
                  AND t.bank_check_at <= coalesce(clock.frozen_time, $2)
                ORDER BY t.bank_check_at LIMIT $3""",
            slots,
            now,
            limit,
        )
        return [BankCheck(_payment(r), r["customer_now"], r["bank_returns_until"]) for r in rows]

    async def customer_times(
        self, conn: asyncpg.Connection, *, customer_ids: Sequence[UUID], now: datetime
    ) -> dict[UUID, datetime]:
        """Each existing customer's time: its test clock's, else `now`."""
        rows = await conn.fetch(
            """SELECT c.id, coalesce(clock.frozen_time, $2) AS at FROM customers c
               LEFT JOIN test_clocks clock ON clock.id = c.test_clock_id
               WHERE c.id = ANY($1::uuid[])""",
            list(customer_ids),
            now,
        )
        return {r["id"]: r["at"] for r in rows}

    async def set_bank_check(
        self, conn: asyncpg.Connection, *, payment_ids: list[UUID], at: datetime | None
    ) -> None:
        """When to ask the gateway next about these bank debits (None: never again)."""
        await conn.execute(
            "UPDATE transactions SET bank_check_at = $2 WHERE id = ANY($1::uuid[])",
            payment_ids,
            at,
        )
