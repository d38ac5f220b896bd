"""The records' read side on a real database: one transaction with its refunds, filters, the
sort allow-list, keyset pages that neither repeat nor skip a row, the audit trail's filters,
and filter values that stay values (bound parameters), however they look."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from pydantic import ValidationError

from engine.db.database import Database
from engine.errors import InvalidRequest, NotFound
from engine.records.service import RecordsService
from schema.api.records import AuditLogQuery, TransactionQuery, TransactionSort
from tests.engine.records.rows import BASE, customer, insert


async def all_pages(fetch: Callable[[UUID | None], Any]) -> list[UUID]:
    """Every id, page after page, following the cursor until no more follow."""
    ids: list[UUID] = []
    cursor = None
    while True:
        page = await fetch(cursor)
        ids.extend(item.id for item in page.items)
        if not page.has_more:
            return ids
        cursor = page.items[-1].id


async def test_a_payment_comes_with_its_refunds(database: Database) -> None:
    records = RecordsService(database)
    owner = await customer(database)
    payment = await insert(database, owner, amount=5000)
    refund = await insert(
        database, owner, kind="refund", status="succeeded", amount=1200, parent_id=payment
    )
    async with database.connection() as conn:
        await conn.execute(
            """INSERT INTO refunds (id, transaction_id, amount, currency, status)
               VALUES ($1, $2, 1200, 'USD', 'succeeded')""",
            refund,
            payment,
        )
    record, refunds = await records.transaction(payment)
    assert (record.id, record.parent_id, record.amount) == (payment, None, 5000)
    assert [(r.id, r.amount) for r in refunds] == [(refund, 1200)]
    public = record.public(refunds)
    assert public["object"] == "transaction"
    assert public["refunds"][0]["payment_id"] == str(payment)

    operation, none = await records.transaction(refund)
    assert (operation.parent_id, operation.type, none) == (payment, "refund", [])

    with pytest.raises(NotFound) as missing:
        await records.transaction(uuid4())
    assert missing.value.param == "transaction_id"


async def test_filters_select_exactly_the_matching_rows(database: Database) -> None:
    records = RecordsService(database)
    one, two = await customer(database), await customer(database)
    early = await insert(database, one, created_at=BASE - timedelta(days=2), amount=100)
    euro = await insert(database, one, currency="EUR", amount=2500)
    failed = await insert(database, two, status="failed", amount=700)
    held = await insert(database, two, kind="authorize", status="processing", amount=9000)
    late = await insert(database, two, created_at=BASE + timedelta(days=2), amount=300)

    async def ids(**filters: Any) -> set[UUID]:
        page = await records.transactions(TransactionQuery(limit=100, **filters))
        return {r.id for r in page.items}

    assert await ids() == {early, euro, failed, held, late}
    assert await ids(type="authorize") == {held}
    assert await ids(status="failed") == {failed}
    assert await ids(currency="eur") == {euro}
    assert await ids(customer_id=one) == {early, euro}
    assert await ids(amount_gte=700, amount_lte=2500) == {euro, failed}
    assert await ids(created_gte=BASE, created_lt=BASE + timedelta(days=1)) == {
        euro,
        failed,
        held,
    }
    assert await ids(customer_id=two, status="succeeded", created_gte=BASE) == {late}


SORTS: dict[TransactionSort, Callable[[tuple[datetime, int, UUID]], Any]] = {
    TransactionSort.CREATED_AT: lambda r: (r[0], r[2]),
    TransactionSort.CREATED_AT_DESC: lambda r: (r[0], r[2]),
    TransactionSort.AMOUNT: lambda r: (r[1], r[2]),
    TransactionSort.AMOUNT_DESC: lambda r: (r[1], r[2]),
}


@pytest.mark.parametrize("sort", list(TransactionSort))
async def test_pages_follow_the_sort_without_repeats_or_gaps(
    database: Database, sort: TransactionSort
) -> None:
    records = RecordsService(database)
    owner = await customer(database)
    rows = []
    # Few distinct times and amounts: most rows tie on the sort column, so the id decides.
    for i in range(23):
        created, amount = BASE + timedelta(minutes=i % 4), 100 * (i % 5 + 1)
        rows.append(
            (created, amount, await insert(database, owner, created_at=created, amount=amount))
        )
    expected = [r[2] for r in sorted(rows, key=SORTS[sort], reverse=sort.startswith("-"))]

    async def fetch(cursor: UUID | None) -> Any:
        query = TransactionQuery(sort=sort, limit=5, starting_after=cursor)
        return await records.transactions(query)

    assert await all_pages(fetch) == expected


async def test_an_unknown_cursor_is_named(database: Database) -> None:
    with pytest.raises(InvalidRequest) as bad:
        await RecordsService(database).transactions(TransactionQuery(starting_after=uuid4()))
    assert bad.value.param == "starting_after"


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"sort": "id"}, "sort"),
        ({"sort": "created_at; DROP TABLE transactions"}, "sort"),
        ({"currency": "'; DROP TABLE transactions; --"}, "currency"),
        ({"status": "paid' OR '1'='1"}, "status"),
        ({"type": "charge"}, "type"),
        ({"customer_id": "42"}, "customer_id"),
        ({"starting_after": "txn_1"}, "starting_after"),
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"amount_gte": -1}, "amount_gte"),
        ({"created_gte": "yesterday"}, "created_gte"),
        ({"nonsense": 1}, "nonsense"),
    ],
)
def test_bad_transaction_filters_name_the_parameter(params: dict[str, Any], param: str) -> None:
    with pytest.raises(ValidationError) as bad:
        TransactionQuery(**params)
    assert bad.value.errors()[0]["loc"][0] == param


def test_reversed_ranges_name_their_upper_end() -> None:
    with pytest.raises(ValidationError, match="created_lt: must be later"):
        TransactionQuery(created_gte=BASE, created_lt=BASE)
    with pytest.raises(ValidationError, match="amount_lte: must not be less"):
        TransactionQuery(amount_gte=500, amount_lte=499)
    with pytest.raises(ValidationError, match="created_lt: must be later"):
        AuditLogQuery(created_gte=BASE, created_lt=BASE - timedelta(seconds=1))


async def audit_row(
    database: Database,
    *,
    created_at: datetime,
    entity_type: str = "transactions",
    entity_id: UUID | None = None,
    action: str = "UPDATE",
    api_key_id: UUID | None = None,
    correlation_id: str | None = None,
) -> UUID:
    async with database.connection() as conn:
        row_id: UUID = await conn.fetchval(
            """INSERT INTO audit_logs (entity_type, entity_id, action, new_values, api_key_id,
                   correlation_id, created_at)
               VALUES ($1, $2, $3, '{}'::jsonb, $4, $5, $6) RETURNING id""",
            entity_type,
            entity_id or uuid4(),
            action,
            api_key_id,
            correlation_id,
            created_at,
        )
    return row_id


async def test_audit_filters_and_newest_first_pages(database: Database) -> None:
    records = RecordsService(database)
    key, entity = uuid4(), uuid4()
    oldest = await audit_row(database, created_at=BASE, entity_id=entity, action="INSERT")
    keyed = await audit_row(
        database, created_at=BASE + timedelta(hours=1), api_key_id=key, correlation_id="req-7"
    )
    refund = await audit_row(
        database, created_at=BASE + timedelta(hours=2), entity_type="refunds", entity_id=entity
    )
    newest = await audit_row(database, created_at=BASE + timedelta(hours=3), action="DELETE")

    async def ids(**filters: Any) -> list[UUID]:
        page = await records.audit_logs(AuditLogQuery(**filters))
        return [e.id for e in page.items]

    assert await ids() == [newest, refund, keyed, oldest]
    assert await ids(entity_type="refunds") == [refund]
    assert await ids(entity_id=entity) == [refund, oldest]
    assert await ids(entity_id=entity, entity_type="transactions") == [oldest]
    assert await ids(action="DELETE") == [newest]
    assert await ids(api_key_id=key) == [keyed]
    assert await ids(correlation_id="req-7") == [keyed]
    window = {"created_gte": BASE + timedelta(hours=1), "created_lt": BASE + timedelta(hours=3)}
    assert await ids(**window) == [refund, keyed]

    for _ in range(9):
        await audit_row(database, created_at=BASE + timedelta(hours=1))

    async def fetch(cursor: UUID | None) -> Any:
        return await records.audit_logs(AuditLogQuery(limit=4, starting_after=cursor))

    paged = await all_pages(fetch)
    assert len(paged) == len(set(paged)) == 13
    assert paged == await ids(limit=100)
    with pytest.raises(InvalidRequest) as bad:
        await records.audit_logs(AuditLogQuery(starting_after=uuid4()))
    assert bad.value.param == "starting_after"


async def test_filter_values_are_bound_never_spliced(database: Database) -> None:
    records = RecordsService(database)
    owner = await customer(database)
    await insert(database, owner)
    injection = "'; DROP TABLE transactions; --"
    page = await records.audit_logs(AuditLogQuery(correlation_id=injection))
    assert page.items == []
    with pytest.raises(ValidationError):
        AuditLogQuery(entity_type=injection)
    listed = await records.transactions(TransactionQuery())
    assert len(listed.items) == 1
