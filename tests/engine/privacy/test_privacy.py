"""Privacy by construction, end to end on the engine: customers made both ways (the customers
API and inline by a purchase), saved cards with holder names, purchases, an order and a refund
leave no readable PII in any column of any table or in any log line; the export holds all of
it; erasure destroys the keys (a copy of the ciphertext no longer opens), leaves nothing to
read, keeps every amount, and is refused while a subscription or a payment is live."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import pytest

from engine.customers.models import Consent, CustomerRecord, Profile
from engine.customers.service import CustomerService
from engine.db.database import Database
from engine.errors import CryptoError, NotFound, StillInUse
from engine.keys.keyring import Keyring
from engine.payment_methods.models import NewCard
from engine.payment_methods.service import PaymentMethodService
from engine.payments import intake
from engine.payments.states import TransactionType
from engine.principal import Principal
from engine.privacy.service import PrivacyService
from schema.api.payment_method_ids import parse_payment_method_id
from schema.api.payments import PaymentCreate
from tests.engine.payments.builders import MAX_AMOUNT, VISA
from tests.engine.payments.harness import Rig
from tests.engine.payments.test_batches import add_order
from tests.engine.rows import add_transaction
from tests.pii_scan import readable

WHO = Principal(uuid4(), "req-privacy")
CONSENT = Consent("terms-2026-11", datetime(2026, 11, 1, tzinfo=UTC))
API_PROFILE = Profile(
    "Perpetua.Quennell@example.org",
    "Perpetua",
    "Quennell",
    "+44 20 7946 0123",
    {"line1": "3 Wickerbrook Row", "city": "Saltmarsh", "country": "GB"},
)
INLINE_EMAIL = "balthazar.inchcombe@example.net"
INLINE: dict[str, Any] = {
    "email": INLINE_EMAIL,
    "first_name": "Balthazar",
    "last_name": "Inchcombe",
    "phone": "+1 555 0199 321",
    "address": {"line1": "88 Quernstone Ave", "city": "Harrowgate", "country": "US"},
}
HOLDERS = ("Perpetua Q Cardholder", "Balthazar Inchcombe-Holder")
NEEDLES = [
    API_PROFILE.email,
    "Perpetua",
    "Quennell",
    "7946 0123",
    "Wickerbrook",
    INLINE_EMAIL,
    "Balthazar",
    "Inchcombe",
    "0199 321",
    "Quernstone",
    *HOLDERS,
]


@dataclass
class World:
    rig: Rig
    customers: CustomerService
    privacy: PrivacyService
    methods: PaymentMethodService
    keyring: Keyring


@pytest.fixture
async def world(rig: Rig, database: Database) -> World:
    # The shard's keyring and this one share the master key (engine_settings), as the API
    # replicas and the shards of one deployment do.
    keyring = Keyring.from_settings(rig.settings)
    return World(
        rig,
        CustomerService(database, keyring),
        PrivacyService(database, keyring),
        PaymentMethodService(database, keyring, idempotency_ttl_h=24),
        keyring,
    )


async def _purchase(w: World, body: dict[str, Any]) -> dict[str, Any]:
    ctx = w.rig.requests.context("/api/payments/purchase", body, None)
    command = intake.create_payment(
        PaymentCreate.model_validate(body), TransactionType.PURCHASE, ctx, max_amount=MAX_AMOUNT
    )
    result = await w.rig.one(command)
    assert result.status_code == 200, result.body
    return result.body


def _card_body() -> dict[str, Any]:
    return {"type": "card", "number": VISA, "exp_month": 12, "exp_year": 2034, "cvc": "123"}


async def _save_card(w: World, customer_id: UUID, holder: str) -> dict[str, Any]:
    ctx = w.rig.requests.context("/api/payment-methods", {"holder": "x"}, None)
    saved = await w.methods.attach(
        NewCard(VISA, 12, 2034, holder), customer_id=customer_id, ctx=ctx
    )
    assert saved.status_code == 200, saved.body
    return saved.body


async def _totals(db: Database, customer_id: UUID) -> tuple[Any, ...]:
    async with db.connection() as conn:
        row = await conn.fetchrow(
            """SELECT count(*), sum(amount), sum(amount_captured), sum(amount_refunded),
                      (SELECT sum(amount) FROM ledger_entries WHERE customer_id = $1) AS ledger,
                      array_agg(payment_method ->> 'last4') AS last4s
               FROM transactions WHERE customer_id = $1""",
            customer_id,
        )
    return tuple(row)


async def test_no_pii_readable_anywhere_export_holds_all_and_erasure_shreds(
    world: World, database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    w = world
    caplog.set_level(logging.DEBUG)
    # A customer made through the customers API, and one made inline by a batch of purchases.
    api = await w.customers.create(CustomerRecord(API_PROFILE, CONSENT, {"tier": "gold"}), WHO)
    inline_paid = await _purchase(
        w, {"amount": 700, "currency": "USD", "payment_method": _card_body(), "customer": INLINE}
    )
    inline_id = UUID(inline_paid["customer_id"])
    method = await _save_card(w, api.id, HOLDERS[0])
    await _save_card(w, inline_id, HOLDERS[1])
    order_id = await add_order(database, api.id)
    paid = [
        await _purchase(
            w,
            {
                "amount": amount,
                "currency": "USD",
                "payment_method": _card_body(),
                "customer_id": str(api.id),
                **extra,
            },
        )
        for amount, extra in ((1500, {"order_id": str(order_id)}), (2500, {}))
    ]
    refund = await w.rig.one(w.rig.requests.refund(paid[1], 500))
    assert refund.status_code == 200, refund.body

    async with database.connection() as conn:
        assert await readable(conn, NEEDLES) == []
    # The inline customer is sealed like any other: it reads back and is found by email.
    inline = await w.customers.get(inline_id, WHO)
    assert inline.profile is not None
    assert (inline.profile.first_name, inline.profile.address) == ("Balthazar", INLINE["address"])
    found, _ = await w.customers.find_by_email(INLINE_EMAIL.upper(), WHO)
    assert [c.id for c in found] == [inline_id]

    export = await w.privacy.export(api.id, WHO)
    assert export["erased"] is False
    assert export["customer"]["email"] == API_PROFILE.email
    assert export["customer"]["consent"]["version"] == CONSENT.version
    assert [o["id"] for o in export["orders"]] == [str(order_id)]
    payment_ids = {str(p["id"]) for p in paid}
    roots = {t["id"] for t in export["transactions"] if t["parent_id"] is None}
    assert roots == payment_ids
    assert [r["amount"] for r in export["refunds"]] == [500]
    [card] = export["payment_methods"]
    assert (card["id"], card["last4"], card["brand"]) == (str(method["id"]), "4242", "visa")
    assert {
        t["payment_method"]["last4"] for t in export["transactions"] if t["parent_id"] is None
    } == {"4242"}
    event_types = {(e["type"], e["object_id"]) for e in export["events"]}
    assert {("payment.succeeded", p) for p in payment_ids} <= event_types
    assert ("payment.refunded", str(paid[1]["id"])) in event_types
    attached = [e["data"]["id"] for e in export["events"] if e["type"] == "payment_method.attached"]
    assert attached == [method["id"]]
    assert (export["subscriptions"], export["invoices"]) == ([], [])
    assert HOLDERS[0] not in str(export)

    before = {c: await _totals(database, c) for c in (api.id, inline_id)}
    async with database.connection() as conn:
        key_id, ciphertext = await conn.fetchrow(
            "SELECT data_key_id, ciphertext FROM customers WHERE id = $1", api.id
        )
    eraser = Principal(uuid4(), "req-erase")
    erased = await w.privacy.erase(api.id, eraser)
    assert (erased.profile, erased.erased_at is not None) == (None, True)
    assert erased.public()["erased"] is True
    assert await w.privacy.erase(api.id, eraser) == erased  # idempotent
    await w.privacy.erase(inline_id, eraser)

    # A copy of the ciphertext (a backup, say) no longer opens: its key is gone.
    assert ciphertext is not None
    async with database.connection() as conn:
        with pytest.raises(CryptoError):
            await w.keyring.data_key(conn, key_id=key_id)
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM data_keys WHERE customer_id = ANY($1::uuid[])",
                [api.id, inline_id],
            )
            == 0
        )
        assert await readable(conn, NEEDLES) == []
        methods = await conn.fetch(
            "SELECT status, last4, ciphertext FROM payment_methods WHERE customer_id = $1", api.id
        )
        audit = await conn.fetch(
            "SELECT action, new_values FROM audit_logs WHERE entity_id = $1 AND action = 'ERASE'",
            api.id,
        )
        events = await conn.fetch(
            "SELECT payload FROM events WHERE object_id = $1 AND event_type = 'customer.erased'",
            api.id,
        )
    assert [(m["status"], m["last4"], m["ciphertext"]) for m in methods] == [
        ("detached", "4242", None)
    ]
    assert [a["new_values"]["data_keys_destroyed"] for a in audit] == [2]
    assert [e["payload"]["erased"] for e in events] == [True]
    async with database.connection() as conn:
        detached = await conn.fetch(
            "SELECT payload FROM events WHERE event_type = 'payment_method.detached'"
        )
    assert [e["payload"]["id"] for e in detached if e["payload"]["customer_id"] == str(api.id)] == [
        method["id"]
    ]
    assert {c: await _totals(database, c) for c in (api.id, inline_id)} == before

    # Everywhere it reads as erased: detail, lookup, export; a rectification is refused.
    again = await w.customers.get(api.id, WHO)
    assert (again.profile, again.public()["email"], again.public()["erased"]) == (None, None, True)
    assert await w.customers.find_by_email(API_PROFILE.email, WHO) == ([], False)
    after = await w.privacy.export(api.id, WHO)
    assert (after["erased"], after["customer"]["first_name"]) == (True, None)
    assert {t["id"] for t in after["transactions"] if t["parent_id"] is None} == payment_ids
    assert NEEDLES[0] not in str(after)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert [n for n in NEEDLES if n.lower() in logged.lower()] == []


async def test_exports_and_reads_are_audited(world: World, database: Database) -> None:
    created = await world.customers.create(CustomerRecord(API_PROFILE, CONSENT), WHO)
    exporter = Principal(uuid4(), "req-export")
    await world.privacy.export(created.id, exporter)
    async with database.connection() as conn:
        [row] = await conn.fetch(
            "SELECT * FROM audit_logs WHERE entity_id = $1 AND action = 'EXPORT'", created.id
        )
    assert (row["api_key_id"], row["correlation_id"]) == (exporter.api_key_id, "req-export")
    with pytest.raises(NotFound):
        await world.privacy.export(uuid4(), WHO)
    with pytest.raises(NotFound):
        await world.privacy.erase(uuid4(), WHO)


async def test_erasure_refused_while_a_payment_is_processing_or_a_subscription_lives(
    world: World, database: Database
) -> None:
    busy = await world.customers.create(CustomerRecord(API_PROFILE, CONSENT), WHO)
    async with database.connection() as conn:
        payment = await add_transaction(conn, busy.id, status="processing")
    with pytest.raises(StillInUse) as refused:
        await world.privacy.erase(busy.id, WHO)
    assert (refused.value.code, refused.value.http_status) == ("payment_in_flight", 409)
    async with database.connection() as conn:
        await conn.execute("UPDATE transactions SET status = 'failed' WHERE id = $1", payment)

    method = await _save_card(world, busy.id, HOLDERS[0])
    async with database.connection() as conn:
        subscription = await conn.fetchval(
            """INSERT INTO subscriptions (id, customer_id, amount, currency, interval,
                   interval_count, quantity, status, payment_method_id, billing_anchor,
                   period_index, current_period_start, current_period_end, owner_api_key_id,
                   next_run_at)
               VALUES (gen_random_uuid(), $1, 1000, 'USD', 'month', 1, 1, 'active', $2, now(),
                       0, now(), now() + interval '1 month', gen_random_uuid(),
                       now() + interval '1 month')
               RETURNING id""",
            busy.id,
            parse_payment_method_id(method["id"]),
        )
    with pytest.raises(StillInUse) as refused:
        await world.privacy.erase(busy.id, WHO)
    assert refused.value.code == "customer_has_active_subscription"
    assert (await world.customers.get(busy.id, WHO)).profile == API_PROFILE
    async with database.connection() as conn:
        await conn.execute(
            """UPDATE subscriptions SET status = 'cancelled', cancelled_at = now(),
                   next_run_at = NULL WHERE id = $1""",
            subscription,
        )
    erased = await world.privacy.erase(busy.id, WHO)
    assert erased.profile is None
    export = await world.privacy.export(busy.id, WHO)
    assert [s["id"] for s in export["subscriptions"]] == [str(subscription)]
