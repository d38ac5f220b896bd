"""Financial retention of erased customers (issue 9): an erased customer whose whole history is
older than the period (default 7 years, configurable, never under 5) is purged from every
table; an erased one with a recent row or an open AML alert, and a customer not erased however
old, stay; a second run does nothing; the scheduler keeps the purge recurring."""

from __future__ import annotations

from uuid import UUID

import asyncpg
import pytest
from pydantic import ValidationError

from engine.config import Settings
from engine.db.database import Database
from engine.keys.keyring import Keyring
from engine.orders.models import NewOrder
from engine.orders.service import OrderService
from engine.principal import Principal
from engine.privacy.retention import purge_expired_customers
from engine.privacy.service import PrivacyService
from engine.scheduler.handlers import HANDLERS, purge_erased_customers, retention_jobs
from tests.engine.payments.builders import MAX_AMOUNT, Requests
from tests.engine.payments.harness import engine_settings
from tests.engine.subscriptions.harness import Billed, build

WHO = Principal(None, "retention-test")

# Every table holding a customer's history, and how its rows of customer $1 are found.
_TRANSACTIONS = "SELECT id FROM transactions WHERE customer_id = $1"
_OWNED = f"""SELECT $1::uuid UNION ALL SELECT id FROM orders WHERE customer_id = $1
    UNION ALL {_TRANSACTIONS}
    UNION ALL SELECT id FROM payment_methods WHERE customer_id = $1
    UNION ALL SELECT id FROM subscriptions WHERE customer_id = $1
    UNION ALL SELECT id FROM invoices WHERE customer_id = $1
    UNION ALL SELECT id FROM compliance_alerts WHERE customer_id = $1"""
_EVENTS = f"SELECT id FROM events WHERE object_id IN ({_OWNED})"
_DELIVERIES = f"SELECT id FROM webhook_deliveries WHERE event_id IN ({_EVENTS})"
HISTORY = {
    "customers": "id = $1",
    "orders": "customer_id = $1",
    "transactions": "customer_id = $1",
    "refunds": f"transaction_id IN ({_TRANSACTIONS})",
    "gateway_attempts": f"payment_id IN ({_TRANSACTIONS})",
    "ledger_entries": "customer_id = $1",
    "payment_methods": "customer_id = $1",
    "subscriptions": "customer_id = $1",
    "invoices": "customer_id = $1",
    "compliance_alerts": "customer_id = $1",
    "data_keys": "customer_id = $1",
    "events": f"object_id IN ({_OWNED})",
    "webhook_deliveries": f"event_id IN ({_EVENTS})",
    "webhook_attempts": f"delivery_id IN ({_DELIVERIES})",
}


@pytest.fixture
async def billed(database: Database) -> Billed:
    return await build(database)


async def _history(billed: Billed, *, erase: bool) -> UUID:
    """A customer with an order, a subscription (its paid first invoice, then cancelled), a
    purchase refunded in part, and a saved card; erased if asked."""
    customer = await billed.customer()
    card = await billed.card(customer)
    plan = await billed.plan()
    created = await billed.subscribe(customer, card, plan_id=plan.id)
    assert created.status_code == 201, created.body
    await billed.subscriptions.cancel(
        UUID(created.body["id"]), at_period_end=False, principal=billed.who
    )
    orders = OrderService(billed.db, max_amount=MAX_AMOUNT, idempotency_ttl_h=24)
    order = await orders.create(NewOrder(customer, 2500, "USD"), billed.ctx)
    assert order.status_code == 201, order.body
    requests = Requests(billed.api_key)
    bought = await billed.execute(
        requests.purchase(2500, customer_id=customer, order_id=UUID(order.body["id"]))
    )
    assert bought.status_code == 200, bought.body
    refunded = await billed.execute(requests.refund(bought.body, 1000))
    assert refunded.status_code == 200, refunded.body
    if erase:
        privacy = PrivacyService(billed.db, Keyring.from_settings(engine_settings()))
        await privacy.erase(customer, WHO)
    return customer


async def _counts(conn: asyncpg.Connection, customer_id: UUID) -> dict[str, int]:
    return {
        table: int(await conn.fetchval(f"SELECT count(*) FROM {table} WHERE {where}", customer_id))
        for table, where in HISTORY.items()
    }


async def _backdate(db: Database, customer_id: UUID, years: int) -> None:
    """Move every timestamp of the customer's history `years` back. The transition triggers
    (a subscription's or paid invoice's identity never changes) are what this test steps
    around, as a restore of old data would: replica mode skips them for this transaction."""
    async with db.transaction() as conn:
        await conn.execute("SET LOCAL session_replication_role = replica")
        for table, where in HISTORY.items():
            columns = await conn.fetch(
                """SELECT column_name FROM information_schema.columns
                   WHERE table_schema = 'public' AND table_name = $1
                     AND data_type = 'timestamp with time zone'""",
                table,
            )
            shifts = ", ".join(
                f"{c['column_name']} = {c['column_name']} - make_interval(years => $2)"
                for c in columns
            )
            await conn.execute(f"UPDATE {table} SET {shifts} WHERE {where}", customer_id, years)


async def test_an_erased_customer_past_the_period_goes_whole_and_no_other(billed: Billed) -> None:
    expired = await _history(billed, erase=True)
    recent = await _history(billed, erase=True)
    kept = await _history(billed, erase=False)
    # The refund right after the purchase raised an AML alert: an open one keeps its
    # customer whatever its age, so the expired customer's are closed.
    async with billed.db.connection() as conn:
        await conn.execute(
            """UPDATE compliance_alerts SET status = 'resolved', resolution_note = 'checked',
                   resolved_at = now() WHERE customer_id = $1""",
            expired,
        )
    for customer in (expired, recent, kept):
        await _backdate(billed.db, customer, 8)
    # One row of the recent customer is new: a ledger entry of yesterday.
    async with billed.db.connection() as conn:
        await conn.execute(
            """UPDATE ledger_entries SET created_at = now() - interval '1 day'
               WHERE id = (SELECT id FROM ledger_entries WHERE customer_id = $1 LIMIT 1)""",
            recent,
        )
        before = {c: await _counts(conn, c) for c in (expired, recent, kept)}
    full = before[expired]
    for table in ("orders", "refunds", "gateway_attempts", "ledger_entries", "payment_methods"):
        assert full[table] >= 1, table
    for table in ("subscriptions", "invoices", "events"):
        assert full[table] >= 1, table
    assert full["transactions"] >= 3  # the invoice's payment, the purchase, its refund

    await HANDLERS["customers.retention_purge"](billed.db, {"retention_years": 7})

    async with billed.db.connection() as conn:
        assert await _counts(conn, expired) == dict.fromkeys(HISTORY, 0)
        assert await _counts(conn, recent) == before[recent]
        assert await _counts(conn, kept) == before[kept]
        audited = await conn.fetchval(
            """SELECT new_values FROM audit_logs WHERE entity_type = 'customers'
               AND entity_id = $1 AND action = 'DELETE' AND new_values ? 'reason'""",
            expired,
        )
    assert audited["reason"] == "financial_retention"
    assert audited["rows_deleted"]["ledger_entries"] == full["ledger_entries"]

    # A second run finds nothing more to purge, whatever else the table holds.
    again = await purge_expired_customers(billed.db, years=7)
    assert not {expired, recent, kept} & set(again)
    async with billed.db.connection() as conn:
        assert await _counts(conn, recent) == before[recent]
        assert await _counts(conn, kept) == before[kept]


async def test_the_period_counts_is_never_under_five_years_and_open_alerts_hold(
    billed: Billed,
) -> None:
    customer = await _history(billed, erase=True)
    await _backdate(billed.db, customer, 6)
    async with billed.db.connection() as conn:
        alerts = await conn.fetchval(
            "SELECT count(*) FROM compliance_alerts WHERE customer_id = $1 AND status = 'open'",
            customer,
        )
    assert alerts >= 1  # the refund right after the purchase
    # An open AML alert keeps the customer, however old.
    await purge_erased_customers(billed.db, {"retention_years": 5})
    async with billed.db.connection() as conn:
        assert (await _counts(conn, customer))["customers"] == 1
        await conn.execute(
            """UPDATE compliance_alerts SET status = 'resolved', resolution_note = 'checked',
                   resolved_at = created_at WHERE customer_id = $1""",
            customer,
        )
    # Seven years by default; a payload asking for less than five is held to five.
    await purge_erased_customers(billed.db, {"retention_years": 7})
    async with billed.db.connection() as conn:
        assert (await _counts(conn, customer))["customers"] == 1
    await purge_erased_customers(billed.db, {"retention_years": 1})
    async with billed.db.connection() as conn:
        assert await _counts(conn, customer) == dict.fromkeys(HISTORY, 0)


def test_the_period_defaults_to_seven_years_and_is_configurable() -> None:
    assert Settings().financial_retention_years == 7
    with pytest.raises(ValidationError, match="financial_retention_years"):
        Settings(financial_retention_years=4)
    with pytest.raises(ValidationError, match="financial_retention_years"):
        Settings(financial_retention_years=101)
    settings = Settings(financial_retention_years=10)
    jobs = retention_jobs(settings.audit_retention_days, settings.financial_retention_years)
    assert jobs["customers.retention_purge"][0] == {"retention_years": 10}
    assert "customers.retention_purge" in HANDLERS


def test_the_setting_reads_its_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYGRID_FINANCIAL_RETENTION_YEARS", "9")
    assert Settings().financial_retention_years == 9
