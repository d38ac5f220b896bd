"""SQL of customers (migrations 0001, 0007, 0014). Never commits; never reads or
writes PII in clear, except `clear_rows`, which reads what an earlier release left to seal it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from engine.customers.models import Consent, NewCustomer, Profile, SealedProfile
from engine.principal import Principal


@dataclass(frozen=True, slots=True)
class CustomerRow:
    """A customers row: its sealed profile (`data_key_id`, `ciphertext`), or neither once
    erased (`erased_at`)."""

    id: UUID
    data_key_id: UUID | None
    ciphertext: bytes | None
    consent: Consent | None
    metadata: dict[str, str]
    test_clock_id: UUID | None
    created_at: datetime
    erased_at: datetime | None


_ROW_COLUMNS = """id, data_key_id, ciphertext, consent_version, consent_at, metadata,
    test_clock_id, created_at, erased_at"""


def _row(row: asyncpg.Record) -> CustomerRow:
    consent = (
        None
        if row["consent_version"] is None
        else Consent(row["consent_version"], row["consent_at"])
    )
    return CustomerRow(
        id=row["id"],
        data_key_id=row["data_key_id"],
        ciphertext=row["ciphertext"],
        consent=consent,
        metadata=row["metadata"],
        test_clock_id=row["test_clock_id"],
        created_at=row["created_at"],
        erased_at=row["erased_at"],
    )


class CustomerRepository:
    async def insert_sealed(
        self,
        conn: asyncpg.Connection,
        *,
        customer_id: UUID,
        sealed: SealedProfile,
        consent: Consent,
        metadata: dict[str, str],
        test_clock_id: UUID | None,
        principal: Principal,
    ) -> CustomerRow:
        """Create a customer whose PII is sealed; no column holds it in clear."""
        row = await conn.fetchrow(
            f"""INSERT INTO customers (id, data_key_id, ciphertext, email_index, consent_version,
                    consent_at, metadata, test_clock_id, api_key_id, correlation_id)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                RETURNING {_ROW_COLUMNS}""",
            customer_id,
            sealed.data_key_id,
            sealed.ciphertext,
            sealed.email_index,
            consent.version,
            consent.accepted_at,
            metadata,
            test_clock_id,
            principal.api_key_id,
            principal.correlation_id,
        )
        return _row(row)

    async def get(
        self, conn: asyncpg.Connection, *, customer_id: UUID, lock: bool = False
    ) -> CustomerRow | None:
        """The customer's row; `lock` takes it FOR UPDATE (a change of its profile)."""
        row = await conn.fetchrow(
            f"SELECT {_ROW_COLUMNS} FROM customers WHERE id = $1" + (" FOR UPDATE" if lock else ""),
            customer_id,
        )
        return None if row is None else _row(row)

    async def page_by_email(
        self,
        conn: asyncpg.Connection,
        *,
        email_index: bytes,
        limit: int,
        starting_after: UUID | None,
    ) -> tuple[list[CustomerRow], bool]:
        """Customers whose email has this blind index, newest first, and whether more follow.
        Erased customers have no index, so they never match."""
        rows = await conn.fetch(
            f"""SELECT {_ROW_COLUMNS} FROM customers
                WHERE email_index = $1
                  AND ($3::uuid IS NULL OR (created_at, id) < (
                        SELECT created_at, id FROM customers WHERE id = $3))
                ORDER BY created_at DESC, id DESC LIMIT $2""",
            email_index,
            limit + 1,
            starting_after,
        )
        return [_row(r) for r in rows[:limit]], len(rows) > limit

    async def update_profile(
        self,
        conn: asyncpg.Connection,
        *,
        customer_id: UUID,
        sealed: SealedProfile,
        principal: Principal,
    ) -> CustomerRow:
        """Store a rectified profile (sealed again) and its email's new index."""
        row = await conn.fetchrow(
            f"""UPDATE customers SET ciphertext = $2, email_index = $3, updated_at = now(),
                    api_key_id = $4, correlation_id = $5
                WHERE id = $1 AND erased_at IS NULL RETURNING {_ROW_COLUMNS}""",
            customer_id,
            sealed.ciphertext,
            sealed.email_index,
            principal.api_key_id,
            principal.correlation_id,
        )
        assert row is not None, "the caller holds the row's lock and saw it sealed"
        return _row(row)

    async def erase(
        self, conn: asyncpg.Connection, *, customer_id: UUID, principal: Principal
    ) -> CustomerRow:
        """Drop the customer's profile, email index and metadata; its id and dates stay, for
        the financial rows that name it."""
        row = await conn.fetchrow(
            f"""UPDATE customers SET ciphertext = NULL, data_key_id = NULL, email_index = NULL,
                    metadata = '{{}}'::jsonb, erased_at = now(), updated_at = now(),
                    api_key_id = $2, correlation_id = $3
                WHERE id = $1 RETURNING {_ROW_COLUMNS}""",
            customer_id,
            principal.api_key_id,
            principal.correlation_id,
        )
        return _row(row)

    async def erasure_blockers(
        self, conn: asyncpg.Connection, *, customer_id: UUID
    ) -> tuple[bool, bool]:
        """Whether the customer has a subscription not ended (cancelled or failed), and a
        payment or operation still `processing`."""
        row = await conn.fetchrow(
            """SELECT EXISTS (SELECT 1 FROM subscriptions WHERE customer_id = $1
                              AND status NOT IN ('cancelled', 'failed')) AS subscribed,
                      EXISTS (SELECT 1 FROM transactions WHERE customer_id = $1
                              AND status = 'processing') AS in_flight""",
            customer_id,
        )
        return bool(row["subscribed"]), bool(row["in_flight"])

    async def clear_rows(self, conn: asyncpg.Connection, *, limit: int) -> dict[UUID, Profile]:
        """Up to `limit` customers an earlier release left with PII in clear, locked for
        sealing (rows another sealer holds are skipped)."""
        rows = await conn.fetch(
            """SELECT id, email, first_name, last_name, phone, address FROM customers
               WHERE ciphertext IS NULL AND erased_at IS NULL
               ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED""",
            limit,
        )
        return {
            r["id"]: Profile(r["email"], r["first_name"], r["last_name"], r["phone"], r["address"])
            for r in rows
        }

    async def store_sealed(
        self, conn: asyncpg.Connection, *, sealed: dict[UUID, SealedProfile]
    ) -> None:
        """Replace clear PII by its sealed form, for many customers in one statement."""
        await conn.execute(
            """UPDATE customers c SET email = NULL, first_name = NULL, last_name = NULL,
                      phone = NULL, address = NULL, data_key_id = s.key_id,
                      ciphertext = s.ciphertext, email_index = s.email_index, updated_at = now()
               FROM unnest($1::uuid[], $2::uuid[], $3::bytea[], $4::bytea[])
                    AS s (id, key_id, ciphertext, email_index)
               WHERE c.id = s.id""",
            list(sealed),
            [s.data_key_id for s in sealed.values()],
            [s.ciphertext for s in sealed.values()],
            [s.email_index for s in sealed.values()],
        )

    async def validate_sealed(self, conn: asyncpg.Connection) -> None:
        """Validate `pii_sealed_or_erased` (migration 0014) if it is not yet: from then on the
        database has checked every row, old ones included."""
        validated = await conn.fetchval(
            "SELECT convalidated FROM pg_constraint WHERE conname = 'pii_sealed_or_erased'"
        )
        if not validated:
            await conn.execute("ALTER TABLE customers VALIDATE CONSTRAINT pii_sealed_or_erased")

    async def test_clock_of(self, conn: asyncpg.Connection, *, customer_id: UUID) -> UUID | None:
        """The test clock the customer lives on, if any."""
        clock: UUID | None = await conn.fetchval(
            "SELECT test_clock_id FROM customers WHERE id = $1", customer_id
        )
        return clock

    async def insert_many(
        self,
        conn: asyncpg.Connection,
        *,
        customers: list[tuple[NewCustomer, Principal]],
        sealed: dict[UUID, SealedProfile],
    ) -> None:
        """Create customers, their profiles sealed (`sealed`, by customer id), in one
        statement; a repeat of an id (an idempotent retry) is a no-op."""
        if not customers:
            return
        await conn.execute(
            """INSERT INTO customers (id, data_key_id, ciphertext, email_index, metadata,
                    api_key_id, correlation_id)
               SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::bytea[], $4::bytea[],
                                    $5::jsonb[], $6::uuid[], $7::text[])
               ON CONFLICT (id) DO NOTHING""",
            [c.id for c, _ in customers],
            [sealed[c.id].data_key_id for c, _ in customers],
            [sealed[c.id].ciphertext for c, _ in customers],
            [sealed[c.id].email_index for c, _ in customers],
            [c.metadata for c, _ in customers],
            [a.api_key_id for _, a in customers],
            [a.correlation_id for _, a in customers],
        )

    async def existing(self, conn: asyncpg.Connection, *, customer_ids: list[UUID]) -> set[UUID]:
        """Which of `customer_ids` exist."""
        rows = await conn.fetch("SELECT id FROM customers WHERE id = ANY($1::uuid[])", customer_ids)
        return {r["id"] for r in rows}
