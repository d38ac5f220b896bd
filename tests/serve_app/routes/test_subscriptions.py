"""Plans, test clocks and subscriptions through the real stack: the first invoice paid through
the ledger shard over HTTP, a year of monthly billing on a test clock run by the scheduler
actors (advance, wait for `ready`), pause/resume/cancel, and bad input named."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from engine.auth.keys import ApiKeyService, Scope
from tests.factories import Api, card, card_on_file
from tests.serve_app.routes.test_customers import customer_body
from tests.waiting import wait_until

JAN_31_2027 = 1_801_396_800  # 2027-01-31T12:00:00Z
DAY = 86_400


@pytest.fixture(scope="module")
async def subs_api(http: httpx.AsyncClient, keys: ApiKeyService) -> Api:
    _, secret = await keys.create(
        name="subscriptions",
        scopes=frozenset({Scope.SUBSCRIPTIONS, Scope.CUSTOMERS, Scope.PAYMENTS_WRITE}),
    )
    return Api(http, secret)


async def _ok(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return response.json()["data"]  # type: ignore[no-any-return]


async def _clock(api: Api, at: int = JAN_31_2027) -> str:
    return str((await _ok(await api.post("/api/test-clocks", {"frozen_time": at}), 201))["id"])


async def _customer(api: Api, clock: str | None = None) -> str:
    body = customer_body() if clock is None else customer_body(test_clock=clock)
    return str((await _ok(await api.post("/api/database/customers", body), 201))["id"])


async def _plan(api: Api, **overrides: Any) -> dict[str, Any]:
    body = {"amount": 1999, "currency": "USD", "interval": "month", **overrides}
    return await _ok(await api.post("/api/plans", body), 201)


async def _subscribe(api: Api, customer: str, plan: str, **overrides: Any) -> httpx.Response:
    body = {"customer_id": customer, "plan_id": plan, "payment_method": card(), **overrides}
    return await api.post("/api/subscriptions", body)


async def _advance(api: Api, clock: str, to: int) -> None:
    await _ok(await api.post(f"/api/test-clocks/{clock}/advance", {"frozen_time": to}))

    async def ready() -> bool:
        return bool((await _ok(await api.get(f"/api/test-clocks/{clock}")))["status"] == "ready")

    # A bound, not a wait: a year of renewals takes ~25 s alone, and came past 60 s twice in a
    # full suite on two cores.
    await wait_until(ready, timeout_s=120, what=f"test clock {clock} ready")


async def test_a_year_on_a_test_clock(subs_api: Api, db: asyncpg.Pool) -> None:
    clock = await _clock(subs_api)
    plan = await _plan(subs_api)
    subs = []
    for _ in range(3):
        created = await _ok(
            await _subscribe(subs_api, await _customer(subs_api, clock), plan["id"]), 201
        )
        assert (created["status"], created["latest_invoice"]["status"]) == ("active", "paid")
        assert created["test_clock"] == clock
        subs.append(created["id"])
    for month in range(1, 12):
        await _advance(subs_api, clock, JAN_31_2027 + 31 * DAY * month)
    await _advance(subs_api, clock, JAN_31_2027 + 364 * DAY)
    for sub in subs:
        invoices = subs_api.get(f"/api/subscriptions/{sub}/invoices", limit=100)
        found = (await invoices).json()["data"]
        assert [i["status"] for i in found] == ["paid"] * 12
        assert sorted(i["period_start"][:10] for i in found)[:3] == [
            "2027-01-31",
            "2027-02-28",
            "2027-03-31",
        ]
        one = await _ok(await subs_api.get(f"/api/invoices/{found[0]['id']}"))
        assert one == found[0]
    paid_events = await db.fetchval(
        """SELECT count(*) FROM events WHERE event_type = 'invoice.paid'
           AND (payload ->> 'subscription_id') = ANY($1::text[])""",
        subs,
    )
    assert paid_events == 36


async def test_decline_and_refusals(subs_api: Api) -> None:
    customer = await _customer(subs_api)
    plan = await _plan(subs_api)
    # A card given with its CVC is verified as it is saved: a decline creates nothing.
    unverified = await _subscribe(
        subs_api, customer, plan["id"], payment_method=card("4000000000000002")
    )
    assert unverified.status_code == 402
    assert unverified.json()["error"]["decline_code"] == "generic_decline"
    listed = await subs_api.get("/api/subscriptions", customer_id=customer)
    assert listed.json()["data"] == []
    # A card on file that declines its first charge: the subscription is recorded failed.
    on_file = await _ok(
        await subs_api.post(
            "/api/payment-methods",
            {**card_on_file("4000000000000002"), "customer_id": customer},
        )
    )
    declined = await _subscribe(
        subs_api, customer, plan["id"], payment_method={"id": on_file["id"]}
    )
    assert declined.status_code == 402
    error = declined.json()["error"]
    assert (error["decline_code"], error["subscription"]["status"]) == ("generic_decline", "failed")
    other = await _customer(subs_api)
    saved = await _ok(await subs_api.post("/api/payment-methods", {**card(), "customer_id": other}))
    mismatch = await _subscribe(subs_api, customer, plan["id"], payment_method={"id": saved["id"]})
    assert mismatch.status_code == 422
    assert mismatch.json()["error"]["code"] == "payment_method_customer_mismatch"
    assert (await _subscribe(subs_api, customer, str(uuid.uuid4()))).status_code == 404
    assert (await _subscribe(subs_api, str(uuid.uuid4()), plan["id"])).status_code == 404
    await _ok(await subs_api.post(f"/api/plans/{plan['id']}/archive", {}))
    archived = await _subscribe(subs_api, customer, plan["id"])
    assert (archived.status_code, archived.json()["error"]["code"]) == (422, "plan_archived")
    assert (await subs_api.get(f"/api/subscriptions/{uuid.uuid4()}")).status_code == 404
    assert (await subs_api.get(f"/api/invoices/{uuid.uuid4()}")).status_code == 404
    assert (await subs_api.get(f"/api/test-clocks/{uuid.uuid4()}")).status_code == 404


@pytest.mark.parametrize(
    ("changes", "param"),
    [
        ({"interval": "fortnight"}, "interval"),
        ({"interval_count": 0}, "interval_count"),
        ({"interval_count": 13}, "interval_count"),
        ({"amount": -5}, "amount"),
        ({"amount": 19.99}, "amount"),
        ({"amount": "1999"}, "amount"),
        ({"currency": "XYZ"}, "currency"),
        ({"trial_period_days": 1000}, "trial_period_days"),
    ],
)
async def test_bad_plans_name_the_field(subs_api: Api, changes: dict[str, Any], param: str) -> None:
    body = {"amount": 1999, "currency": "USD", "interval": "month", **changes}
    response = await subs_api.post("/api/plans", body)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


async def test_bad_subscriptions_name_the_field(subs_api: Api) -> None:
    customer = await _customer(subs_api)
    plan = await _plan(subs_api)
    quantity = await _subscribe(subs_api, customer, plan["id"], quantity=0)
    assert (quantity.status_code, quantity.json()["error"]["param"]) == (400, "quantity")
    both = await _subscribe(subs_api, customer, plan["id"], amount=100)
    assert (both.status_code, both.json()["error"]["param"]) == (400, "plan_id")
    inline = {"customer_id": customer, "payment_method": card(), "amount": 100}
    missing = await subs_api.post("/api/subscriptions", inline)
    assert (missing.status_code, missing.json()["error"]["param"]) == (400, "currency")


async def test_pause_resume_cancel_and_list(subs_api: Api) -> None:
    clock = await _clock(subs_api)
    customer = await _customer(subs_api, clock)
    plan = await _plan(subs_api, interval="week")
    sub = (await _ok(await _subscribe(subs_api, customer, plan["id"]), 201))["id"]
    paused = await _ok(await subs_api.post(f"/api/subscriptions/{sub}/pause", {}))
    assert paused["status"] == "paused"
    await _advance(subs_api, clock, JAN_31_2027 + 30 * DAY)
    invoices = (await subs_api.get(f"/api/subscriptions/{sub}/invoices")).json()["data"]
    assert len(invoices) == 1
    resumed = await _ok(await subs_api.post(f"/api/subscriptions/{sub}/resume", {}))
    assert resumed["status"] == "active"
    assert resumed["current_period_start"] == "2027-03-02T12:00:00Z"
    marked = await _ok(
        await subs_api.http.delete(
            f"/api/subscriptions/{sub}",
            params={"at_period_end": "true"},
            headers=subs_api.headers(),
        )
    )
    assert (marked["status"], marked["cancel_at_period_end"]) == ("active", True)
    updated = await subs_api.http.put(
        f"/api/subscriptions/{sub}", json={"quantity": 2}, headers=subs_api.headers()
    )
    # Without prorations the change waits for the next period.
    changed = await _ok(updated)
    assert (changed["quantity"], changed["pending_update"]["quantity"]) == (1, 2)
    cancelled = await _ok(
        await subs_api.http.delete(f"/api/subscriptions/{sub}", headers=subs_api.headers())
    )
    assert cancelled["status"] == "cancelled"
    again = await subs_api.post(f"/api/subscriptions/{sub}/pause", {})
    assert (again.status_code, again.json()["error"]["code"]) == (422, "subscription_state_invalid")
    listed = await subs_api.get("/api/subscriptions", customer_id=customer, status="cancelled")
    assert [s["id"] for s in listed.json()["data"]] == [sub]


async def test_reserved_keys_and_a_declined_upgrade(subs_api: Api) -> None:
    clock = await _clock(subs_api)
    customer = await _customer(subs_api, clock)
    plan = await _plan(subs_api)
    # paygrid's own charges' keys are out of merchants' reach.
    body = {"customer_id": customer, "plan_id": plan["id"], "payment_method": card()}
    reserved = await subs_api.post(
        "/api/subscriptions", body, idempotency_key=f"paygrid:subscription:{uuid.uuid4()}"
    )
    assert (reserved.status_code, reserved.json()["error"]["param"]) == (400, "Idempotency-Key")
    created = await _ok(await _subscribe(subs_api, customer, plan["id"]), 201)
    # A prorated upgrade whose charge is declined: 402, nothing changed, no dunning.
    declining = await _ok(
        await subs_api.post(
            "/api/payment-methods",
            {**card_on_file("4000000000000002"), "customer_id": customer},
        )
    )
    await _ok(
        await subs_api.http.put(
            f"/api/subscriptions/{created['id']}",
            json={"payment_method": {"id": declining["id"]}},
            headers=subs_api.headers(),
        )
    )
    upgrade = await subs_api.http.put(
        f"/api/subscriptions/{created['id']}",
        json={"quantity": 3, "proration_behavior": "create_prorations"},
        headers=subs_api.headers(),
    )
    assert upgrade.status_code == 402, upgrade.text
    after = await _ok(await subs_api.get(f"/api/subscriptions/{created['id']}"))
    assert (after["status"], after["quantity"]) == ("active", 1)
