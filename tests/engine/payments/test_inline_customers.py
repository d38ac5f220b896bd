"""Inline customers on the shard's hot path: a batch seals its new customers in a fixed number
of statements (not one per customer), and a batch naming customers the shard already knows runs
no statement about customers or keys at all."""

from __future__ import annotations

from collections.abc import AsyncIterator
from uuid import UUID

import asyncpg
import pytest

from engine.customers.service import CustomerService
from engine.db.database import Database
from engine.gateways.breaker import local_breakers
from engine.gateways.registry import Gateways
from engine.keys.keyring import Keyring
from engine.payments.commands import CreatePayment
from engine.payments.results import Started
from engine.payments.steps import PaymentSteps
from engine.principal import Principal
from tests.engine.payments.builders import Requests
from tests.engine.payments.fakes import FakeClock, FakeGateway
from tests.engine.payments.harness import engine_settings

_ABOUT_CUSTOMERS = ("customers", "data_keys")


class Statements:
    """The statements a connection runs, as its query logger sees them."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, record: asyncpg.connection.LoggedQuery) -> None:
        self.seen.append(record.query)

    def about_customers(self) -> list[str]:
        return [q for q in self.seen if any(t in q for t in _ABOUT_CUSTOMERS)]


@pytest.fixture
def steps() -> PaymentSteps:
    settings = engine_settings()
    return PaymentSteps(
        settings=settings,
        gateways=Gateways([FakeGateway()]),
        breakers=local_breakers(settings),
        shard=0,
        clock=FakeClock().now,
        keyring=Keyring.from_settings(settings),
    )


@pytest.fixture
async def logged(database: Database) -> AsyncIterator[tuple[asyncpg.Connection, Statements]]:
    statements = Statements()
    async with database.connection() as conn:
        conn.add_query_logger(statements)
        try:
            yield conn, statements
        finally:
            conn.remove_query_logger(statements)


async def _begin(
    conn: asyncpg.Connection,
    statements: Statements,
    steps: PaymentSteps,
    commands: list[CreatePayment],
) -> list[str]:
    """One batch's begin step, committed; the statements it ran about customers or keys."""
    statements.seen.clear()
    async with conn.transaction():
        begun = await steps.begin(conn, commands)
    assert all(isinstance(b, Started) for b in begun), begun
    return statements.about_customers()


async def test_new_customers_cost_a_fixed_number_of_statements_per_batch(
    logged: tuple[asyncpg.Connection, Statements],
    steps: PaymentSteps,
    requests: Requests,
    database: Database,
) -> None:
    conn, statements = logged
    # The first batches make and then cache the email index's key.
    for _ in range(2):
        await _begin(conn, statements, steps, [requests.purchase()])
    one = await _begin(conn, statements, steps, [requests.purchase()])
    many = [requests.purchase(email=f"n{i}@example.com") for i in range(10)]
    ten = await _begin(conn, statements, steps, many)
    assert len(one) == len(ten) == 3, ten
    # Each is sealed under its own key and reads back.
    customers = CustomerService(database, Keyring.from_settings(engine_settings()))
    who = Principal(requests.api_key_id, "req-inline")
    for i, command in enumerate(many):
        opened = await customers.get(command.customer_id, who)
        assert opened.profile is not None
        assert opened.profile.email == f"n{i}@example.com"


async def test_known_customers_cost_no_statement_about_customers(
    logged: tuple[asyncpg.Connection, Statements], steps: PaymentSteps, requests: Requests
) -> None:
    conn, statements = logged
    made = [requests.purchase() for _ in range(5)]
    await _begin(conn, statements, steps, made)
    known: list[UUID] = [c.customer_id for c in made]
    # The first purchase naming them finds them; from then on the shard knows them.
    await _begin(conn, statements, steps, [requests.purchase(customer_id=c) for c in known])
    again = [requests.purchase(customer_id=c) for c in known * 2]
    assert await _begin(conn, statements, steps, again) == []
