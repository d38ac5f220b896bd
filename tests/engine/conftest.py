"""Throwaway databases for engine tests, on the session's PostgreSQL server.

Each test that asks for `fresh_dsn` gets a new, empty database with a random name, dropped
`WITH (FORCE)` afterwards, so migrations are exercised from scratch. Every other engine test
(`migrated_dsn`, `pool`, `database`) runs on its module's database, copied from a template
migrated once per session and emptied before each test (`tests/engine/cleanup.py`), so no test
sees another's rows and none pays for the migrations again: a new database costs a few tenths
of a second, emptying one a few hundredths. No Ray and no Serve: only the `infra` fixture of
tests/conftest.py.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from redis.asyncio import Redis

from engine.config import Settings
from engine.db import migrations
from engine.db.database import Database, open_database
from engine.db.pool import create_pool
from engine.tracing import configure_tracing, shutdown_tracing
from tests.engine.cleanup import empty_tables


def with_database(dsn: str, name: str) -> str:
    """`dsn` pointed at database `name`, host and options kept (they may sit in the query)."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{name}"))


async def _admin(dsn: str, sql: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _throwaway(admin_dsn: str, prefix: str, template: str | None = None) -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    copy = f' TEMPLATE "{template}"' if template else ""
    await _admin(admin_dsn, f'CREATE DATABASE "{name}"{copy}')
    return name


async def _drop(admin_dsn: str, name: str) -> None:
    await _admin(admin_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
async def migrated_template(infra: dict[str, str]) -> AsyncIterator[str]:
    """The name of a database with every migration applied, copied by `migrated_dsn`."""
    admin_dsn = infra["database_url"]
    name = await _throwaway(admin_dsn, "paygrid_template")
    try:
        await migrations.migrate_dsn(with_database(admin_dsn, name))
        yield name
    finally:
        await _drop(admin_dsn, name)


@pytest.fixture
async def fresh_dsn(infra: dict[str, str]) -> AsyncIterator[str]:
    """The DSN of a new, empty database, dropped after the test."""
    admin_dsn = infra["database_url"]
    name = await _throwaway(admin_dsn, "paygrid_engine")
    try:
        yield with_database(admin_dsn, name)
    finally:
        await _drop(admin_dsn, name)


@pytest.fixture
async def migrated_dsn(module_dsn: str) -> str:
    """A database with every migration applied and nothing else: the module's, emptied for
    this test (as good as a new one, and cheaper)."""
    conn = await asyncpg.connect(module_dsn)
    try:
        await empty_tables(conn)
    finally:
        await conn.close()
    return module_dsn


@pytest.fixture(scope="module")
async def module_dsn(infra: dict[str, str], migrated_template: str) -> AsyncIterator[str]:
    """A migrated database shared by the tests of one module; `empty_tables` gives each test
    a clean start on it."""
    admin_dsn = infra["database_url"]
    name = await _throwaway(admin_dsn, "paygrid_module", template=migrated_template)
    try:
        yield with_database(admin_dsn, name)
    finally:
        await _drop(admin_dsn, name)


@pytest.fixture(scope="module")
async def module_database(module_dsn: str) -> AsyncIterator[Database]:
    """The application's `Database` on the module's shared database."""
    db = await open_database(module_dsn, min_size=1, max_size=6)
    try:
        yield db
    finally:
        await db.close()


@pytest.fixture
async def database(module_database: Database) -> Database:
    """The module's shared database, emptied for this test."""
    async with module_database.connection() as conn:
        await empty_tables(conn)
    return module_database


@pytest.fixture
async def redis(infra: dict[str, str]) -> AsyncIterator[Redis]:
    """A client on the session's Redis (shared by every test: name keys uniquely)."""
    client = Redis.from_url(infra["redis_url"])
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def pool(migrated_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    """The application's pool (json columns as Python values) on a migrated fresh database."""
    opened = await create_pool(migrated_dsn, min_size=1, max_size=4)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def traced(settings: Settings) -> Iterator[None]:
    """Tracing on in this process, into the shared in-memory store, for one test."""
    configure_tracing(
        settings.model_copy(update={"tracing": "memory", "tracing_sample_ratio": 1.0}),
        component="test",
        process="tests",
    )
    yield
    shutdown_tracing()
