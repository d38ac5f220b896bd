"""Bank debits and wallets through the real stack: a debit answers 202 `processing` and settles
days later on its customer's clock (a test clock advanced through the API settles it, and the
shards' rounds then reverse its return; every return code and the real-time path are shown in
tests/engine/payments/test_bank_debits.py), bad bank details are a 400 naming the field,
a wallet payment is charged like a card and shows its wallet, and neither an account number
nor a card's expiry is answered or stored outside the vault."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from engine.auth.keys import ApiKeyService, Scope
from tests.factories import Api, payment_body
from tests.serve_app.routes.test_customers import customer_body
from tests.waiting import wait_until

ROUTING = "110000000"
ACCOUNT = "000123456789"
WALLET_TOKENS = ["wtok_mastercard", "wtok_declined"]


def bank(**overrides: Any) -> dict[str, Any]:
    return {
        "type": "bank",
        "routing_number": ROUTING,
        "account_number": ACCOUNT,
        "account_holder_type": "individual",
        **overrides,
    }


async def test_a_bank_debit_answers_processing_and_keeps_no_account_number(
    api: Api, db: asyncpg.Pool
) -> None:
    account = ACCOUNT
    body = payment_body(amount=1500, payment_method=bank(account_number=account))
    response = await api.post("/api/payments/purchase", body, idempotency_key=str(uuid.uuid4()))

    assert response.status_code == 202, response.text
    payment = response.json()["data"]
    assert payment["status"] == "processing"
    assert payment["payment_method"] == {
        "type": "bank",
        "bank_name": "PAYGRID TEST BANK",
        "routing_number": ROUTING,
        "last4": account[-4:],
        "account_holder_type": "individual",
        "fingerprint": payment["payment_method"]["fingerprint"],
    }
    got = await api.get(f"/api/payments/{payment['id']}")
    assert got.json()["data"]["status"] == "processing"
    assert [a["outcome"] for a in got.json()["data"]["attempts"]] == ["review"]
    for answer in (response, got):
        assert account not in answer.text

    tables = await db.fetch(
        "SELECT quote_ident(tablename) AS name FROM pg_tables WHERE schemaname = 'public'"
    )
    for table in tables:
        hits = await db.fetchval(
            f"SELECT count(*) FROM {table['name']} AS r WHERE strpos(to_jsonb(r)::text, $1) > 0",
            account,
        )
        assert hits == 0, table["name"]


BAD_BANK = [
    ("routing checksum", bank(routing_number="110000001"), "payment_method.routing_number"),
    ("routing too short", bank(routing_number="11000000"), "payment_method.routing_number"),
    ("account too short", bank(account_number="123"), "payment_method.account_number"),
    ("account too long", bank(account_number="1" * 18), "payment_method.account_number"),
    ("account letters", bank(account_number="12ab5678"), "payment_method.account_number"),
    ("holder type", bank(account_holder_type="trust"), "payment_method.account_holder_type"),
    ("missing routing", {**bank(), "routing_number": None}, "payment_method.routing_number"),
    (
        "unknown wallet",
        {"type": "wallet", "wallet": "samsung_pay", "token": "wtok_visa"},
        "payment_method.wallet",
    ),
]


@pytest.mark.parametrize(("name", "method", "param"), BAD_BANK, ids=[c[0] for c in BAD_BANK])
async def test_bad_bank_details_are_400_naming_the_field(
    api: Api, name: str, method: dict[str, Any], param: str
) -> None:
    response = await api.post("/api/payments/purchase", payment_body(payment_method=method))

    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param
    assert ACCOUNT not in response.text


async def test_a_bank_account_cannot_be_authorized(api: Api) -> None:
    response = await api.post("/api/payments/authorize", payment_body(payment_method=bank()))

    assert response.status_code == 400
    assert response.json()["error"]["param"] == "payment_method.type"


async def test_a_wallet_payment_is_charged_like_a_card(api: Api) -> None:
    approving, declining = WALLET_TOKENS
    method = {"type": "wallet", "wallet": "google_pay", "token": approving}
    paid = await api.post("/api/payments/purchase", payment_body(payment_method=method))
    declined = await api.post(
        "/api/payments/purchase",
        payment_body(payment_method={**method, "token": declining}),
    )

    assert paid.status_code == 200, paid.text
    summary = paid.json()["data"]["payment_method"]
    assert summary == {
        "type": "wallet",
        "wallet": "google_pay",
        "brand": "mastercard",
        "last4": "4444",
        "fingerprint": summary["fingerprint"],
    }
    assert declined.status_code == 402
    assert declined.json()["error"]["decline_code"] == "generic_decline"
    assert "wtok_" not in paid.text + declined.text


async def test_no_expiry_is_answered_or_stored_for_card_payments(
    api: Api, db: asyncpg.Pool
) -> None:
    paid = await api.purchase(amount=1100)
    auth = await api.authorize(amount=1200)
    answers = [
        await api.get(f"/api/payments/{paid['id']}"),
        await api.get(f"/api/payments/{auth['id']}"),
        await api.get("/api/payments", limit=100),
    ]

    for answer in answers:
        assert answer.status_code == 200
        assert "exp_month" not in answer.text
        assert "exp_year" not in answer.text
    stored = await db.fetch(
        "SELECT payment_method::text AS pm FROM transactions WHERE id = ANY($1::uuid[])",
        [paid["id"], auth["id"]],
    )
    assert [r["pm"] for r in stored if "exp_" in r["pm"]] == []


async def test_the_sandbox_lists_bank_debits_and_wallets(api: Api) -> None:
    listed = (await api.get("/api/payments/methods")).json()["data"]

    assert {m["gateway"]: m["methods"] for m in listed} == {
        "sandbox": ["card", "token", "bank", "wallet"],
        "sandbox_b": ["card", "token", "bank", "wallet"],
    }


DAY = 86_400
JAN_31_2027 = 1_801_396_800  # 2027-01-31T12:00:00Z


@pytest.fixture(scope="module")
async def clock_api(http: httpx.AsyncClient, keys: ApiKeyService) -> Api:
    _, secret = await keys.create(
        name="bank-clocks",
        scopes=frozenset(
            {
                Scope.SUBSCRIPTIONS,
                Scope.CUSTOMERS,
                Scope.PAYMENTS_WRITE,
                Scope.PAYMENTS_READ,
                Scope.WEBHOOKS,
            }
        ),
    )
    return Api(http, secret)


async def test_a_debit_on_a_test_clock_settles_and_is_returned_as_the_clock_advances(
    clock_api: Api,
) -> None:
    api = clock_api
    clock = (await api.post("/api/test-clocks", {"frozen_time": JAN_31_2027})).json()["data"]
    created = await api.post("/api/database/customers", customer_body(test_clock=clock["id"]))
    customer = created.json()["data"]["id"]
    body = payment_body(
        amount=900, customer_id=customer, payment_method=bank(account_number="000333333335")
    )
    debit = await api.post("/api/payments/purchase", body)
    assert debit.status_code == 202, debit.text
    payment_id = debit.json()["data"]["id"]

    async def payment() -> dict[str, Any]:
        answer = await api.get(f"/api/payments/{payment_id}")
        return answer.json()["data"]  # type: ignore[no-any-return]

    moved = await api.post(
        f"/api/test-clocks/{clock['id']}/advance", {"frozen_time": JAN_31_2027 + 3 * DAY + 60}
    )
    assert moved.status_code == 200, moved.text

    async def returned() -> bool:
        return bool((await payment())["status"] == "refunded")

    # Settled by a shard's recovery sweep once the clock passed the settlement, then returned
    # by a later round's return check: both on the clock's time, not the wall's.
    await wait_until(returned, timeout_s=30, what="the debit settled and returned")
    final = await payment()
    assert (final["return_code"], final["amount_refunded"]) == ("R01", 900)
    events = (await api.get("/api/events", object_id=payment_id)).json()["data"]
    assert sorted(e["type"] for e in events) == ["payment.returned", "payment.succeeded"]
