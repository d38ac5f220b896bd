"""Fixtures of the privacy tests: the money-path rig (one shard with a fake gateway) on the
module's emptied database, as the payment tests use it."""

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
