"""SQL for gateway attempts (`gateway_attempts`, migration 0023). Keyword-only methods; never
commits: attempts are written in the transaction that settles what they were for."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from engine.gateways.attempts import Attempt
from schema.states import AttemptOutcome, GatewayRequestKind


class AttemptRepository:
    async def insert_many(self, conn: asyncpg.Connection, *, attempts: list[Attempt]) -> None:
        """Record `attempts`, one statement for any number, none for none."""
        if not attempts:
            return
        await conn.execute(
            """INSERT INTO gateway_attempts (payment_id, reference, gateway, kind, outcome,
                   latency_ms, gateway_transaction_id, decline_code)
               SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[],
                                    $6::int[], $7::text[], $8::text[])""",
            [a.payment_id for a in attempts],
            [a.reference for a in attempts],
            [a.gateway for a in attempts],
            [a.kind.value for a in attempts],
            [a.outcome.value for a in attempts],
            [a.latency_ms for a in attempts],
            [a.gateway_transaction_id for a in attempts],
            [a.decline_code for a in attempts],
        )

    async def of_payment(self, conn: asyncpg.Connection, *, payment_id: UUID) -> list[Attempt]:
        """The payment's attempts, oldest first."""
        rows = await conn.fetch(
            """SELECT payment_id, reference, gateway, kind, outcome, latency_ms,
                      gateway_transaction_id, decline_code, created_at
               FROM gateway_attempts WHERE payment_id = $1 ORDER BY id""",
            payment_id,
        )
        return [
            Attempt(
                payment_id=r["payment_id"],
                reference=r["reference"],
                gateway=r["gateway"],
                kind=GatewayRequestKind(r["kind"]),
                outcome=AttemptOutcome(r["outcome"]),
                latency_ms=r["latency_ms"],
                gateway_transaction_id=r["gateway_transaction_id"],
                decline_code=r["decline_code"],
                created_at=r["created_at"],
            )
            for r in rows
        ]
