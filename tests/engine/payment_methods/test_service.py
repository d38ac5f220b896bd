"""The vault on a real database: a saved card is ciphertext at rest, bound to its row and
customer; it opens for a charge of its own customer only, and never once detached."""

from __future__ import annotations

import os
from uuid import UUID, uuid4

import pytest
from redis.asyncio import Redis

from engine.cards import CardDetails, CardToken
from engine.db.database import Database
from engine.errors import (
    CardDeclined,
    CryptoError,
    InternalError,
    InvalidRequest,
    NotFound,
    StateError,
)
from engine.gateways.base import GatewayResult, VerifyRequest
from engine.gateways.sandbox import SandboxGateway
from engine.keys.keyring import Keyring
from engine.keys.master import MasterKey
from engine.payment_methods.models import NewCard, NewToken, PaymentMethod
from engine.payment_methods.service import PaymentMethodService
from engine.payment_methods.states import PaymentMethodStatus
from engine.payments.commands import RequestContext
from engine.principal import Principal
from schema.api.payment_method_ids import parse_payment_method_id
from tests.engine.rows import add_customer

VISA = "4242424242424242"
HOLDER = "Zephyrine Quillfeather"
API_KEY = uuid4()
WHO = Principal(API_KEY, "req-vault")
CTX = RequestContext(API_KEY, "req-vault")


@pytest.fixture
def vault(database: Database) -> PaymentMethodService:
    return PaymentMethodService(database, Keyring(MasterKey(os.urandom(32))), idempotency_ttl_h=24)


async def _attach(
    vault: PaymentMethodService, method: NewCard | NewToken, customer_id: UUID
) -> PaymentMethod:
    result = await vault.attach(method, customer_id=customer_id, ctx=CTX)
    assert result.status_code == 200, result.body
    return await vault.get(parse_payment_method_id(result.body["id"]))


async def _customer(database: Database) -> UUID:
    async with database.connection() as conn:
        return await add_customer(conn)


async def test_a_saved_card_is_ciphertext_at_rest(
    vault: PaymentMethodService, database: Database
) -> None:
    customer = await _customer(database)
    saved = await _attach(vault, NewCard(VISA, 12, 2034, HOLDER), customer)
    assert (saved.type, saved.brand, saved.last4) == ("card", "visa", "4242")
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
    first = await _attach(vault, NewCard(VISA, 12, 2034), a)
    same = await _attach(vault, NewCard(VISA, 1, 2030), b)
    other = await _attach(vault, NewCard("5555555555554444", 12, 2034), a)
    assert first.fingerprint == same.fingerprint != other.fingerprint
    assert VISA not in first.fingerprint


async def test_a_saved_method_opens_for_its_own_customer_only(
    vault: PaymentMethodService, database: Database
) -> None:
    owner, stranger = await _customer(database), await _customer(database)
    card = await _attach(vault, NewCard(VISA, 12, 2034, HOLDER), owner)
    token = await _attach(vault, NewToken("tok_mastercard"), owner)
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
    kept = await _attach(vault, NewCard(VISA, 12, 2034), customer)
    gone = await _attach(vault, NewToken("tok_visa"), customer)
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
    a = await _attach(vault, NewCard(VISA, 12, 2034), owner)
    b = await _attach(vault, NewCard("5555555555554444", 12, 2034), owner)
    async with database.connection() as conn:
        await conn.execute(
            """UPDATE payment_methods SET ciphertext = (SELECT ciphertext FROM payment_methods
                                                        WHERE id = $1) WHERE id = $2""",
            a.id,
            b.id,
        )
        with_moved_owner = await _attach(vault, NewToken("tok_visa"), owner)
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
    saved = [await _attach(vault, NewToken("tok_visa"), customer) for _ in range(3)]
    first, more = await vault.page(customer, limit=2, starting_after=None)
    assert more
    rest, more = await vault.page(customer, limit=2, starting_after=first[-1].id)
    assert not more
    assert [m.id for m in first + rest] == [m.id for m in reversed(saved)]
    with pytest.raises(NotFound) as unknown:
        await _attach(vault, NewToken("tok_visa"), uuid4())
    assert unknown.value.param == "customer_id"
    with pytest.raises(NotFound):
        await vault.page(uuid4(), limit=10, starting_after=None)
    with pytest.raises(InvalidRequest) as bad_token:
        await _attach(vault, NewToken("tok_nonesuch"), customer)
    assert bad_token.value.param == "token"
    with pytest.raises(NotFound):
        await vault.get(uuid4())
    with pytest.raises(NotFound):
        await vault.detach(uuid4(), WHO)


async def test_an_idempotency_key_saves_once_and_replays(
    vault: PaymentMethodService, database: Database
) -> None:
    customer = await _customer(database)
    card = NewCard(VISA, 12, 2034)
    ctx = RequestContext(API_KEY, "req-1", "save-card-1", b"hash-of-the-request")
    first = await vault.attach(card, customer_id=customer, ctx=ctx)
    again = await vault.attach(card, customer_id=customer, ctx=ctx)
    assert (first.status_code, first.replayed) == (200, False)
    assert (again.status_code, again.replayed, again.body) == (200, True, first.body)
    other = RequestContext(API_KEY, "req-2", "save-card-1", b"another request")
    reused = await vault.attach(card, customer_id=customer, ctx=other)
    assert reused.status_code == 422
    assert reused.body["code"] == "idempotency_key_reused"
    without_key = await vault.attach(card, customer_id=customer, ctx=CTX)
    assert without_key.body["id"] != first.body["id"]
    async with database.connection() as conn:
        assert await conn.fetchval("SELECT count(*) FROM payment_methods") == 2


class _Verifying(SandboxGateway):
    """The sandbox, noting which cards it was asked to verify."""

    def __init__(self, redis: Redis) -> None:
        super().__init__(redis)
        self.verified: list[CardDetails] = []

    async def verify(self, request: VerifyRequest) -> GatewayResult:
        self.verified.append(request.card)
        return await super().verify(request)


async def test_a_card_with_a_cvc_is_verified_once_and_the_cvc_dropped(
    database: Database, redis: Redis
) -> None:
    gateway = _Verifying(redis)
    vault = PaymentMethodService(
        database, Keyring(MasterKey(os.urandom(32))), idempotency_ttl_h=24, gateway=gateway
    )
    customer = await _customer(database)
    saved = await _attach(vault, NewCard(VISA, 12, 2034, HOLDER, cvc="731"), customer)
    assert [(c.number, c.cvc) for c in gateway.verified] == [(VISA, "731")]
    opened = await vault.charge_source(saved.id, customer)
    assert isinstance(opened, CardDetails)
    assert opened.cvc is None  # charged later as a card on file
    await _attach(vault, NewCard(VISA, 12, 2034), customer)
    assert len(gateway.verified) == 1  # no CVC given: nothing to verify

    before = await vault.page(customer, limit=10, starting_after=None)
    for number, code, param in (
        ("4000000000000127", "incorrect_cvc", "cvc"),
        ("4000000000000002", "generic_decline", "number"),
    ):
        with pytest.raises(CardDeclined) as declined:
            await vault.attach(NewCard(number, 12, 2034, cvc="731"), customer_id=customer, ctx=CTX)
        assert (declined.value.decline_code, declined.value.param) == (code, param)
    assert await vault.page(customer, limit=10, starting_after=None) == before


async def test_a_vault_without_a_gateway_refuses_to_skip_the_check(
    vault: PaymentMethodService, database: Database
) -> None:
    customer = await _customer(database)
    with pytest.raises(InternalError):
        await vault.attach(NewCard(VISA, 12, 2034, cvc="731"), customer_id=customer, ctx=CTX)
