"""Retention of the audit trail, failed authentications and resolved AML alerts: purged past the
configured period, never younger than a year whatever a job asks, open alerts never; the setting
refuses less than a year; the scheduler keeps every purge recurring."""

from __future__ import annotations

from uuid import UUID, uuid4

import asyncpg
import pytest
from pydantic import ValidationError

from engine.config import Settings
from engine.db.database import Database
from engine.scheduler.handlers import (
    purge_audit_logs,
    purge_auth_failures,
    purge_resolved_alerts,
    retention_jobs,
)


async def _audit_entry(conn: asyncpg.Connection, days_old: int) -> UUID:
    entry: UUID = await conn.fetchval(
        """INSERT INTO audit_logs (entity_type, entity_id, action, created_at)
           VALUES ('orders', gen_random_uuid(), 'INSERT', now() - make_interval(days => $1))
           RETURNING id""",
        days_old,
    )
    return entry


async def _alert(conn: asyncpg.Connection, days_old: int, *, resolved_days_ago: int | None) -> UUID:
    alert_id = uuid4()
    resolved = resolved_days_ago is not None
    await conn.execute(
        """INSERT INTO compliance_alerts (id, rule, action, status, customer_id, payment_id,
                resolution_note, resolved_at, created_at)
           VALUES ($1, 'large_amount', 'flag', $2, gen_random_uuid(), gen_random_uuid(),
                   CASE WHEN $3::int IS NULL THEN NULL ELSE 'checked' END,
                   now() - make_interval(days => $3::int),
                   now() - make_interval(days => $4))""",
        alert_id,
        "resolved" if resolved else "open",
        resolved_days_ago,
        days_old,
    )
    return alert_id


async def test_audit_entries_go_only_past_the_period_and_never_within_a_year(
    pool: asyncpg.Pool,
) -> None:
    async with pool.acquire() as conn:
        ancient = await _audit_entry(conn, 500)
        year_and_a_bit = await _audit_entry(conn, 380)
        recent = await _audit_entry(conn, 100)
    db = Database(pool)

    await purge_audit_logs(db, {"retention_days": 400})
    ids = [ancient, year_and_a_bit, recent]
    left = {r["id"] for r in await pool.fetch("SELECT id FROM audit_logs WHERE id = ANY($1)", ids)}
    assert left == {year_and_a_bit, recent}

    await purge_audit_logs(db, {"retention_days": 30})  # never below 365 days
    left = {r["id"] for r in await pool.fetch("SELECT id FROM audit_logs WHERE id = ANY($1)", ids)}
    assert left == {recent}


async def test_failed_authentications_go_only_past_the_period(pool: asyncpg.Pool) -> None:
    ages = {500: uuid4(), 380: uuid4(), 100: uuid4()}
    for days_old, entry in ages.items():
        await pool.execute(
            """INSERT INTO auth_failures (id, reason, method, path, created_at)
               VALUES ($1, 'unknown', 'GET', '/api/payments', now() - make_interval(days => $2))""",
            entry,
            days_old,
        )
    await purge_auth_failures(Database(pool), {"retention_days": 400})
    left = {r["id"] for r in await pool.fetch("SELECT id FROM auth_failures")}
    assert left == {ages[380], ages[100]}
    await purge_auth_failures(Database(pool), {"retention_days": 30})  # never below 365 days
    left = {r["id"] for r in await pool.fetch("SELECT id FROM auth_failures")}
    assert left == {ages[100]}


async def test_only_alerts_resolved_past_the_period_go(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        resolved_long_ago = await _alert(conn, 900, resolved_days_ago=500)
        resolved_lately = await _alert(conn, 900, resolved_days_ago=100)
        still_open = await _alert(conn, 900, resolved_days_ago=None)

    await purge_resolved_alerts(Database(pool), {"retention_days": 400})
    ids = [resolved_long_ago, resolved_lately, still_open]
    left = {
        r["id"]
        for r in await pool.fetch("SELECT id FROM compliance_alerts WHERE id = ANY($1)", ids)
    }
    assert left == {resolved_lately, still_open}


def test_the_period_is_at_least_a_year_and_both_purges_recur() -> None:
    assert Settings().audit_retention_days == 400
    with pytest.raises(ValidationError, match="audit_retention_days"):
        Settings(audit_retention_days=364)
    jobs = retention_jobs(Settings(audit_retention_days=730).audit_retention_days, 7)
    assert {kind: payload for kind, (payload, _) in jobs.items()} == {
        "audit.purge": {"retention_days": 730},
        "auth_failures.purge": {"retention_days": 730},
        "compliance_alerts.purge": {"retention_days": 730},
        "customers.retention_purge": {"retention_years": 7},
    }
