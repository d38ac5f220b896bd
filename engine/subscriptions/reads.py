"""Reading subscriptions and their invoices, as the API shows them."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg

from engine.db.database import Database
from engine.errors import NotFound
from engine.subscriptions.invoices.repository import InvoiceRepository
from engine.subscriptions.models import Invoice, Subscription
from engine.subscriptions.repository import SubscriptionRepository
from engine.subscriptions.states import SubscriptionStatus


class SubscriptionReads:
    def __init__(
        self,
        db: Database,
        *,
        subscriptions: SubscriptionRepository,
        invoices: InvoiceRepository,
    ) -> None:
        self._db = db
        self._subs = subscriptions
        self._invoices = invoices

    async def get(self, subscription_id: UUID) -> tuple[Subscription, Invoice | None]:
        """The subscription and its latest invoice, or NotFound."""
        async with self._db.connection() as conn:
            sub = await self.require(conn, subscription_id)
            latest = await self._invoices.latest(conn, subscription_ids=[sub.id])
        return sub, latest.get(sub.id)

    async def page(
        self,
        *,
        customer_id: UUID | None,
        status: SubscriptionStatus | None,
        limit: int,
        starting_after: UUID | None,
    ) -> tuple[list[dict[str, Any]], bool]:
        """Subscriptions (public objects with their latest invoice), newest first, and
        whether more follow."""
        async with self._db.connection() as conn:
            subs, more = await self._subs.page(
                conn,
                customer_id=customer_id,
                status=status,
                limit=limit,
                starting_after=starting_after,
            )
            latest = await self._invoices.latest(conn, subscription_ids=[s.id for s in subs])
        return [s.public(latest.get(s.id)) for s in subs], more

    async def invoices(
        self, subscription_id: UUID, *, limit: int, starting_after: UUID | None
    ) -> tuple[list[Invoice], bool]:
        """The subscription's invoices, newest first, and whether more follow."""
        async with self._db.connection() as conn:
            await self.require(conn, subscription_id)
            return await self._invoices.page(
                conn, subscription_id=subscription_id, limit=limit, starting_after=starting_after
            )

    async def invoice(self, invoice_id: UUID) -> Invoice:
        """One invoice, or NotFound."""
        async with self._db.connection() as conn:
            found = await self._invoices.get(conn, invoice_id=invoice_id)
        if found is None:
            raise NotFound(f"no invoice {invoice_id}", param="invoice_id")
        return found

    async def require(
        self, conn: asyncpg.Connection, subscription_id: UUID, *, for_update: bool = False
    ) -> Subscription:
        """The subscription, or NotFound."""
        found = await self._subs.get(conn, subscription_id=subscription_id, for_update=for_update)
        if found is None:
            raise NotFound(f"no subscription {subscription_id}", param="subscription_id")
        return found
