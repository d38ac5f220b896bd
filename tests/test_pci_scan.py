"""After the whole run: no full card number, no CVC, no bank account number, no wallet token
and no saved card's holder name anywhere in
the database, in text (text, json and array columns, as text) or in bytes (bytea columns, raw:
their text form is hex, in which a plaintext number would hide). The vault's ciphertext is
among the columns scanned, so a card saved unencrypted would be found."""

from __future__ import annotations

import asyncpg
import pytest

from tests.factories import VISA
from tests.serve_app.routes.test_bank_debits import ACCOUNT, WALLET_TOKENS
from tests.serve_app.routes.test_payment_methods import HOLDER
from tests.serve_app.routes.test_payments_declines import DECLINES

PANS = [VISA, "5555555555554444", "378282246310005", *(n for n, _ in DECLINES)]
SECRETS = [*PANS, ACCOUNT, *WALLET_TOKENS, HOLDER]


@pytest.mark.after_all
async def test_no_card_number_or_cvc_is_stored(db: asyncpg.Pool) -> None:
    columns = await db.fetch(
        """SELECT table_name, column_name, data_type FROM information_schema.columns
           WHERE table_schema = 'public'
             AND data_type IN ('text', 'character varying', 'character', 'json', 'jsonb',
                               'bytea', 'ARRAY')
             AND table_name IN (SELECT table_name FROM information_schema.tables
                                WHERE table_schema = 'public' AND table_type = 'BASE TABLE')"""
    )
    assert len(columns) > 20
    scanned = {(c["table_name"], c["column_name"]) for c in columns}
    assert {("payment_methods", "ciphertext"), ("data_keys", "wrapped_key")} <= scanned
    total_rows = await db.fetchval("SELECT count(*) FROM transactions")
    assert total_rows > 50, "the scan must run after the payment tests"
    sealed = await db.fetchval("SELECT count(*) FROM payment_methods WHERE ciphertext IS NOT NULL")
    assert sealed > 0, "the scan must run after the saved payment method tests"
    for column in columns:
        table, name = column["table_name"], column["column_name"]
        hits = await db.fetchval(
            f"""SELECT count(*) FROM "{table}"
                WHERE "{name}"::text ~ $1 OR "{name}"::text ILIKE '%"cvc"%'
                   OR "{name}"::text ILIKE '%"number"%'
                   OR "{name}"::text ILIKE '%"account_number"%'""",
            "|".join(SECRETS),
        )
        assert hits == 0, f"{table}.{name} holds card data"
        if column["data_type"] == "bytea":
            raw_hits = await db.fetchval(
                f"""SELECT count(*) FROM "{table}" WHERE EXISTS (
                        SELECT 1 FROM unnest($1::text[]) AS s (value)
                        WHERE position(convert_to(s.value, 'UTF8') IN "{table}"."{name}") > 0)""",
                SECRETS,
            )
            assert raw_hits == 0, f"{table}.{name} holds card data in clear bytes"
