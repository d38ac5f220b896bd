"""Fixtures of the money-path tests: per test the module's database emptied (`database`, from
tests/engine/conftest.py), and on it one shard owning every slot, with a fake gateway, a clock
and an API key's request builder."""

from __future__ import annotations

from uuid import uuid4

import pytest

from engine.db.database import Database
from tests.engine.payments.builders import Requests
from tests.engine.payments.harness import Rig


@pytest.fixture
def requests() -> Requests:
    return Requests(uuid4())


@pytest.fixture
async def rig(database: Database, requests: Requests) -> Rig:
    return await Rig.build(database, requests)
