"""The reports API: an admin submits a transaction summary (202 with an id), follows it to
success, reads its files and its chart; other scopes are refused, bad ranges name the field,
unknown ids are 404."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from engine.auth.keys import ApiKeyService, Scope
from engine.ratelimit.limits import UNLIMITED
from tests.factories import Api
from tests.waiting import wait_until

SUMMARY = "/api/reports/transaction-summary"


@pytest.fixture(scope="module")
async def admin(http: httpx.AsyncClient, keys: ApiKeyService) -> Api:
    # Unlimited: admin routes allow 10/s, and these tests are not about the limit.
    _, secret = await keys.create(
        name="reports", scopes=frozenset({Scope.ADMIN}), rate_limit=UNLIMITED
    )
    return Api(http, secret)


async def test_summary_runs_and_serves_its_files_and_chart(admin: Api) -> None:
    created = await admin.post(SUMMARY, {"from": "1970-01-01", "to": "1970-01-02"})
    assert created.status_code == 202, created.text
    report = created.json()["data"]
    assert (report["status"], report["from"], report["to"]) == (
        "pending",
        "1970-01-01",
        "1970-01-02",
    )
    path = f"/api/reports/{report['id']}"
    seen: dict[str, Any] = {}

    async def finished() -> bool:
        response = await admin.get(path)
        assert response.status_code == 200, response.text
        seen.update(response.json()["data"])
        return seen["status"] not in ("pending", "running")

    await wait_until(finished, timeout_s=120, what=lambda: f"the report to finish: {seen}")
    assert seen["status"] == "succeeded", seen
    assert {"daily.parquet", "daily.csv", "declines.csv", "daily_volume.png"} <= set(seen["files"])
    assert seen["chart_url"] == f"{path}/chart.png"
    chart = await admin.http.get(seen["chart_url"], headers=admin.headers())
    assert chart.status_code == 200
    assert chart.headers["content-type"] == "image/png"
    assert chart.content.startswith(b"\x89PNG")


async def test_other_scopes_are_refused(api: Api, admin: Api) -> None:
    refused = await api.post(SUMMARY, {"from": "2026-01-01", "to": "2026-01-31"})
    assert refused.status_code == 403
    assert (await api.get(f"/api/reports/{uuid.uuid4()}")).status_code == 403
    assert (await api.get(f"/api/reports/{uuid.uuid4()}/chart.png")).status_code == 403


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"from": "2026-02-01", "to": "2026-01-31"}, "to"),
        ({"from": "2024-01-01", "to": "2025-01-01"}, "to"),
        ({"to": "2026-01-31"}, "from"),
        ({"from": "2026-01-01"}, "to"),
        ({"from": "2026-13-01", "to": "2026-01-31"}, "from"),
        ({"from": "2026-01-01'; DROP TABLE transactions; --", "to": "2026-01-31"}, "from"),
    ],
)
async def test_bad_ranges_name_the_field(admin: Api, body: dict[str, str], param: str) -> None:
    response = await admin.post(SUMMARY, body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


async def test_unknown_and_malformed_ids(admin: Api) -> None:
    for path in (f"/api/reports/{uuid.uuid4()}", f"/api/reports/{uuid.uuid4()}/chart.png"):
        missing = await admin.get(path)
        assert missing.status_code == 404, missing.text
        assert missing.json()["error"]["code"] == "resource_missing"
    malformed = await admin.get("/api/reports/not-a-uuid")
    assert malformed.status_code == 400
