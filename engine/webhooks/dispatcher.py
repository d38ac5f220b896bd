"""The `webhooks` queue's worker: send each leased delivery, and keep each endpoint's health.

The queue mechanics (claim under a lease, at most `per_group` in flight per endpoint, settle
with the retry policy, batched) are `engine.queueing.worker`'s. What is webhook-specific runs
in the transaction that settles the delivery: its attempt row; an endpoint failing since its
first failure in a row; one that recovers; and an endpoint disabled after a 410 or after
failing longer than `disable_after`, announced by exactly one `webhook_endpoint.disabled`
event.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from uuid import UUID

import asyncpg

from engine.db.database import Database
from engine.events.outbox import Event, Outbox
from engine.logs.context import reset_correlation, set_correlation
from engine.metrics.recorder import NO_METRICS, Metrics
from engine.principal import Principal
from engine.queueing.repository import Lease, QueueRepository
from engine.queueing.settings import QueueSettings
from engine.queueing.worker import Done, Worker
from engine.webhooks.delivery import Attempt, Deliverer, Verdict
from engine.webhooks.models import Claimed, Endpoint
from engine.webhooks.queue import DELIVERIES
from engine.webhooks.repository import WebhookRepository
from engine.webhooks.secrets import WebhookSecrets
from engine.webhooks.states import EndpointStatus

_PRINCIPAL = Principal(None, "webhook-dispatcher")

Dispatcher = Worker[Claimed, Attempt]


class Deliveries:
    """How deliveries load, run and settle: the `Handler` of the `webhooks` queue."""

    def __init__(
        self, deliverer: Deliverer, secrets: WebhookSecrets, *, disable_after: timedelta
    ) -> None:
        self._deliverer = deliverer
        self._secrets = secrets
        self._disable_after = disable_after
        self._repository = WebhookRepository()
        self._outbox = Outbox()

    async def load(
        self, conn: asyncpg.Connection, leases: Sequence[Lease]
    ) -> Mapping[UUID, Claimed]:
        """The leased deliveries, each with its endpoint's live secrets opened to sign it."""
        found = await self._repository.claimed(conn, delivery_ids=[lease.id for lease in leases])
        return {i: await self._secrets.for_delivery(conn, c) for i, c in found.items()}

    async def run(self, item: Claimed) -> Attempt:
        # The send's log lines carry the correlation id of the request that caused the event.
        token = set_correlation(item.correlation_id)
        try:
            return await self._deliverer.send(item)
        finally:
            reset_correlation(token)

    async def settled(
        self, conn: asyncpg.Connection, done: Sequence[Done[Claimed, Attempt]]
    ) -> None:
        await self._repository.record_attempts(
            conn, attempts=[(d.lease.id, d.result) for d in done]
        )
        for d in done:
            await self._endpoint_after(conn, d.item.endpoint, d.result)

    async def _endpoint_after(
        self, conn: asyncpg.Connection, endpoint: Endpoint, attempt: Attempt
    ) -> None:
        if attempt.verdict is Verdict.DELIVERED:
            # The hot path touches the endpoint only when it had been failing.
            if endpoint.failing_since is not None:
                await self._repository.update_endpoint(
                    conn,
                    endpoint_id=endpoint.id,
                    changes={"failing_since": None},
                    principal=_PRINCIPAL,
                )
            return
        if attempt.verdict is Verdict.GONE:
            await self._disable(conn, endpoint.id, "the endpoint answered 410 Gone")
            return
        failing = await self._repository.mark_failing(
            conn, endpoint_id=endpoint.id, principal=_PRINCIPAL
        )
        if (
            failing is not None
            and failing.failing_since is not None
            and failing.updated_at - failing.failing_since > self._disable_after
        ):
            await self._disable(conn, endpoint.id, "deliveries failed for too long")

    async def _disable(self, conn: asyncpg.Connection, endpoint_id: UUID, reason: str) -> None:
        disabled = await self._repository.disable(
            conn, endpoint_id=endpoint_id, reason=reason, principal=_PRINCIPAL
        )
        if disabled is None:  # not enabled any more: announced already, or deleted
            return
        await self._outbox.add(
            conn,
            events=[
                Event(
                    "webhook_endpoint.disabled",
                    "webhook_endpoint",
                    disabled.id,
                    {
                        "id": str(disabled.id),
                        "url": disabled.url,
                        "status": EndpointStatus.DISABLED,
                        "disabled_reason": reason,
                    },
                    None,
                    None,
                )
            ],
        )


def open_dispatcher(
    db: Database,
    deliverer: Deliverer,
    secrets: WebhookSecrets,
    queue: QueueSettings,
    *,
    disable_after: timedelta,
    metrics: Metrics = NO_METRICS,
) -> Dispatcher:
    return Worker(
        db,
        QueueRepository(DELIVERIES),
        Deliveries(deliverer, secrets, disable_after=disable_after),
        queue.policy,
        max_in_flight=queue.max_in_flight,
        lease_s=queue.lease_s,
        per_group=queue.per_group,
        metrics=metrics,
    )
