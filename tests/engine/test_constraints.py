"""The database refuses impossible money states by itself, whatever the application does.

Direct SQL against a freshly migrated database: CHECK constraints on the payment balances and
statuses, the one-live-settlement unique index, the operation-limit trigger (also across separate
and concurrent transactions) and integer-only amounts. The audit trigger is in test_audit.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from uuid import UUID, uuid4

import asyncpg
import pytest

from tests.engine.rows import add_customer, add_transaction

BOUND_S = 10.0


@pytest.fixture
async def conn(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    async with pool.acquire() as connection:
        yield connection


async def test_capture_within_authorized(conn: asyncpg.Connection) -> None:
    customer = await add_customer(conn)
    with pytest.raises(asyncpg.CheckViolationError) as caught:
        await add_transaction(conn, customer, kind="authorize", status="captured", captured=1001)
    assert caught.value.constraint_name == "capture_within_authorized"

    payment = await add_transaction(
        conn, customer, kind="authorize", status="captured", captured=1000
    )
    with pytest.raises(asyncpg.CheckViolationError) as caught:
        await conn.execute("UPDATE transactions SET amount_captured = 1001 WHERE id = $1", payment)
    assert caught.value.constraint_name == "capture_within_authorized"


async def test_refund_within_captured(conn: asyncpg.Connection) -> None:
    customer = await add_customer(conn)
    payment = await add_transaction(conn, customer)
    update = """UPDATE transactions SET amount_refunded = $2, amount_refund_pending = $3
                WHERE id = $1"""
    await conn.execute(update, payment, 500, 500)  # exactly the captured amount: allowed
    with pytest.raises(asyncpg.CheckViolationError) as caught:
        await conn.execute(update, payment, 600, 500)
    assert caught.value.constraint_name == "refund_within_captured"
    assert (
        await conn.fetchval("SELECT amount_refunded FROM transactions WHERE id = $1", payment)
        == 500
    )


async def test_one_live_capture_or_void_per_payment(conn: asyncpg.Connection) -> None:
    customer = await add_customer(conn)
    payment = await add_transaction(
        conn, customer, kind="authorize", status="authorized", capturable=1000
    )
    await add_transaction(conn, customer, kind="capture", status="failed", parent_id=payment)
    await add_transaction(conn, customer, kind="capture", status="processing", parent_id=payment)
    for kind, status in [("capture", "succeeded"), ("void", "processing"), ("void", "succeeded")]:
        with pytest.raises(asyncpg.UniqueViolationError) as caught:
            await add_transaction(conn, customer, kind=kind, status=status, parent_id=payment)
        assert caught.value.constraint_name == "transactions_one_settlement"


async def test_capture_operation_cannot_exceed_the_authorization(conn: asyncpg.Connection) -> None:
    customer = await add_customer(conn)
    payment = await add_transaction(
        conn, customer, kind="authorize", status="authorized", capturable=1000
    )
    with pytest.raises(asyncpg.CheckViolationError, match="capture of 1001 exceeds authorized"):
        await add_transaction(conn, customer, kind="capture", amount=1001, parent_id=payment)


async def test_refund_operations_stay_within_captured_across_statements(
    conn: asyncpg.Connection,
) -> None:
    customer = await add_customer(conn)
    payment = await add_transaction(conn, customer)  # 1000 captured

    async def refund(amount: int, status: str = "succeeded") -> UUID:
        return await add_transaction(
            conn, customer, kind="refund", status=status, amount=amount, parent_id=payment
        )

    await refund(600)
    failed = await refund(900, "failed")  # failed refunds claim nothing
    await refund(400, "processing")
    with pytest.raises(asyncpg.CheckViolationError, match="refunds of 1001 exceed captured 1000"):
        await refund(1)
    with pytest.raises(asyncpg.CheckViolationError, match="exceed captured"):
        await conn.execute("UPDATE transactions SET status = 'processing' WHERE id = $1", failed)
    with pytest.raises(asyncpg.CheckViolationError, match="differs from payment currency"):
        await add_transaction(
            conn, customer, kind="refund", amount=1, currency="EUR", parent_id=payment
        )
    live = await conn.fetchval(
        """SELECT sum(amount) FROM transactions
           WHERE parent_id = $1 AND status IN ('processing', 'succeeded')""",
        payment,
    )
    assert live == 1000


async def test_concurrent_refunds_serialize_on_the_payment(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as setup:
        customer = await add_customer(setup)
        payment = await add_transaction(setup, customer)  # 1000 captured
    async with pool.acquire() as first, pool.acquire() as second, pool.acquire() as observer:
        async with first.transaction():
            await add_transaction(first, customer, kind="refund", amount=600, parent_id=payment)
            racing = asyncio.ensure_future(
                add_transaction(second, customer, kind="refund", amount=600, parent_id=payment)
            )
            await wait_until_blocked(observer, second.get_server_pid())
        with pytest.raises(asyncpg.CheckViolationError, match="refunds of 1200 exceed captured"):
            await asyncio.wait_for(racing, BOUND_S)


async def wait_until_blocked(observer: asyncpg.Connection, pid: int) -> None:
    """Poll pg_stat_activity until backend `pid` waits on a lock (i.e. really races).
    `observer` must be outside a transaction: pg_stat_activity is snapshotted per transaction."""
    deadline = asyncio.get_running_loop().time() + BOUND_S
    query = "SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1"
    while await observer.fetchval(query, pid) != "Lock":
        assert asyncio.get_running_loop().time() < deadline, f"backend {pid} never blocked"
        await asyncio.sleep(0.01)


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        ("purchase", "authorized"),
        ("purchase", "captured"),
        ("authorize", "succeeded"),
    ],
)
async def test_status_must_fit_type(conn: asyncpg.Connection, kind: str, status: str) -> None:
    customer = await add_customer(conn)
    capturable = 1000 if status == "authorized" else 0
    with pytest.raises(asyncpg.CheckViolationError) as caught:
        await add_transaction(
            conn,
            customer,
            kind=kind,
            status=status,
            capturable=capturable,
            captured=1000 - capturable,
        )
    assert caught.value.constraint_name == "status_fits_type"


@pytest.mark.parametrize(("kind", "status"), [("capture", "authorized"), ("refund", "refunded")])
async def test_operation_status_must_fit_type(
    conn: asyncpg.Connection, kind: str, status: str
) -> None:
    customer = await add_customer(conn)
    payment = await add_transaction(conn, customer)
    with pytest.raises(asyncpg.CheckViolationError) as caught:
        await add_transaction(conn, customer, kind=kind, status=status, parent_id=payment)
    assert caught.value.constraint_name == "status_fits_type"


@pytest.mark.parametrize(
    ("amount", "constraint"),
    [
        (0, "transactions_amount_check"),
        # Negative amounts also break the balance checks, which PostgreSQL evaluates first
        # (check constraints run in name order).
        (-1, "capture_within_authorized"),
        (-1000, "capture_within_authorized"),
    ],
)
async def test_amount_must_be_positive(
    conn: asyncpg.Connection, amount: int, constraint: str
) -> None:
    customer = await add_customer(conn)
    with pytest.raises(asyncpg.CheckViolationError) as caught:
        await add_transaction(conn, customer, status="processing", amount=amount)
    assert caught.value.constraint_name == constraint
    payment = await add_transaction(conn, customer)
    with pytest.raises(asyncpg.CheckViolationError) as caught:
        await add_transaction(
            conn, customer, kind="refund", status="processing", amount=amount, parent_id=payment
        )
    assert caught.value.constraint_name == constraint


async def test_amounts_are_integers(conn: asyncpg.Connection) -> None:
    types = await conn.fetch(
        """SELECT table_name, column_name, data_type FROM information_schema.columns
           WHERE table_schema = 'public' AND column_name LIKE 'amount%'
             AND table_name IN ('transactions', 'refunds', 'orders', 'ledger_entries')"""
    )
    assert len(types) == 10
    assert {r["data_type"] for r in types} == {"bigint"}
    customer = await add_customer(conn)
    with pytest.raises(asyncpg.InvalidTextRepresentationError, match="bigint"):
        await conn.execute(
            """INSERT INTO transactions (id, customer_id, shard, transaction_type, status,
                   amount, currency, gateway)
               VALUES ($1, $2, 0, 'purchase', 'processing', '10.5', 'USD', 'sandbox')""",
            uuid4(),
            customer,
        )
