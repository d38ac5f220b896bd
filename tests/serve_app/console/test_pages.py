"""The console's customers, subscriptions and invoices, compliance alerts, overview, payment
timeline and webhook endpoint actions over plain HTTP (the browser test visits most of them
too): each through the same engine services as the API, with the same scopes, and the API's
refusals (404, 409) shown as error pages."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import orjson

from engine.auth.keys import ApiKeyService, Scope
from engine.webhooks.signing import sign
from tests.factories import Api, card
from tests.serve_app.console.client import Console, csrf_token
from tests.serve_app.console.conftest import SignIn
from tests.serve_app.routes.receiver import Receiver, create_endpoint, until
from tests.serve_app.routes.test_customers import customer_body

ADMIN = frozenset({Scope.ADMIN})


def _ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()["data"]


async def _post_form(console: Console, page_path: str, action: str, **fields: str) -> Any:
    """Post the form `action` as rendered on `page_path` (its CSRF token included)."""
    page = await console.page(page_path)
    assert page.status_code == 200, page.text
    assert f'action="{action}"' in page.text, f"no {action} form on {page_path}"
    return await console.post(action, {"csrf_token": csrf_token(page.text), **fields})


async def test_customers_search_balances_export_and_erasure(api: Api, sign_in: SignIn) -> None:
    email = f"Console-{uuid.uuid4().hex[:8]}@Example.com"
    paid = await api.purchase(
        amount=1234, customer={"email": email, "first_name": "Ada", "last_name": "Byron"}
    )
    customer = paid["customer_id"]
    console = await sign_in(frozenset({Scope.CUSTOMERS, Scope.PAYMENTS_READ}))
    # Any case: the blind index is of the lower-cased address.
    listed = await console.page("/console/customers", email=email.upper())
    assert listed.status_code == 200
    assert f'id="customer-{customer}"' in listed.text
    assert (await console.page("/console/customers", email="nobody@example.com")).text.count(
        "No customer has this email."
    ) == 1
    bad = await console.page("/console/customers", email="not-an-email")
    assert (bad.status_code, "email" in bad.text) == (400, True)
    shown = await console.page(f"/console/customers/{customer}")
    assert 'id="balances"' in shown.text
    assert "12.34 USD" in shown.text

    exported = await _post_form(
        console, f"/console/customers/{customer}", f"/console/customers/{customer}/export"
    )
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("application/json")
    assert "attachment" in exported.headers["content-disposition"]
    document = orjson.loads(exported.content)
    assert (document["object"], document["customer"]["id"]) == ("customer_export", customer)

    erase = f"/console/customers/{customer}/erase"
    confirm = await console.page(erase)
    assert confirm.status_code == 200
    mistyped = await console.post(erase, {"csrf_token": csrf_token(confirm.text), "confirm": "x"})
    assert mistyped.status_code == 400
    assert "type ERASE" in mistyped.text
    erased = await console.post(erase, {"csrf_token": csrf_token(confirm.text), "confirm": "ERASE"})
    assert erased.status_code == 303
    after = await console.page(erased.headers["location"])
    assert "Erased:" in after.text
    assert 'data-field="email"' not in after.text
    assert email.lower() not in after.text.lower()


async def test_subscription_pages_and_actions_and_a_refused_erasure(
    http: httpx.AsyncClient, keys: ApiKeyService, sign_in: SignIn
) -> None:
    _, secret = await keys.create(
        name="console-subs-api",
        scopes=frozenset({Scope.SUBSCRIPTIONS, Scope.CUSTOMERS, Scope.PAYMENTS_WRITE}),
    )
    subs = Api(http, secret)
    customer = _ok(await subs.post("/api/database/customers", customer_body()), 201)["id"]
    plan = _ok(
        await subs.post("/api/plans", {"amount": 1999, "currency": "USD", "interval": "month"}),
        201,
    )
    sub = _ok(
        await subs.post(
            "/api/subscriptions",
            {"customer_id": customer, "plan_id": plan["id"], "payment_method": card()},
        ),
        201,
    )["id"]
    console = await sign_in(frozenset({Scope.SUBSCRIPTIONS, Scope.CUSTOMERS}))
    listed = await console.page("/console/subscriptions", customer_id=customer)
    assert f'id="subscription-{sub}"' in listed.text
    assert "19.99 USD" in listed.text
    detail_path = f"/console/subscriptions/{sub}"
    detail = await console.page(detail_path)
    invoice = re.search(r'href="/console/invoices/([0-9a-f-]+)"', detail.text)
    assert invoice is not None
    shown = await console.page(f"/console/invoices/{invoice.group(1)}")
    assert shown.status_code == 200
    assert "19.99 USD" in shown.text
    assert 'href="/console/payments/' in shown.text

    # The API's 409: a customer with a live subscription is not erased.
    erase = f"/console/customers/{customer}/erase"
    refused = await _post_form(console, erase, erase, confirm="ERASE")
    assert refused.status_code == 409
    assert "subscription" in refused.text

    paused = await _post_form(console, detail_path, f"{detail_path}/pause")
    assert paused.status_code == 303
    assert "Paused" in (await console.page(paused.headers["location"])).text
    resumed = await _post_form(console, detail_path, f"{detail_path}/resume")
    assert resumed.status_code == 303
    page = await console.page(resumed.headers["location"])
    assert 'data-field="status">active<' in page.text
    cancelled = await _post_form(console, detail_path, f"{detail_path}/cancel", when="now")
    assert cancelled.status_code == 303
    page = await console.page(cancelled.headers["location"])
    assert 'data-field="status">cancelled<' in page.text
    assert f'action="{detail_path}/pause"' not in page.text
    # Posted anyway, the state machine refuses it as the API does.
    again = await console.post(f"{detail_path}/pause", {"csrf_token": csrf_token(page.text)})
    assert again.status_code == 422
    assert (await console.page("/console/subscriptions", status="nonesuch")).status_code == 400


async def test_alerts_list_filter_and_resolve_with_a_note(api: Api, sign_in: SignIn) -> None:
    paid = await api.purchase(amount=1_500_000)
    console = await sign_in(ADMIN)
    path = f"/console/alerts?customer_id={paid['customer_id']}"
    listed = await console.page(path)
    found = re.search(r'id="alert-([0-9a-f-]+)"', listed.text)
    assert found is not None
    action = f"/console/alerts/{found.group(1)}/resolve"
    assert "large_amount" in listed.text
    blank = await _post_form(console, path, action, note="")
    assert (blank.status_code, "note" in blank.text) == (400, True)
    resolved = await _post_form(console, path, action, note="customer's known wholesaler")
    assert resolved.status_code == 303
    shown = await console.page(path + "&status=resolved")
    assert "customer&#39;s known wholesaler" in shown.text
    assert action not in shown.text
    again = await console.post(action, {"csrf_token": csrf_token(shown.text), "note": "twice"})
    assert again.status_code == 409
    assert "already resolved" in again.text
    empty = await console.page(f"/console/alerts?customer_id={paid['customer_id']}&rule=velocity")
    assert "No alerts match these filters." in empty.text


async def test_the_payment_timeline_in_time_order_and_by_scope(
    api: Api, sign_in: SignIn, receiver: Receiver
) -> None:
    endpoint = await create_endpoint(api, receiver.base_url + "/timeline", ["payment.refunded"])
    try:
        paid = await api.purchase(amount=5000)
        refund = await api.post("/api/payments/refund", {"payment_id": paid["id"], "amount": 700})
        assert refund.status_code == 200, refund.text
        await until(lambda: bool(receiver.at("/timeline")), "the payment.refunded webhook")
        admin = await sign_in(ADMIN)
        path = f"/console/payments/{paid['id']}"

        async def attempt_shown() -> bool:
            return "webhook payment.refunded → 200" in (await admin.page(path)).text

        await until(attempt_shown, "the webhook attempt on the timeline")
        page = (await admin.page(path)).text
        timeline = page[page.index('id="timeline"') :]
        sources = re.findall(r'class="t-([a-z]+)"', timeline)
        for source in ("request", "gateway", "refund", "ledger", "event", "webhook", "audit"):
            assert source in sources, source
        # In time order: the purchase's request first, its refund's webhook after its refund.
        assert sources[0] == "request"
        # (Endpoints other tests left may have had the purchase's own event delivered earlier.)
        assert timeline.index('class="t-refund"') < timeline.index("webhook payment.refunded")
        assert "7.00 USD" in timeline
        assert "4242" not in timeline.replace("····", "")

        reader = await sign_in(frozenset({Scope.PAYMENTS_READ}))
        seen = (await reader.page(path)).text
        theirs = set(re.findall(r'class="t-([a-z]+)"', seen))
        assert theirs == {"request", "gateway", "refund", "ledger"}
    finally:
        await api.http.delete(f"/api/webhooks/endpoints/{endpoint['id']}", headers=api.headers())


async def test_the_overview_charts_payments_and_traffic(api: Api, sign_in: SignIn) -> None:
    await api.purchase(amount=900)
    declined = await api.post(
        "/api/payments/purchase",
        {
            "amount": 900,
            "currency": "USD",
            "payment_method": card("4000000000000002"),
            "customer": {"email": "declined@example.com", "first_name": "D", "last_name": "C"},
        },
    )
    assert declined.status_code == 402
    admin = await sign_in(ADMIN)

    async def traffic_charted() -> bool:
        return 'id="traffic"' in (await admin.page("/console/overview")).text

    # The metrics are published every few seconds: wait for this test's own requests.
    await until(traffic_charted, "the last hour's traffic on the overview")
    page = (await admin.page("/console/overview")).text
    assert page.count('<svg class="chart"') == 5
    assert 'id="volume"' in page
    assert "<script" not in page.replace('<script src="/console/static/console.js"', "")
    reader = await sign_in(frozenset({Scope.PAYMENTS_READ}))
    theirs = (await reader.page("/console/overview")).text
    assert theirs.count('<svg class="chart"') == 3
    assert "Requests per second" not in theirs


async def test_webhooks_replay_every_dead_one_send_a_test_and_rotate_the_secret(
    api: Api, sign_in: SignIn, receiver: Receiver
) -> None:
    path = "/console-endpoint"
    receiver.default[path] = 503  # unavailable: each delivery retries until it goes dead
    endpoint = await create_endpoint(api, receiver.base_url + path, ["payment.succeeded"])
    eid = endpoint["id"]

    async def deliveries(status: str) -> list[dict[str, Any]]:
        found = await api.get("/api/webhooks/deliveries", endpoint_id=eid, status=status)
        return list(found.json()["data"])

    try:
        await api.purchase(amount=800)
        await api.purchase(amount=900)

        async def two_dead() -> bool:
            return len(await deliveries("dead")) >= 2

        await until(two_dead, "both deliveries to the refusing endpoint to go dead")
        receiver.default[path] = 200
        console = await sign_in(frozenset({Scope.WEBHOOKS}))
        listed = await console.page("/console/webhooks", endpoint_id=eid, status="dead")
        assert listed.text.count('id="delivery-') >= 2
        replayed = await _post_form(
            console, "/console/webhooks", f"/console/webhooks/endpoints/{eid}/replay-dead"
        )
        assert replayed.status_code == 303
        notice = re.search(
            r"(\d+) dead deliveries are queued again",
            (await console.page(replayed.headers["location"])).text,
        )
        assert notice is not None
        assert int(notice.group(1)) >= 2

        async def none_dead() -> bool:
            return not await deliveries("dead") and len(await deliveries("succeeded")) >= 2

        await until(none_dead, "every replayed delivery to succeed")
        again = await _post_form(
            console, "/console/webhooks", f"/console/webhooks/endpoints/{eid}/replay-dead"
        )
        assert "No dead delivery to replay" in (await console.page(again.headers["location"])).text

        tested = await _post_form(
            console, "/console/webhooks", f"/console/webhooks/endpoints/{eid}/test"
        )
        assert tested.status_code == 200, tested.text
        assert 'data-field="outcome">delivered<' in tested.text
        assert 'data-field="http_status">200<' in tested.text
        assert receiver.at(path)[-1].payload["type"] == "webhook.test"

        rotated = await _post_form(
            console, "/console/webhooks", f"/console/webhooks/endpoints/{eid}/rotate-secret"
        )
        assert rotated.status_code == 200, rotated.text
        shown = re.search(r'id="secret" class="mono" value="(whsec_[^"]+)"', rotated.text)
        assert shown is not None
        secret = shown.group(1)
        assert rotated.headers["cache-control"] == "no-store"
        after = (await console.page("/console/webhooks")).text
        assert secret not in after
        assert "previous secret signs until" in after
        # The next delivery is signed with the new secret (and the old one, for the grace).
        await _post_form(console, "/console/webhooks", f"/console/webhooks/endpoints/{eid}/test")
        sent = receiver.at(path)[-1]
        signed = sign(
            secret, sent.headers["webhook-id"], int(sent.headers["webhook-timestamp"]), sent.body
        )
        assert signed in sent.headers["webhook-signature"].split()

        unknown = f"/console/webhooks/endpoints/{uuid.uuid4()}"
        for action in ("rotate-secret", "test"):
            missing = await console.post(f"{unknown}/{action}", {"csrf_token": csrf_token(after)})
            assert missing.status_code == 404, action
    finally:
        await api.http.delete(f"/api/webhooks/endpoints/{eid}", headers=api.headers())
