"""After the whole run: no exported span holds a card number, a CVC, an API key or a webhook
secret. The session traces every process into the in-memory store in Redis (tests/conftest.py),
so this reads every span every test left there, whatever code recorded it."""

from __future__ import annotations

import re

import pytest
from redis.asyncio import Redis

from engine.config import Settings
from engine.tracing import spans_for_trace
from tests.test_pci_scan import PANS

_SECRETS = re.compile(
    "|".join(
        [
            *PANS,
            r'"cvc"',
            r"\bcvc\W+\d{3,4}\b",
            # What the scrubber leaves is `pgk_[REDACTED]`; anything else after the prefix is a key.
            r"\b(?:pgk|whsec)_(?!\[REDACTED\])",
        ]
    ),
    re.IGNORECASE,
)


@pytest.mark.after_all
async def test_no_span_holds_card_data_or_secrets(cluster: Settings) -> None:
    client = Redis.from_url(cluster.redis_dsn)
    try:
        keys = [k async for k in client.scan_iter(match="paygrid:trace:spans:*", count=1000)]
        spans = [
            span
            for key in keys
            for span in await spans_for_trace(client, key.decode().rsplit(":", 1)[1])
        ]
    finally:
        await client.aclose()
    names = {s.name for s in spans}
    assert {"POST /api/payments/purchase", "LedgerShard CreatePayment"} <= names, (
        "the scan must run after the payment tests"
    )
    for span in spans:
        found = _SECRETS.search(span.to_json().decode())
        assert found is None, f"{span.name} ({span.process}) holds {found.group()!r}"
