"""Fixtures of the AML tests: a shard (as tests/engine/payments builds one) whose AML settings
each test chooses, on its module's emptied database."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from uuid import uuid4

import pytest

from engine.db.database import Database
from tests.engine.payments.builders import Requests
from tests.engine.payments.harness import Rig, engine_settings

RigFactory = Callable[..., Awaitable[Rig]]


@pytest.fixture
def requests() -> Requests:
    return Requests(uuid4())


@pytest.fixture
def make_rig(database: Database, requests: Requests) -> RigFactory:
    """A shard with the default settings, AML ones overridden by keyword (`aml_` dropped)."""

    async def build(**aml: Any) -> Rig:
        settings = engine_settings().model_copy(
            update={f"aml_{name}": value for name, value in aml.items()}
        )
        return await Rig.build(database, requests, settings=settings)

    return build
