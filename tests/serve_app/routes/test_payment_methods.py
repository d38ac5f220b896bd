"""Saved payment methods through the real stack: save, list, retrieve, detach; bad input named;
a purchase or authorization paid with a saved method moves the ledger, and a method of another
customer or a detached one is refused before any money moves. The card number never comes back
(and `tests/test_pci_scan.py` finds it nowhere in the database afterwards)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from engine.auth.keys import ApiKeyService, Scope
from schema.api.payment_method_ids import parse_payment_method_id
from tests.factories import VISA, Api, card, card_on_file, payment_body

# Appears nowhere but inside ciphertext: the PCI scan looks for it in every column.
HOLDER = "Zephyrine Quillfeather"
PUBLIC_FIELDS = {
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


async def _customer(api: Api) -> str:
    return str((await api.purchase(amount=100))["customer_id"])


def _saved_card(customer_id: str, number: str = VISA, **overrides: Any) -> dict[str, Any]:
    return {**card(number), "customer_id": customer_id, "holder_name": HOLDER, **overrides}


async def _save(api: Api, body: dict[str, Any]) -> dict[str, Any]:
    response = await api.post("/api/payment-methods", body)
    assert response.status_code == 200, response.text
    return response.json()["data"]  # type: ignore[no-any-return]


async def _delete(api: Api, method_id: str) -> httpx.Response:
    return await api.http.delete(f"/api/payment-methods/{method_id}", headers=api.headers())


def _pay(customer_id: str | None, method_id: str, amount: int = 1500) -> dict[str, Any]:
    body = payment_body(amount, customer_id=customer_id)
    body["payment_method"] = {"id": method_id}
    return body


async def test_save_list_retrieve_and_detach(api: Api) -> None:
    customer = await _customer(api)
    saved = await _save(api, _saved_card(customer))
    assert set(saved) == PUBLIC_FIELDS
    assert saved["id"].startswith("pm_")
    assert (saved["type"], saved["brand"], saved["last4"], saved["status"]) == (
        "card",
        "visa",
        "4242",
        "attached",
    )
    assert saved["customer_id"] == customer
    token = await _save(api, {"type": "token", "token": "tok_amex", "customer_id": customer})
    assert (token["type"], token["brand"], token["last4"]) == ("token", "amex", "0005")

    got = await api.get(f"/api/payment-methods/{saved['id']}")
    assert got.status_code == 200
    assert got.json()["data"] == saved
    listed = await api.get(f"/api/customers/{customer}/payment-methods")
    assert [m["id"] for m in listed.json()["data"]] == [token["id"], saved["id"]]
    page = await api.get(f"/api/customers/{customer}/payment-methods", limit=1)
    assert page.json()["has_more"] is True
    rest = await api.get(f"/api/customers/{customer}/payment-methods", starting_after=token["id"])
    assert [m["id"] for m in rest.json()["data"]] == [saved["id"]]

    detached = await _delete(api, saved["id"])
    assert detached.status_code == 200
    assert detached.json()["data"]["status"] == "detached"
    assert detached.json()["data"]["detached_at"] is not None
    again = await _delete(api, saved["id"])
    assert again.status_code == 200
    assert again.json()["data"] == detached.json()["data"]
    listed = await api.get(f"/api/customers/{customer}/payment-methods")
    assert [m["id"] for m in listed.json()["data"]] == [token["id"]]

    events = await api.get("/api/events", object_id=str(parse_payment_method_id(saved["id"])))
    assert [e["type"] for e in events.json()["data"]] == [
        "payment_method.detached",
        "payment_method.attached",
    ]
    for text in (saved, token, listed.text, detached.text):
        assert VISA not in str(text)
        assert HOLDER not in str(text)


async def test_an_idempotency_key_saves_the_card_once(api: Api) -> None:
    customer = await _customer(api)
    key = f"save-{uuid.uuid4()}"
    first = await api.post("/api/payment-methods", _saved_card(customer), key)
    again = await api.post("/api/payment-methods", _saved_card(customer), key)
    assert first.status_code == again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["data"] == first.json()["data"]
    other = await api.post("/api/payment-methods", _saved_card(customer, exp_month=1), key)
    assert other.status_code == 422
    assert other.json()["error"]["type"] == "idempotency_error"
    listed = await api.get(f"/api/customers/{customer}/payment-methods")
    assert [m["id"] for m in listed.json()["data"]] == [first.json()["data"]["id"]]


def _attach_cases() -> list[tuple[str, dict[str, Any], str]]:
    cid = str(uuid.uuid4())
    return [
        ("bad Luhn", _saved_card(cid, "4242424242424241"), "number"),
        ("expired", _saved_card(cid, exp_year=2020), "exp_year"),
        ("month 13", _saved_card(cid, exp_month=13), "exp_month"),
        ("bad cvc", _saved_card(cid, cvc="1"), "cvc"),
        (
            "no customer",
            {k: v for k, v in _saved_card(cid).items() if k != "customer_id"},
            "customer_id",
        ),
        ("customer not a uuid", _saved_card("nope"), "customer_id"),
        ("holder name too long", _saved_card(cid, holder_name="x" * 201), "holder_name"),
        ("unknown field", _saved_card(cid, nickname="x"), "nickname"),
        ("unknown type", {"type": "iban", "customer_id": cid}, "type"),
        ("no type", {"customer_id": cid}, "type"),
        ("bad token", {"type": "token", "token": "visa", "customer_id": cid}, "token"),
    ]


@pytest.mark.parametrize(("case", "body", "param"), _attach_cases())
async def test_bad_input_is_400_naming_the_field(
    api: Api, case: str, body: dict[str, Any], param: str
) -> None:
    response = await api.post("/api/payment-methods", body)
    assert response.status_code == 400, (case, response.text)
    assert response.json()["error"]["param"] == param, case
    assert "4242424242424241" not in response.text


async def test_unknown_things_are_404_and_malformed_ids_400(api: Api) -> None:
    customer = await _customer(api)
    unknown_customer = await api.post("/api/payment-methods", _saved_card(str(uuid.uuid4())))
    assert unknown_customer.status_code == 404
    assert unknown_customer.json()["error"]["param"] == "customer_id"
    unknown_token = await api.post(
        "/api/payment-methods", {"type": "token", "token": "tok_nonesuch", "customer_id": customer}
    )
    assert unknown_token.status_code == 400
    assert unknown_token.json()["error"]["param"] == "token"
    nobody = await api.get(f"/api/customers/{uuid.uuid4()}/payment-methods")
    assert nobody.status_code == 404

    missing = "pm_" + "a" * 26
    assert (await api.get(f"/api/payment-methods/{missing}")).status_code == 404
    assert (await _delete(api, missing)).status_code == 404
    for malformed in ("pm_nope", "4242424242424242", "pm_" + "A" * 26):
        response = await api.get(f"/api/payment-methods/{malformed}")
        assert response.status_code == 400, malformed
        assert response.json()["error"]["param"] == "payment_method_id"


async def test_saving_needs_payments_write(api: Api, keys: ApiKeyService) -> None:
    customer = await _customer(api)
    _, reader = await keys.create(name="vault-reader", scopes=frozenset({Scope.PAYMENTS_READ}))
    refused = await api.http.post(
        "/api/payment-methods",
        json=_saved_card(customer),
        headers={"Authorization": f"Bearer {reader}"},
    )
    assert refused.status_code == 403


async def test_paying_with_a_saved_method_moves_the_ledger(api: Api) -> None:
    customer = await _customer(api)
    saved = await _save(api, _saved_card(customer, "5555555555554444"))
    token = await _save(api, {"type": "token", "token": "tok_visa", "customer_id": customer})

    paid = await api.post("/api/payments/purchase", _pay(customer, saved["id"], 1500))
    assert paid.status_code == 200, paid.text
    payment = paid.json()["data"]
    assert payment["status"] == "succeeded"
    assert payment["payment_method"]["last4"] == "4444"
    assert "5555555555554444" not in paid.text

    held = await api.post("/api/payments/authorize", _pay(customer, token["id"], 700))
    assert held.status_code == 200, held.text
    assert held.json()["data"]["status"] == "authorized"

    ledger = (await api.get(f"/api/customers/{customer}/ledger")).json()["data"]
    [usd] = ledger["balances"]
    assert (usd["captured"], usd["held"]) == (100 + 1500, 700)


async def test_a_card_given_with_a_cvc_is_verified_before_it_is_saved(api: Api) -> None:
    customer = await _customer(api)
    bad_cvc = await api.post("/api/payment-methods", _saved_card(customer, "4000000000000127"))
    assert bad_cvc.status_code == 402, bad_cvc.text
    error = bad_cvc.json()["error"]
    assert (error["type"], error["decline_code"], error["param"]) == (
        "card_error",
        "incorrect_cvc",
        "cvc",
    )
    declined = await api.post("/api/payment-methods", _saved_card(customer, "4000000000000002"))
    assert declined.status_code == 402
    assert declined.json()["error"]["decline_code"] == "generic_decline"
    listed = await api.get(f"/api/customers/{customer}/payment-methods")
    assert listed.json()["data"] == []  # a failed verification saves nothing
    assert (await api.post("/api/payment-methods", _saved_card(customer))).status_code == 200


async def test_a_saved_declining_card_declines(api: Api) -> None:
    customer = await _customer(api)
    # Saved without a CVC (a card on file, not verified): its charges decline.
    on_file = card_on_file("4000000000000002")
    saved = await _save(api, {**on_file, "customer_id": customer, "holder_name": HOLDER})
    declined = await api.post("/api/payments/purchase", _pay(customer, saved["id"]))
    assert declined.status_code == 402
    assert declined.json()["error"]["decline_code"] == "generic_decline"


async def test_another_customers_or_a_detached_method_is_refused(api: Api) -> None:
    owner, stranger = await _customer(api), await _customer(api)
    saved = await _save(api, _saved_card(owner))

    theirs = await api.post("/api/payments/purchase", _pay(stranger, saved["id"]))
    assert theirs.status_code == 422
    assert theirs.json()["error"]["code"] == "payment_method_customer_mismatch"
    assert theirs.json()["error"]["param"] == "payment_method.id"
    inline = await api.post("/api/payments/purchase", _pay(None, saved["id"]))
    assert inline.status_code == 422
    assert inline.json()["error"]["code"] == "payment_method_customer_mismatch"

    assert (await _delete(api, saved["id"])).status_code == 200
    for path in ("/api/payments/purchase", "/api/payments/authorize"):
        detached = await api.post(path, _pay(owner, saved["id"]))
        assert detached.status_code == 422
        assert detached.json()["error"]["code"] == "payment_method_detached"

    unknown = await api.post("/api/payments/purchase", _pay(owner, "pm_" + "a" * 26))
    assert unknown.status_code == 404
    assert unknown.json()["error"]["param"] == "payment_method.id"
    malformed = await api.post("/api/payments/purchase", _pay(owner, "pm_x"))
    assert malformed.status_code == 400
    assert malformed.json()["error"]["param"] == "payment_method.id"

    # Only the first purchase (which made the customer) ever reached the owner's ledger.
    listed = await api.get("/api/payments", customer_id=owner)
    assert len(listed.json()["data"]) == 1
