"""The console over plain HTTP: sign-in and its cookie, CSRF, scopes exactly as the API has
them, sign-out, revocation, expiry and rotation ending the session, and a refund form that
cannot refund twice. Sign-in and every page go through the API's guard: a key's allow-list, the
audit and per-address limit of failed sign-ins, and the key's own rate limit.

The tests' cluster trusts 127.0.0.1 as a proxy, so `X-Forwarded-For` names the client."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address, ip_network
from typing import Any
from uuid import uuid4

import asyncpg
import httpx
import orjson
import pytest
from redis.asyncio import Redis

from engine.auth.keys import ApiKeyService, Scope
from engine.config import Settings
from engine.ratelimit.limits import parse_rate
from tests.factories import Api
from tests.serve_app.console.client import (
    COOKIE,
    Console,
    csrf_token,
    idempotency_key,
    login_token,
    sign_in,
)
from tests.serve_app.console.conftest import SignIn

READ = frozenset({Scope.PAYMENTS_READ})
WRITE = frozenset({Scope.PAYMENTS_WRITE})


async def _refunded(api: Api, payment_id: str) -> int:
    response = await api.get(f"/api/payments/{payment_id}")
    return int(response.json()["data"]["amount_refunded"])


async def test_sign_in_sets_a_strict_http_only_cookie_and_a_bad_key_gets_none(
    cluster: Settings, keys: ApiKeyService
) -> None:
    _, secret = await keys.create(name="console-cookie", scopes=READ)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{cluster.port}") as http:
        refused = await sign_in(http, "pgk_wrong")
        assert refused.status_code == 401
        assert "invalid" in refused.text
        assert COOKIE + "=" not in refused.headers.get("set-cookie", "")
        signed = await sign_in(http, secret)
        assert signed.status_code == 303
        cookie = next(
            c for c in signed.headers.get_list("set-cookie") if c.startswith(COOKIE + "=")
        ).lower()
        for flag in ("httponly", "samesite=strict", "path=/console"):
            assert flag in cookie
        # Plain HTTP here: Secure would keep the browser from sending it back.
        assert "secure" not in cookie
        assert secret not in str(signed.headers)
        landing = await http.get("/console/payments")
        assert landing.status_code == 200
        assert secret not in landing.text
        assert "default-src 'self'" in landing.headers["content-security-policy"]


async def _refund_page(
    api: Api, sign_in: SignIn, scopes: frozenset[Scope], amount: int
) -> tuple[dict[str, Any], Console, str, str]:
    """A purchase of `amount`, a console signed in with `scopes`, the payment's refund action
    and its page as rendered."""
    payment = await api.purchase(amount=amount)
    console = await sign_in(scopes)
    page = await console.page(f"/console/payments/{payment['id']}")
    assert page.status_code == 200
    return payment, console, f"/console/payments/{payment['id']}/refund", page.text


async def test_a_read_only_key_sees_no_actions_and_posting_one_is_forbidden(
    api: Api, sign_in: SignIn
) -> None:
    payment, console, action, page = await _refund_page(api, sign_in, READ, 2500)
    assert "25.00 USD" in page
    assert action not in page
    assert page.count("<button") == 1  # sign-out only
    forbidden = await console.post(
        action, {"csrf_token": csrf_token(page), "idempotency_key": "console-x", "amount": "1.00"}
    )
    assert forbidden.status_code == 403
    assert "payments:write" in forbidden.text
    assert await _refunded(api, payment["id"]) == 0
    # Pages of other scopes are refused too, and not linked.
    for other in ("queues", "webhooks", "customers", "subscriptions", "alerts"):
        assert f'href="/console/{other}"' not in page
        assert (await console.page(f"/console/{other}")).status_code == 403
    # So is every other form, posted with the session's own CSRF token.
    some = "00000000-0000-4000-8000-000000000000"
    for form in (
        f"/console/payments/{payment['id']}/capture",
        f"/console/payments/{payment['id']}/void",
        f"/console/customers/{payment['customer_id']}/export",
        f"/console/customers/{payment['customer_id']}/erase",
        f"/console/subscriptions/{some}/pause",
        f"/console/subscriptions/{some}/resume",
        f"/console/subscriptions/{some}/cancel",
        f"/console/alerts/{some}/resolve",
        f"/console/webhooks/deliveries/{some}/replay",
        f"/console/webhooks/endpoints/{some}/replay-dead",
        f"/console/webhooks/endpoints/{some}/rotate-secret",
        f"/console/webhooks/endpoints/{some}/test",
        "/console/queues/webhooks/pause",
    ):
        refused = await console.post(
            form, {"csrf_token": csrf_token(page), "confirm": "ERASE", "note": "n"}
        )
        assert refused.status_code == 403, form


async def test_a_form_without_its_csrf_token_is_refused_and_a_double_submit_refunds_once(
    api: Api, sign_in: SignIn
) -> None:
    payment, console, action, page = await _refund_page(api, sign_in, WRITE, 3000)
    form = {"idempotency_key": idempotency_key(page, action), "amount": "10.00"}
    assert (await console.post(action, form)).status_code == 403
    assert (await console.post(action, {**form, "csrf_token": "forged"})).status_code == 403
    assert await _refunded(api, payment["id"]) == 0
    form["csrf_token"] = csrf_token(page)
    first = await console.post(action, form)
    again = await console.post(action, form)
    assert first.status_code == again.status_code == 303
    assert await _refunded(api, payment["id"]) == 1000
    shown = await console.page(first.headers["location"])
    assert "Refund made." in shown.text
    assert "10.00 USD" in shown.text


async def test_an_amount_the_currency_cannot_hold_is_refused_naming_it(
    api: Api, sign_in: SignIn
) -> None:
    payment, console, action, page = await _refund_page(api, sign_in, WRITE, 500)
    fields = {"csrf_token": csrf_token(page), "idempotency_key": idempotency_key(page, action)}
    refused = await console.post(action, {**fields, "amount": "1.005"})
    assert refused.status_code == 400
    assert "amount" in refused.text
    too_much = await console.post(action, {**fields, "amount": "6.00"})
    assert too_much.status_code >= 400
    assert await _refunded(api, payment["id"]) == 0


async def test_filters_and_a_bad_filter(api: Api, sign_in: SignIn) -> None:
    payment = await api.purchase(amount=700)
    console = await sign_in(READ)
    mine = await console.page("/console/payments", customer_id=payment["customer_id"], status="")
    assert mine.status_code == 200
    assert payment["id"] in mine.text
    none = await console.page(
        "/console/payments", customer_id=payment["customer_id"], status="voided"
    )
    assert "No payments match these filters." in none.text
    bad = await console.page("/console/payments", customer_id="not-a-uuid")
    assert bad.status_code == 400
    assert "customer_id" in bad.text

    # By UTC day and by an amount typed in major units of a currency, exactly.
    today = datetime.now(UTC).date()
    mine_only = {"customer_id": payment["customer_id"]}
    for shown, bounds in (
        (True, {"created_from": str(today), "created_to": str(today)}),
        (False, {"created_from": str(today + timedelta(days=1))}),
        (False, {"created_to": str(today - timedelta(days=1))}),
        (True, {"currency": "usd", "amount_min": "7", "amount_max": "7.00"}),
        (False, {"currency": "USD", "amount_min": "7.01"}),
        (False, {"currency": "USD", "amount_max": "6.99"}),
        (False, {"currency": "EUR"}),
    ):
        listed = await console.page("/console/payments", **mine_only, **bounds)
        assert listed.status_code == 200, listed.text
        assert (payment["id"] in listed.text) is shown, bounds
        if not shown:
            assert "No payments match these filters." in listed.text
    for named, bounds in (
        ("amount_min", {"currency": "USD", "amount_min": "7.001"}),
        ("amount_max", {"currency": "JPY", "amount_max": "abc"}),
        ("currency", {"amount_min": "7"}),
        ("currency", {"currency": "XYZ"}),
        ("created_from", {"created_from": "2026-13-01"}),
        ("created_to", {"created_from": str(today), "created_to": str(today - timedelta(1))}),
    ):
        refused = await console.page("/console/payments", **bounds)
        assert refused.status_code == 400, bounds
        assert named in refused.text, bounds


@pytest.mark.parametrize("how", ["sign_out", "revoke", "expire", "rotate"])
async def test_the_cookie_stops_working_after_sign_out_or_revocation(
    cluster: Settings, keys: ApiKeyService, db: asyncpg.Pool, how: str
) -> None:
    key, secret = await keys.create(name="console-end", scopes=READ)
    console = await Console.signed_in(f"http://127.0.0.1:{cluster.port}", secret)
    try:
        page = await console.page("/console/payments")
        assert page.status_code == 200
        cookie = console.http.cookies[COOKIE]
        if how == "sign_out":
            out = await console.post("/console/sign-out", {"csrf_token": csrf_token(page.text)})
            assert out.status_code == 303
        elif how == "revoke":
            await keys.revoke(key.id)
        elif how == "expire":
            await db.execute(
                "UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = $1",
                key.id,
            )
        else:
            await keys.rotate(key.id, grace_s=0)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{cluster.port}") as other:
            replayed = await other.get(
                "/console/payments", headers={"Cookie": f"{COOKIE}={cookie}"}
            )
        assert replayed.status_code == 401
        assert "Sign in" in replayed.text
    finally:
        await console.close()


async def test_the_front_door_and_each_page_follow_the_scopes(sign_in: SignIn) -> None:
    webhooks_only = await sign_in(frozenset({Scope.WEBHOOKS}))
    door = await webhooks_only.page("/console")
    assert door.status_code == 303
    assert door.headers["location"] == "/console/webhooks"
    listed = await webhooks_only.page("/console/webhooks", status="dead")
    assert listed.status_code == 200
    assert 'href="/console/payments"' not in listed.text
    assert (await webhooks_only.page("/console/payments")).status_code == 403
    admin = await sign_in(frozenset({Scope.ADMIN}))
    assert (await admin.page("/console")).headers["location"] == "/console/payments"
    queues = await admin.page("/console/queues")
    assert queues.status_code == 200
    assert 'id="queue-webhooks"' in queues.text
    unknown = await admin.post(
        "/console/queues/nonesuch/pause", {"csrf_token": csrf_token(queues.text)}
    )
    assert unknown.status_code == 400
    assert (await admin.page("/console/payments/not-a-uuid")).status_code == 400


async def test_sign_in_needs_its_login_token_and_our_origin(
    cluster: Settings, keys: ApiKeyService
) -> None:
    """Login CSRF: another site can post the sign-in form with the attacker's key, but not
    with the login token of the victim's form and cookie, and its browser says where from."""
    _, secret = await keys.create(name="console-login-csrf", scopes=READ)
    base = f"http://127.0.0.1:{cluster.port}"
    async with httpx.AsyncClient(base_url=base) as http:
        no_token = await http.post("/console/sign-in", data={"api_key": secret})
        assert no_token.status_code == 403
        form = await http.get("/console/sign-in")
        login_cookie = form.headers["set-cookie"].lower()
        for flag in ("httponly", "samesite=strict", "path=/console/sign-in", "max-age="):
            assert flag in login_cookie
        token = login_token(form.text)
        forged = await http.post(
            "/console/sign-in", data={"api_key": secret, "login_token": "forged"}
        )
        assert forged.status_code == 403
        fields = {"api_key": secret, "login_token": token}
        for headers in (
            {"Origin": "https://evil.example"},
            {"Origin": "null"},
            {"Sec-Fetch-Site": "cross-site"},
        ):
            refused = await http.post("/console/sign-in", data=fields, headers=headers)
            assert refused.status_code == 403, headers
            assert COOKIE + "=" not in refused.headers.get("set-cookie", "")
        ours = await http.post("/console/sign-in", data=fields, headers={"Origin": base})
        assert ours.status_code == 303
        # Signed in, a form posted from elsewhere is refused even with the right CSRF token.
        page = await http.get("/console/payments")
        out = {"csrf_token": csrf_token(page.text)}
        elsewhere = await http.post(
            "/console/sign-out", data=out, headers={"Origin": "https://evil.example"}
        )
        assert elsewhere.status_code == 403
        assert (await http.get("/console/payments")).status_code == 200


async def test_the_cookies_are_secure_behind_a_trusted_tls_proxy(
    cluster: Settings, keys: ApiKeyService
) -> None:
    """The tests' cluster trusts 127.0.0.1 as a proxy: its `X-Forwarded-Proto: https` makes
    both cookies Secure (an untrusted peer's header counts for nothing:
    tests/serve_app/test_client_ip.py)."""
    _, secret = await keys.create(name="console-proto", scopes=READ)
    tls = {"X-Forwarded-Proto": "https"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{cluster.port}") as http:
        form = await http.get("/console/sign-in", headers=tls)
        login_cookie = form.headers["set-cookie"]
        assert "secure" in login_cookie.lower()
        token = login_token(form.text)
        # httpx keeps Secure cookies to https; the browser behind the proxy would send it.
        signed = await http.post(
            "/console/sign-in",
            data={"api_key": secret, "login_token": token},
            headers={**tls, "Cookie": login_cookie.split(";")[0]},
        )
        assert signed.status_code == 303, signed.text
        cookie = next(
            c for c in signed.headers.get_list("set-cookie") if c.startswith(COOKIE + "=")
        )
        assert "secure" in cookie.lower()


async def test_an_idle_session_ends(cluster: Settings, keys: ApiKeyService) -> None:
    """A session last seen longer ago than PAYGRID_CONSOLE_IDLE_S opens nothing (its record's
    `seen_at` moved back in Redis: no sleeping through the idle time)."""
    _, secret = await keys.create(name="console-idle", scopes=READ)
    console = await Console.signed_in(f"http://127.0.0.1:{cluster.port}", secret)
    redis = Redis.from_url(cluster.redis_dsn)
    try:
        assert (await console.page("/console/payments")).status_code == 200
        name = (
            "paygrid:console:session:"
            + hashlib.sha256(console.http.cookies[COOKIE].encode()).hexdigest()
        )
        raw = await redis.get(name)
        assert raw is not None
        record = orjson.loads(raw)
        record["seen_at"] -= cluster.console_idle_s + 1
        await redis.set(name, orjson.dumps(record), keepttl=True)
        idle = await console.page("/console/payments")
        assert idle.status_code == 401
        assert "idle" in idle.text
        assert await redis.exists(name) == 0
    finally:
        await redis.aclose()
        await console.close()


def _address() -> str:
    """A fresh client address: the per-address buckets live in the shared Redis."""
    return str(ip_address(f"2001:db8:c0::{uuid4().hex[:4]}"))


async def test_a_key_used_from_outside_its_allow_list_is_refused_and_audited(
    cluster: Settings, keys: ApiKeyService, db: asyncpg.Pool
) -> None:
    key, secret = await keys.create(
        name="console-fenced", scopes=READ, allowed_networks=(ip_network("192.0.2.0/24"),)
    )
    base = f"http://127.0.0.1:{cluster.port}"
    address = _address()
    outside = {"X-Forwarded-For": address}
    async with httpx.AsyncClient(base_url=base, headers=outside) as http:
        refused = await sign_in(http, secret)
        assert refused.status_code == 403
        assert "may not be used from this address" in refused.text
        assert COOKIE + "=" not in refused.headers.get("set-cookie", "")
        unknown = await sign_in(http, "pgk_unknownsecretvalue")
        assert unknown.status_code == 401
    rows = await db.fetch(
        "SELECT reason, api_key_id, key_prefix, host(client_ip) AS ip, path FROM auth_failures "
        "WHERE client_ip = $1::inet",
        address,
    )
    found = {(r["reason"], r["api_key_id"], r["key_prefix"], r["ip"], r["path"]) for r in rows}
    assert found == {
        ("ip_not_allowed", key.id, None, address, "/console/sign-in"),
        ("unknown", None, "pgk_unknow", address, "/console/sign-in"),
    }
    audited = await db.fetchval("SELECT string_agg(f::text, ' ') FROM auth_failures f")
    assert secret not in audited
    assert "pgk_unknownsecretvalue" not in audited

    # Signed in from inside, the session is refused wherever the key would be.
    async with httpx.AsyncClient(base_url=base, headers={"X-Forwarded-For": "192.0.2.9"}) as http:
        assert (await sign_in(http, secret)).status_code == 303
        assert (await http.get("/console/payments")).status_code == 200
        elsewhere = await http.get("/console/payments", headers=outside)
        assert elsewhere.status_code == 403
        assert "may not be used from this address" in elsewhere.text
        # The session itself goes on from inside.
        assert (await http.get("/console/payments")).status_code == 200


async def test_failed_sign_ins_are_throttled_per_address(
    cluster: Settings, keys: ApiKeyService
) -> None:
    """Past the per-address bucket of failed authentications (the API's), one address gets
    429 with Retry-After; another address is still answered, and signs in."""
    _, secret = await keys.create(name="console-throttle", scopes=READ)
    base = f"http://127.0.0.1:{cluster.port}"
    noisy, quiet = _address(), _address()
    async with httpx.AsyncClient(base_url=base, headers={"X-Forwarded-For": noisy}) as http:
        form = await http.get("/console/sign-in")
        fields = {"api_key": "pgk_wrong", "login_token": login_token(form.text)}
        # Each refusal's page sets a new login cookie: every post keeps this form's.
        cookie = {"Cookie": form.headers["set-cookie"].split(";")[0]}
        throttled: httpx.Response | None = None
        # Bounded: the bucket holds 40 and refills 20/s, far below this many.
        for _ in range(40):
            answers = await asyncio.gather(
                *(http.post("/console/sign-in", data=fields, headers=cookie) for _ in range(16))
            )
            assert {a.status_code for a in answers} <= {401, 429}
            throttled = next((a for a in answers if a.status_code == 429), None)
            if throttled is not None:
                break
        assert throttled is not None, "failed sign-ins were never throttled"
        assert int(throttled.headers["retry-after"]) >= 1
        assert "too many failed authentications" in throttled.text
    async with httpx.AsyncClient(base_url=base, headers={"X-Forwarded-For": quiet}) as http:
        assert (await sign_in(http, "pgk_wrong")).status_code == 401
        assert (await sign_in(http, secret)).status_code == 303


async def test_the_keys_own_rate_limit_applies_to_the_console(
    cluster: Settings, keys: ApiKeyService
) -> None:
    """Signing in and each page draw from the key's bucket, as its API requests do."""
    _, secret = await keys.create(name="console-limited", scopes=READ, rate_limit=parse_rate("3/h"))
    console = await Console.signed_in(f"http://127.0.0.1:{cluster.port}", secret)
    try:
        answers = [await console.page("/console/payments") for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 429]
        assert [a.headers["x-ratelimit-remaining"] for a in answers] == ["1", "0", "0"]
        throttled = answers[-1]
        assert int(throttled.headers["retry-after"]) > 0
        assert "over its rate limit" in throttled.text
        assert "text/html" in throttled.headers["content-type"]
        # Throttled, not signed out.
        assert COOKIE in console.http.cookies
    finally:
        await console.close()
