"""Fixtures of the money-path tests: per test a fresh migrated database, and on it one shard
(owning every slot) with a fake gateway, a clock and an API key's request builder."""

from __future__ import annotations

from collections.abc import AsyncIterator
from uuid import uuid4

import pytest

from engine.db.database import Database, open_database
from tests.engine.cleanup import empty_tables
from tests.engine.payments.builders import Requests
from tests.engine.payments.harness import Rig


@pytest.fixture(scope="module")
async def module_database(module_dsn: str) -> AsyncIterator[Database]:
    db = await open_database(module_dsn, min_size=1, max_size=4)
    try:
        yield db
    finally:
        await db.close()


@pytest.fixture
async def database(module_database: Database) -> Database:
    """The module's database, emptied for this test."""
    async with module_database.connection() as conn:
        await empty_tables(conn)
    return module_database


@pytest.fixture
def requests() -> Requests:
    return Requests(uuid4())


@pytest.fixture
async def rig(database: Database, requests: Requests) -> Rig:
    return await Rig.build(database, requests)
