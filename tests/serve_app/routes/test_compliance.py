"""AML alerts through the real stack (default rules): a large purchase is flagged and goes
through; a sixth distinct card on one customer is declined 402 `compliance_block` and recorded;
the alerts list filters and pages (admin only); resolving closes an alert once; bad input is a
400 naming its parameter and an unknown id a 404."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from engine.auth.keys import ApiKeyService, Scope
from engine.ratelimit.limits import UNLIMITED
from tests.factories import Api, payment_body

CARDS = [
    "4242424242424242",
    "5555555555554444",
    "4000056655665556",
    "5200828282828210",
    "4012888888881881",
    "6011111111111117",
]
ALERTS = "/api/compliance/alerts"


@pytest.fixture(scope="module")
async def admin_api(http: httpx.AsyncClient, keys: ApiKeyService) -> Api:
    # Unlimited: admin routes allow 10/s, and these tests are not about the limit.
    _, secret = await keys.create(
        name="compliance-admin", scopes=frozenset({Scope.ADMIN}), rate_limit=UNLIMITED
    )
    return Api(http, secret)


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()["data"]


async def test_a_large_purchase_is_flagged_and_goes_through(api: Api, admin_api: Api) -> None:
    paid = await api.purchase(amount=1_500_000, currency="USD")
    assert paid["status"] == "succeeded"
    [alert] = ok(await admin_api.get(ALERTS, customer_id=paid["customer_id"]))
    assert (alert["object"], alert["rule"], alert["action"], alert["status"]) == (
        "compliance_alert",
        "large_amount",
        "flag",
        "open",
    )
    assert alert["payment_id"] == paid["id"]
    assert alert["details"] == {"amount": 1_500_000, "currency": "USD", "threshold": 1_000_000}
    assert ok(await admin_api.get(ALERTS, customer_id=paid["customer_id"], rule="velocity")) == []


async def test_a_sixth_card_is_declined_and_recorded(api: Api, admin_api: Api) -> None:
    first = await api.purchase(number=CARDS[0])
    customer = first["customer_id"]
    for number in CARDS[1:5]:
        await api.purchase(number=number, customer_id=customer)

    declined = await api.post(
        "/api/payments/purchase",
        payment_body(number=CARDS[5], customer_id=customer),
        str(uuid.uuid4()),
    )

    assert declined.status_code == 402, declined.text
    error = declined.json()["error"]
    assert error["decline_code"] == "compliance_block"
    record = ok(await api.get(f"/api/database/transactions/{error['payment_id']}"))
    assert (record["status"], record["decline_code"], record["amount_captured"]) == (
        "failed",
        "compliance_block",
        0,
    )
    [alert] = ok(await admin_api.get(ALERTS, customer_id=customer, rule="distinct_cards"))
    assert (alert["action"], alert["payment_id"]) == ("block", error["payment_id"])
    # A card the customer already used still pays.
    await api.purchase(number=CARDS[0], customer_id=customer)


async def test_alerts_page_filter_and_resolve(api: Api, admin_api: Api) -> None:
    first = await api.purchase(amount=2_000_000)
    customer = first["customer_id"]
    second = await api.purchase(amount=3_000_000, customer_id=customer)

    page = await admin_api.get(ALERTS, customer_id=customer, limit=1)
    assert page.json()["has_more"] is True
    [newest] = ok(page)
    assert newest["payment_id"] == second["id"]
    rest = ok(await admin_api.get(ALERTS, customer_id=customer, starting_after=newest["id"]))
    assert [a["payment_id"] for a in rest] == [first["id"]]

    path = f"{ALERTS}/{newest['id']}/resolve"
    resolved = ok(await admin_api.post(path, {"note": "known customer, invoice on file"}))
    assert (resolved["status"], resolved["resolution_note"]) == (
        "resolved",
        "known customer, invoice on file",
    )
    assert resolved["resolved_at"] is not None
    again = await admin_api.post(path, {"note": "again"})
    assert again.status_code == 409, again.text
    open_ = ok(await admin_api.get(ALERTS, customer_id=customer, status="open"))
    assert [a["id"] for a in open_] == [rest[0]["id"]]
    closed = ok(await admin_api.get(ALERTS, customer_id=customer, status="resolved"))
    assert [a["id"] for a in closed] == [newest["id"]]


async def test_only_admin_keys_see_alerts(api: Api) -> None:
    listed = await api.get(ALERTS)
    assert listed.status_code == 403, listed.text
    resolved = await api.post(f"{ALERTS}/{uuid.uuid4()}/resolve", {"note": "x"})
    assert resolved.status_code == 403, resolved.text


async def test_an_unknown_alert_is_404(admin_api: Api) -> None:
    response = await admin_api.post(f"{ALERTS}/{uuid.uuid4()}/resolve", {"note": "x"})
    assert response.status_code == 404, response.text
    assert response.json()["error"]["param"] == "alert_id"


BAD_LIST: list[tuple[dict[str, Any], str]] = [
    ({"rule": "'; DROP TABLE compliance_alerts; --"}, "rule"),
    ({"status": "closed"}, "status"),
    ({"customer_id": "someone"}, "customer_id"),
    ({"limit": 0}, "limit"),
    ({"limit": 101}, "limit"),
    ({"starting_after": "1"}, "starting_after"),
    ({"starting_after": str(uuid.uuid4())}, "starting_after"),
    ({"sort": "rule"}, "sort"),
]


@pytest.mark.parametrize(("params", "param"), BAD_LIST)
async def test_bad_list_input_is_a_400_naming_it(
    admin_api: Api, params: dict[str, Any], param: str
) -> None:
    response = await admin_api.get(ALERTS, **params)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("not-a-uuid", {"note": "x"}, "alert_id"),
        (None, {"note": ""}, "note"),
        (None, {"note": "x" * 2001}, "note"),
        (None, {}, "note"),
        (None, {"note": "x", "status": "open"}, "status"),
    ],
)
async def test_bad_resolve_input_is_a_400_naming_it(
    admin_api: Api, path: str | None, body: dict[str, Any], param: str
) -> None:
    response = await admin_api.post(f"{ALERTS}/{path or uuid.uuid4()}/resolve", body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param
