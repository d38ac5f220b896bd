"""What each job kind does. Handlers are idempotent: a job runs at least once. Each deletes in
bounded chunks, one statement per chunk, so no statement outlives its timeout.

Retention: events and idempotency records as their own settings say; the audit trail, failed
authentications and resolved AML alerts for `audit_retention_days` (at least a year, whatever a
job asks). Nothing financial (orders, payments, refunds, ledger entries) of a customer not
erased is ever deleted here; an erased customer's, kept pseudonymously, go whole once all of
them are older than `financial_retention_years` (engine/privacy/retention.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from engine.audit.repository import AuditRepository
from engine.auth.repository import ApiKeyRepository
from engine.compliance.repository import AlertRepository
from engine.config import MIN_AUDIT_RETENTION_DAYS
from engine.db.database import Database
from engine.events.repository import EventRepository
from engine.idempotency.repository import IdempotencyRepository
from engine.privacy.retention import purge_expired_customers

Handler = Callable[[Database, dict[str, Any]], Awaitable[None]]
Recurring = dict[str, tuple[dict[str, Any], float]]

_CHUNK = 5000
# Events younger than this are never purged, whatever a job asks.
_MIN_RETENTION_DAYS = 30
_DAY_S = 24 * 3600.0


async def _drain(db: Database, purge: Callable[[asyncpg.Connection], Awaitable[int]]) -> None:
    """Run `purge` (one chunk, one statement) until a chunk comes back short."""
    while True:
        async with db.connection() as conn:
            removed = await purge(conn)
        if removed < _CHUNK:
            return


async def purge_events(db: Database, payload: dict[str, Any]) -> None:
    """Delete events (and their finished deliveries) older than `retention_days` (≥ 30)."""
    days = max(_MIN_RETENTION_DAYS, int(payload.get("retention_days", 90)))
    events = EventRepository()
    await _drain(db, lambda conn: events.purge(conn, older_than_days=days, limit=_CHUNK))


async def purge_idempotency_keys(db: Database, payload: dict[str, Any]) -> None:
    """Delete idempotency records past their expiry."""
    records = IdempotencyRepository()
    await _drain(db, lambda conn: records.purge_expired(conn, limit=_CHUNK))


async def purge_audit_logs(db: Database, payload: dict[str, Any]) -> None:
    """Delete audit entries older than `retention_days` (≥ 365)."""
    days = max(MIN_AUDIT_RETENTION_DAYS, int(payload["retention_days"]))
    audit = AuditRepository()
    await _drain(db, lambda conn: audit.purge(conn, older_than_days=days, limit=_CHUNK))


async def purge_auth_failures(db: Database, payload: dict[str, Any]) -> None:
    """Delete failed-authentication entries older than `retention_days` (≥ 365)."""
    days = max(MIN_AUDIT_RETENTION_DAYS, int(payload["retention_days"]))
    keys = ApiKeyRepository()
    await _drain(db, lambda conn: keys.purge_failures(conn, older_than_days=days, limit=_CHUNK))


async def purge_resolved_alerts(db: Database, payload: dict[str, Any]) -> None:
    """Delete AML alerts resolved more than `retention_days` (≥ 365) ago; open ones stay."""
    days = max(MIN_AUDIT_RETENTION_DAYS, int(payload["retention_days"]))
    alerts = AlertRepository()
    await _drain(db, lambda conn: alerts.purge_resolved(conn, older_than_days=days, limit=_CHUNK))


async def purge_erased_customers(db: Database, payload: dict[str, Any]) -> None:
    """Delete erased customers whose whole history is older than `retention_years` (at least
    the minimum), each with its rows."""
    await purge_expired_customers(db, years=int(payload["retention_years"]))


HANDLERS: dict[str, Handler] = {
    "events.purge": purge_events,
    "idempotency.purge": purge_idempotency_keys,
    "audit.purge": purge_audit_logs,
    "auth_failures.purge": purge_auth_failures,
    "compliance_alerts.purge": purge_resolved_alerts,
    "customers.retention_purge": purge_erased_customers,
}

# Jobs that keep themselves scheduled: kind → (payload, every_s).
RECURRING: Recurring = {
    "events.purge": ({"retention_days": 90}, _DAY_S),
    "idempotency.purge": ({}, 3600.0),
}


def retention_jobs(audit_retention_days: int, financial_retention_years: int) -> Recurring:
    """The daily purges of the audit trail, failed authentications and resolved alerts past
    `audit_retention_days`, and of erased customers past `financial_retention_years`."""
    payload = {"retention_days": audit_retention_days}
    return {
        "audit.purge": (payload, _DAY_S),
        "auth_failures.purge": (payload, _DAY_S),
        "compliance_alerts.purge": (payload, _DAY_S),
        "customers.retention_purge": ({"retention_years": financial_retention_years}, _DAY_S),
    }
