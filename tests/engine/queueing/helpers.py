"""Helpers of the queue tests: wake-ups heard on a channel, and factories for the two real
queues' items (scheduled jobs; webhook deliveries, made by the outbox's fan-out)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from uuid import UUID, uuid4

import asyncpg

from engine.events.outbox import Event, Outbox
from engine.keys.keyring import Keyring
from engine.keys.master import MasterKey, decode_master_key
from engine.principal import Principal
from engine.scheduler.repository import JobRepository
from engine.webhooks.models import Endpoint
from engine.webhooks.repository import WebhookRepository
from engine.webhooks.secrets import CURRENT, WebhookSecrets
from engine.webhooks.signing import new_secret
from tests.engine.payments.harness import MASTER_KEY

# Sealing and opening endpoints' secrets under the engine tests' one master key.
SECRETS = WebhookSecrets(Keyring(MasterKey(decode_master_key(MASTER_KEY))))


@contextlib.asynccontextmanager
async def listening(dsn: str, channel: str) -> AsyncIterator[asyncio.Event]:
    """An event set by every NOTIFY on `channel`, on a connection of its own."""
    woken = asyncio.Event()
    conn = await asyncpg.connect(dsn)
    try:
        await conn.add_listener(channel, lambda *_: woken.set())
        yield woken
    finally:
        await conn.close()


async def add_jobs(conn: asyncpg.Connection, count: int, kind: str = "test.job") -> list[UUID]:
    jobs = JobRepository()
    made = [await jobs.enqueue(conn, kind=kind, payload={"n": n}) for n in range(count)]
    return [job for job in made if job is not None]


async def add_endpoint(conn: asyncpg.Connection, url: str = "http://127.0.0.1:9/") -> Endpoint:
    endpoint_id = uuid4()
    sealed = await SECRETS.seal(conn, endpoint_id=endpoint_id, secret=new_secret(), column=CURRENT)
    return await WebhookRepository().insert_endpoint(
        conn,
        endpoint_id=endpoint_id,
        url=url,
        enabled_events=["*"],
        description=None,
        metadata={},
        secret_sealed=sealed,
        principal=Principal(None, "test"),
    )


async def add_events(conn: asyncpg.Connection, count: int) -> None:
    """`count` payment events; the fan-out trigger gives each enabled endpoint a delivery."""
    await Outbox().add(
        conn,
        events=[
            Event("payment.succeeded", "payment", uuid4(), {"n": n}, None, None)
            for n in range(count)
        ],
    )
