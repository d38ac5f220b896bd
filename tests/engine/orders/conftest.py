"""Fixtures of the orders tests: per test the module's database emptied, one shard owning
every slot (a fake gateway, a clock, an API key's request builder) and the orders service."""

from __future__ import annotations

from uuid import uuid4

import pytest

from engine.db.database import Database
from engine.orders.service import OrderService
from tests.engine.payments.builders import MAX_AMOUNT, Requests
from tests.engine.payments.harness import Rig


@pytest.fixture
def requests() -> Requests:
    return Requests(uuid4())


@pytest.fixture
async def rig(database: Database, requests: Requests) -> Rig:
    return await Rig.build(database, requests)


@pytest.fixture
def orders(database: Database) -> OrderService:
    return OrderService(database, max_amount=MAX_AMOUNT, idempotency_ttl_h=24)
