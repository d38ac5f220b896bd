"""Webhooks end to end: a local receiver checks every signature with the `standardwebhooks`
package (a verifier we did not write), through retries, dead letters, replays, 410s and secret
rotation."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from uuid import uuid4

import asyncpg
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.factories import Api, payment_body
from tests.serve_app.routes.receiver import Received, Receiver, create_endpoint, until


@pytest.fixture
async def endpoints(api: Api) -> AsyncIterator[list[str]]:
    """Ids of endpoints a test made; deleted afterwards so they stop receiving."""
    made: list[str] = []
    yield made
    for endpoint_id in made:
        await api.http.delete(f"/api/webhooks/endpoints/{endpoint_id}", headers=api.headers())


def _verify(secret: str, received: Received) -> dict[str, Any]:
    return Webhook(secret).verify(received.body, received.headers)  # type: ignore[no-any-return]


async def test_every_payment_event_of_a_run_arrives_signed(
    api: Api, receiver: Receiver, endpoints: list[str], db: asyncpg.Pool
) -> None:
    endpoint = await create_endpoint(api, f"{receiver.base_url}/every", ["*"])
    endpoints.append(endpoint["id"])
    since = await db.fetchval("SELECT now()")
    await api.purchase(amount=100)
    await api.post("/api/payments/purchase", payment_body(number="4000000000000002"))
    voided = await api.authorize(amount=300)
    await api.post("/api/payments/void", {"payment_id": voided["id"]})
    paid = await api.purchase(amount=500)
    await api.post("/api/payments/refund", {"payment_id": paid["id"]})
    expected = {
        str(r["id"])
        for r in await db.fetch(
            "SELECT id FROM events WHERE created_at >= $1 AND event_type LIKE 'payment.%'", since
        )
    }
    assert len(expected) == 6

    def arrived() -> set[str]:
        return {r.headers["webhook-id"] for r in receiver.at("/every")}

    await until(lambda: expected <= arrived(), "every payment event")
    for received in receiver.at("/every"):
        _verify(endpoint["secret"], received)


async def test_payment_events_carry_correlation_and_trace(
    api: Api, receiver: Receiver, endpoints: list[str]
) -> None:
    endpoint = await create_endpoint(api, f"{receiver.base_url}/all", ["*"])
    endpoints.append(endpoint["id"])
    assert endpoint["secret"].startswith("whsec_")
    auth = await api.authorize(amount=1200)
    await api.post(
        "/api/payments/capture", {"payment_id": auth["id"]}, **{"X-Correlation-ID": "hook-capture"}
    )
    await api.post("/api/payments/refund", {"payment_id": auth["id"], "amount": 200})

    def types() -> list[str]:
        return [
            r.payload["type"]
            for r in receiver.at("/all")
            if r.payload["data"]["object"].get("id") == auth["id"]
        ]

    await until(lambda: len(types()) == 3, "three payment events")
    assert sorted(types()) == ["payment.authorized", "payment.captured", "payment.refunded"]
    for received in receiver.at("/all"):
        verified = _verify(endpoint["secret"], received)
        assert verified["id"] == received.headers["webhook-id"]
        assert received.headers["traceparent"].startswith("00-")
    captured = next(
        r
        for r in receiver.at("/all")
        if r.payload["type"] == "payment.captured"
        and r.payload["data"]["object"]["id"] == auth["id"]
    )
    assert captured.headers["x-correlation-id"] == "hook-capture"
    assert captured.payload["correlation_id"] == "hook-capture"
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "A" * 32).verify(captured.body, captured.headers)


# The session's retry schedule (tests/conftest.py), without jitter.
RETRY_STEPS_S = (0.1, 0.2, 0.4, 0.8)
# Clocks (the receiver's, PostgreSQL's) may disagree by a hair; waits never fall short by more.
CLOCK_SLACK_S = 0.01


async def test_flaky_receiver_gets_it_after_growing_delays(
    api: Api, receiver: Receiver, endpoints: list[str]
) -> None:
    receiver.script["/flaky"] = [503, 500, 429, 502]
    endpoint = await create_endpoint(api, f"{receiver.base_url}/flaky", ["payment.succeeded"])
    endpoints.append(endpoint["id"])
    payment = await api.purchase(amount=300)
    await until(lambda: len(receiver.at("/flaky")) >= 5, "five attempts")
    tries = receiver.at("/flaky")
    assert len(tries) == 5
    assert len({t.headers["webhook-id"] for t in tries}) == 1
    assert tries[0].payload["data"]["object"]["id"] == payment["id"]
    gaps = [b.at - a.at for a, b in itertools.pairwise(tries)]
    # Each retry waits at least its step of the schedule: a firm floor, however loaded the
    # machine. Above it, each gap adds the latency of noticing and sending (a poll interval
    # and a busy CPU's delays), so the growth is checked end to end: the last wait (0.8 s) is
    # longer than the first (0.1 s plus that latency, unless it exceeds 0.7 s).
    for gap, step in zip(gaps, RETRY_STEPS_S, strict=True):
        assert gap >= step - CLOCK_SLACK_S, gaps
    assert gaps[-1] > gaps[0], gaps

    async def succeeded() -> bool:
        found = await api.get("/api/webhooks/deliveries", endpoint_id=endpoint["id"])
        data = found.json()["data"]
        return bool(data) and data[0]["status"] == "succeeded"

    await until(succeeded, "the delivery to succeed")
    deliveries = await api.get("/api/webhooks/deliveries", endpoint_id=endpoint["id"])
    [delivery] = deliveries.json()["data"]
    assert [a["http_status"] for a in delivery["attempt_log"]] == [503, 500, 429, 502, 200]
    assert all(a["latency_ms"] >= 0 for a in delivery["attempt_log"])
    assert delivery["attempt_log"][0]["response_excerpt"] == "answer 503"


async def test_dead_letters_and_bulk_replay(
    api: Api, receiver: Receiver, endpoints: list[str], db: asyncpg.Pool
) -> None:
    receiver.default["/down"] = 503
    endpoint = await create_endpoint(api, f"{receiver.base_url}/down", ["payment.succeeded"])
    endpoints.append(endpoint["id"])
    payment = await api.purchase(amount=400)

    def status_is(wanted: str) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            status = await db.fetchval(
                "SELECT status FROM webhook_deliveries WHERE endpoint_id = $1::uuid",
                endpoint["id"],
            )
            return bool(status == wanted)

        return check

    await until(status_is("dead"), "the delivery to go dead")
    assert len(receiver.at("/down")) == 6  # the first try and five retries
    dead = await api.get("/api/webhooks/deliveries", endpoint_id=endpoint["id"], status="dead")
    assert len(dead.json()["data"]) == 1

    receiver.default["/down"] = 200
    replay = await api.post(
        "/api/webhooks/deliveries/retry", {"endpoint_id": endpoint["id"], "status": "dead"}
    )
    assert replay.json()["data"] == {"requeued": 1}
    await until(status_is("succeeded"), "the replay to be delivered")
    last = receiver.at("/down")[-1]
    assert last.payload["data"]["object"]["id"] == payment["id"]
    _verify(endpoint["secret"], last)


async def test_gone_disables_the_endpoint(
    api: Api, receiver: Receiver, endpoints: list[str], db: asyncpg.Pool
) -> None:
    receiver.default["/gone"] = 410
    endpoint = await create_endpoint(api, f"{receiver.base_url}/gone", ["payment.succeeded"])
    endpoints.append(endpoint["id"])
    await api.purchase(amount=500)

    async def current() -> dict[str, Any]:
        got = await api.get(f"/api/webhooks/endpoints/{endpoint['id']}")
        return got.json()["data"]  # type: ignore[no-any-return]

    async def disabled() -> bool:
        return bool((await current())["status"] == "disabled")

    await until(disabled, "410 to disable the endpoint")
    assert len(receiver.at("/gone")) == 1
    assert "410" in (await current())["disabled_reason"]
    disabled_events = await db.fetchval(
        "SELECT count(*) FROM events WHERE event_type = 'webhook_endpoint.disabled' "
        "AND object_id = $1::uuid",
        endpoint["id"],
    )
    assert disabled_events == 1


async def test_rotated_secret_old_and_new_both_verify(
    api: Api, receiver: Receiver, endpoints: list[str]
) -> None:
    endpoint = await create_endpoint(api, f"{receiver.base_url}/rotating", ["webhook.test"])
    endpoints.append(endpoint["id"])
    rotated = await api.post(f"/api/webhooks/endpoints/{endpoint['id']}/rotate-secret", {})
    new_secret = rotated.json()["data"]["secret"]
    assert new_secret != endpoint["secret"]
    test = await api.post(f"/api/webhooks/test/{endpoint['id']}", {})
    assert test.status_code == 200, test.text
    assert test.json()["data"]["outcome"] == "delivered"
    assert test.json()["data"]["http_status"] == 200
    [received] = receiver.at("/rotating")
    assert received.payload["type"] == "webhook.test"
    assert len(received.headers["webhook-signature"].split()) == 2
    _verify(endpoint["secret"], received)
    _verify(new_secret, received)


async def test_bad_endpoints_are_400_naming_the_field(api: Api, receiver: Receiver) -> None:
    cases = [
        ({"url": "not a url at all", "enabled_events": ["*"]}, "url"),
        ({"url": "ftp://127.0.0.1/x", "enabled_events": ["*"]}, "url"),
        ({"url": "http://169.254.169.254/latest/meta-data", "enabled_events": ["*"]}, "url"),
        ({"url": "https://[abc/x", "enabled_events": ["*"]}, "url"),
        ({"url": "https://example.com:99999/", "enabled_events": ["*"]}, "url"),
        (
            {"url": f"{receiver.base_url}/x", "enabled_events": ["*"], "description": "a\x00b"},
            "description",
        ),
        (
            {"url": f"{receiver.base_url}/x", "enabled_events": ["payment.teleported"]},
            "enabled_events",
        ),
        ({"url": f"{receiver.base_url}/x", "enabled_events": []}, "enabled_events"),
        (
            {
                "url": f"{receiver.base_url}/x",
                "enabled_events": ["*"],
                "metadata": {f"k{i}": "v" for i in range(51)},
            },
            "metadata",
        ),
    ]
    for body, param in cases:
        response = await api.post("/api/webhooks/endpoints", body)
        assert response.status_code == 400, (body, response.text)
        assert response.json()["error"]["param"] == param, response.text


async def test_event_log_and_scopes(api: Api, keys: Any) -> None:
    payment = await api.purchase(amount=700)
    listed = await api.get("/api/events", object_id=payment["id"])
    [event] = listed.json()["data"]
    assert event["type"] == "payment.succeeded"
    assert event["data"]["object"]["id"] == payment["id"]
    one = await api.get(f"/api/events/{event['id']}")
    assert one.json()["data"] == event

    from engine.auth.keys import Scope

    _, reader = await keys.create(name="no-hooks", scopes=frozenset({Scope.PAYMENTS_READ}))
    denied = await api.http.get(
        "/api/webhooks/endpoints", headers={"Authorization": f"Bearer {reader}"}
    )
    assert denied.status_code == 403


async def test_the_event_type_filters_are_bounded(api: Api) -> None:
    for path in ("/api/events", "/api/webhooks/deliveries"):
        refused = await api.get(path, event_type="payment." + "x" * 60)
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"]["param"] == "event_type", refused.text
        # Any spelling within the bound is a filter: an unknown type finds nothing.
        found = await api.get(path, event_type="payment.no_such_type")
        assert (found.status_code, found.json()["data"]) == (200, []), found.text


async def test_updates_refuse_nulls_and_disabled_endpoints_cannot_be_tested(
    api: Api, receiver: Receiver, endpoints: list[str]
) -> None:
    endpoint = await create_endpoint(api, f"{receiver.base_url}/nulls", ["webhook.test"])
    endpoints.append(endpoint["id"])
    path = f"/api/webhooks/endpoints/{endpoint['id']}"
    for field in ("url", "enabled_events", "metadata", "status"):
        response = await api.http.put(path, json={field: None}, headers=api.headers())
        assert response.status_code == 400, response.text
        assert response.json()["error"]["param"] == field
    disabled = await api.http.put(path, json={"status": "disabled"}, headers=api.headers())
    assert disabled.json()["data"]["status"] == "disabled"
    test = await api.post(f"/api/webhooks/test/{endpoint['id']}", {})
    assert test.status_code == 422
    assert test.json()["error"]["code"] == "endpoint_disabled"
    enabled = await api.http.put(path, json={"status": "enabled"}, headers=api.headers())
    assert enabled.json()["data"]["status"] == "enabled"
    assert (await api.post(f"/api/webhooks/test/{endpoint['id']}", {})).status_code == 200


async def test_an_empty_update_answers_the_endpoint_or_404(
    api: Api, receiver: Receiver, endpoints: list[str]
) -> None:
    # The fuzzer found `{}` for an unknown id answered 500 (an UPDATE with nothing to set).
    endpoint = await create_endpoint(api, f"{receiver.base_url}/empty", ["webhook.test"])
    endpoints.append(endpoint["id"])
    path = f"/api/webhooks/endpoints/{endpoint['id']}"
    same = await api.http.put(path, json={}, headers=api.headers())
    assert same.status_code == 200, same.text
    assert same.json()["data"]["url"] == endpoint["url"]
    unknown = await api.http.put(
        f"/api/webhooks/endpoints/{uuid4()}", json={}, headers=api.headers()
    )
    assert unknown.status_code == 404, unknown.text
    assert (await api.http.delete(path, headers=api.headers())).status_code == 200
    gone = await api.http.put(path, json={}, headers=api.headers())
    assert gone.status_code == 404, gone.text
