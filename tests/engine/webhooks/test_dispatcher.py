"""The webhook dispatcher against a real database and a local receiver, without Ray: deliveries
settle with their attempt rows; an endpoint that answers 410, or keeps failing past the
configured period, is disabled with exactly one `webhook_endpoint.disabled` event; one that
recovers stops failing; test sends, replays and the delivery list go through the services."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from uuid import uuid4

import aiohttp
import asyncpg
import pytest

from engine.db.database import Database
from engine.errors import NotFound
from engine.principal import Principal
from engine.queueing.policy import RetryPolicy
from engine.queueing.settings import QueueSettings
from engine.webhooks.deliveries import DeliveryService
from engine.webhooks.delivery import Deliverer, Verdict
from engine.webhooks.dispatcher import Dispatcher, open_dispatcher
from engine.webhooks.endpoints import EndpointService
from engine.webhooks.states import DeliveryStatus, EndpointStatus
from tests.engine.queueing.helpers import SECRETS, add_endpoint, add_events
from tests.engine.webhooks.receiver import Answers

QUEUE = QueueSettings(
    poll_s=0.05,
    lease_s=30,
    max_in_flight=64,
    policy=RetryPolicy(schedule_s=(30, 60), jitter=0),
    per_group=8,
)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as opened:
        yield opened


def _dispatcher(
    pool: asyncpg.Pool, session: aiohttp.ClientSession, disable_after: timedelta = timedelta(days=5)
) -> Dispatcher:
    return open_dispatcher(
        Database(pool),
        Deliverer(session, timeout_s=5),
        SECRETS,
        QUEUE,
        disable_after=disable_after,
    )


async def _pump_all(dispatcher: Dispatcher) -> int:
    started = await dispatcher.pump()
    await dispatcher.drain()
    return started


async def _disabled_events(pool: asyncpg.Pool, endpoint_id: object) -> int:
    return await pool.fetchval(  # type: ignore[no-any-return]
        "SELECT count(*) FROM events WHERE event_type = 'webhook_endpoint.disabled' "
        "AND object_id = $1",
        endpoint_id,
    )


async def test_deliveries_settle_with_their_attempts(
    pool: asyncpg.Pool, session: aiohttp.ClientSession, answers: Answers
) -> None:
    async with pool.acquire() as conn:
        endpoint = await add_endpoint(conn, f"{answers.base_url}/ok")
        await add_events(conn, 20)
    dispatcher = _dispatcher(pool, session)
    assert await _pump_all(dispatcher) == 8  # the endpoint's room
    assert await _pump_all(dispatcher) == 8
    assert await _pump_all(dispatcher) == 4
    rows = await pool.fetch(
        """SELECT d.status, d.attempts, d.completed_at, count(a.id) AS logged,
                  min(a.http_status) AS http_status
           FROM webhook_deliveries d JOIN webhook_attempts a ON a.delivery_id = d.id
           WHERE d.endpoint_id = $1 GROUP BY d.id""",
        endpoint.id,
    )
    assert len(rows) == 20
    assert {(r["status"], r["attempts"], r["logged"], r["http_status"]) for r in rows} == {
        ("succeeded", 1, 1, 200)
    }
    assert all(r["completed_at"] is not None for r in rows)


async def test_a_failed_attempt_waits_and_marks_the_endpoint_failing(
    pool: asyncpg.Pool, session: aiohttp.ClientSession, answers: Answers
) -> None:
    answers.status["/down"] = 503
    async with pool.acquire() as conn:
        endpoint = await add_endpoint(conn, f"{answers.base_url}/down")
        await add_events(conn, 1)
    dispatcher = _dispatcher(pool, session)
    assert await _pump_all(dispatcher) == 1
    row = await pool.fetchrow(
        """SELECT status, last_error, extract(epoch FROM next_attempt_at - now())::float8 AS in_s
           FROM webhook_deliveries WHERE endpoint_id = $1""",
        endpoint.id,
    )
    assert (row["status"], row["last_error"]) == ("pending", "HTTP 503")
    assert 25 < row["in_s"] <= 30
    failing_since = await pool.fetchval(
        "SELECT failing_since FROM webhook_endpoints WHERE id = $1", endpoint.id
    )
    assert failing_since is not None

    answers.status["/down"] = 200  # it recovers
    await pool.execute("UPDATE webhook_deliveries SET next_attempt_at = now()")
    assert await _pump_all(dispatcher) == 1
    recovered = await pool.fetchrow(
        "SELECT status, failing_since FROM webhook_endpoints WHERE id = $1", endpoint.id
    )
    assert (recovered["status"], recovered["failing_since"]) == ("enabled", None)


async def test_endpoint_failing_too_long_is_disabled(
    pool: asyncpg.Pool, session: aiohttp.ClientSession, answers: Answers
) -> None:
    answers.status["/failing"] = 503
    async with pool.acquire() as conn:
        endpoint = await add_endpoint(conn, f"{answers.base_url}/failing")
        await conn.execute(
            "UPDATE webhook_endpoints SET failing_since = now() - interval '2 hours' WHERE id = $1",
            endpoint.id,
        )
        await add_events(conn, 1)
    dispatcher = _dispatcher(pool, session, disable_after=timedelta(hours=1))
    assert await _pump_all(dispatcher) == 1
    row = await pool.fetchrow(
        "SELECT status, disabled_reason FROM webhook_endpoints WHERE id = $1", endpoint.id
    )
    assert row["status"] == "disabled"
    assert "too long" in row["disabled_reason"]
    delivery = await pool.fetchrow("SELECT status, attempts FROM webhook_deliveries")
    assert (delivery["status"], delivery["attempts"]) == ("pending", 1)  # retried, not lost
    assert await _disabled_events(pool, endpoint.id) == 1
    await pool.execute("UPDATE webhook_deliveries SET next_attempt_at = now()")
    assert await dispatcher.pump() == 0  # a disabled endpoint's deliveries wait


async def test_gone_disables_the_endpoint_once_however_many_were_in_flight(
    pool: asyncpg.Pool, session: aiohttp.ClientSession, answers: Answers
) -> None:
    answers.status["/gone"] = 410
    async with pool.acquire() as conn:
        endpoint = await add_endpoint(conn, f"{answers.base_url}/gone")
        await add_events(conn, 5)
    dispatcher = _dispatcher(pool, session)
    assert await _pump_all(dispatcher) == 5
    row = await pool.fetchrow(
        "SELECT status, disabled_reason FROM webhook_endpoints WHERE id = $1", endpoint.id
    )
    assert row["status"] == EndpointStatus.DISABLED
    assert "410" in row["disabled_reason"]
    assert await _disabled_events(pool, endpoint.id) == 1
    statuses = await pool.fetch(
        "SELECT status FROM webhook_deliveries WHERE endpoint_id = $1", endpoint.id
    )
    assert {r["status"] for r in statuses} == {"failed"}


async def test_a_test_send_and_replays_through_the_services(
    pool: asyncpg.Pool, session: aiohttp.ClientSession, answers: Answers
) -> None:
    answers.status["/test"] = 400
    db = Database(pool)
    dispatcher = _dispatcher(pool, session)
    endpoints = EndpointService(db, dispatcher, SECRETS, allow_private=True)
    deliveries = DeliveryService(db)
    principal = Principal(None, "test")
    endpoint = await endpoints.create(
        url=f"{answers.base_url}/test",
        enabled_events=["payment.succeeded"],
        description=None,
        metadata={},
        principal=principal,
    )
    delivery_id, attempt = await endpoints.send_test(endpoint.id, principal)
    assert (attempt.verdict, attempt.http_status) == (Verdict.REJECTED, 400)
    [failed], more = await deliveries.page(limit=10, endpoint_id=endpoint.id)
    assert not more
    assert (failed.id, failed.status, failed.attempts) == (delivery_id, DeliveryStatus.FAILED, 1)
    assert failed.next_attempt_at is None
    assert [(a.http_status, a.error) for a in failed.attempt_log] == [(400, "HTTP 400")]
    assert failed.attempt_log[0].response_excerpt == "answer 400"

    answers.status["/test"] = 200
    assert await deliveries.retry(delivery_id) == 1
    assert await deliveries.retry(delivery_id) == 0  # pending now: nothing to replay
    with pytest.raises(NotFound):
        await deliveries.retry(uuid4())
    assert await _pump_all(dispatcher) == 1
    [delivered], _ = await deliveries.page(limit=10, endpoint_id=endpoint.id)
    assert delivered.status is DeliveryStatus.SUCCEEDED
    assert [a.http_status for a in delivered.attempt_log] == [400, 200]

    await pool.execute("UPDATE webhook_deliveries SET status = 'dead'")
    assert await deliveries.retry_many(status=DeliveryStatus.FAILED, endpoint_id=endpoint.id) == 0
    assert await deliveries.retry_many(status=DeliveryStatus.DEAD, endpoint_id=uuid4()) == 0
    assert await deliveries.retry_many(status=DeliveryStatus.DEAD, endpoint_id=endpoint.id) == 1
    [replayed], _ = await deliveries.page(limit=10, status=DeliveryStatus.PENDING)
    assert (replayed.attempts, replayed.next_attempt_at is not None) == (0, True)

    deleted = await endpoints.delete(endpoint.id, principal)
    assert deleted.status is EndpointStatus.DELETED
    [closed], _ = await deliveries.page(limit=10, endpoint_id=endpoint.id)
    assert (closed.status, closed.last_error) == (DeliveryStatus.FAILED, "endpoint deleted")
