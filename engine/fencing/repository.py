"""SQL of slot ownership. Never commits."""

from __future__ import annotations

import asyncpg


class SlotRepository:
    async def claim(
        self, conn: asyncpg.Connection, *, slots: list[int], owner: str
    ) -> dict[int, int]:
        """Take `slots` for `owner`, bumping each slot's epoch (a first claim starts at 1);
        returns slot → the epoch now held. Waits for any open transaction of the previous owner
        that checked the slot, so none of its writes can land after this claim."""
        rows = await conn.fetch(
            """INSERT INTO shard_slots (slot, owner, epoch)
               SELECT s, $2, 1 FROM unnest($1::int[]) AS s
               ON CONFLICT (slot) DO UPDATE
                   SET owner = EXCLUDED.owner, epoch = shard_slots.epoch + 1, claimed_at = now()
               RETURNING slot, epoch""",
            slots,
            owner,
        )
        return {r["slot"]: r["epoch"] for r in rows}

    async def held(
        self, conn: asyncpg.Connection, *, fences: dict[int, int], owner: str
    ) -> set[int]:
        """Of the (slot, epoch) pairs in `fences`, the slots `owner` still holds at that epoch,
        share-locked until the caller's transaction ends (a claim by someone else waits)."""
        rows = await conn.fetch(
            """SELECT s.slot FROM shard_slots s
               JOIN unnest($1::int[], $2::bigint[]) AS f(slot, epoch)
                 ON f.slot = s.slot AND f.epoch = s.epoch
               WHERE s.owner = $3
               FOR SHARE OF s""",
            list(fences),
            list(fences.values()),
            owner,
        )
        return {r["slot"] for r in rows}
