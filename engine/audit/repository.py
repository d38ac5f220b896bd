"""SQL of `audit_logs` entries written by the application (migrations 0001, 0014). Never
commits. Row changes are audited by the database's trigger; what no trigger sees (a read of a
customer's PII, an export, an erasure) is written here, in the transaction of the read, so
nothing is shown that was not audited. Entries name what was read, never its values.
Entries older than the retention period go in bounded chunks (`engine/scheduler/retention.py`)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg

from engine.principal import Principal
from schema.states import AuditAction


class AuditRepository:
    async def record(
        self,
        conn: asyncpg.Connection,
        *,
        entity_type: str,
        entity_ids: list[UUID],
        action: AuditAction,
        details: dict[str, Any],
        principal: Principal,
    ) -> None:
        """One entry per entity, all in one statement; `details` (no PII) says what was done."""
        if not entity_ids:
            return
        await conn.execute(
            """INSERT INTO audit_logs (entity_type, entity_id, action, new_values, api_key_id,
                    correlation_id)
               SELECT $1, e, $3, $4, $5, $6 FROM unnest($2::uuid[]) AS e""",
            entity_type,
            entity_ids,
            action.value,
            details,
            principal.api_key_id,
            principal.correlation_id,
        )

    async def strip_expiry(self, conn: asyncpg.Connection, *, method_ids: list[UUID]) -> None:
        """Remove card expiry dates from the audit rows of these saved payment methods (the
        expiry lives only sealed in the vault; rows written before migration 0025, and the
        reseal that cleared the columns, quote it)."""
        if not method_ids:
            return
        await conn.execute(
            """UPDATE audit_logs
               SET old_values = old_values - ARRAY['exp_month', 'exp_year'],
                   new_values = new_values - ARRAY['exp_month', 'exp_year']
               WHERE entity_type = 'payment_methods' AND entity_id = ANY($1::uuid[])""",
            method_ids,
        )

    async def purge(self, conn: asyncpg.Connection, *, older_than_days: int, limit: int) -> int:
        """Delete up to `limit` entries (oldest first) written more than `older_than_days` days
        ago. Returns how many went."""
        done = await conn.execute(
            """DELETE FROM audit_logs WHERE id IN (
                   SELECT id FROM audit_logs
                   WHERE created_at < now() - make_interval(days => $1)
                   ORDER BY created_at LIMIT $2)""",
            older_than_days,
            limit,
        )
        return int(done.split()[-1])
