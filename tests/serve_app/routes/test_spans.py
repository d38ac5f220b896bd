"""One purchase through the real Serve app is one trace: the HTTP request in the replica, the
call to the ledger shard, the shard's command, its batch stages and their SQL, and the gateway
call, each the child of the one before; its webhook attempt is a trace of its own, linked to
the request, and the receiver gets that attempt's own traceparent. No span carries the card,
its CVC, the API key or the endpoint's secret."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from uuid import uuid4

import pytest
from redis.asyncio import Redis

from engine.config import Settings
from engine.tracing import FinishedSpan, spans_for_trace, traces_for_correlation
from tests.factories import VISA, Api, payment_body
from tests.serve_app.routes.receiver import Received, Receiver, create_endpoint, until


@pytest.fixture
async def redis(cluster: Settings) -> AsyncIterator[Redis]:
    client = Redis.from_url(cluster.redis_dsn)
    yield client
    await client.aclose()


@pytest.fixture
async def receiver_endpoint(api: Api, receiver: Receiver) -> AsyncIterator[dict[str, str]]:
    endpoint = await create_endpoint(api, f"{receiver.base_url}/traced", ["payment.succeeded"])
    yield endpoint
    await api.http.delete(f"/api/webhooks/endpoints/{endpoint['id']}", headers=api.headers())


def _one(spans: list[FinishedSpan], name: str) -> FinishedSpan:
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, (name, [s.name for s in spans])
    return found[0]


async def test_a_purchase_is_one_trace_and_its_webhook_attempt_links_to_it(
    api: Api,
    api_key: str,
    receiver: Receiver,
    receiver_endpoint: dict[str, str],
    redis: Redis,
) -> None:
    trace_id, caller_span = secrets.token_hex(16), secrets.token_hex(8)
    correlation = f"trace-{uuid4().hex}"
    response = await api.post(
        "/api/payments/purchase",
        payment_body(),
        traceparent=f"00-{trace_id}-{caller_span}-01",
        **{"X-Correlation-ID": correlation},
    )
    assert response.status_code == 200, response.text
    payment_id = response.json()["data"]["id"]

    names = {
        "POST /api/payments/purchase",
        "LedgerShard.execute",
        "LedgerShard CreatePayment",
        "ledger_shard.begin",
        "ledger_shard.finalize",
        "gateway sandbox charge",
    }
    spans: list[FinishedSpan] = []

    async def complete() -> bool:
        spans[:] = await spans_for_trace(redis, trace_id)
        return names <= {s.name for s in spans}

    await until(complete, "the purchase's spans from the replica and the shard")
    request = _one(spans, "POST /api/payments/purchase")
    call = _one(spans, "LedgerShard.execute")
    command = _one(spans, "LedgerShard CreatePayment")
    begin = _one(spans, "ledger_shard.begin")
    gateway = _one(spans, "gateway sandbox charge")
    # The caller's traceparent is honoured; each hop is the child of the one before.
    assert request.parent_span_id == caller_span
    assert request.kind == "SERVER"
    assert request.attributes["http.route"] == "/api/payments/purchase"
    assert request.attributes["http.response.status_code"] == 200
    assert request.attributes["paygrid.correlation_id"] == correlation
    assert request.process.startswith("api-")
    assert call.parent_span_id == request.span_id
    assert call.process == request.process
    assert command.parent_span_id == call.span_id
    assert command.process.startswith("ledger-shard-")
    assert begin.parent_span_id == command.span_id
    assert (trace_id, command.span_id) in begin.links
    statements = [s for s in spans if s.attributes.get("db.system.name") == "postgresql"]
    assert any(s.parent_span_id == begin.span_id for s in statements)
    assert {"INSERT transactions", "COMMIT"} <= {s.name for s in statements}, [
        s.name for s in statements
    ]
    assert gateway.parent_span_id == command.span_id
    assert gateway.attributes["paygrid.gateway.result"] == "approved"

    def delivered() -> list[Received]:
        return [
            r for r in receiver.at("/traced") if r.payload["data"]["object"]["id"] == payment_id
        ]

    await until(lambda: bool(delivered()), "the purchase's webhook")
    sent = delivered()[0].headers["traceparent"]
    _, attempt_trace, attempt_span, flags = sent.split("-")
    assert attempt_trace != trace_id
    assert int(flags, 16) & 1  # sampled
    attempts: list[FinishedSpan] = []

    async def exported() -> bool:
        attempts[:] = [
            s for s in await spans_for_trace(redis, attempt_trace) if s.span_id == attempt_span
        ]
        return bool(attempts)

    await until(exported, "the webhook attempt's span")
    (attempt,) = attempts
    assert attempt.name == "webhook payment.succeeded"
    assert attempt.parent_span_id is None
    assert attempt.process.startswith("webhook-dispatcher-")
    assert attempt.attributes["http.response.status_code"] == 200
    assert (trace_id, command.span_id) in attempt.links
    # Both traces are found by the request's correlation id (the request timeline's way in),
    # beside the attempts' traces of any endpoint other tests left subscribed to every event.
    found = set(await traces_for_correlation(redis, correlation))
    assert {trace_id, attempt_trace} <= found
    for other in found - {trace_id, attempt_trace}:
        spans = await spans_for_trace(redis, other)
        assert {s.name for s in spans if s.parent_span_id is None} <= {attempt.name}, other

    exported_text = "\n".join(s.to_json().decode() for s in [*spans, attempt])
    for secret in (VISA, api_key, receiver_endpoint["secret"], '"cvc"', '"number"'):
        assert secret not in exported_text
