"""`/metrics` on the session's cluster: an admin key is required (no trusted network is
configured here), the answer parses as Prometheus text, a purchase shows up in the request,
payment, shard, gateway and pool series summed over the replica and the shard actor, and every
metric the Grafana dashboard and the alerting rules use is exported."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from engine.auth.keys import ApiKeyService, Scope
from tests.factories import Api
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[3]
DASHBOARD = ROOT / "ops" / "grafana" / "paygrid.json"
ALERTS = ROOT / "ops" / "prometheus" / "alerts.yml"
_METRIC = re.compile(r"\bpaygrid_[a-z_]+\b")


@pytest.fixture(scope="module")
async def admin(http: httpx.AsyncClient, keys: ApiKeyService) -> Api:
    _, secret = await keys.create(name="metrics", scopes=frozenset({Scope.ADMIN}))
    return Api(http, secret)


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def _scrape(admin: Api) -> tuple[set[str], Samples]:
    answer = await admin.get("/metrics")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    names: set[str] = set()
    samples: Samples = {}
    for family in text_string_to_metric_families(answer.text):
        # A family is exported once declared, samples or not (a counter's name keeps _total).
        names.add(family.name + ("_total" if family.type == "counter" else ""))
        if family.type == "histogram":
            names.update(family.name + suffix for suffix in ("_bucket", "_sum", "_count"))
        for s in family.samples:
            names.add(s.name)
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return names, samples


def _sum(samples: Samples, name: str, **labels: str) -> float:
    return sum(
        v
        for (n, got), v in samples.items()
        if n == name and all((k, val) in got for k, val in labels.items())
    )


async def test_metrics_need_an_admin_key(http: httpx.AsyncClient, api: Api) -> None:
    assert (await http.get("/metrics")).status_code == 401
    assert (await api.get("/metrics")).status_code == 403


async def test_a_purchase_shows_up_across_replica_and_shard(admin: Api, api: Api) -> None:
    _, before = await _scrape(admin)
    payments = {"operation": "purchase", "outcome": "succeeded", "currency": "USD"}
    start = _sum(before, "paygrid_payments_total", **payments)
    requests = _sum(before, "paygrid_http_requests_total", route="/api/payments/purchase")
    await api.purchase(amount=1234)

    seen: Samples = {}

    async def counted() -> bool:
        nonlocal seen
        _, seen = await _scrape(admin)
        return (
            _sum(seen, "paygrid_payments_total", **payments) >= start + 1
            and _sum(seen, "paygrid_http_requests_total", route="/api/payments/purchase")
            >= requests + 1
        )

    await wait_until(counted, timeout_s=15, what="the purchase in /metrics")
    assert _sum(seen, "paygrid_payment_amount_minor_total", currency="USD") >= 1234
    assert _sum(seen, "paygrid_http_request_duration_seconds_count") >= 1
    assert _sum(seen, "paygrid_shard_mutation_duration_seconds_count") >= 1
    assert _sum(seen, "paygrid_gateway_request_duration_seconds_count", operation="charge") >= 1
    assert _sum(seen, "paygrid_db_pool_connections_max", component="api") >= 1
    assert _sum(seen, "paygrid_db_pool_connections_max", component="shard") >= 1
    assert ("paygrid_queue_depth", (("queue", "webhooks"),)) in seen
    # Ids never become labels: routes are templates.
    routes = {dict(labels).get("route", "") for _, labels in seen}
    assert not [r for r in routes if re.search(r"[0-9a-f]{8}-[0-9a-f]{4}", r)]


async def test_dashboard_and_alerts_use_only_exported_metrics(admin: Api) -> None:
    exported, _ = await _scrape(admin)
    dashboard = json.loads(DASHBOARD.read_text())
    expressions = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    rules = yaml.safe_load(ALERTS.read_text())
    expressions += [r["expr"] for g in rules["groups"] for r in g["rules"]]
    referenced = {m for e in expressions for m in _METRIC.findall(e)}
    assert referenced, "the dashboard references no paygrid metric"
    missing = sorted(m for m in referenced if m not in exported)
    assert not missing, f"referenced but not exported: {missing}"
