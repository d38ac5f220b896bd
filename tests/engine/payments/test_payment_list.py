"""`PaymentReads.page` over real PostgreSQL (no Ray): a window bounds the list by creation time
and, in one currency, by amount in minor units, and cursor paging stays inside it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from engine.payments.models import PaymentWindow
from engine.payments.reads import PaymentReads
from tests.engine.payments.harness import Rig


async def _amounts(reads: PaymentReads, window: PaymentWindow) -> list[tuple[int, str]]:
    found = await reads.page(limit=10, window=window)
    return sorted((p.amount, p.currency) for p in found.payments)


async def _paid(rig: Rig, amount: int, currency: str) -> dict[str, Any]:
    result = await rig.one(rig.requests.purchase(amount, currency=currency))
    assert result.status_code == 200, result.body
    body: dict[str, Any] = result.body
    return body


async def test_a_window_bounds_time_and_amount_and_paging_stays_in_it(rig: Rig) -> None:
    for amount, currency in ((1000, "USD"), (2500, "USD"), (5000, "USD"), (2500, "JPY")):
        await _paid(rig, amount, currency)
    reads = PaymentReads(rig.db)
    now = datetime.now(UTC)
    hour = timedelta(hours=1)

    assert await _amounts(reads, PaymentWindow(currency="USD", amount_min=2500)) == [
        (2500, "USD"),
        (5000, "USD"),
    ]
    assert await _amounts(
        reads, PaymentWindow(currency="USD", amount_min=1000, amount_max=2500)
    ) == [(1000, "USD"), (2500, "USD")]
    assert await _amounts(reads, PaymentWindow(currency="JPY")) == [(2500, "JPY")]
    assert len(await _amounts(reads, PaymentWindow(now - hour, now + hour))) == 4
    assert await _amounts(reads, PaymentWindow(created_from=now + hour)) == []
    assert await _amounts(reads, PaymentWindow(created_before=now - hour)) == []

    usd = PaymentWindow(now - hour, now + hour, "USD", 2000)
    first = await reads.page(limit=1, window=usd)
    assert first.has_more
    rest = await reads.page(limit=5, starting_after=first.payments[0].id, window=usd)
    assert not rest.has_more
    shown = sorted(p.amount for p in first.payments + rest.payments)
    assert shown == [2500, 5000]
