"""SQL of `payment_methods`, the vault (migration 0005). Never commits."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import asyncpg

from engine.cards import CardSummary
from engine.payment_methods.models import MethodType, PaymentMethod, SealedMethod
from engine.payment_methods.states import PaymentMethodStatus
from engine.principal import Principal

_COLUMNS = """id, customer_id, type, status, brand, last4, fingerprint, created_at, detached_at"""
# A card saved before migration 0025 kept its expiry in these columns, until resealed.
_SEALED = f"{_COLUMNS}, data_key_id, ciphertext, exp_month, exp_year"


def _method(row: asyncpg.Record) -> PaymentMethod:
    return PaymentMethod(
        id=row["id"],
        customer_id=row["customer_id"],
        type=row["type"],
        status=PaymentMethodStatus(row["status"]),
        brand=row["brand"],
        last4=row["last4"],
        fingerprint=row["fingerprint"],
        created_at=row["created_at"],
        detached_at=row["detached_at"],
    )


def _sealed(row: asyncpg.Record) -> SealedMethod:
    legacy = None if row["exp_month"] is None else (row["exp_month"], row["exp_year"])
    return SealedMethod(_method(row), row["data_key_id"], row["ciphertext"], legacy)


class PaymentMethodRepository:
    async def insert(
        self,
        conn: asyncpg.Connection,
        *,
        method_id: UUID,
        customer_id: UUID,
        method_type: MethodType,
        card: CardSummary,
        fingerprint: str,
        data_key_id: UUID,
        ciphertext: bytes,
        principal: Principal,
    ) -> PaymentMethod:
        row = await conn.fetchrow(
            f"""INSERT INTO payment_methods (id, customer_id, type, brand, last4, fingerprint,
                    data_key_id, ciphertext, api_key_id, correlation_id)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                RETURNING {_COLUMNS}""",
            method_id,
            customer_id,
            method_type,
            card.brand,
            card.last4,
            fingerprint,
            data_key_id,
            ciphertext,
            principal.api_key_id,
            principal.correlation_id,
        )
        return _method(row)

    async def get(self, conn: asyncpg.Connection, *, method_id: UUID) -> PaymentMethod | None:
        row = await conn.fetchrow(
            f"SELECT {_COLUMNS} FROM payment_methods WHERE id = $1", method_id
        )
        return None if row is None else _method(row)

    async def sealed(self, conn: asyncpg.Connection, *, method_id: UUID) -> SealedMethod | None:
        """The method with its data key id and ciphertext (both None once detached)."""
        row = await conn.fetchrow(f"SELECT {_SEALED} FROM payment_methods WHERE id = $1", method_id)
        return None if row is None else _sealed(row)

    async def sealed_many(
        self, conn: asyncpg.Connection, *, method_ids: Sequence[UUID]
    ) -> dict[UUID, SealedMethod]:
        """`sealed` for many methods, in one statement (those that do not exist left out)."""
        rows = await conn.fetch(
            f"SELECT {_SEALED} FROM payment_methods WHERE id = ANY($1::uuid[])", list(method_ids)
        )
        return {r["id"]: _sealed(r) for r in rows}

    async def page(
        self,
        conn: asyncpg.Connection,
        *,
        customer_id: UUID,
        limit: int,
        starting_after: UUID | None,
    ) -> tuple[list[PaymentMethod], bool]:
        """A customer's attached methods, newest first, and whether more follow."""
        rows = await conn.fetch(
            f"""SELECT {_COLUMNS} FROM payment_methods
                WHERE customer_id = $1 AND status = 'attached'
                  AND ($3::uuid IS NULL OR (created_at, id) < (
                        SELECT created_at, id FROM payment_methods WHERE id = $3))
                ORDER BY created_at DESC, id DESC LIMIT $2""",
            customer_id,
            limit + 1,
            starting_after,
        )
        return [_method(r) for r in rows[:limit]], len(rows) > limit

    async def detach(
        self, conn: asyncpg.Connection, *, method_id: UUID, principal: Principal
    ) -> PaymentMethod | None:
        """Detach an attached method, dropping its ciphertext; None if it is not attached."""
        row = await conn.fetchrow(
            f"""UPDATE payment_methods
                SET status = 'detached', ciphertext = NULL, data_key_id = NULL,
                    detached_at = now(), updated_at = now(),
                    api_key_id = $2, correlation_id = $3
                WHERE id = $1 AND status = 'attached'
                RETURNING {_COLUMNS}""",
            method_id,
            principal.api_key_id,
            principal.correlation_id,
        )
        return None if row is None else _method(row)

    async def detach_all(
        self, conn: asyncpg.Connection, *, customer_id: UUID, principal: Principal
    ) -> list[PaymentMethod]:
        """Detach every attached method of the customer in one statement (an erasure: their
        ciphertext goes before the key that sealed it)."""
        rows = await conn.fetch(
            f"""UPDATE payment_methods
                SET status = 'detached', ciphertext = NULL, data_key_id = NULL,
                    detached_at = now(), updated_at = now(),
                    api_key_id = $2, correlation_id = $3
                WHERE customer_id = $1 AND status = 'attached'
                RETURNING {_COLUMNS}""",
            customer_id,
            principal.api_key_id,
            principal.correlation_id,
        )
        return [_method(r) for r in rows]

    async def all_of(self, conn: asyncpg.Connection, *, customer_id: UUID) -> list[PaymentMethod]:
        """Every method the customer ever saved, attached or detached, oldest first."""
        rows = await conn.fetch(
            f"""SELECT {_COLUMNS} FROM payment_methods WHERE customer_id = $1
                ORDER BY created_at, id""",
            customer_id,
        )
        return [_method(r) for r in rows]

    async def with_clear_expiry(
        self, conn: asyncpg.Connection, *, limit: int
    ) -> list[SealedMethod]:
        """Attached methods saved before migration 0025 whose expiry is still in clear, locked
        (skipping those another reseal holds)."""
        rows = await conn.fetch(
            f"""SELECT {_SEALED} FROM payment_methods
                WHERE exp_month IS NOT NULL AND status = 'attached'
                ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED""",
            limit,
        )
        return [_sealed(r) for r in rows]

    async def reseal(self, conn: asyncpg.Connection, *, method_id: UUID, ciphertext: bytes) -> None:
        """Replace a method's ciphertext (now holding its expiry) and clear the expiry
        columns."""
        await conn.execute(
            """UPDATE payment_methods SET ciphertext = $2, exp_month = NULL, exp_year = NULL
               WHERE id = $1 AND status = 'attached'""",
            method_id,
            ciphertext,
        )
