"""The console in a real browser: Debian's chromium driven through Playwright (never a browser
Playwright downloads). An operator signs in with an API key, looks at the overview, finds a
purchase made through the API by its customer's email, downloads the customer's export, refunds
part of the purchase and sees the refund and its `payment.refunded` webhook attempt on the
payment's timeline; resolves a compliance alert with a note; opens a subscription and its
invoice and pauses it; replays a delivery that went dead against a refusing receiver, sends
its endpoint a test event and rotates its secret; pauses and resumes the webhook queue; signs
out, after which the old cookie opens nothing. A `payments:read` key sees no action buttons.
Each page is saved as a screenshot under tests/artifacts/console/."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from engine.auth.keys import ApiKeyService, Scope
from engine.config import Settings
from tests.factories import Api, card
from tests.serve_app.console.client import Console
from tests.serve_app.routes.receiver import Receiver, create_endpoint, until

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "console"
WAIT_MS = 30_000
DOWN = "/console-down"
UP = "/console-up"


@pytest.fixture(scope="module")
def chromium() -> Path:
    """Debian's chromium. Missing, it fails (never skips) the test."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"Debian's chromium is not at {CHROMIUM}: `make test` installs it "
            "(apt-get install -y chromium); install it and run again"
        )
    return CHROMIUM


@pytest.fixture(scope="module")
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    """One chromium for the module."""
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(chromium))
        try:
            yield launched
        finally:
            await launched.close()


async def _shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


async def _dead_delivery(api: Api, endpoint_id: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = []

    async def dead() -> bool:
        response = await api.get("/api/webhooks/deliveries", endpoint_id=endpoint_id, status="dead")
        found[:] = response.json()["data"]
        return bool(found)

    await until(dead, "the delivery to the refusing endpoint to go dead")
    return found[0]


async def _subscription(admin: Api) -> dict[str, Any]:
    """A monthly subscription of a new customer, its first invoice paid."""
    body = {
        "email": f"sub-{uuid.uuid4().hex[:8]}@example.com",
        "first_name": "Grace",
        "last_name": "Hopper",
        "consent": {"version": "2026-11", "accepted_at": "2026-11-20T10:00:00Z"},
    }
    customer = (await admin.post("/api/database/customers", body)).json()["data"]["id"]
    plan = await admin.post("/api/plans", {"amount": 990, "currency": "EUR", "interval": "month"})
    created = await admin.post(
        "/api/subscriptions",
        {"customer_id": customer, "plan_id": plan.json()["data"]["id"], "payment_method": card()},
    )
    assert created.status_code == 201, created.text
    return created.json()["data"]  # type: ignore[no-any-return]


async def _reload_until(page: Page, text: str, what: str) -> None:
    """Reload `page` until its body contains `text` (server-rendered: no push)."""

    async def shown() -> bool:
        await page.reload()
        return text in await page.locator("main").inner_text()

    await until(shown, what)


async def test_an_operator_refunds_replays_pauses_and_signs_out(
    browser: Browser,
    api: Api,
    http: httpx.AsyncClient,
    keys: ApiKeyService,
    receiver: Receiver,
    cluster: Settings,
) -> None:
    _, secret = await keys.create(name="console-operator", scopes=frozenset({Scope.ADMIN}))
    admin = Api(http, secret)
    # Made before the endpoints exist, so that none of their events is delivered to them.
    flagged = await api.purchase(amount=1_500_000)
    subscription = await _subscription(admin)
    receiver.default[DOWN] = 503
    endpoint = await create_endpoint(api, receiver.base_url + DOWN, ["payment.succeeded"])
    refunds = await create_endpoint(api, receiver.base_url + UP, ["payment.refunded"])
    email = f"Buyer-{uuid.uuid4().hex[:8]}@Example.com"
    customer = {"email": email, "first_name": "Ada", "last_name": "Lovelace"}
    payment = await api.purchase(amount=4200, customer=customer)
    delivery = await _dead_delivery(api, endpoint["id"])
    base = f"http://127.0.0.1:{cluster.port}"
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    page.set_default_timeout(WAIT_MS)
    # The refund and void forms ask before they post.
    page.on("dialog", lambda dialog: dialog.accept())
    try:
        # Signing in.
        await page.goto(f"{base}/console")
        await _shot(page, "sign-in")
        await page.get_by_label("API key").fill(secret)
        await page.get_by_role("button", name="Sign in").click()
        await page.wait_for_url("**/console/payments")
        await _shot(page, "payments")
        await page.get_by_role("link", name="Overview").click()
        await expect(page.locator("svg.chart").first).to_be_visible()
        await _shot(page, "overview")
        await page.set_viewport_size({"width": 390, "height": 844})
        await _shot(page, "overview-phone")
        await page.set_viewport_size({"width": 1280, "height": 900})

        # The purchase, found by its customer's email (any case), then the customer's export.
        await page.get_by_role("link", name="Customers").click()
        await _shot(page, "customers-empty")
        await page.get_by_label("Email").fill(email.lower())
        await page.get_by_role("button", name="Search").click()
        await page.get_by_role("link", name=payment["customer_id"]).click()
        await expect(page.locator('[data-field="email"]')).to_have_text(email)
        await expect(page.locator("#balances")).to_contain_text("42.00 USD")
        await _shot(page, "customer")
        async with page.expect_download() as download_info:
            await page.get_by_role("button", name="Download export (JSON)").click()
        download = await download_info.value
        saved = ARTIFACTS / "customer-export.json"
        await download.save_as(str(saved))
        exported = orjson.loads(saved.read_bytes())
        assert exported["customer"]["id"] == payment["customer_id"]
        await page.get_by_role("link", name="Erase this customer…").click()
        await expect(page.get_by_label("Type ERASE to confirm")).to_be_visible()
        await _shot(page, "customer-erase-confirm")
        await page.go_back()
        await page.get_by_role("link", name="Payments", exact=True).last.click()
        await page.get_by_role("link", name=payment["id"]).click()
        await page.wait_for_url(f"**/console/payments/{payment['id']}")
        await expect(page.locator('[data-field="amount"]')).to_have_text("42.00 USD")
        await _shot(page, "payment")

        # A partial refund, seen on the page, and its webhook attempt on the timeline.
        await page.get_by_label("Refund amount").fill("15.00")
        await page.get_by_role("button", name="Refund").click()
        await expect(page.locator(".notice")).to_have_text("Refund made.", timeout=WAIT_MS)
        await expect(page.locator("#refunds")).to_contain_text("15.00 USD")
        await expect(page.locator('[data-field="refunded"]')).to_have_text("15.00 USD")
        await _reload_until(
            page, "webhook payment.refunded → 200", "the refund's webhook attempt on the timeline"
        )
        await expect(page.locator("#timeline")).to_contain_text("gateway refund: approved")
        await _shot(page, "payment-refunded")
        await page.set_viewport_size({"width": 390, "height": 844})
        await _shot(page, "payment-phone")
        await page.set_viewport_size({"width": 1280, "height": 900})
        refunded = await api.get(f"/api/payments/{payment['id']}")
        assert refunded.json()["data"]["amount_refunded"] == 1500

        # A compliance alert, resolved with a note.
        await page.get_by_role("link", name="Alerts").click()
        await page.get_by_label("Customer id").fill(flagged["customer_id"])
        await page.get_by_role("button", name="Filter").click()
        alert = page.locator("#alerts tbody tr").first
        await expect(alert).to_contain_text("large_amount")
        await _shot(page, "alerts")
        await alert.get_by_label("Note").fill("known wholesale customer")
        await alert.get_by_role("button", name="Resolve").click()
        await expect(page.locator(".notice")).to_have_text("Alert resolved.")
        await page.goto(f"{base}/console/alerts?customer_id={flagged['customer_id']}")
        await expect(page.locator("#alerts")).to_contain_text("known wholesale customer")
        await _shot(page, "alerts-resolved")

        # A subscription and its invoice; pausing it.
        await page.get_by_role("link", name="Subscriptions").click()
        await _shot(page, "subscriptions")
        await page.goto(f"{base}/console/subscriptions/{subscription['id']}")
        await expect(page.locator("#invoices")).to_contain_text("9.90 EUR")
        await page.get_by_role("button", name="Pause").click()
        await expect(page.locator(".notice")).to_contain_text("Paused")
        await expect(page.locator('[data-field="status"]')).to_have_text("paused")
        await _shot(page, "subscription")
        await page.locator("#invoices a").first.click()
        await expect(page.locator("#lines")).to_contain_text("9.90 EUR")
        await _shot(page, "invoice")

        # Replaying the dead delivery, once the receiver answers again.
        receiver.default[DOWN] = 200
        await page.get_by_role("link", name="Webhooks").click()
        await page.get_by_label("Status").select_option("dead")
        await page.get_by_role("button", name="Filter").click()
        row = page.locator(f"#delivery-{delivery['id']}")
        await expect(row).to_contain_text("dead")
        await _shot(page, "webhooks-dead")
        await row.get_by_role("button", name="Replay").click()
        await expect(page.locator(".notice")).to_contain_text("queued again", timeout=WAIT_MS)

        async def delivered() -> bool:
            response = await api.get("/api/webhooks/deliveries", endpoint_id=endpoint["id"])
            return bool(response.json()["data"][0]["status"] == "succeeded")

        await until(delivered, "the replayed delivery to succeed")
        await page.goto(f"{base}/console/webhooks?status=succeeded")
        await expect(page.locator(f"#delivery-{delivery['id']}")).to_contain_text("succeeded")
        await _shot(page, "webhooks-replayed")

        # A test event to the endpoint, then its secret rotated (shown once).
        row = page.locator(f"#endpoint-{endpoint['id']}")
        await row.get_by_role("button", name="Send test").click()
        await expect(page.locator('[data-field="outcome"]')).to_have_text("delivered")
        await _shot(page, "webhook-test")
        await page.go_back()
        await row.get_by_role("button", name="Rotate secret").click()
        await expect(page.get_by_label("Signing secret")).to_have_value(re.compile("^whsec_"))
        await _shot(page, "webhook-secret")

        # Pausing and resuming the webhook queue.
        await page.get_by_role("link", name="Queues").click()
        queue = page.locator("#queue-webhooks")
        await queue.get_by_role("button", name="Pause").click()
        await expect(queue).to_contain_text("paused", timeout=WAIT_MS)
        stats = (await admin.get("/api/queues/stats")).json()["data"]
        assert next(s for s in stats if s["queue"] == "webhooks")["paused"] is True
        await _shot(page, "queues-paused")
        await queue.get_by_role("button", name="Resume").click()
        await expect(queue).to_contain_text("running", timeout=WAIT_MS)
        stats = (await admin.get("/api/queues/stats")).json()["data"]
        assert next(s for s in stats if s["queue"] == "webhooks")["paused"] is False

        # Signing out: the cookie the browser held opens nothing any more.
        held = await context.cookies()
        assert [c["name"] for c in held] == ["paygrid_console"]
        assert held[0]["httpOnly"] is True
        assert held[0]["sameSite"] == "Strict"
        await page.get_by_role("button", name="Sign out").click()
        await page.wait_for_url("**/console/sign-in")
        await _shot(page, "signed-out")
        await context.add_cookies(held)  # type: ignore[arg-type]
        again = await page.goto(f"{base}/console/payments")
        assert again is not None
        assert again.status == 401
        await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    finally:
        await context.close()
        await admin.post("/api/queues/resume", {"queue": "webhooks"})
        for made in (endpoint, refunds):
            await api.http.delete(f"/api/webhooks/endpoints/{made['id']}", headers=api.headers())


async def test_a_read_only_key_sees_no_action_buttons(
    browser: Browser, api: Api, keys: ApiKeyService, cluster: Settings
) -> None:
    payment = await api.purchase(amount=1100)
    _, secret = await keys.create(name="console-reader", scopes=frozenset({Scope.PAYMENTS_READ}))
    base = f"http://127.0.0.1:{cluster.port}"
    # Signed in over HTTP, its cookie handed to the browser: this test is about what it sees.
    reader = await Console.signed_in(base, secret)
    context = await browser.new_context(viewport={"width": 390, "height": 844})
    try:
        await context.add_cookies(
            [
                {
                    "name": "paygrid_console",
                    "value": reader.http.cookies["paygrid_console"],
                    "url": base,
                }
            ]
        )
        page = await context.new_page()
        page.set_default_timeout(WAIT_MS)
        await page.goto(f"{base}/console/payments/{payment['id']}")
        await expect(page.locator('[data-field="amount"]')).to_have_text("11.00 USD")
        assert await page.get_by_role("button").all_inner_texts() == ["Sign out"]
        nav = await page.get_by_role("navigation").inner_text()
        assert "Customers" not in nav
        assert "Alerts" not in nav
        await _shot(page, "payment-read-only-phone")
    finally:
        await context.close()
        await reader.close()
