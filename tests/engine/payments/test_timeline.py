"""`engine/payments/timeline.py` and `engine/payments/volume.py` over real PostgreSQL (no Ray):
a payment's timeline holds its requests, gateway attempts, refunds, ledger entries, events and
audit rows in time order, only the sources asked for; payments per day count failures apart
and sum only the amounts that went through."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import pytest

from engine.errors import NotFound
from engine.payments.timeline import payment_timeline
from engine.payments.timeline_models import TimelineSource
from engine.payments.volume import DayVolume, daily_volume
from tests.engine.payments.fakes import decline
from tests.engine.payments.harness import Rig


async def _ok(rig: Rig, command: Any) -> dict[str, Any]:
    result = await rig.one(command)
    assert result.status_code == 200, result.body
    body: dict[str, Any] = result.body
    return body


async def test_a_payment_s_timeline_in_time_order(rig: Rig) -> None:
    r = rig.requests
    auth = await _ok(rig, r.authorize(1000))
    await _ok(rig, r.capture(auth, 700))
    await _ok(rig, r.refund(auth, 300))
    payment_id = UUID(auth["id"])

    everything = await payment_timeline(rig.db, payment_id, sources=set(TimelineSource))
    assert [e.at for e in everything] == sorted(e.at for e in everything)
    titles = [e.title for e in everything]
    assert titles[0] == "authorize requested"
    assert "capture requested" in titles
    assert [t for t in titles if t.startswith("gateway")] == [
        "gateway authorize: approved",
        "gateway capture: approved",
        "gateway refund: approved",
    ]
    assert titles.index("gateway capture: approved") < titles.index("refund succeeded")
    refund = next(e for e in everything if e.source is TimelineSource.REFUND)
    assert ("amount", "3.00 USD") in refund.facts
    ledger = [dict(e.facts)["amount"] for e in everything if e.source is TimelineSource.LEDGER]
    assert "7.00 USD" in ledger
    assert "3.00 USD" in ledger
    assert any(e.source is TimelineSource.EVENT for e in everything)
    audits = [e for e in everything if e.source is TimelineSource.AUDIT]
    assert any(("status", "authorized → captured") in e.facts for e in audits)
    # No endpoint, no dispatcher here: no webhook attempt.
    assert not any(e.source is TimelineSource.WEBHOOK for e in everything)

    ledger_only = await payment_timeline(rig.db, payment_id, sources={TimelineSource.LEDGER})
    assert {e.source for e in ledger_only} == {TimelineSource.LEDGER}
    assert len(ledger_only) == len(ledger)


async def test_an_unknown_payment_has_no_timeline(rig: Rig) -> None:
    with pytest.raises(NotFound):
        await payment_timeline(rig.db, uuid4(), sources=set(TimelineSource))


def _today(rows: list[DayVolume], currency: str) -> tuple[int, int, int]:
    today = datetime.now(UTC).date()
    row = next((v for v in rows if v.day == today and v.currency == currency), None)
    return (0, 0, 0) if row is None else (row.payments, row.failed, row.amount)


async def test_payments_per_day_count_failures_and_sum_what_went_through(rig: Rig) -> None:
    days, before = await daily_volume(rig.db)
    assert len(days) == 14
    assert days[-1] == datetime.now(UTC).date()
    await _ok(rig, rig.requests.purchase(1250, currency="EUR"))
    rig.gateway.script(decline("insufficient_funds"))
    declined = await rig.one(rig.requests.purchase(4000, currency="EUR"))
    assert declined.status_code == 402
    _, after = await daily_volume(rig.db)
    payments, failed, amount = _today(before, "EUR")
    assert _today(after, "EUR") == (payments + 2, failed + 1, amount + 1250)
