"""An Idempotency-Key around a write that runs in one transaction in the API replica (saving a
payment method, creating an order), in the same `idempotency_keys` records the ledger shards
use: the key is claimed and answered inside the transaction that makes the write, so a retry
after a lost answer replays it instead of writing twice, the same key with another request is
refused (422 `idempotency_error`), and a write that rolls back frees its key with it.
"""

from __future__ import annotations

from uuid import UUID

import asyncpg

from engine.idempotency.repository import Answer, Claim, IdempotencyRepository
from engine.payments.commands import CommandResult, RequestContext
from engine.payments.results import held_result


class IdempotencyGuard:
    def __init__(self, *, ttl_h: int) -> None:
        self._ttl_h = ttl_h
        self._records = IdempotencyRepository()

    async def claim(
        self, conn: asyncpg.Connection, ctx: RequestContext, *, resource_id: UUID
    ) -> CommandResult | None:
        """Hold the request's key (if it carries one) for `resource_id`; None when the request
        goes ahead, else what it answers instead (the first answer, or a refusal)."""
        if ctx.idempotency_key is None:
            return None
        claim = Claim(ctx.api_key_id, ctx.idempotency_key, ctx.request_hash, resource_id)
        held = await self._records.claim_many(conn, claims=[claim], ttl_h=self._ttl_h)
        if held:
            return held_result(next(iter(held.values())), ctx.request_hash)
        return None

    async def answer(
        self, conn: asyncpg.Connection, ctx: RequestContext, result: CommandResult
    ) -> CommandResult:
        """Store `result` under the request's key (if any), for every repeat; returns it."""
        if ctx.idempotency_key is not None:
            answer = Answer(ctx.api_key_id, ctx.idempotency_key, result.status_code, result.body)
            await self._records.complete_many(conn, answers=[answer])
        return result
