"""The vault on a real database: a saved card is ciphertext at rest, bound to its row and
customer; it opens for a charge of its own customer only, and never once detached."""

from __future__ import annotations

import os
from uuid import UUID, uuid4

import pytest

from engine.cards import CardDetails, CardToken
from engine.db.database import Database
from engine.errors import CryptoError, InvalidRequest, NotFound, StateError
from engine.keys.keyring import Keyring
from engine.keys.master import MasterKey
from engine.payment_methods.models import NewCard, NewToken
from engine.payment_methods.service import PaymentMethodService
from engine.payment_methods.states import PaymentMethodStatus
from engine.principal import Principal
from tests.engine.rows import add_customer

VISA = "4242424242424242"
HOLDER = "Zephyrine Quillfeather"
WHO = Principal(uuid4(), "req-vault")


@pytest.fixture
def vault(database: Database) -> PaymentMethodService:
    return PaymentMethodService(database, Keyring(MasterKey(os.urandom(32))))


async def _customer(database: Database) -> UUID:
    async with database.connection() as conn:
        return await add_customer(conn)


async def test_a_saved_card_is_ciphertext_at_rest(
    vault: PaymentMethodService, database: Database
) -> None:
    customer = await _customer(database)
    saved = await vault.attach(NewCard(VISA, 12, 2034, HOLDER), customer_id=customer, principal=WHO)
    assert (saved.type, saved.brand, saved.last4, saved.exp_month, saved.exp_year) == (
        "card",
        "visa",
        "4242",
        12,
        2034,
    )
    assert saved.status is PaymentMethodStatus.ATTACHED
    public = saved.public()
    assert public["id"].startswith("pm_")
    assert set(public) == {
        "id",
        "object",
        "type",
        "status",
        "brand",
        "last4",
        "exp_month",
        "exp_year",
        "fingerprint",
        "customer_id",
        "created_at",
        "detached_at",
    }
    async with database.connection() as conn:
        row = await conn.fetchrow("SELECT * FROM payment_methods WHERE id = $1", saved.id)
        audit = await conn.fetchrow(
            "SELECT new_values FROM audit_logs WHERE entity_id = $1", saved.id
        )
        event = await conn.fetchrow(
            "SELECT event_type, payload FROM events WHERE object_id = $1", saved.id
        )
    for clear in (VISA.encode(), HOLDER.encode(), b"424242424242"):
        assert clear not in row["ciphertext"]
    assert "ciphertext" not in audit["new_values"]
    assert audit["new_values"]["api_key_id"] == str(WHO.api_key_id)
    assert event["event_type"] == "payment_method.attached"
    assert event["payload"] == public
    assert VISA not in str(event["payload"])


async def test_the_fingerprint_matches_the_same_card_only(
    vault: PaymentMethodService, database: Database
) -> None:
    a, b = await _customer(database), await _customer(database)
    first = await vault.attach(NewCard(VISA, 12, 2034), customer_id=a, principal=WHO)
    same = await vault.attach(NewCard(VISA, 1, 2030), customer_id=b, principal=WHO)
    other = await vault.attach(NewCard("5555555555554444", 12, 2034), customer_id=a, principal=WHO)
    assert first.fingerprint == same.fingerprint != other.fingerprint
    assert VISA not in first.fingerprint


async def test_a_saved_method_opens_for_its_own_customer_only(
    vault: PaymentMethodService, database: Database
) -> None:
    owner, stranger = await _customer(database), await _customer(database)
    card = await vault.attach(NewCard(VISA, 12, 2034, HOLDER), customer_id=owner, principal=WHO)
    token = await vault.attach(NewToken("tok_mastercard"), customer_id=owner, principal=WHO)
    assert token.brand == "mastercard"
    assert token.last4 == "4444"

    opened = await vault.charge_source(card.id, owner)
    assert opened == CardDetails(VISA, 12, 2034)
    assert VISA not in repr(opened)
    assert await vault.charge_source(token.id, owner) == CardToken("tok_mastercard")
    for customer in (stranger, None):
        with pytest.raises(StateError) as refused:
            await vault.charge_source(card.id, customer)
        assert refused.value.code == "payment_method_customer_mismatch"
        assert refused.value.param == "payment_method.id"
    with pytest.raises(NotFound) as missing:
        await vault.charge_source(uuid4(), owner)
    assert missing.value.param == "payment_method.id"


async def test_a_detached_method_holds_nothing_and_cannot_be_charged(
    vault: PaymentMethodService, database: Database
) -> None:
    customer = await _customer(database)
    kept = await vault.attach(NewCard(VISA, 12, 2034), customer_id=customer, principal=WHO)
    gone = await vault.attach(NewToken("tok_visa"), customer_id=customer, principal=WHO)
    detached = await vault.detach(gone.id, WHO)
    assert detached.status is PaymentMethodStatus.DETACHED
    assert detached.detached_at is not None
    assert await vault.detach(gone.id, WHO) == detached  # again: no change, no second event
    with pytest.raises(StateError) as refused:
        await vault.charge_source(gone.id, customer)
    assert refused.value.code == "payment_method_detached"
    async with database.connection() as conn:
        row = await conn.fetchrow(
            "SELECT ciphertext, data_key_id FROM payment_methods WHERE id = $1", gone.id
        )
        events = await conn.fetch(
            "SELECT event_type FROM events WHERE object_id = $1 ORDER BY created_at", gone.id
        )
    assert (row["ciphertext"], row["data_key_id"]) == (None, None)
    assert [e["event_type"] for e in events] == [
        "payment_method.attached",
        "payment_method.detached",
    ]
    listed, more = await vault.page(customer, limit=10, starting_after=None)
    assert [m.id for m in listed] == [kept.id]
    assert not more
    assert (await vault.get(gone.id)).status is PaymentMethodStatus.DETACHED


async def test_a_ciphertext_moved_to_another_row_or_customer_does_not_open(
    vault: PaymentMethodService, database: Database
) -> None:
    owner, other = await _customer(database), await _customer(database)
    a = await vault.attach(NewCard(VISA, 12, 2034), customer_id=owner, principal=WHO)
    b = await vault.attach(NewCard("5555555555554444", 12, 2034), customer_id=owner, principal=WHO)
    async with database.connection() as conn:
        await conn.execute(
            """UPDATE payment_methods SET ciphertext = (SELECT ciphertext FROM payment_methods
                                                        WHERE id = $1) WHERE id = $2""",
            a.id,
            b.id,
        )
        with_moved_owner = await vault.attach(
            NewToken("tok_visa"), customer_id=owner, principal=WHO
        )
        await conn.execute(
            "UPDATE payment_methods SET customer_id = $1 WHERE id = $2", other, with_moved_owner.id
        )
    with pytest.raises(CryptoError):
        await vault.charge_source(b.id, owner)
    with pytest.raises(CryptoError):
        await vault.charge_source(with_moved_owner.id, other)


async def test_pages_unknown_customers_and_tokens(
    vault: PaymentMethodService, database: Database
) -> None:
    customer = await _customer(database)
    saved = [
        await vault.attach(NewToken("tok_visa"), customer_id=customer, principal=WHO)
        for _ in range(3)
    ]
    first, more = await vault.page(customer, limit=2, starting_after=None)
    assert more
    rest, more = await vault.page(customer, limit=2, starting_after=first[-1].id)
    assert not more
    assert [m.id for m in first + rest] == [m.id for m in reversed(saved)]
    with pytest.raises(NotFound) as unknown:
        await vault.attach(NewToken("tok_visa"), customer_id=uuid4(), principal=WHO)
    assert unknown.value.param == "customer_id"
    with pytest.raises(NotFound):
        await vault.page(uuid4(), limit=10, starting_after=None)
    with pytest.raises(InvalidRequest) as bad_token:
        await vault.attach(NewToken("tok_nonesuch"), customer_id=customer, principal=WHO)
    assert bad_token.value.param == "token"
    with pytest.raises(NotFound):
        await vault.get(uuid4())
    with pytest.raises(NotFound):
        await vault.detach(uuid4(), WHO)
