"""Sealing and opening customer profiles: the one place customer PII is encrypted.

A profile (email, names, phone, address) is sealed as one AES-256-GCM ciphertext under the
customer's own `customer_pii` data key, bound to its row; its email is also kept as a keyed
blind index (`customer_email`, of the lower-cased address), so a lookup by email matches
without any column holding the address. The customers API and the ledger shard's inline
creation both seal here, a batch at a time: two statements for the keys of any number of
customers, none for the index once its key is cached.

Rows an earlier release wrote in clear are sealed by `seal_clear_rows`, which `paygrid migrate`
and start-up run after the migrations (migration 0014 cannot: the master key never reaches the
database).
"""

from __future__ import annotations

import logging
from uuid import UUID

import asyncpg
import orjson

from engine.customers.models import Profile, SealedProfile
from engine.customers.repository import CustomerRepository, CustomerRow
from engine.db.database import Database
from engine.keys.cipher import row_binding
from engine.keys.keyring import DataKey, Keyring

KEY_PURPOSE = "customer_pii"
EMAIL_INDEX = "customer_email"
_TABLE = "customers"

log = logging.getLogger("paygrid.customers")


def normalized_email(email: str) -> str:
    """The form an email is indexed in: addresses differing only in case are one customer's."""
    return email.strip().lower()


def _aad(customer_id: UUID) -> bytes:
    return row_binding(_TABLE, "ciphertext", customer_id)


class ProfileSealer:
    def __init__(self, keyring: Keyring) -> None:
        self._keyring = keyring

    async def seal(
        self, conn: asyncpg.Connection, profiles: dict[UUID, Profile]
    ) -> dict[UUID, SealedProfile]:
        """Each customer's profile sealed under its data key (made now if it has none), in a
        fixed number of statements however many customers."""
        if not profiles:
            return {}
        keys = await self._keyring.customer_keys(
            conn, purpose=KEY_PURPOSE, customer_ids=list(profiles)
        )
        ids = list(profiles)
        indexes = await self._keyring.blind_indexes(
            conn, index=EMAIL_INDEX, values=[normalized_email(profiles[c].email) for c in ids]
        )
        pairs = zip(ids, indexes, strict=True)
        return {c: _sealed(keys[c], c, profiles[c], index) for c, index in pairs}

    async def reseal(
        self, conn: asyncpg.Connection, row: CustomerRow, profile: Profile
    ) -> SealedProfile:
        """`profile` sealed again under the key that sealed `row` (a rectification)."""
        assert row.data_key_id is not None
        key = await self._keyring.data_key(conn, key_id=row.data_key_id)
        [index] = await self._keyring.blind_indexes(
            conn, index=EMAIL_INDEX, values=[normalized_email(profile.email)]
        )
        return _sealed(key, row.id, profile, index)

    async def email_index(self, conn: asyncpg.Connection, email: str) -> bytes:
        """The blind index an email is looked up by."""
        [index] = await self._keyring.blind_indexes(
            conn, index=EMAIL_INDEX, values=[normalized_email(email)]
        )
        return index

    async def open(self, conn: asyncpg.Connection, row: CustomerRow) -> Profile | None:
        """The profile sealed in `row`; None for an erased customer."""
        if row.data_key_id is None or row.ciphertext is None:
            return None
        key = await self._keyring.data_key(conn, key_id=row.data_key_id)
        return Profile.from_sealed_form(orjson.loads(key.decrypt(row.ciphertext, aad=_aad(row.id))))


def _sealed(key: DataKey, customer_id: UUID, profile: Profile, index: bytes) -> SealedProfile:
    ciphertext = key.encrypt(orjson.dumps(profile.sealed_form()), aad=_aad(customer_id))
    return SealedProfile(key.id, ciphertext, index)


async def seal_clear_rows(db: Database, keyring: Keyring, *, batch: int = 500) -> int:
    """Seal every customer an earlier release left with PII in clear, a batch per transaction,
    then validate migration 0014's constraint so the database refuses clear PII for good.
    Returns how many were sealed; safe to run again (and beside live traffic)."""
    repository = CustomerRepository()
    sealer = ProfileSealer(keyring)
    sealed = 0
    while True:
        async with db.transaction() as conn:
            clear = await repository.clear_rows(conn, limit=batch)
            if not clear:
                break
            done = await sealer.seal(conn, clear)
            await repository.store_sealed(conn, sealed=done)
        sealed += len(clear)
    async with db.transaction() as conn:
        await repository.validate_sealed(conn)
    if sealed:
        log.info("sealed %d customer profile(s) left in clear by an earlier release", sealed)
    return sealed
