"""SQL of slot ownership. Never commits."""

from __future__ import annotations

import asyncpg

# Raised by paygrid_hold_slots (migration 0004) when a slot moved to another owner.
SLOTS_LOST = "PGS01"


class SlotRepository:
    async def claim(
        self, conn: asyncpg.Connection, *, slots: list[int], owner: str
    ) -> dict[int, int]:
        """In the caller's transaction, take `slots` for `owner`, bumping each slot's epoch (a
        first claim starts at 1); returns slot → the epoch now held. Waits for every open
        transaction that holds one of the slots, so none of the old owner's writes can land
        after this claim."""
        await conn.execute(
            """SELECT pg_advisory_xact_lock(paygrid_slot_lock_space(), s)
               FROM unnest($1::int[]) AS s ORDER BY s""",
            slots,
        )
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

    async def begin_holding(
        self, conn: asyncpg.Connection, *, fences: dict[int, int], owner: str
    ) -> None:
        """Start a transaction that holds `fences` (slot → epoch) for `owner` until it ends, in
        one round trip; raises the driver's error with sqlstate `SLOTS_LOST` if one moved on.
        The values are our own integers and owner name, inlined because a simple query (the
        one that can carry BEGIN too) takes no parameters."""
        slots = ",".join(str(int(s)) for s in fences)
        epochs = ",".join(str(int(e)) for e in fences.values())
        holder = owner.replace("'", "''")
        await conn.execute(
            f"BEGIN; SELECT paygrid_hold_slots('{holder}', '{{{slots}}}', '{{{epochs}}}')"
        )
