"""Throwaway databases for engine tests, on the session's PostgreSQL server.

Each test that asks for `fresh_dsn` gets a new, empty database with a random name, dropped
`WITH (FORCE)` afterwards, so migrations and constraints are exercised from scratch and no test
sees another's rows. A module that asks for `module_dsn` gets one migrated database for all its
tests (dropped after the module): its tests keep to their own customers, payments and shards. No
Ray and no Serve: only the `infra` fixture of tests/conftest.py.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from engine.db import migrations
from engine.db.pool import create_pool


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


@pytest.fixture
async def fresh_dsn(infra: dict[str, str]) -> AsyncIterator[str]:
    """The DSN of a new, empty database, dropped after the test."""
    admin_dsn = infra["database_url"]
    name = f"paygrid_engine_{uuid.uuid4().hex[:12]}"
    await _admin(admin_dsn, f'CREATE DATABASE "{name}"')
    try:
        yield with_database(admin_dsn, name)
    finally:
        await _admin(admin_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def migrated_dsn(fresh_dsn: str) -> str:
    """A fresh database with every migration applied."""
    conn = await asyncpg.connect(fresh_dsn)
    try:
        await migrations.migrate(conn)
    finally:
        await conn.close()
    return fresh_dsn


@pytest.fixture
async def pool(migrated_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    """The application's pool (json columns as Python values) on a migrated fresh database."""
    opened = await create_pool(migrated_dsn, min_size=1, max_size=4)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture(scope="module")
async def module_dsn(infra: dict[str, str]) -> AsyncIterator[str]:
    """The DSN of a new database with every migration applied, shared by the tests of one module
    and dropped after the last of them."""
    admin_dsn = infra["database_url"]
    name = f"paygrid_module_{uuid.uuid4().hex[:12]}"
    await _admin(admin_dsn, f'CREATE DATABASE "{name}"')
    try:
        dsn = with_database(admin_dsn, name)
        conn = await asyncpg.connect(dsn)
        try:
            await migrations.migrate(conn)
        finally:
            await conn.close()
        yield dsn
    finally:
        await _admin(admin_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
