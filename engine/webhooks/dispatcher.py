"""Claim due deliveries, send them, and settle each with its attempt.

Per-endpoint semaphores keep one slow receiver from holding every slot. Each delivery settles
in its own transaction: succeeded; back in the queue after the policy's delay; `dead` when the
retries are spent; `failed` when the receiver rejects it. A 410, or failures lasting longer than
`disable_after`, disable the endpoint and emit `webhook_endpoint.disabled`.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import timedelta
from uuid import UUID

import asyncpg

from engine.actor import Actor
from engine.events.outbox import Event, Outbox
from engine.webhooks.delivery import Attempt, Deliverer, Verdict
from engine.webhooks.policy import RetryPolicy
from engine.webhooks.repository import Claimed, Endpoint, WebhookRepository

_ACTOR = Actor(None, "webhook-dispatcher")


class Dispatcher:
    def __init__(
        self,
        pool: asyncpg.Pool,
        deliverer: Deliverer,
        policy: RetryPolicy,
        *,
        batch: int = 100,
        lease_s: float = 60.0,
        per_endpoint: int = 8,
        disable_after: timedelta = timedelta(days=5),
    ) -> None:
        self._pool = pool
        self._deliverer = deliverer
        self._policy = policy
        self._batch = batch
        self._lease_s = lease_s
        self._disable_after = disable_after
        self._repository = WebhookRepository()
        self._outbox = Outbox()
        self._gates: defaultdict[UUID, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(per_endpoint)
        )

    async def run_once(self) -> int:
        """Deliver one batch of due deliveries; returns how many were attempted."""
        async with self._pool.acquire() as conn:
            claimed = await self._repository.claim(conn, limit=self._batch, lease_s=self._lease_s)
        await asyncio.gather(*(self._deliver(c) for c in claimed))
        return len(claimed)

    async def deliver_now(self, claimed: Claimed) -> Attempt:
        """Send one delivery already claimed by the caller, and settle it."""
        return await self._deliver(claimed)

    async def _deliver(self, claimed: Claimed) -> Attempt:
        async with self._gates[claimed.endpoint.id]:
            attempt = await self._deliverer.send(claimed)
        async with self._pool.acquire() as conn, conn.transaction():
            await self._repository.record_attempt(
                conn,
                delivery_id=claimed.id,
                http_status=attempt.http_status,
                latency_ms=attempt.latency_ms,
                response_excerpt=attempt.response_excerpt,
                error=attempt.error,
            )
            await self._settle(conn, claimed, attempt)
        return attempt

    async def _settle(self, conn: asyncpg.Connection, claimed: Claimed, attempt: Attempt) -> None:
        endpoint = claimed.endpoint
        if attempt.verdict is Verdict.DELIVERED:
            await self._repository.settle(
                conn, delivery_id=claimed.id, status="succeeded", retry_in_s=None, error=None
            )
            if endpoint.failing_since is not None:
                await self._repository.update_endpoint(
                    conn, endpoint_id=endpoint.id, changes={"failing_since": None}, actor=_ACTOR
                )
            return
        if attempt.verdict is Verdict.RETRY:
            delay = self._policy.delay_after(claimed.attempts)
            status = "pending" if delay is not None else "dead"
        else:
            delay, status = None, "failed"
        await self._repository.settle(
            conn, delivery_id=claimed.id, status=status, retry_in_s=delay, error=attempt.error
        )
        if attempt.verdict is Verdict.GONE:
            await self._disable(conn, endpoint, "the endpoint answered 410 Gone")
            return
        failing = await self._repository.update_endpoint(
            conn,
            endpoint_id=endpoint.id,
            changes={
                "failing_since": endpoint.failing_since or await conn.fetchval("SELECT now()")
            },
            actor=_ACTOR,
        )
        if (
            failing is not None
            and failing.failing_since is not None
            and failing.updated_at - failing.failing_since > self._disable_after
        ):
            await self._disable(conn, failing, "deliveries failed for too long")

    async def _disable(self, conn: asyncpg.Connection, endpoint: Endpoint, reason: str) -> None:
        disabled = await self._repository.update_endpoint(
            conn,
            endpoint_id=endpoint.id,
            changes={"status": "disabled", "disabled_reason": reason},
            actor=_ACTOR,
        )
        if disabled is None or endpoint.status == "disabled":
            return
        await self._outbox.add(
            conn,
            events=[
                Event(
                    "webhook_endpoint.disabled",
                    "webhook_endpoint",
                    endpoint.id,
                    {
                        "id": str(endpoint.id),
                        "url": endpoint.url,
                        "status": "disabled",
                        "disabled_reason": reason,
                    },
                    None,
                    None,
                )
            ],
        )
