"""SQL of `data_keys` (migration 0005). Never commits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from uuid import UUID

import asyncpg

_COLUMNS = "id, purpose, customer_id, master_key_id, wrapped_key"


@dataclass(frozen=True, slots=True)
class WrappedKey:
    """A data key as stored: wrapped under the master key `master_key_id`."""

    id: UUID
    purpose: str
    customer_id: UUID | None
    master_key_id: str
    wrapped: bytes = field(repr=False)


def _key(row: asyncpg.Record) -> WrappedKey:
    return WrappedKey(
        row["id"], row["purpose"], row["customer_id"], row["master_key_id"], row["wrapped_key"]
    )


class DataKeyRepository:
    async def insert(self, conn: asyncpg.Connection, *, key: WrappedKey) -> None:
        """Store `key` unless its purpose and customer already have one (a concurrent first
        use): the caller reads back whichever won."""
        await conn.execute(
            """INSERT INTO data_keys (id, purpose, customer_id, master_key_id, wrapped_key)
               VALUES ($1, $2, $3, $4, $5)
               ON CONFLICT (purpose, customer_id) DO NOTHING""",
            key.id,
            key.purpose,
            key.customer_id,
            key.master_key_id,
            key.wrapped,
        )

    async def insert_many(self, conn: asyncpg.Connection, *, keys: list[WrappedKey]) -> None:
        """`insert` for many keys in one statement."""
        await conn.execute(
            """INSERT INTO data_keys (id, purpose, customer_id, master_key_id, wrapped_key)
               SELECT * FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::text[], $5::bytea[])
               ON CONFLICT (purpose, customer_id) DO NOTHING""",
            [k.id for k in keys],
            [k.purpose for k in keys],
            [k.customer_id for k in keys],
            [k.master_key_id for k in keys],
            [k.wrapped for k in keys],
        )

    async def owned_by(
        self, conn: asyncpg.Connection, *, purpose: str, customer_ids: list[UUID]
    ) -> dict[UUID, WrappedKey]:
        """The keys of `purpose` of each of `customer_ids` that has one, in one statement."""
        rows = await conn.fetch(
            f"""SELECT {_COLUMNS} FROM data_keys
                WHERE purpose = $1 AND customer_id = ANY($2::uuid[])""",
            purpose,
            customer_ids,
        )
        return {r["customer_id"]: _key(r) for r in rows}

    async def destroy_customer_keys(self, conn: asyncpg.Connection, *, customer_id: UUID) -> int:
        """Delete every data key of the customer (crypto-shredding); returns how many."""
        result: str = await conn.execute(
            "DELETE FROM data_keys WHERE customer_id = $1", customer_id
        )
        return int(result.split()[-1])

    async def owned(
        self, conn: asyncpg.Connection, *, purpose: str, customer_id: UUID | None
    ) -> WrappedKey | None:
        """The key of `purpose` for `customer_id` (None: the shared one)."""
        row = await conn.fetchrow(
            f"""SELECT {_COLUMNS} FROM data_keys
                WHERE purpose = $1 AND customer_id IS NOT DISTINCT FROM $2""",
            purpose,
            customer_id,
        )
        return None if row is None else _key(row)

    async def get(self, conn: asyncpg.Connection, *, key_id: UUID) -> WrappedKey | None:
        row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM data_keys WHERE id = $1", key_id)
        return None if row is None else _key(row)

    async def get_many(
        self, conn: asyncpg.Connection, *, key_ids: Sequence[UUID]
    ) -> dict[UUID, WrappedKey]:
        rows = await conn.fetch(
            f"SELECT {_COLUMNS} FROM data_keys WHERE id = ANY($1::uuid[])", list(key_ids)
        )
        return {r["id"]: _key(r) for r in rows}

    async def not_under(
        self, conn: asyncpg.Connection, *, master_key_id: str, limit: int
    ) -> list[WrappedKey]:
        """Up to `limit` keys wrapped under another master key, locked for re-wrapping; rows
        another rotation holds are skipped, not waited for."""
        rows = await conn.fetch(
            f"""SELECT {_COLUMNS} FROM data_keys WHERE master_key_id <> $1
                ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED""",
            master_key_id,
            limit,
        )
        return [_key(r) for r in rows]

    async def rewrap(self, conn: asyncpg.Connection, *, keys: list[WrappedKey]) -> None:
        """Store new wrappings of existing keys, in one statement."""
        await conn.execute(
            """UPDATE data_keys d SET master_key_id = n.master_key_id, wrapped_key = n.wrapped,
                      rewrapped_at = now()
               FROM unnest($1::uuid[], $2::text[], $3::bytea[]) AS n (id, master_key_id, wrapped)
               WHERE d.id = n.id""",
            [k.id for k in keys],
            [k.master_key_id for k in keys],
            [k.wrapped for k in keys],
        )
