"""Concurrent money operations on one payment never break its invariants."""

from __future__ import annotations

import asyncio

import asyncpg

from tests.factories import Api


async def test_fifty_concurrent_partial_refunds_never_exceed_captured(
    api: Api, db: asyncpg.Pool
) -> None:
    payment = await api.purchase(amount=1000)
    responses = await asyncio.gather(
        *(
            api.post("/api/payments/refund", {"payment_id": payment["id"], "amount": 30})
            for _ in range(50)
        )
    )
    codes = [r.status_code for r in responses]
    assert set(codes) <= {200, 422}, [r.text for r in responses if r.status_code not in (200, 422)]
    assert codes.count(200) == 33  # 33 * 30 = 990 <= 1000 < 34 * 30
    refused = [r.json()["error"]["code"] for r in responses if r.status_code == 422]
    assert set(refused) == {"amount_too_large"}
    row = await db.fetchrow(
        "SELECT amount_captured, amount_refunded, amount_refund_pending FROM transactions "
        "WHERE id = $1::uuid",
        payment["id"],
    )
    assert row["amount_refunded"] == 990
    assert row["amount_refund_pending"] == 0
    refunded = await db.fetchval(
        "SELECT sum(amount) FROM refunds WHERE transaction_id = $1::uuid AND status = 'succeeded'",
        payment["id"],
    )
    assert refunded == 990


async def test_concurrent_captures_capture_once(api: Api, db: asyncpg.Pool) -> None:
    auth = await api.authorize(amount=800)
    responses = await asyncio.gather(
        *(api.post("/api/payments/capture", {"payment_id": auth["id"]}) for _ in range(10))
    )
    codes = [r.status_code for r in responses]
    assert codes.count(200) == 1, [r.text for r in responses]
    assert set(codes) == {200, 422}
    captures = await db.fetchval(
        "SELECT count(*) FROM transactions WHERE parent_id = $1::uuid "
        "AND transaction_type = 'capture' AND status = 'succeeded'",
        auth["id"],
    )
    assert captures == 1


async def test_concurrent_capture_and_void_settle_once(api: Api, db: asyncpg.Pool) -> None:
    auth = await api.authorize(amount=800)
    capture, void = await asyncio.gather(
        api.post("/api/payments/capture", {"payment_id": auth["id"]}),
        api.post("/api/payments/void", {"payment_id": auth["id"]}),
    )
    assert sorted([capture.status_code, void.status_code]) == [200, 422]
    live = await db.fetchval(
        "SELECT count(*) FROM transactions WHERE parent_id = $1::uuid AND status = 'succeeded'",
        auth["id"],
    )
    assert live == 1
