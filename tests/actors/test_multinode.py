"""paygrid on a multi-node Ray cluster (the session's: a head and two worker nodes on this
machine): its actors are dealt over every node, and when a worker node is lost under purchase
and webhook load, its shards and dispatchers come back on the nodes that remain, every answered
payment exists exactly once, every request retried with its Idempotency-Key gets one answer, the
ledger agrees with the payments, and every event is delivered at least once.

It takes a node away, so it runs after every other test that uses the cluster (see the
ordering in tests/conftest.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
import ray
from ray.cluster_utils import Cluster
from ray.exceptions import RayError

from actors import fleet
from actors.options import NAMESPACE
from engine.auth.keys import ApiKeyService, Scope
from engine.config import Settings
from engine.ratelimit.limits import UNLIMITED
from tests.factories import Api
from tests.load_checks import (
    Hooks,
    every_request_has_one_answer,
    receiving_hooks,
    records_agree,
)
from tests.purchase_load import PurchaseLoad
from tests.ray_cluster import alive_nodes
from tests.waiting import wait_until

pytestmark = pytest.mark.multinode

CLIENTS = 8


@pytest.fixture
async def hooks() -> AsyncIterator[Hooks]:
    async with receiving_hooks() as receiver:
        yield receiver


def _names(settings: Settings) -> list[str]:
    """The shards and dispatchers of the deployment."""
    shards = [f"ledger-shard-{i}" for i in range(settings.ledger_shards)]
    return shards + [f"webhook-dispatcher-{i}" for i in range(settings.webhook_dispatchers)]


async def _placements(settings: Settings, *, not_on: str | None = None) -> dict[str, str]:
    """Shard and dispatcher name → the node it runs on, once each answers `where` from a node
    other than `not_on` (an actor restarting after a node loss is unavailable for a moment, and
    its old process may answer until the node is declared dead)."""
    found: dict[str, str] = {}

    async def answered() -> bool:
        for name in _names(settings):
            if name in found:
                continue
            try:
                handle = ray.get_actor(name, namespace=NAMESPACE)
                where: dict[str, object] = await asyncio.wait_for(handle.where.remote(), 10)
            except (RayError, TimeoutError):
                return False
            if str(where["node_id"]) == not_on:
                return False
            found[name] = str(where["node_id"])
        return True

    await wait_until(answered, timeout_s=120, what=lambda: f"actors to answer (so far {found})")
    return found


async def _up(http: httpx.AsyncClient) -> None:
    async def healthy() -> bool:
        try:
            return (await http.get("/health")).status_code == 200
        except httpx.TransportError:
            return False

    await wait_until(healthy, timeout_s=120, what="paygrid on the cluster")


def _lose_a_worker(cluster: Cluster, placed: dict[str, str]) -> str:
    """Kill the worker node hosting the most shards and dispatchers; returns its id."""
    workers = {node.node_id: node for node in cluster.worker_nodes}
    hosts = [node for node in placed.values() if node in workers]
    victim = max(set(hosts), key=hosts.count)
    cluster.remove_node(workers[victim], allow_graceful=False)
    return victim


async def test_node_loss_moves_actors_and_loses_nothing(
    cluster: Settings,
    ray_nodes: Cluster,
    hooks: Hooks,
    db: asyncpg.Pool,
    keys: ApiKeyService,
) -> None:
    settings = cluster
    # Unlimited: the load here is about losing a node, not about the key's rate limit.
    _, secret = await keys.create(
        name="multinode",
        scopes=frozenset({Scope.PAYMENTS_WRITE, Scope.WEBHOOKS}),
        rate_limit=UNLIMITED,
    )
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.port}", timeout=60) as http:
        api = Api(http, secret)
        await _up(http)
        nodes = alive_nodes()
        assert len(nodes) == 3
        placed = await _placements(settings)
        assert set(placed.values()) == nodes, placed  # on every node, not only the head

        hook = {"url": hooks.url, "enabled_events": ["*"]}
        endpoint = await api.post("/api/webhooks/endpoints", hook)
        assert endpoint.status_code == 200
        try:
            customers = [str((await api.purchase(amount=100))["customer_id"]) for _ in range(6)]
            load = PurchaseLoad(api, customers, "multinode")
            load.start(CLIENTS)
            await load.until_succeeded(20, timeout_s=120, what="purchases flowing")
            victim = _lose_a_worker(ray_nodes, placed)
            served = load.succeeded()
            await load.until_succeeded(served + 25, timeout_s=180, what="serving after the loss")
            await load.stop()

            moved = await _placements(settings, not_on=victim)
            assert set(moved.values()) <= nodes - {victim}, moved  # back, on surviving nodes
            errors = [s.response for s in load.sent if s.response is not None and s.status == 500]
            assert not errors, [(r.headers, r.text) for r in errors]
            await every_request_has_one_answer(load)
            await records_agree(db, load, hooks)
        finally:
            # The receiver goes away with this test: later events must not queue for it.
            endpoint_id = endpoint.json()["data"]["id"]
            await http.delete(f"/api/webhooks/endpoints/{endpoint_id}", headers=api.headers())
    _restart_retires_what_changed(settings)


def _restart_retires_what_changed(settings: Settings) -> None:
    """What `paygrid serve` does before it deploys: actors running with the same settings stay;
    with other settings (here one shard fewer) every one is retired, the extra shard included."""
    assert fleet.retire_stale(settings) == []
    fewer = settings.model_copy(update={"ledger_shards": settings.ledger_shards - 1})
    retired = fleet.retire_stale(fewer)
    assert f"ledger-shard-{settings.ledger_shards - 1}" in retired
    assert set(retired) >= set(_names(settings))
    for name in _names(settings):
        with pytest.raises(ValueError, match="Failed to look up actor"):
            ray.get_actor(name, namespace=NAMESPACE)
