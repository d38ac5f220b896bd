"""Webhook rules that need no cluster: URL checks (SSRF) and signatures. The retry schedule is
the lease queue's (tests/engine/queueing/test_policy.py)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from engine.errors import InvalidRequest
from engine.webhooks.signing import new_secret, signature_header
from engine.webhooks.states import ENDPOINT_TRANSITIONS, EndpointStatus, can_transition
from engine.webhooks.urls import GuardedResolver, allowed_address, check_url

REFUSED_PUBLICLY = [
    "https://127.0.0.1/hook",
    "https://localhost/hook",
    "https://10.1.2.3/hook",
    "https://192.168.0.7/hook",
    "https://172.16.5.5/hook",
    "https://[::1]/hook",
    "https://169.254.10.10/hook",
    "http://203.0.113.9/hook",  # plain http
]


@pytest.mark.parametrize("url", REFUSED_PUBLICLY)
async def test_private_targets_are_refused(url: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        await check_url(url, allow_private=False)
    assert caught.value.param == "url"


@pytest.mark.parametrize(
    "url", ["https://169.254.169.254/latest/meta-data", "http://169.254.169.254/"]
)
async def test_metadata_is_refused_even_when_private_is_allowed(url: str) -> None:
    with pytest.raises(InvalidRequest):
        await check_url(url, allow_private=True)


@pytest.mark.parametrize(
    "url", ["ftp://example.com/x", "https://user:pw@example.com/x", "no-scheme"]
)
async def test_malformed_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidRequest):
        await check_url(url, allow_private=True)


async def test_public_and_allowed_private_targets_pass() -> None:
    assert await check_url("https://93.184.215.14/hook", allow_private=False)
    assert await check_url("http://127.0.0.1:9/hook", allow_private=True)


def test_signatures_match_the_reference_library_and_rotation_signs_twice() -> None:
    old, new = new_secret(), new_secret()
    body = b'{"id":"evt_1","type":"payment.succeeded"}'
    now = int(time.time())
    header = signature_header([new, old], "evt_1", now, body)
    assert len(header.split()) == 2
    headers = {"webhook-id": "evt_1", "webhook-timestamp": str(now), "webhook-signature": header}
    for secret in (old, new):
        Webhook(secret).verify(body, headers)  # raises unless one signature matches
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)
    reference = Webhook(old).sign("evt_1", datetime.fromtimestamp(now, tz=UTC), body.decode())
    assert reference in header.split()


async def test_connect_time_resolver_drops_forbidden_addresses() -> None:
    strict = GuardedResolver(allow_private=False)
    with pytest.raises(OSError, match="may not reach"):
        await strict.resolve("localhost", 443)
    relaxed = GuardedResolver(allow_private=True)
    assert {r["host"] for r in await relaxed.resolve("localhost", 443)} <= {"127.0.0.1", "::1"}
    assert not allowed_address("169.254.169.254", allow_private=True)
    await strict.close()
    await relaxed.close()


def test_endpoint_transitions_let_live_endpoints_switch_and_deleting_is_final() -> None:
    live = (EndpointStatus.ENABLED, EndpointStatus.DISABLED)
    for current in live:
        for target in EndpointStatus:
            assert can_transition(current, target) == (target is not current)
    assert ENDPOINT_TRANSITIONS[EndpointStatus.DELETED] == frozenset()
