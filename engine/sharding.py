"""Which ledger shard owns a customer: a stable hash, the same in every process and release."""

from __future__ import annotations

from uuid import UUID


def shard_of(customer_id: UUID, shards: int) -> int:
    """Python's hash() is salted per process; the UUID's own bits are stable and uniform."""
    return customer_id.int % shards
