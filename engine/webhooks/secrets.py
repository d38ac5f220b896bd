"""Sealing and opening webhook signing secrets: the one place they are encrypted.

An endpoint's current and previous secret are sealed (AES-256-GCM) under the shared
`webhook_secret` data key, each bound to its row and column, so a ciphertext moved to another
endpoint, or from `previous_secret` back to `secret`, no longer opens. The secret in clear
exists only in memory: when it is made (and shown once), and while a delivery is signed.

Rows an earlier release wrote in clear are sealed by `seal_clear_secrets`, which
`paygrid migrate` and start-up run after the migrations (migration 0022 cannot: the master key
never reaches the database).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime
from uuid import UUID

import asyncpg

from engine.db.database import Database
from engine.keys.cipher import row_binding
from engine.keys.keyring import Keyring
from engine.webhooks.models import Claimed, Endpoint
from engine.webhooks.repository import WebhookRepository

KEY_PURPOSE = "webhook_secret"
_TABLE = "webhook_endpoints"
CURRENT = "secret"
PREVIOUS = "previous_secret"

log = logging.getLogger("paygrid.webhooks")


class WebhookSecrets:
    def __init__(self, keyring: Keyring) -> None:
        self._keyring = keyring

    async def seal(
        self, conn: asyncpg.Connection, *, endpoint_id: UUID, secret: str, column: str
    ) -> bytes:
        """`secret` sealed for `column` (CURRENT or PREVIOUS) of endpoint `endpoint_id`."""
        key = await self._keyring.shared_key(conn, purpose=KEY_PURPOSE)
        return key.encrypt(secret.encode(), aad=_aad(endpoint_id, column))

    async def open(
        self, conn: asyncpg.Connection, *, endpoint_id: UUID, sealed: bytes, column: str
    ) -> str:
        """The secret `seal` sealed for the same endpoint and column; `CryptoError` if not."""
        key = await self._keyring.shared_key(conn, purpose=KEY_PURPOSE)
        return key.decrypt(sealed, aad=_aad(endpoint_id, column)).decode()

    async def for_delivery(self, conn: asyncpg.Connection, claimed: Claimed) -> Claimed:
        """`claimed` with the secrets that sign it now, in clear (in memory only): the current
        one, and the previous one while its grace period lasts."""
        endpoint = claimed.endpoint
        live = [await self.current(conn, endpoint)]
        previous = endpoint.previous_secret_sealed
        until = endpoint.previous_secret_until
        if previous and until and until > datetime.now(UTC):
            live.append(
                await self.open(conn, endpoint_id=endpoint.id, sealed=previous, column=PREVIOUS)
            )
        return replace(claimed, signing_secrets=tuple(live))

    async def current(self, conn: asyncpg.Connection, endpoint: Endpoint) -> str:
        """The endpoint's current secret in clear."""
        return await self.open(
            conn, endpoint_id=endpoint.id, sealed=endpoint.secret_sealed, column=CURRENT
        )


def _aad(endpoint_id: UUID, column: str) -> bytes:
    return row_binding(_TABLE, column, endpoint_id)


async def seal_clear_secrets(db: Database, keyring: Keyring, *, batch: int = 500) -> int:
    """Seal every endpoint secret an earlier release left in clear, a batch per transaction,
    then validate migration 0022's constraint so the database refuses clear secrets for good.
    Returns how many endpoints were sealed; safe to run again (and beside live traffic)."""
    repository = WebhookRepository()
    secrets = WebhookSecrets(keyring)
    sealed = 0
    while True:
        async with db.transaction() as conn:
            clear = await repository.clear_secrets(conn, limit=batch)
            if not clear:
                break
            for endpoint_id, (current, previous) in clear.items():
                await repository.store_sealed_secrets(
                    conn,
                    endpoint_id=endpoint_id,
                    secret=await secrets.seal(
                        conn, endpoint_id=endpoint_id, secret=current, column=CURRENT
                    ),
                    previous_secret=None
                    if previous is None
                    else await secrets.seal(
                        conn, endpoint_id=endpoint_id, secret=previous, column=PREVIOUS
                    ),
                )
        sealed += len(clear)
    async with db.transaction() as conn:
        await repository.validate_sealed_secrets(conn)
    if sealed:
        log.info("sealed the signing secrets of %d webhook endpoint(s) left in clear", sealed)
    return sealed
