"""Reads every text, JSON and binary column of every table and says where any of the given
strings appears: the check that PostgreSQL holds no readable PII, whatever code wrote it."""

from __future__ import annotations

import asyncpg

_SCANNED_TYPES = ("text", "character varying", "character", "json", "jsonb", "bytea", "ARRAY")


async def readable(conn: asyncpg.Connection | asyncpg.Pool, needles: list[str]) -> list[str]:
    """`table.column: needle` for each column holding one of `needles` (any case, in text,
    JSON, arrays or raw bytes)."""
    columns = await conn.fetch(
        """SELECT table_name, column_name, data_type FROM information_schema.columns
           WHERE table_schema = 'public' AND data_type = ANY($1::text[])
             AND table_name IN (SELECT tablename FROM pg_tables WHERE schemaname = 'public')
           ORDER BY table_name, column_name""",
        list(_SCANNED_TYPES),
    )
    found = []
    for c in columns:
        table, column = c["table_name"], c["column_name"]
        if c["data_type"] == "bytea":
            # Bytes as stored, and also read as (possibly escaped) text.
            probe = f"""SELECT count(*) FROM "{table}"
                        WHERE position(convert_to($1, 'UTF8') in "{column}") > 0
                           OR position(convert_to(lower($1), 'UTF8') in "{column}") > 0"""
        else:
            probe = f"""SELECT count(*) FROM "{table}"
                        WHERE strpos(lower("{column}"::text), lower($1)) > 0"""
        for needle in needles:
            if await conn.fetchval(probe, needle):
                found.append(f"{table}.{column}: {needle}")
    return found
