"""The circuit breaker shared by the cluster, through the real stack (two ledger shards, one
replica, the `gateway-circuits-0` actor; the session runs gateways `sandbox`, `sandbox_b` with a
two-second reset). Five purchases failing at `sandbox` (switched into an outage) fail over to
`sandbox_b`, and the circuit is open on every shard and the replica within a second; while it
is open purchases go straight to `sandbox_b`; after the reset one probe at `sandbox` closes it
everywhere. Every payment records the gateway that took it and each attempt."""

from __future__ import annotations

import time
from typing import Any

import ray
from redis.asyncio import Redis

from actors.options import NAMESPACE
from engine.config import Settings
from engine.gateways.sandbox import SandboxGateway
from tests.factories import Api, payment_body
from tests.waiting import wait_until


async def _shard_views(settings: Settings) -> list[dict[str, str]]:
    views = []
    for index in range(settings.ledger_shards):
        shard = ray.get_actor(f"ledger-shard-{index}", namespace=NAMESPACE)
        views.append(await shard.gateway_circuits.remote())
    return views


async def _everywhere(api: Api, settings: Settings, state: str) -> bool:
    health = (await api.http.get("/health")).json()["data"]
    views = [*await _shard_views(settings), health["gateway_circuits"]]
    return all(v["sandbox"] == state and v["sandbox_b"] == "closed" for v in views)


async def _purchase(api: Api) -> dict[str, Any]:
    """A purchase by a new customer (so it lands on either shard)."""
    response = await api.post("/api/payments/purchase", payment_body(amount=1200))
    assert response.status_code == 200, response.text
    payment: dict[str, Any] = response.json()["data"]
    return payment


async def _attempts(api: Api, payment: dict[str, Any]) -> list[tuple[str, str]]:
    got = (await api.get(f"/api/payments/{payment['id']}")).json()["data"]
    return [(a["gateway"], a["outcome"]) for a in got["attempts"]]


async def test_failures_open_the_circuit_everywhere_and_one_probe_closes_it(
    cluster: Settings, api: Api
) -> None:
    redis = Redis.from_url(cluster.redis_dsn)
    sandbox = SandboxGateway(redis)
    await sandbox.set_outage(True)
    try:
        failed_over = [await _purchase(api) for _ in range(5)]
        opened_after = time.monotonic()

        assert {p["gateway"] for p in failed_over} == {"sandbox_b"}
        for payment in failed_over:
            assert await _attempts(api, payment) == [
                ("sandbox", "error"),
                ("sandbox_b", "approved"),
            ]

        async def open_everywhere() -> bool:
            return await _everywhere(api, cluster, "open")

        await wait_until(open_everywhere, timeout_s=1.0, what="the circuit open everywhere")
        assert time.monotonic() - opened_after < 1.0

        # While open: straight to the second gateway, no call to the first.
        while_open = [await _purchase(api) for _ in range(3)]
        for payment in while_open:
            assert payment["gateway"] == "sandbox_b"
            assert await _attempts(api, payment) == [("sandbox_b", "approved")]

        methods = (await api.get("/api/payments/methods")).json()["data"]
        assert [(m["gateway"], m["circuit"]) for m in methods] == [
            ("sandbox", "open"),
            ("sandbox_b", "closed"),
        ]
    finally:
        await sandbox.set_outage(False)

    try:
        # After the reset, one probe at `sandbox` (from the shard granted it) closes it; the
        # purchases meanwhile go to `sandbox_b` unless they are the probe.
        sent: list[dict[str, Any]] = []

        async def closed_everywhere() -> bool:
            sent.append(await _purchase(api))
            return await _everywhere(api, cluster, "closed")

        await wait_until(closed_everywhere, timeout_s=20.0, what="the circuit closed everywhere")
        assert [p["gateway"] for p in sent].count("sandbox") >= 1
        assert (await _purchase(api))["gateway"] == "sandbox"
    finally:
        await redis.aclose()
