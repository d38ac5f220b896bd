"""The console in a real browser: Debian's chromium driven through Playwright (never a browser
Playwright downloads). An operator signs in with an API key, finds a purchase made through the
API by its customer, refunds part of it and sees the refund; replays a delivery that went dead
against a refusing receiver; pauses and resumes the webhook queue; signs out, after which the
old cookie opens nothing. Each page is saved as a screenshot under tests/artifacts/console/."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from engine.auth.keys import ApiKeyService, Scope
from engine.config import Settings
from tests.factories import Api
from tests.serve_app.routes.receiver import Receiver, create_endpoint, until

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "console"
WAIT_MS = 30_000
DOWN = "/console-down"


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
    receiver.default[DOWN] = 503
    endpoint = await create_endpoint(api, receiver.base_url + DOWN, ["payment.succeeded"])
    payment = await api.purchase(amount=4200)
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

        # The purchase, found by its customer.
        await page.get_by_label("Customer id").fill(payment["customer_id"])
        await page.get_by_role("button", name="Filter").click()
        await page.get_by_role("link", name=payment["id"]).click()
        await page.wait_for_url(f"**/console/payments/{payment['id']}")
        await expect(page.locator('[data-field="amount"]')).to_have_text("42.00 USD")
        await _shot(page, "payment")

        # A partial refund, seen on the page.
        await page.get_by_label("Refund amount").fill("15.00")
        await page.get_by_role("button", name="Refund").click()
        await expect(page.locator(".notice")).to_have_text("Refund made.", timeout=WAIT_MS)
        await expect(page.locator("#refunds")).to_contain_text("15.00 USD")
        await expect(page.locator('[data-field="refunded"]')).to_have_text("15.00 USD")
        await _shot(page, "payment-refunded")
        await page.set_viewport_size({"width": 390, "height": 844})
        await _shot(page, "payment-phone")
        await page.set_viewport_size({"width": 1280, "height": 900})
        refunded = await api.get(f"/api/payments/{payment['id']}")
        assert refunded.json()["data"]["amount_refunded"] == 1500

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
        await api.http.delete(f"/api/webhooks/endpoints/{endpoint['id']}", headers=api.headers())
