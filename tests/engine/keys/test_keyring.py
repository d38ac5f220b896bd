"""The keyring on a real database: a data key per customer and purpose, made once, wrapped under
the master key and bound to its row; blind indexes with their own shared keys; and rotation,
which re-wraps every data key under a new master key and changes no ciphertext."""

from __future__ import annotations

import asyncio
import os
from uuid import uuid4

import asyncpg
import pytest

from engine.db.database import Database
from engine.errors import CryptoError
from engine.keys.cipher import row_binding
from engine.keys.keyring import Keyring
from engine.keys.master import MasterKey
from tests.engine.rows import add_customer


def _master() -> MasterKey:
    return MasterKey(os.urandom(32))


async def test_a_customer_key_is_made_once_and_wrapped(database: Database) -> None:
    master = _master()
    keyring = Keyring(master)
    async with database.transaction() as conn:
        customer = await add_customer(conn)
        first = await keyring.customer_key(conn, purpose="payment_methods", customer_id=customer)
        again = await keyring.customer_key(conn, purpose="payment_methods", customer_id=customer)
        other_purpose = await keyring.customer_key(conn, purpose="pii", customer_id=customer)
        stored = await conn.fetchrow("SELECT * FROM data_keys WHERE id = $1", first.id)
    assert first == again
    assert other_purpose.id != first.id
    assert other_purpose.secret != first.secret
    assert stored["master_key_id"] == master.id
    assert stored["customer_id"] == customer
    assert first.secret not in stored["wrapped_key"]
    # Another process with the same master key reads the same key back.
    async with database.connection() as conn:
        assert await Keyring(master).data_key(conn, key_id=first.id) == first


async def test_concurrent_first_uses_share_one_key(database: Database) -> None:
    keyring = Keyring(_master())
    async with database.connection() as conn:
        customer = await add_customer(conn)

    async def first_use() -> bytes:
        async with database.transaction() as conn:
            key = await keyring.customer_key(conn, purpose="payment_methods", customer_id=customer)
            return key.secret

    secrets = await asyncio.gather(*(first_use() for _ in range(4)))
    assert len(set(secrets)) == 1
    async with database.connection() as conn:
        assert await conn.fetchval("SELECT count(*) FROM data_keys") == 1


async def test_a_wrapped_key_moved_to_another_row_does_not_unwrap(database: Database) -> None:
    keyring = Keyring(_master())
    async with database.transaction() as conn:
        a, b = await add_customer(conn), await add_customer(conn)
        key_a = await keyring.customer_key(conn, purpose="payment_methods", customer_id=a)
        key_b = await keyring.customer_key(conn, purpose="payment_methods", customer_id=b)
        # Give customer b customer a's wrapped key: it is bound to a's row and owner.
        await conn.execute(
            """UPDATE data_keys SET wrapped_key = (SELECT wrapped_key FROM data_keys
                                                   WHERE id = $1) WHERE id = $2""",
            key_a.id,
            key_b.id,
        )
    async with database.connection() as conn:
        with pytest.raises(CryptoError):
            await keyring.data_key(conn, key_id=key_b.id)


async def test_blind_indexes_are_stable_keyed_and_separate(database: Database) -> None:
    master = _master()
    async with database.connection() as conn:
        digest = await Keyring(master).blind_index(conn, index="card", value="4242424242424242")
        # Another process (same master key) finds the same shared index key.
        assert digest == await Keyring(master).blind_index(
            conn, index="card", value="4242424242424242"
        )
        assert digest != await Keyring(master).blind_index(conn, index="card", value="4000")
        assert digest != await Keyring(master).blind_index(
            conn, index="email", value="4242424242424242"
        )
        assert await conn.fetchval("SELECT count(*) FROM data_keys WHERE customer_id IS NULL") == 2


async def test_rotation_rewraps_every_key_and_changes_no_data(database: Database) -> None:
    old, new = _master(), _master()
    before = Keyring(old)
    row = uuid4()
    async with database.transaction() as conn:
        customers = [await add_customer(conn) for _ in range(5)]
        keys = [
            await before.customer_key(conn, purpose="payment_methods", customer_id=c)
            for c in customers
        ]
        sealed = keys[0].encrypt(b"4242424242424242", aad=row_binding("t", "c", row))
        digest = await before.blind_index(conn, index="card", value="4242424242424242")

    # A process that knows only the new key cannot read what the old one wrapped...
    async with database.connection() as conn:
        with pytest.raises(CryptoError) as caught:
            await Keyring(new).data_key(conn, key_id=keys[0].id)
        assert caught.value.code == "key_unavailable"

    # ...until a rotation that holds both re-wraps everything, in batches.
    during = Keyring(new, previous=[old])
    assert await during.rotate_master(database, batch=2) == 6
    assert await during.rotate_master(database) == 0

    after = Keyring(new)
    async with database.connection() as conn:
        ids = await conn.fetch("SELECT DISTINCT master_key_id FROM data_keys")
        assert [r["master_key_id"] for r in ids] == [new.id]
        for key in keys:
            assert await after.data_key(conn, key_id=key.id) == key
        reopened = await after.data_key(conn, key_id=keys[0].id)
        assert reopened.decrypt(sealed, aad=row_binding("t", "c", row)) == b"4242424242424242"
        assert await after.blind_index(conn, index="card", value="4242424242424242") == digest
        with pytest.raises(CryptoError):
            await Keyring(old).data_key(conn, key_id=keys[0].id)


async def test_rotation_stops_at_a_key_it_cannot_unwrap(database: Database) -> None:
    async with database.transaction() as conn:
        customer = await add_customer(conn)
        await Keyring(_master()).customer_key(conn, purpose="pii", customer_id=customer)
    with pytest.raises(CryptoError, match="PAYGRID_MASTER_KEY_PREVIOUS"):
        await Keyring(_master()).rotate_master(database)


async def test_audit_rows_of_data_keys_hold_no_key_material(database: Database) -> None:
    async with database.transaction() as conn:
        customer = await add_customer(conn)
        key = await Keyring(_master()).customer_key(conn, purpose="pii", customer_id=customer)
    async with database.connection() as conn:
        audit = await conn.fetchrow(
            "SELECT new_values FROM audit_logs WHERE entity_type = 'data_keys'"
        )
    assert audit["new_values"]["id"] == str(key.id)
    assert "wrapped_key" not in audit["new_values"]


async def test_the_database_refuses_a_malformed_key_row(database: Database) -> None:
    async with database.connection() as conn:
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute(
                """INSERT INTO data_keys (id, purpose, master_key_id, wrapped_key)
                   VALUES ($1, 'x', '0123456789abcdef', '\\x00')""",
                uuid4(),
            )


async def test_batch_keys_and_indexes_roll_back_with_their_transaction(
    database: Database,
) -> None:
    keyring = Keyring(_master())
    async with database.connection() as conn:
        customers = [await add_customer(conn) for _ in range(3)]

    class Rollback(Exception):
        pass

    made, first = {}, []

    async def made_then_rolled_back() -> None:
        async with database.transaction() as conn:
            made.update(await keyring.customer_keys(conn, purpose="pii", customer_ids=customers))
            first.extend(await keyring.blind_indexes(conn, index="batch", values=["a", "b", "a"]))
            raise Rollback

    with pytest.raises(Rollback):
        await made_then_rolled_back()
    assert first[0] == first[2] != first[1]
    async with database.transaction() as conn:
        assert await conn.fetchval("SELECT count(*) FROM data_keys") == 0
        again = await keyring.customer_keys(conn, purpose="pii", customer_ids=customers)
        second = await keyring.blind_indexes(conn, index="batch", values=["a", "b"])
        # Nothing of the rolled-back keys was kept: new ones, one per customer.
        assert set(again) == set(customers)
        assert {k.id for k in again.values()}.isdisjoint(k.id for k in made.values())
        assert second != first[:2]
        assert await keyring.customer_keys(conn, purpose="pii", customer_ids=customers) == again
        destroyed = await keyring.destroy_customer_keys(conn, customer_id=customers[0])
    assert destroyed == 1
    async with database.connection() as conn:
        with pytest.raises(CryptoError):
            await keyring.data_key(conn, key_id=again[customers[0]].id)
        assert await keyring.data_key(conn, key_id=again[customers[1]].id) == again[customers[1]]
