"""Webhook signing secrets at rest: only ciphertext in the database, bound to its row and
column; a rotation signs with both secrets; a master-key rotation re-wraps the key that seals
them, so they still open under the new master key alone; and secrets an earlier release left in
clear are sealed by `seal_clear_secrets`, after which the database refuses clear ones."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import timedelta
from uuid import uuid4

import aiohttp
import asyncpg
import pytest

from engine.db import migrations
from engine.db.database import Database, open_database
from engine.errors import CryptoError
from engine.keys.keyring import Keyring
from engine.keys.master import MasterKey
from engine.principal import Principal
from engine.webhooks.delivery import Deliverer
from engine.webhooks.dispatcher import open_dispatcher
from engine.webhooks.endpoints import EndpointService
from engine.webhooks.models import Claimed
from engine.webhooks.secrets import WebhookSecrets, seal_clear_secrets
from engine.webhooks.signing import new_secret
from tests.engine.customers.test_sealing import _apply_until
from tests.engine.webhooks.test_dispatcher import QUEUE
from tests.pii_scan import readable

SEALING = "0022"
WHO = Principal(None, "test-secrets")


async def test_sealed_rotated_and_opened_after_a_master_key_rotation(database: Database) -> None:
    old_master, new_master = MasterKey(os.urandom(32)), MasterKey(os.urandom(32))
    secrets = WebhookSecrets(Keyring(old_master))
    async with aiohttp.ClientSession() as session:
        dispatcher = open_dispatcher(
            database,
            Deliverer(session, timeout_s=5),
            secrets,
            QUEUE,
            disable_after=timedelta(days=5),
        )
        endpoints = EndpointService(database, dispatcher, secrets, allow_private=True)
        created = await endpoints.create(
            url="http://127.0.0.1:9/hook",
            enabled_events=["*"],
            description=None,
            metadata={},
            principal=WHO,
        )
        rotated = await endpoints.rotate(created.id, WHO)
        assert (await endpoints.get(created.id)).shown_secret is None
    original, current = created.shown_secret, rotated.shown_secret
    assert original is not None
    assert current is not None
    assert original != current

    async with database.connection() as conn:
        assert await readable(conn, [original, current]) == []
        row = await conn.fetchrow(
            "SELECT secret, previous_secret FROM webhook_endpoints WHERE id = $1", created.id
        )
        assert (row["secret"], row["previous_secret"]) == (None, None)
        claimed = Claimed(uuid4(), uuid4(), "test.event", rotated.created_at, {}, None, rotated)
        signed = await secrets.for_delivery(conn, claimed)
        assert signed.signing_secrets == (current, original)
        # Bound to its column: the previous secret's ciphertext does not open as the current.
        moved = replace(rotated, secret_sealed=rotated.previous_secret_sealed or b"")
        with pytest.raises(CryptoError):
            await secrets.current(conn, moved)

    assert await Keyring(new_master, previous=[old_master]).rotate_master(database) >= 1
    async with database.connection() as conn:
        alone = WebhookSecrets(Keyring(new_master))
        assert await alone.current(conn, rotated) == current


async def test_clear_secrets_of_an_earlier_release_are_sealed_and_then_refused(
    fresh_dsn: str,
) -> None:
    secret, previous = new_secret(), new_secret()
    conn = await asyncpg.connect(fresh_dsn)
    try:
        await _apply_until(conn, SEALING)
        endpoint_id = await conn.fetchval(
            """INSERT INTO webhook_endpoints (url, enabled_events, secret, previous_secret)
               VALUES ('http://127.0.0.1:9/', '{*}', $1, $2) RETURNING id""",
            secret,
            previous,
        )
        await migrations.migrate(conn)
    finally:
        await conn.close()

    keyring = Keyring(MasterKey(os.urandom(32)))
    db = await open_database(fresh_dsn, min_size=1, max_size=2)
    try:
        assert await seal_clear_secrets(db, keyring) == 1
        assert await seal_clear_secrets(db, keyring) == 0
        async with db.connection() as check:
            assert await readable(check, [secret, previous]) == []
            sealed = await check.fetchval(
                "SELECT secret_sealed FROM webhook_endpoints WHERE id = $1", endpoint_id
            )
            opened = await WebhookSecrets(keyring).open(
                check, endpoint_id=endpoint_id, sealed=sealed, column="secret"
            )
            assert opened == secret
            with pytest.raises(asyncpg.CheckViolationError):
                await check.execute(
                    "UPDATE webhook_endpoints SET secret = $1 WHERE id = $2", secret, endpoint_id
                )
    finally:
        await db.close()
