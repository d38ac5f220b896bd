"""Database operations (admin): health, migrations, statistics. No answer names a host, port,
user or secret."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.responses import Response

from engine.database_admin.models import migrations_public
from schema.api.common import ERROR_RESPONSES, Envelope
from schema.api.database import (
    DatabaseHealthPublic,
    DatabaseStatsPublic,
    MigrationsPublic,
    StatsQuery,
)
from serve_app import responses
from serve_app.deps import AdminKey, CorrelationId, State

router = APIRouter(prefix="/api/database", tags=["database"], responses=ERROR_RESPONSES)


@router.get(
    "/health", operation_id="database_health", response_model=Envelope[DatabaseHealthPublic]
)
async def health(key: AdminKey, state: State, cid: CorrelationId) -> Response:
    """This replica's pool, one round trip's latency and the server's version; 503 if the
    database does not answer."""
    return responses.ok((await state.database_admin.health()).public(), cid)


@router.get(
    "/migrations", operation_id="database_migrations", response_model=Envelope[MigrationsPublic]
)
async def list_migrations(key: AdminKey, state: State, cid: CorrelationId) -> Response:
    """Applied migrations with their checksums and times, and pending ones."""
    return responses.ok(migrations_public(await state.database_admin.migrations()), cid)


@router.get("/stats", operation_id="database_stats", response_model=Envelope[DatabaseStatsPublic])
async def stats(
    query: Annotated[StatsQuery, Query()], key: AdminKey, state: State, cid: CorrelationId
) -> Response:
    """Row counts and sizes of the main tables, and transaction totals by type, status and
    currency over `from`..`to` (UTC days, both included; default the last 30, at most 366)."""
    return responses.ok((await state.database_admin.stats(query)).public(), cid)
