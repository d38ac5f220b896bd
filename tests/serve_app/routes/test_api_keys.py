"""API keys over HTTP (admin): the secret only in the creating answer, never in a list; rotation
with a grace period that works and then ends; revocation; allow-lists; per-key limits with the
`X-RateLimit-*` headers, 429 with `Retry-After`, and 2,000 requests over the limit throttled
while another key goes on unaffected."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import uuid4

import asyncpg
import httpx
import pytest

from engine.auth.keys import ApiKeyService
from engine.ratelimit.limits import UNLIMITED
from schema.states import Scope
from tests.waiting import wait_until


@pytest.fixture(scope="module")
async def admin(keys: ApiKeyService) -> dict[str, str]:
    _, secret = await keys.create(
        name="keys admin", scopes=frozenset({Scope.ADMIN}), rate_limit=UNLIMITED
    )
    return {"Authorization": f"Bearer {secret}"}


def bearer(secret: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}", **extra}


async def create(http: httpx.AsyncClient, admin: dict[str, str], **body: Any) -> dict[str, Any]:
    response = await http.post("/api/keys", json=body, headers=admin)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()["data"]
    return created


async def test_create_list_retrieve_never_show_the_secret_again(
    http: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Pool
) -> None:
    created = await create(
        http,
        admin,
        name="partner",
        scopes=["payments:read", "webhooks"],
        expires_in_days=30,
        allowed_ips=["203.0.113.0/24", "2001:db8::1"],
        rate_limit="5000/s",
    )
    secret = created["secret"]
    assert secret.startswith("pgk_")
    assert created["prefix"] == secret[:10]
    assert created["scopes"] == ["payments:read", "webhooks"]
    assert created["allowed_ips"] == ["203.0.113.0/24", "2001:db8::1/128"]
    assert created["rate_limit"] == "5000/s"
    assert created["expires_at"] is not None

    listed = await http.get("/api/keys", headers=admin)
    assert listed.status_code == 200
    mine = [k for k in listed.json()["data"] if k["id"] == created["id"]]
    assert len(mine) == 1
    assert "secret" not in mine[0]
    assert secret not in listed.text
    key_hash = await db.fetchval("SELECT key_hash FROM api_keys WHERE id = $1", created["id"])
    assert key_hash.hex() not in listed.text

    await http.get("/api/payments", headers=bearer(secret, **{"X-Forwarded-For": "203.0.113.5"}))
    one = await http.get(f"/api/keys/{created['id']}", headers=admin)
    assert one.status_code == 200
    assert one.json()["data"]["last_used_at"] is not None
    assert "secret" not in one.json()["data"]
    assert (await http.get(f"/api/keys/{uuid4()}", headers=admin)).status_code == 404


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"name": "x", "scopes": ["root"]}, "scopes.0"),
        ({"name": "x", "scopes": []}, "scopes"),
        ({"name": "", "scopes": ["admin"]}, "name"),
        ({"name": "x", "scopes": ["admin"], "allowed_ips": ["10.0.0.300/8"]}, "allowed_ips.0"),
        ({"name": "x", "scopes": ["admin"], "rate_limit": "fast"}, "rate_limit"),
        ({"name": "x", "scopes": ["admin"], "expires_in_days": 0}, "expires_in_days"),
    ],
)
async def test_bad_input_names_the_field(
    http: httpx.AsyncClient, admin: dict[str, str], body: dict[str, Any], param: str
) -> None:
    response = await http.post("/api/keys", json=body, headers=admin)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


async def test_rotation_grace_works_then_ends(
    http: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    created = await create(http, admin, name="rotating", scopes=["payments:read"])
    old = created["secret"]
    rotated = await http.post(
        f"/api/keys/{created['id']}/rotate", json={"grace_period_s": 1}, headers=admin
    )
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["data"]["secret"]
    assert new != old
    assert rotated.json()["data"]["rotated_at"] is not None
    assert (await http.get("/api/payments", headers=bearer(old))).status_code == 200
    assert (await http.get("/api/payments", headers=bearer(new))).status_code == 200

    async def old_refused() -> bool:
        return (await http.get("/api/payments", headers=bearer(old))).status_code == 401

    await wait_until(old_refused, timeout_s=5, what="the rotated-out secret to be refused")
    assert (await http.get("/api/payments", headers=bearer(new))).status_code == 200


async def test_revoke_and_allow_list(http: httpx.AsyncClient, admin: dict[str, str]) -> None:
    created = await create(
        http, admin, name="fenced", scopes=["payments:read"], allowed_ips=["192.0.2.0/24"]
    )
    inside = bearer(created["secret"], **{"X-Forwarded-For": "192.0.2.10"})
    outside = bearer(created["secret"], **{"X-Forwarded-For": "198.51.100.10"})
    assert (await http.get("/api/payments", headers=inside)).status_code == 200
    refused = await http.get("/api/payments", headers=outside)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "ip_not_allowed"

    revoked = await http.delete(f"/api/keys/{created['id']}", headers=admin)
    assert revoked.status_code == 200
    assert revoked.json()["data"]["revoked_at"] is not None
    assert (await http.get("/api/payments", headers=inside)).status_code == 401
    again = await http.post(f"/api/keys/{created['id']}/rotate", headers=admin)
    assert again.status_code == 422


async def test_rate_limit_headers_and_429(http: httpx.AsyncClient, admin: dict[str, str]) -> None:
    created = await create(http, admin, name="limited", scopes=["payments:read"], rate_limit="3/h")
    headers = bearer(created["secret"])
    answers = [await http.get("/api/payments", headers=headers) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["x-ratelimit-remaining"] for a in answers] == ["2", "1", "0", "0"]
    assert {a.headers["x-ratelimit-limit"] for a in answers} == {"3"}
    assert int(answers[0].headers["x-ratelimit-reset"]) > 0
    throttled = answers[-1]
    assert throttled.json()["error"]["type"] == "rate_limit_error"
    assert 1100 <= int(throttled.headers["retry-after"]) <= 1200
    assert "retry-after" not in answers[0].headers


async def test_two_thousand_over_the_limit_leave_another_key_alone(
    http: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    noisy = bearer(
        (await create(http, admin, name="noisy", scopes=["payments:read"], rate_limit="10/h"))[
            "secret"
        ]
    )
    quiet = bearer((await create(http, admin, name="quiet", scopes=["payments:read"]))["secret"])
    semaphore = asyncio.Semaphore(32)

    async def get(headers: dict[str, str]) -> int:
        async with semaphore:
            return (await http.get("/api/payments?limit=1", headers=headers)).status_code

    noisy_calls = [get(noisy) for _ in range(2010)]
    quiet_calls = [get(quiet) for _ in range(50)]
    statuses = await asyncio.gather(*noisy_calls, *quiet_calls)
    noisy_statuses, quiet_statuses = statuses[:2010], statuses[2010:]
    assert noisy_statuses.count(200) == 10
    assert noisy_statuses.count(429) == 2000
    assert set(quiet_statuses) == {200}
