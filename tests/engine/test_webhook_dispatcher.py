"""The dispatcher against a real database and a local receiver, without Ray: an endpoint that
keeps failing past the configured period is disabled, with a `webhook_endpoint.disabled` event."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from uuid import uuid4

import aiohttp
import asyncpg
import pytest
from aiohttp import web

from engine.events.outbox import Event, Outbox
from engine.principal import Principal
from engine.webhooks.delivery import Deliverer
from engine.webhooks.dispatcher import Dispatcher
from engine.webhooks.policy import RetryPolicy
from engine.webhooks.repository import WebhookRepository
from engine.webhooks.signing import new_secret


@pytest.fixture
async def failing_url() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/", lambda _: web.Response(status=503))  # type: ignore[arg-type, return-value]
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/"  # type: ignore[union-attr]
    await runner.cleanup()


async def test_endpoint_failing_too_long_is_disabled(pool: asyncpg.Pool, failing_url: str) -> None:
    repository = WebhookRepository()
    async with pool.acquire() as conn:
        endpoint = await repository.insert_endpoint(
            conn,
            url=failing_url,
            enabled_events=["*"],
            description=None,
            metadata={},
            secret=new_secret(),
            principal=Principal(None, "test"),
        )
        await conn.execute(
            "UPDATE webhook_endpoints SET failing_since = now() - interval '2 hours' WHERE id = $1",
            endpoint.id,
        )
        await Outbox().add(
            conn, events=[Event("payment.succeeded", "payment", uuid4(), {}, None, None)]
        )
    async with aiohttp.ClientSession() as session:
        dispatcher = Dispatcher(
            pool, Deliverer(session, timeout_s=5), RetryPolicy(), disable_after=timedelta(hours=1)
        )
        assert await dispatcher.pump() == 1
        await dispatcher.drain()
    row = await pool.fetchrow(
        "SELECT status, disabled_reason FROM webhook_endpoints WHERE id = $1", endpoint.id
    )
    assert row["status"] == "disabled"
    assert "too long" in row["disabled_reason"]
    delivery = await pool.fetchrow("SELECT status, attempts FROM webhook_deliveries")
    assert (delivery["status"], delivery["attempts"]) == ("pending", 1)  # retried, not lost
    events = await pool.fetchval(
        "SELECT count(*) FROM events WHERE event_type = 'webhook_endpoint.disabled' "
        "AND object_id = $1",
        endpoint.id,
    )
    assert events == 1
    async with pool.acquire() as conn:
        await conn.execute("UPDATE webhook_deliveries SET next_attempt_at = now()")
        claimed = await repository.claim(conn, limit=10, lease_s=5, per_endpoint=8, in_flight={})
    assert claimed == []  # a disabled endpoint's deliveries wait


async def test_claims_leave_room_for_deliveries_already_in_flight(pool: asyncpg.Pool) -> None:
    repository = WebhookRepository()
    async with pool.acquire() as conn:
        endpoint = await repository.insert_endpoint(
            conn,
            url="http://127.0.0.1:9/",
            enabled_events=["*"],
            description=None,
            metadata={},
            secret=new_secret(),
            principal=Principal(None, "test"),
        )
        await Outbox().add(
            conn,
            events=[
                Event("payment.succeeded", "payment", uuid4(), {}, None, None) for _ in range(12)
            ],
        )
        claimed = await repository.claim(
            conn, limit=50, lease_s=5, per_endpoint=8, in_flight={endpoint.id: 6}
        )
        assert len(claimed) == 2
        more = await repository.claim(
            conn, limit=50, lease_s=5, per_endpoint=8, in_flight={endpoint.id: 8}
        )
        assert more == []
        rest = await repository.claim(conn, limit=50, lease_s=5, per_endpoint=8, in_flight={})
        assert len(rest) == 8
