"""SQL of `payment_methods`, the vault (migration 0005). Never commits."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import asyncpg

from engine.cards import CardSummary
from engine.payment_methods.models import MethodType, PaymentMethod, SealedMethod
from engine.payment_methods.states import PaymentMethodStatus
from engine.principal import Principal

_COLUMNS = """id, customer_id, type, status, brand, last4, exp_month, exp_year, fingerprint,
    created_at, detached_at"""


def _method(row: asyncpg.Record) -> PaymentMethod:
    return PaymentMethod(
        id=row["id"],
        customer_id=row["customer_id"],
        type=row["type"],
        status=PaymentMethodStatus(row["status"]),
        brand=row["brand"],
        last4=row["last4"],
        exp_month=row["exp_month"],
        exp_year=row["exp_year"],
        fingerprint=row["fingerprint"],
        created_at=row["created_at"],
        detached_at=row["detached_at"],
    )


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
            f"""INSERT INTO payment_methods (id, customer_id, type, brand, last4, exp_month,
                    exp_year, fingerprint, data_key_id, ciphertext, api_key_id, correlation_id)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
                RETURNING {_COLUMNS}""",
            method_id,
            customer_id,
            method_type,
            card.brand,
            card.last4,
            card.exp_month,
            card.exp_year,
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
        row = await conn.fetchrow(
            f"""SELECT {_COLUMNS}, data_key_id, ciphertext FROM payment_methods
                WHERE id = $1""",
            method_id,
        )
        return (
            None
            if row is None
            else SealedMethod(_method(row), row["data_key_id"], row["ciphertext"])
        )

    async def sealed_many(
        self, conn: asyncpg.Connection, *, method_ids: Sequence[UUID]
    ) -> dict[UUID, SealedMethod]:
        """`sealed` for many methods, in one statement (those that do not exist left out)."""
        rows = await conn.fetch(
            f"""SELECT {_COLUMNS}, data_key_id, ciphertext FROM payment_methods
                WHERE id = ANY($1::uuid[])""",
            list(method_ids),
        )
        return {r["id"]: SealedMethod(_method(r), r["data_key_id"], r["ciphertext"]) for r in rows}

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
