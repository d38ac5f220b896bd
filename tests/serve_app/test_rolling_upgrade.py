"""A rolling upgrade under load. While eight clients send purchases, each with its own
Idempotency-Key, and every event is delivered to a local webhook receiver, a new release is
deployed as `serve deploy` deploys it (the application `app_builder` builds, run by Serve):
every API replica and every actor (ledger shards, webhook dispatchers, job schedulers) is
replaced. Then it is rolled back as `paygrid serve` deploys (`serve_app.runner.deploy`), which
leaves the session's cluster as it was.

A new release differs from the running one in its code or its settings; both change
`Settings.fingerprint` (the code through `engine.release`, tested in
tests/engine/test_release.py), and a settings change is what a test can deploy.

Nothing is lost or doubled: each request ends with exactly one payment (answered 200 at once,
or answered with a retryable error and then, retried with its key, 200 with that one payment),
the ledger equals the payments, and every event reaches the receiver, each with one delivery row.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import asyncpg
import httpx
import pytest
import ray
from ray import serve
from ray.exceptions import RayError

from actors.options import NAMESPACE
from engine.auth.keys import ApiKeyService, Scope
from engine.config import Settings
from engine.ratelimit.limits import UNLIMITED
from serve_app.app import app_builder
from serve_app.runner import APP_NAME, deploy
from tests.factories import Api
from tests.load_checks import (
    Hooks,
    every_request_has_one_answer,
    receiving_hooks,
    records_agree,
)
from tests.purchase_load import RETRYABLE, PurchaseLoad
from tests.waiting import wait_until

CLIENTS = 8
# Purchases answered 200 before the upgrade and after each step: a few hundred requests in all.
PER_PHASE = 40
REPLICA_PREFIX = "SERVE_REPLICA::paygrid#PaygridAPI#"


@pytest.fixture
async def hooks() -> AsyncIterator[Hooks]:
    async with receiving_hooks() as receiver:
        yield receiver


def _replicas() -> set[str]:
    return {
        entry["name"]
        for entry in ray.util.list_named_actors(all_namespaces=True)
        if entry["name"].startswith(REPLICA_PREFIX)
    }


def _actor_names(settings: Settings) -> list[str]:
    return (
        [f"ledger-shard-{i}" for i in range(settings.ledger_shards)]
        + [f"webhook-dispatcher-{i}" for i in range(settings.webhook_dispatchers)]
        + [f"job-scheduler-{i}" for i in range(settings.job_schedulers)]
    )


async def _fingerprints(settings: Settings) -> dict[str, str]:
    """Each actor's settings fingerprint, or why it did not answer."""
    found: dict[str, str] = {}
    for name in _actor_names(settings):
        try:
            handle = ray.get_actor(name, namespace=NAMESPACE)
            found[name] = await asyncio.wait_for(handle.settings_fingerprint.remote(), 10)
        except (RayError, ValueError, TimeoutError) as exc:
            found[name] = type(exc).__name__
    return found


def _serve_deploy(settings: Settings) -> None:
    """What `serve deploy` does with the config's `import_path` and `args` (here every setting,
    as the cluster's environment and the file's args would give them)."""
    serve.run(app_builder(settings.model_dump()), name=APP_NAME, route_prefix="/")


async def _roll_to(
    settings: Settings, load: PurchaseLoad, served: int, how: Callable[[Settings], object]
) -> None:
    """Deploy `settings` under the load `how` an operator would, then wait until every replica
    and actor is of the new release and `served` more purchases succeeded."""
    before = _replicas()
    assert before
    # Deploying blocks until the application runs; the load goes on in this event loop.
    await asyncio.to_thread(how, settings)
    fingerprint = settings.fingerprint()
    seen: dict[str, str] = {}

    async def replaced() -> bool:
        replicas = _replicas()
        seen.update(await _fingerprints(settings))
        return bool(replicas) and not replicas & before and set(seen.values()) == {fingerprint}

    await wait_until(replaced, timeout_s=180, what=lambda: f"the new release everywhere: {seen}")
    target = load.succeeded() + served
    await load.until_succeeded(target, timeout_s=180, what="purchases served by the new release")


async def test_rolling_upgrade_under_load_loses_and_doubles_nothing(
    cluster: Settings, hooks: Hooks, db: asyncpg.Pool, keys: ApiKeyService
) -> None:
    _, secret = await keys.create(
        name="rolling-upgrade",
        scopes=frozenset({Scope.PAYMENTS_WRITE, Scope.WEBHOOKS}),
        rate_limit=UNLIMITED,
    )
    upgraded = cluster.model_copy(update={"webhook_timeout_s": cluster.webhook_timeout_s + 1})
    assert upgraded.fingerprint() != cluster.fingerprint()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{cluster.port}", timeout=60) as http:
        api = Api(http, secret)
        hook = {"url": hooks.url, "enabled_events": ["payment.succeeded"]}
        endpoint = await api.post("/api/webhooks/endpoints", hook)
        assert endpoint.status_code == 200, endpoint.text
        endpoint_id = endpoint.json()["data"]["id"]
        try:
            customers = [str((await api.purchase(amount=100))["customer_id"]) for _ in range(8)]
            load = PurchaseLoad(api, customers, "upgrade")
            load.start(CLIENTS)
            try:
                await load.until_succeeded(PER_PHASE, timeout_s=120, what="purchases flowing")
                await _roll_to(upgraded, load, PER_PHASE, _serve_deploy)
                await _roll_to(cluster, load, PER_PHASE, deploy)
            finally:
                await load.stop()

            # Each request was answered, or refused in a way its key makes safe to retry.
            statuses = {s.status for s in load.sent}
            assert statuses <= {200, 0, *RETRYABLE}, statuses
            await every_request_has_one_answer(load)
            events = await records_agree(db, load, hooks)
            # Not doubled: the load's customers were charged exactly what was asked, once per
            # key (besides the one payment each made before the load). A payment that a killed
            # shard wrote `processing` and whose gateway call never happened is settled
            # `failed` by recovery and its key freed, so its retry paid instead: no charge.
            others = await db.fetch(
                """SELECT t.id, t.status, t.amount, t.amount_captured, t.created_at
                   FROM transactions t
                   LEFT JOIN idempotency_keys i ON i.resource_id = t.id
                   WHERE t.customer_id = ANY($1::uuid[]) AND t.parent_id IS NULL
                     AND (i.idempotency_key IS NULL OR i.idempotency_key <> ALL($2::text[]))""",
                load.customers,
                [s.key for s in load.sent],
            )
            charged = [r for r in others if r["status"] != "failed"]
            assert len(charged) == len(customers), [dict(r) for r in others]
            assert {(r["status"], r["amount"]) for r in charged} == {("succeeded", 100)}
            abandoned = [r for r in others if r["status"] == "failed"]
            assert all(r["amount_captured"] == 0 for r in abandoned), abandoned
            total = await db.fetchval(
                """SELECT coalesce(sum(amount_captured), 0) FROM transactions
                   WHERE customer_id = ANY($1::uuid[]) AND parent_id IS NULL""",
                load.customers,
            )
            assert total == sum(s.body["amount"] for s in load.sent) + 100 * len(customers)
            # Every event delivered (records_agree saw each arrive): one delivery row each,
            # succeeded, so a receiver deduping on webhook-id holds each exactly once.
            rows: list[asyncpg.Record] = []

            async def settled() -> bool:
                rows[:] = await db.fetch(
                    """SELECT event_id::text, status FROM webhook_deliveries
                       WHERE endpoint_id = $1 AND event_id = ANY($2::uuid[])""",
                    endpoint_id,
                    list(events),
                )
                return {r["status"] for r in rows} == {"succeeded"}

            await wait_until(settled, timeout_s=60, what="every delivery marked succeeded")
            assert sorted(r["event_id"] for r in rows) == sorted(events)
        finally:
            await http.delete(f"/api/webhooks/endpoints/{endpoint_id}", headers=api.headers())
