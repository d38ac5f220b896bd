"""Fixtures of the money-path tests: one migrated database per module, and per test a service on
a shard number of its own (so recovery and expiry sweeps see only the test's rows), a fake
gateway, a clock and an API key's request builder."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from uuid import uuid4

import pytest

from engine.db.database import Database, open_database
from tests.engine.payments.builders import Requests
from tests.engine.payments.harness import Rig


@pytest.fixture(scope="module")
async def database(module_dsn: str) -> AsyncIterator[Database]:
    db = await open_database(module_dsn, min_size=1, max_size=4)
    try:
        yield db
    finally:
        await db.close()


@pytest.fixture(scope="module")
def shard_numbers() -> Iterator[int]:
    return itertools.count(1)


@pytest.fixture
def requests() -> Requests:
    return Requests(uuid4())


@pytest.fixture
def rig(database: Database, requests: Requests, shard_numbers: Iterator[int]) -> Rig:
    return Rig.build(database, requests, shard=next(shard_numbers))
