"""The keyring: data keys made on first use, wrapped under the master key, unwrapped on
demand; blind indexes; and the re-wrapping that rotates the master key.

Data keys are unwrapped per use, not cached, so a destroyed key is gone at once everywhere.
Only the shared keys of blind indexes are cached (they are never destroyed), and only once
read back committed, never one made inside a transaction that may still roll back. Callers
pass their own connection, so a key made on first use commits or rolls back with the row it
protects.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from uuid import UUID, uuid4

import asyncpg

from engine.config import Settings
from engine.db.database import Database
from engine.errors import CryptoError
from engine.keys.cipher import blind_index, seal, unseal
from engine.keys.master import KEY_BYTES, MasterKey, decode_master_key
from engine.keys.repository import DataKeyRepository, WrappedKey

_INDEX_PURPOSE = "blind_index"


@dataclass(frozen=True, slots=True)
class DataKey:
    """An unwrapped data key: encrypts and decrypts, bound to the associated data given."""

    id: UUID
    secret: bytes = field(repr=False)

    def encrypt(self, plaintext: bytes, *, aad: bytes) -> bytes:
        """`plaintext` sealed under this key (AES-256-GCM), bound to `aad`."""
        return seal(self.secret, plaintext, aad=aad)

    def decrypt(self, sealed: bytes, *, aad: bytes) -> bytes:
        """What `encrypt` sealed with the same `aad`; `CryptoError` otherwise."""
        return unseal(self.secret, sealed, aad=aad)


def _wrapping_aad(key_id: UUID, purpose: str, customer_id: UUID | None) -> bytes:
    # Binds a wrapped key to its row and owner: moved to another row, purpose or customer, it
    # no longer unwraps.
    return f"paygrid/data_keys/{key_id}/{purpose}/{customer_id or '-'}".encode()


class Keyring:
    def __init__(self, master: MasterKey, *, previous: Sequence[MasterKey] = ()) -> None:
        self._master = master
        self._masters = {key.id: key for key in (*previous, master)}
        self._repository = DataKeyRepository()
        self._index_keys: dict[str, bytes] = {}
        self._shared_keys: dict[str, DataKey] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> Keyring:
        """The keyring of `PAYGRID_MASTER_KEY`, still able to unwrap under
        `PAYGRID_MASTER_KEY_PREVIOUS` while a rotation is under way."""
        current = settings.master_key.get_secret_value()
        if not current:
            raise ValueError("PAYGRID_MASTER_KEY is not set (make run keeps one in .data/)")
        previous = settings.master_key_previous.get_secret_value()
        return cls(
            MasterKey(decode_master_key(current)),
            previous=[MasterKey(decode_master_key(previous))] if previous else [],
        )

    @property
    def master_key_id(self) -> str:
        """The id of the master key new data keys are wrapped under."""
        return self._master.id

    async def customer_key(
        self, conn: asyncpg.Connection, *, purpose: str, customer_id: UUID
    ) -> DataKey:
        """The customer's data key for `purpose`, made on first use."""
        key, _ = await self._owned(conn, purpose, customer_id)
        return key

    async def customer_keys(
        self, conn: asyncpg.Connection, *, purpose: str, customer_ids: list[UUID]
    ) -> dict[UUID, DataKey]:
        """Each customer's data key for `purpose`, made on first use: two statements however
        many customers, so a batch pays per batch. A key made here commits or rolls back with
        the caller's transaction (nothing of it is cached)."""
        if not customer_ids:
            return {}
        made = [self._wrap(uuid4(), purpose, c, os.urandom(KEY_BYTES)) for c in set(customer_ids)]
        await self._repository.insert_many(conn, keys=made)
        found = await self._repository.owned_by(
            conn, purpose=purpose, customer_ids=list(set(customer_ids))
        )
        # Ours, or those of an earlier attempt (an idempotent retry) or a concurrent first use.
        assert len(found) == len(made)
        return {c: self._unwrap(k) for c, k in found.items()}

    async def destroy_customer_keys(self, conn: asyncpg.Connection, *, customer_id: UUID) -> int:
        """Destroy every data key of the customer, whatever its purpose: what they sealed can
        no longer be opened by anyone (crypto-shredding). Returns how many were destroyed."""
        return await self._repository.destroy_customer_keys(conn, customer_id=customer_id)

    async def data_key(self, conn: asyncpg.Connection, *, key_id: UUID) -> DataKey:
        """The data key `key_id`, unwrapped."""
        wrapped = await self._repository.get(conn, key_id=key_id)
        if wrapped is None:
            raise CryptoError(f"data key {key_id} does not exist", code="key_unavailable")
        return self._unwrap(wrapped)

    async def data_keys(
        self, conn: asyncpg.Connection, *, key_ids: Sequence[UUID]
    ) -> dict[UUID, DataKey]:
        """`data_key` for many keys, read in one statement (those that do not exist left
        out)."""
        found = await self._repository.get_many(conn, key_ids=list(set(key_ids)))
        return {i: self._unwrap(k) for i, k in found.items()}

    async def shared_key(self, conn: asyncpg.Connection, *, purpose: str) -> DataKey:
        """The data key of `purpose` that belongs to no customer (webhook signing secrets),
        made on first use. Cached once read back committed, as index keys are: it is never
        destroyed, and rotating the master key re-wraps it without changing it."""
        key = self._shared_keys.get(purpose)
        if key is None:
            key, made_now = await self._owned(conn, purpose, None)
            if not made_now:
                self._shared_keys[purpose] = key
        return key

    async def blind_index(self, conn: asyncpg.Connection, *, index: str, value: str) -> bytes:
        """The keyed digest of `value` in the blind index `index` (each index has its own key,
        so digests of one never match another's)."""
        key = self._index_keys.get(index)
        if key is None:
            found, made_now = await self._owned(conn, f"{_INDEX_PURPOSE}.{index}", None)
            key = found.secret
            if not made_now:
                self._index_keys[index] = key
        return blind_index(key, value)

    async def blind_indexes(
        self, conn: asyncpg.Connection, *, index: str, values: list[str]
    ) -> list[bytes]:
        """`blind_index` of each of `values`, the index's key read at most once."""
        if not values:
            return []
        first = await self.blind_index(conn, index=index, value=values[0])
        key = self._index_keys.get(index)
        if key is None:
            # Made in this (uncommitted) transaction, so not cached: read once for the batch.
            found, _ = await self._owned(conn, f"{_INDEX_PURPOSE}.{index}", None)
            key = found.secret
        return [first, *(blind_index(key, v) for v in values[1:])]

    async def rotate_master(self, db: Database, *, batch: int = 500) -> int:
        """Re-wrap every data key still under an earlier master key under the current one, a
        batch per transaction; returns how many moved. Safe beside live traffic and beside
        another rotation (each takes rows the other has not locked). A key under a master key
        this keyring does not hold stops it with `CryptoError`."""
        moved = 0
        while True:
            async with db.transaction() as conn:
                stale = await self._repository.not_under(
                    conn, master_key_id=self._master.id, limit=batch
                )
                if not stale:
                    return moved
                rewrapped = [
                    self._wrap(k.id, k.purpose, k.customer_id, self._unwrap(k).secret)
                    for k in stale
                ]
                await self._repository.rewrap(conn, keys=rewrapped)
            moved += len(stale)

    async def _owned(
        self, conn: asyncpg.Connection, purpose: str, customer_id: UUID | None
    ) -> tuple[DataKey, bool]:
        """The key of `purpose` and `customer_id`, and whether this call made it."""
        found = await self._repository.owned(conn, purpose=purpose, customer_id=customer_id)
        made_now = False
        if found is None:
            made = self._wrap(uuid4(), purpose, customer_id, os.urandom(KEY_BYTES))
            await self._repository.insert(conn, key=made)
            found = await self._repository.owned(conn, purpose=purpose, customer_id=customer_id)
            assert found is not None  # ours, or a concurrent first use's that won
            made_now = found.id == made.id
        return self._unwrap(found), made_now

    def _wrap(
        self, key_id: UUID, purpose: str, customer_id: UUID | None, secret: bytes
    ) -> WrappedKey:
        aad = _wrapping_aad(key_id, purpose, customer_id)
        wrapped = seal(self._master.secret, secret, aad=aad)
        return WrappedKey(key_id, purpose, customer_id, self._master.id, wrapped)

    def _unwrap(self, wrapped: WrappedKey) -> DataKey:
        master = self._masters.get(wrapped.master_key_id)
        if master is None:
            raise CryptoError(
                f"data key {wrapped.id} is wrapped under master key {wrapped.master_key_id}, "
                "which this process does not hold (set PAYGRID_MASTER_KEY_PREVIOUS to it)",
                code="key_unavailable",
            )
        aad = _wrapping_aad(wrapped.id, wrapped.purpose, wrapped.customer_id)
        return DataKey(wrapped.id, unseal(master.secret, wrapped.wrapped, aad=aad))
