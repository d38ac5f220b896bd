"""Claim due deliveries, send them, and settle each with its attempt.

Deliveries run as independent tasks, at most `max_in_flight` at once and at most `per_endpoint`
per endpoint: a busy endpoint is left out of the next claim, so one slow receiver never holds
the slots others need. Each delivery settles on its own: succeeded (one statement); back in the
queue after the policy's delay; `dead` when the retries are spent; `failed` when the receiver
rejects it. A 410, or failures lasting longer than `disable_after`, disable the endpoint and emit
`webhook_endpoint.disabled`.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from uuid import UUID

import asyncpg

from engine.events.outbox import Event, Outbox
from engine.principal import Principal
from engine.webhooks.delivery import Attempt, Deliverer, Verdict
from engine.webhooks.policy import RetryPolicy
from engine.webhooks.repository import Claimed, Endpoint, WebhookRepository

_PRINCIPAL = Principal(None, "webhook-dispatcher")


class Dispatcher:
    def __init__(
        self,
        pool: asyncpg.Pool,
        deliverer: Deliverer,
        policy: RetryPolicy,
        *,
        max_in_flight: int = 256,
        lease_s: float = 60.0,
        per_endpoint: int = 8,
        disable_after: timedelta = timedelta(days=5),
    ) -> None:
        self._pool = pool
        self._deliverer = deliverer
        self._policy = policy
        self._max_in_flight = max_in_flight
        self._lease_s = lease_s
        self._per_endpoint = per_endpoint
        self._disable_after = disable_after
        self._repository = WebhookRepository()
        self._outbox = Outbox()
        self._busy: Counter[UUID] = Counter()
        self._tasks: set[asyncio.Task[Attempt]] = set()
        # Set whenever a delivery finishes: there may be room to claim more.
        self.room = asyncio.Event()

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def pump(self) -> int:
        """Claim as many due deliveries as there is room for and start them; returns how many
        started. Does not wait for them."""
        room = self._max_in_flight - len(self._tasks)
        if room <= 0:
            return 0
        async with self._pool.acquire() as conn:
            claimed = await self._repository.claim(
                conn,
                limit=room,
                lease_s=self._lease_s,
                per_endpoint=self._per_endpoint,
                in_flight=dict(self._busy),
            )
        for item in claimed:
            self._busy[item.endpoint.id] += 1
            task = asyncio.get_running_loop().create_task(self._deliver(item))
            self._tasks.add(task)
            task.add_done_callback(self._finished)
        return len(claimed)

    async def drain(self) -> None:
        """Wait until every delivery started so far has settled."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def deliver_now(self, claimed: Claimed) -> Attempt:
        """Send one delivery already claimed by the caller (a test send), and settle it."""
        self._busy[claimed.endpoint.id] += 1
        return await self._deliver(claimed)

    def _finished(self, task: asyncio.Task[Attempt]) -> None:
        self._tasks.discard(task)
        self.room.set()

    async def _deliver(self, claimed: Claimed) -> Attempt:
        try:
            attempt = await self._deliverer.send(claimed)
        finally:
            self._busy[claimed.endpoint.id] -= 1
            if self._busy[claimed.endpoint.id] <= 0:
                del self._busy[claimed.endpoint.id]
        async with self._pool.acquire() as conn:
            if attempt.verdict is Verdict.DELIVERED and claimed.endpoint.failing_since is None:
                assert attempt.http_status is not None
                await self._repository.delivered(
                    conn,
                    delivery_id=claimed.id,
                    http_status=attempt.http_status,
                    latency_ms=attempt.latency_ms,
                    response_excerpt=attempt.response_excerpt,
                )
                return attempt
            async with conn.transaction():
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
            # Only reached while the endpoint was failing: it has recovered.
            await self._repository.settle(
                conn, delivery_id=claimed.id, status="succeeded", retry_in_s=None, error=None
            )
            await self._repository.update_endpoint(
                conn, endpoint_id=endpoint.id, changes={"failing_since": None}, principal=_PRINCIPAL
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
            principal=_PRINCIPAL,
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
            principal=_PRINCIPAL,
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
