"""Reading and resolving AML alerts (admin). Alerts are written by the ledger shard
(`engine/compliance/monitor.py`); here they are only listed and closed.

A cursor (`starting_after`) must name an existing alert: an unknown one is a 400 naming it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from uuid import UUID

from engine.compliance.models import Alert, AlertPage
from engine.compliance.repository import AlertRepository
from engine.db.database import Database
from engine.errors import Conflict, InvalidRequest, NotFound
from engine.principal import Principal
from schema.api.compliance import AlertQuery


def _utcnow() -> datetime:
    return datetime.now(UTC)


class AlertService:
    def __init__(self, db: Database, *, clock: Callable[[], datetime] = _utcnow) -> None:
        self._db = db
        self._clock = clock
        self._alerts = AlertRepository()

    async def page(self, query: AlertQuery) -> AlertPage:
        """A page of alerts matching `query`, newest first."""
        async with self._db.connection() as conn:
            cursor = query.starting_after
            if cursor is not None and await self._alerts.get(conn, alert_id=cursor) is None:
                raise InvalidRequest(f"no alert {cursor} to start after", param="starting_after")
            found, more = await self._alerts.page(conn, query=query)
        return AlertPage(found, more)

    async def resolve(self, alert_id: UUID, note: str, principal: Principal) -> Alert:
        """Close an open alert with a note; NotFound for an unknown id, a Conflict for one
        already resolved."""
        async with self._db.transaction() as conn:
            resolved = await self._alerts.resolve(
                conn,
                alert_id=alert_id,
                note=note,
                resolved_by=principal.api_key_id,
                at=self._clock(),
            )
            if resolved is not None:
                return resolved
            if await self._alerts.get(conn, alert_id=alert_id) is None:
                raise NotFound(f"no alert {alert_id}", param="alert_id")
        raise Conflict(
            f"alert {alert_id} is already resolved", code="alert_resolved", param="alert_id"
        )
