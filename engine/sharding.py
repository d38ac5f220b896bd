"""Which ledger shard owns a customer: customer → one of `SLOTS` fixed virtual slots → shard.

The slot is the low bits of the customer id (UUID bits are uniform, and unlike Python's salted
`hash()` the same in every process and release); migration 0004 derives the same slot for every
money row. Slots are dealt to shards round-robin, so a change of shard count moves slots, never
customers between slots, and each slot's owner is fenced in PostgreSQL (`engine/fencing`).
"""

from __future__ import annotations

from uuid import UUID

SLOTS = 1024


def slot_of(customer_id: UUID) -> int:
    """The customer's virtual slot."""
    return customer_id.int % SLOTS


def shard_of(customer_id: UUID, shards: int) -> int:
    """The index of the shard that owns the customer when there are `shards` shards."""
    return slot_of(customer_id) % shards


def slots_of(index: int, shards: int) -> list[int]:
    """The slots shard `index` of `shards` owns."""
    if not 0 <= index < shards:
        raise ValueError(f"no shard {index} of {shards}")
    return list(range(index, SLOTS, shards))
