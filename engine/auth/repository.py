"""SQL of API keys. Never commits; rows are mapped to `ApiKey` here and nowhere else."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

import asyncpg

from engine.auth.models import ApiKey, AuthFailure, Caller, KeyMatch, Network, Scope
from engine.ratelimit.limits import KeyRate, parse_rate, rate_text

_FIELDS = (
    "id",
    "name",
    "prefix",
    "scopes",
    "created_at",
    "expires_at",
    "revoked_at",
    "allowed_ips",
    "rate_limit",
    "rotated_at",
)
_COLUMNS = ", ".join(_FIELDS)
_K_COLUMNS = ", ".join(f"k.{f}" for f in _FIELDS)


def _key(r: asyncpg.Record) -> ApiKey:
    return ApiKey(
        r["id"],
        r["name"],
        r["prefix"],
        frozenset(Scope(s) for s in r["scopes"]),
        r["created_at"],
        r["expires_at"],
        r["revoked_at"],
        tuple(r["allowed_ips"] or ()),
        None if r["rate_limit"] is None else parse_rate(r["rate_limit"]),
        r["rotated_at"],
        r.get("last_used_at"),
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
        allowed_networks: tuple[Network, ...] = (),
        rate_limit: KeyRate | None = None,
    ) -> ApiKey:
        row = await conn.fetchrow(
            f"""INSERT INTO api_keys
                    (name, prefix, key_hash, scopes, expires_at, allowed_ips, rate_limit)
                VALUES ($1, $2, $3, $4, now() + $5::interval, $6, $7) RETURNING {_COLUMNS}""",
            name,
            prefix,
            key_hash,
            sorted(s.value for s in scopes),
            expires_in,
            list(allowed_networks) or None,
            None if rate_limit is None else rate_text(rate_limit),
        )
        return _key(row)

    async def all(self, conn: asyncpg.Connection) -> list[ApiKey]:
        rows = await conn.fetch(
            f"""SELECT {_K_COLUMNS}, u.last_used_at FROM api_keys k
                LEFT JOIN api_key_usage u ON u.key_id = k.id ORDER BY k.created_at DESC"""
        )
        return [_key(r) for r in rows]

    async def get(self, conn: asyncpg.Connection, *, key_id: UUID) -> ApiKey | None:
        row = await conn.fetchrow(
            f"""SELECT {_K_COLUMNS}, u.last_used_at FROM api_keys k
                LEFT JOIN api_key_usage u ON u.key_id = k.id WHERE k.id = $1""",
            key_id,
        )
        return None if row is None else _key(row)

    async def revoke(self, conn: asyncpg.Connection, *, key_id: UUID) -> ApiKey | None:
        row = await conn.fetchrow(
            f"""UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1
                RETURNING {_COLUMNS}""",
            key_id,
        )
        return None if row is None else _key(row)

    async def rotate(
        self,
        conn: asyncpg.Connection,
        *,
        key_id: UUID,
        prefix: str,
        key_hash: bytes,
        grace: timedelta,
    ) -> ApiKey | None:
        """Give an unrevoked key a new hash; its current one keeps working for `grace`. Run in
        a transaction: the key's row is locked first, so two rotations retire one hash each."""
        old = await conn.fetchval(
            "SELECT key_hash FROM api_keys WHERE id = $1 AND revoked_at IS NULL FOR UPDATE",
            key_id,
        )
        if old is None:
            return None
        await conn.execute(
            """INSERT INTO api_key_retired_hashes (key_hash, key_id, expires_at)
               VALUES ($1, $2, now() + $3::interval)""",
            old,
            key_id,
            grace,
        )
        row = await conn.fetchrow(
            f"""UPDATE api_keys SET key_hash = $2, prefix = $3, rotated_at = now() WHERE id = $1
                RETURNING {_COLUMNS}""",
            key_id,
            key_hash,
            prefix,
        )
        return _key(row)

    async def by_hash(self, conn: asyncpg.Connection, *, key_hash: bytes) -> KeyMatch | None:
        """The key this hash is, or was until a rotation: revoked and expired ones too, so the
        caller can say why it refuses them."""
        row = await conn.fetchrow(
            f"""SELECT {_COLUMNS}, NULL::timestamptz AS hash_expires_at, now() AS db_now
                  FROM api_keys WHERE key_hash = $1
                UNION ALL
                SELECT {_K_COLUMNS}, r.expires_at, now() FROM api_key_retired_hashes r
                  JOIN api_keys k ON k.id = r.key_id WHERE r.key_hash = $1
                LIMIT 1""",
            key_hash,
        )
        return None if row is None else KeyMatch(_key(row), row["hash_expires_at"], row["db_now"])

    async def touch(self, conn: asyncpg.Connection, *, key_id: UUID) -> None:
        """Record that the key was used now."""
        await conn.execute(
            """INSERT INTO api_key_usage (key_id, last_used_at) VALUES ($1, now())
               ON CONFLICT (key_id) DO UPDATE SET last_used_at = excluded.last_used_at""",
            key_id,
        )

    async def has_live_admin(self, conn: asyncpg.Connection) -> bool:
        found = await conn.fetchval(
            "SELECT 1 FROM api_keys WHERE 'admin' = ANY(scopes) AND revoked_at IS NULL"
        )
        return found is not None

    async def purge_failures(
        self, conn: asyncpg.Connection, *, older_than_days: int, limit: int
    ) -> int:
        """Delete up to `limit` failed-authentication entries (oldest first) written more than
        `older_than_days` days ago. Returns how many went."""
        done = await conn.execute(
            """DELETE FROM auth_failures WHERE id IN (
                   SELECT id FROM auth_failures
                   WHERE created_at < now() - make_interval(days => $1)
                   ORDER BY created_at LIMIT $2)""",
            older_than_days,
            limit,
        )
        return int(done.split()[-1])

    async def record_failure(
        self,
        conn: asyncpg.Connection,
        *,
        reason: AuthFailure,
        key_id: UUID | None,
        prefix: str | None,
        caller: Caller,
    ) -> None:
        """Audit one failed authentication (the key's id or presented prefix, never a secret)."""
        await conn.execute(
            """INSERT INTO auth_failures
                   (reason, api_key_id, key_prefix, client_ip, method, path, correlation_id)
               VALUES ($1, $2, $3, $4::inet, $5, $6, $7)""",
            reason.value,
            key_id,
            prefix,
            caller.ip,
            caller.method,
            caller.path[:512],
            caller.correlation_id or None,
        )
