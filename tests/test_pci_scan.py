"""After the whole run: no full card number and no CVC anywhere in the database."""

from __future__ import annotations

import asyncpg
import pytest

from tests.factories import VISA
from tests.serve_app.routes.test_payments_declines import DECLINES

PANS = [VISA, "5555555555554444", "378282246310005", *(n for n, _ in DECLINES)]


@pytest.mark.after_all
async def test_no_card_number_or_cvc_is_stored(db: asyncpg.Pool) -> None:
    columns = await db.fetch(
        """SELECT table_name, column_name FROM information_schema.columns
           WHERE table_schema = 'public'
             AND data_type IN ('text', 'character varying', 'character', 'json', 'jsonb',
                               'bytea', 'ARRAY')
             AND table_name IN (SELECT table_name FROM information_schema.tables
                                WHERE table_schema = 'public' AND table_type = 'BASE TABLE')"""
    )
    assert len(columns) > 20
    total_rows = await db.fetchval("SELECT count(*) FROM transactions")
    assert total_rows > 50, "the scan must run after the payment tests"
    for column in columns:
        table, name = column["table_name"], column["column_name"]
        hits = await db.fetchval(
            f"""SELECT count(*) FROM "{table}"
                WHERE "{name}"::text ~ $1 OR "{name}"::text ILIKE '%"cvc"%'
                   OR "{name}"::text ILIKE '%"number"%'""",
            "|".join(PANS),
        )
        assert hits == 0, f"{table}.{name} holds card data"
