"""Deliveries for operators and merchants: list them with every attempt, and replay failed or
dead ones, one by one or in bulk."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from engine.db.database import Database
from engine.errors import NotFound
from engine.queueing.repository import QueueRepository
from engine.queueing.states import REPLAYABLE
from engine.webhooks.models import Delivery
from engine.webhooks.queue import DELIVERIES
from engine.webhooks.repository import WebhookRepository
from engine.webhooks.states import DeliveryStatus


class DeliveryService:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._repository = WebhookRepository()
        self._queue = QueueRepository(DELIVERIES)

    async def page(
        self,
        *,
        limit: int,
        starting_after: UUID | None = None,
        endpoint_id: UUID | None = None,
        event_type: str | None = None,
        status: DeliveryStatus | None = None,
    ) -> tuple[list[Delivery], bool]:
        """Deliveries newest first, each with its attempts; and whether more follow."""
        async with self._db.connection() as conn:
            return await self._repository.deliveries(
                conn,
                limit=limit,
                starting_after=starting_after,
                endpoint_id=endpoint_id,
                event_type=event_type,
                status=status,
            )

    async def retry(self, delivery_id: UUID) -> int:
        """Replay one failed or dead delivery now; 0 when it is pending or succeeded (or its
        endpoint is not enabled), NotFound when there is no such delivery."""
        async with self._db.transaction() as conn:
            count = await self._queue.requeue(conn, statuses=REPLAYABLE, item_id=delivery_id)
            if not count and not await self._queue.exists(conn, item_id=delivery_id):
                raise NotFound(f"no webhook delivery {delivery_id}", param="delivery_id")
        return count

    async def retry_many(
        self,
        *,
        status: DeliveryStatus,
        endpoint_id: UUID | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> int:
        """Replay every delivery in `status` (failed or dead) matching the filter, to enabled
        endpoints; returns how many."""
        async with self._db.transaction() as conn:
            return await self._queue.requeue(
                conn, statuses=(status,), group_id=endpoint_id, since=since, until=until
            )
