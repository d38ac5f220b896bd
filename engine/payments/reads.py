"""Reading payments for the API: one payment with its refunds, pages of payments, and the
customer behind a payment (what routes a capture, void or refund to its shard)."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from engine.db.database import Database
from engine.errors import NotFound
from engine.gateways.attempts import Attempt
from engine.gateways.repository import AttemptRepository
from engine.payments.models import UNBOUNDED, Payment, PaymentWindow, Refund
from engine.payments.repository import PaymentRepository
from engine.payments.states import PaymentStatus

_OWNER_CACHE_SIZE = 100_000


@dataclass(frozen=True, slots=True)
class PaymentDetail:
    payment: Payment
    refunds: list[Refund]
    attempts: list[Attempt]

    def public(self) -> dict[str, Any]:
        """The API payment object with its refunds and attempts."""
        return self.payment.detail(self.refunds, self.attempts)


@dataclass(frozen=True, slots=True)
class PaymentPage:
    payments: list[Payment]
    has_more: bool


class PaymentReads:
    def __init__(self, db: Database, repository: PaymentRepository | None = None) -> None:
        self._db = db
        self._repository = repository or PaymentRepository()
        self._attempts = AttemptRepository()
        # A payment's customer never changes, so it is cached (bounded, oldest out first).
        self._owners: OrderedDict[UUID, UUID] = OrderedDict()

    async def settled(self, payment_id: UUID) -> Payment | None:
        """The purchase if it exists and its outcome is known: succeeded (or refunded since) or
        failed; None if absent or in flight."""
        async with self._db.connection() as conn:
            payment = await self._repository.get(conn, payment_id=payment_id)
        final = (PaymentStatus.SUCCEEDED, PaymentStatus.FAILED, PaymentStatus.REFUNDED)
        if payment is None or payment.status not in final:
            return None
        return payment

    async def refund_succeeded(self, refund_id: UUID) -> bool:
        """Whether the refund with this id exists and succeeded."""
        async with self._db.connection() as conn:
            return await self._repository.refund_succeeded(conn, refund_id=refund_id)

    async def get(self, payment_id: UUID) -> PaymentDetail:
        """The payment with its refunds and gateway attempts, or NotFound."""
        async with self._db.connection() as conn:
            payment = await self._repository.get(conn, payment_id=payment_id)
            if payment is None:
                raise NotFound(f"no payment {payment_id}", param="payment_id")
            refunds = await self._repository.refunds_of(conn, payment_id=payment_id)
            attempts = await self._attempts.of_payment(conn, payment_id=payment_id)
        return PaymentDetail(payment, refunds, attempts)

    async def page(
        self,
        *,
        limit: int,
        starting_after: UUID | None = None,
        status: PaymentStatus | None = None,
        customer_id: UUID | None = None,
        window: PaymentWindow = UNBOUNDED,
    ) -> PaymentPage:
        """Newest first; the cursor is the id of the last payment of the previous page.
        `window` bounds when they were created and, in one currency, their amount."""
        async with self._db.connection() as conn:
            found, more = await self._repository.page(
                conn,
                limit=limit,
                starting_after=starting_after,
                status=status,
                customer_id=customer_id,
                window=window,
            )
        return PaymentPage(found, more)

    async def owner_of(self, payment_id: UUID) -> UUID:
        """The customer of a payment, or NotFound."""
        owner = self._owners.get(payment_id)
        if owner is None:
            async with self._db.connection() as conn:
                owner = await self._repository.customer_of(conn, payment_id=payment_id)
            if owner is None:
                raise NotFound(f"no payment {payment_id}", param="payment_id")
            self._owners[payment_id] = owner
            if len(self._owners) > _OWNER_CACHE_SIZE:
                self._owners.popitem(last=False)
        return owner
