"""The shard's ledger book (`engine/ledger/book.py`): a cache of per-customer balances, loaded
lazily from the ledger entries, moved only by entries whose transaction committed, dropped when
it may be stale (`forget` after a failed finalize) and evicted when idle (injected clock)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from uuid import UUID, uuid4

import asyncpg
import pytest

from engine.db.database import Database
from engine.ledger.book import LedgerBook
from engine.ledger.entries import Account, Balance, Entry, LedgerRepository
from tests.engine.payments import checks
from tests.engine.payments.builders import Requests
from tests.engine.payments.fakes import FakeClock
from tests.engine.payments.faults import ledger_refuses
from tests.engine.payments.harness import Rig
from tests.engine.rows import add_customer, add_transaction

IDLE_S = 300.0


@pytest.fixture
async def conn(database: Database) -> AsyncIterator[asyncpg.Connection]:
    async with database.connection() as connection:
        yield connection


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def book(database: Database, clock: FakeClock) -> LedgerBook:
    return LedgerBook(database, LedgerRepository(), idle_evict_s=IDLE_S, clock=clock.monotonic)


@pytest.fixture
async def rig(database: Database) -> Rig:
    return await Rig.build(database, Requests(uuid4()))


async def book_entries(
    conn: asyncpg.Connection, customer: UUID, *moves: tuple[Account, str, int]
) -> list[Entry]:
    """Write entries for `customer` straight to the database (as a committed batch would)."""
    payment = await add_transaction(conn, customer)
    entries = [
        Entry(customer, payment, account, currency, amount) for account, currency, amount in moves
    ]
    await LedgerRepository().insert(conn, entries=entries)
    return entries


async def test_balances_load_lazily_once(conn: asyncpg.Connection, book: LedgerBook) -> None:
    customer = await add_customer(conn)
    await book_entries(
        conn,
        customer,
        (Account.HELD, "USD", 500),
        (Account.CAPTURED, "USD", 1000),
        (Account.REFUNDED, "USD", 300),
        (Account.CAPTURED, "EUR", 700),
    )
    assert len(book) == 0

    loaded = await book.balances(customer)

    assert loaded == {"USD": Balance(500, 1000, 300), "EUR": Balance(0, 700, 0)}
    assert loaded["USD"].net == 700
    assert len(book) == 1
    # A cache: what reaches the database without `committed` is not seen until a reload.
    await book_entries(conn, customer, (Account.CAPTURED, "USD", 50))
    assert (await book.balances(customer))["USD"] == Balance(500, 1000, 300)
    book.forget(customer)
    assert (await book.balances(customer))["USD"] == Balance(500, 1050, 300)


async def test_a_customer_without_entries_has_no_balances(
    conn: asyncpg.Connection, book: LedgerBook
) -> None:
    customer = await add_customer(conn)
    assert await book.balances(customer) == {}
    assert len(book) == 1


async def test_committed_moves_loaded_customers_only(
    conn: asyncpg.Connection, book: LedgerBook
) -> None:
    loaded, unloaded = await add_customer(conn), await add_customer(conn)
    await book.balances(loaded)
    entries = await book_entries(
        conn, loaded, (Account.HELD, "USD", 400), (Account.CAPTURED, "GBP", 250)
    )
    others = await book_entries(conn, unloaded, (Account.CAPTURED, "USD", 900))

    book.committed([*entries, *others])

    assert await book.balances(loaded) == {
        "USD": Balance(held=400),
        "GBP": Balance(captured=250),
    }
    assert len(book) == 1
    # Skipped, not lost: its first read sums the database, which already holds the entry.
    assert await book.balances(unloaded) == {"USD": Balance(captured=900)}


async def test_idle_customers_are_evicted(
    conn: asyncpg.Connection, book: LedgerBook, clock: FakeClock
) -> None:
    early, late = await add_customer(conn), await add_customer(conn)
    await book_entries(conn, early, (Account.CAPTURED, "USD", 100))
    await book.balances(early)
    clock.advance(timedelta(seconds=200))
    await book.balances(late)
    clock.advance(timedelta(seconds=100))
    assert book.evict_idle() == 0  # `early` is idle exactly the period: not yet

    clock.advance(timedelta(seconds=1))
    assert book.evict_idle() == 1

    assert len(book) == 1
    # Gone from the cache: the next read loads it again, with what the database holds now.
    await book_entries(conn, early, (Account.CAPTURED, "USD", 5))
    assert await book.balances(early) == {"USD": Balance(captured=105)}
    # A read counts as use: now `early` was read 200 s ago, `late` 301 s ago.
    clock.advance(timedelta(seconds=200))
    assert book.evict_idle() == 1
    assert len(book) == 1
    assert await book.balances(early) == {"USD": Balance(captured=105)}
    assert len(book) == 1


async def test_the_book_moves_only_after_the_commit(rig: Rig, conn: asyncpg.Connection) -> None:
    first = await rig.one(rig.requests.purchase(1000))
    customer = UUID(first.body["customer_id"])
    await checks.expect_ledger(rig, customer, captured=1000)
    gate = asyncio.Event()
    rig.gateway.gate = gate
    rig.gateway.arrived.clear()

    running = asyncio.create_task(
        rig.service.execute([rig.requests.purchase(500, customer_id=customer)])
    )
    await rig.gateway.arrived.wait()
    # The payment is durable `processing`, the gateway is deciding: the book has not moved.
    assert (await rig.book.balances(customer))["USD"] == Balance(captured=1000)
    assert await checks.count_payments(rig.db, customer, status="processing") == 1
    gate.set()
    [result] = await running

    assert result.status_code == 200
    assert (await rig.book.balances(customer))["USD"] == Balance(captured=1500)
    await checks.expect_ledger(rig, customer, captured=1500)


async def test_a_failed_finalize_forgets_the_customer(rig: Rig) -> None:
    first = await rig.one(rig.requests.purchase(1000))
    customer = UUID(first.body["customer_id"])
    await checks.expect_ledger(rig, customer, captured=1000)
    assert len(rig.book) == 1

    async with ledger_refuses(rig.db, customer):
        [failed] = await rig.service.execute([rig.requests.purchase(500, customer_id=customer)])

    assert (failed.status_code, failed.body["code"]) == (503, "finalize_failed")
    # Whether the commit happened is unknown to the service: it drops the customer rather
    # than guess, and the next read sums the database (which holds nothing new).
    assert len(rig.book) == 0
    await checks.expect_ledger(rig, customer, captured=1000)

    rig.clock.advance(timedelta(minutes=1))
    assert await rig.service.recover(older_than=rig.clock.now()) == 1
    await checks.expect_ledger(rig, customer, captured=1500)


async def test_balances_answer_a_snapshot(rig: Rig) -> None:
    first = await rig.one(rig.requests.purchase(1000))
    customer = UUID(first.body["customer_id"])
    answer = await rig.service.balances(customer)
    assert answer["USD"] == Balance(captured=1000)

    await rig.one(rig.requests.purchase(500, customer_id=customer))

    assert answer["USD"] == Balance(captured=1000)
