"""SQL of API keys. Never commits; rows are mapped to `ApiKey` here and nowhere else."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

import asyncpg

from engine.auth.models import ApiKey, Scope

_COLUMNS = "id, name, prefix, scopes, created_at, expires_at, revoked_at"


def _key(r: asyncpg.Record) -> ApiKey:
    return ApiKey(
        r["id"],
        r["name"],
        r["prefix"],
        frozenset(Scope(s) for s in r["scopes"]),
        r["created_at"],
        r["expires_at"],
        r["revoked_at"],
    )


class ApiKeyRepository:
    async def insert(
        self,
        conn: asyncpg.Connection,
        *,
        name: str,
        prefix: str,
        key_hash: bytes,
        scopes: frozenset[Scope],
        expires_in: timedelta | None,
    ) -> ApiKey:
        row = await conn.fetchrow(
            f"""INSERT INTO api_keys (name, prefix, key_hash, scopes, expires_at)
                VALUES ($1, $2, $3, $4, now() + $5::interval) RETURNING {_COLUMNS}""",
            name,
            prefix,
            key_hash,
            sorted(s.value for s in scopes),
            expires_in,
        )
        return _key(row)

    async def all(self, conn: asyncpg.Connection) -> list[ApiKey]:
        rows = await conn.fetch(f"SELECT {_COLUMNS} FROM api_keys ORDER BY created_at DESC")
        return [_key(r) for r in rows]

    async def revoke(self, conn: asyncpg.Connection, *, key_id: UUID) -> ApiKey | None:
        row = await conn.fetchrow(
            f"""UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1
                RETURNING {_COLUMNS}""",
            key_id,
        )
        return None if row is None else _key(row)

    async def live_by_hash(self, conn: asyncpg.Connection, *, key_hash: bytes) -> ApiKey | None:
        """The unrevoked, unexpired key with this hash."""
        row = await conn.fetchrow(
            f"""SELECT {_COLUMNS} FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL
                  AND (expires_at IS NULL OR expires_at > now())""",
            key_hash,
        )
        return None if row is None else _key(row)

    async def has_live_admin(self, conn: asyncpg.Connection) -> bool:
        found = await conn.fetchval(
            "SELECT 1 FROM api_keys WHERE 'admin' = ANY(scopes) AND revoked_at IS NULL"
        )
        return found is not None
