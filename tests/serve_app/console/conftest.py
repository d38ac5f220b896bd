"""Fixtures of the console tests: the webhook receiver of the API tests, and signing in."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from engine.auth.keys import ApiKeyService, Scope
from engine.config import Settings
from tests.serve_app.console.client import Console
from tests.serve_app.routes.conftest import receiver

__all__ = ["receiver"]

SignIn = Callable[[frozenset[Scope]], Awaitable[Console]]


@pytest.fixture
async def sign_in(cluster: Settings, keys: ApiKeyService) -> AsyncIterator[SignIn]:
    """Signs a new key with the given scopes in to the console; closes its clients after."""
    made: list[Console] = []

    async def make(scopes: frozenset[Scope]) -> Console:
        _, secret = await keys.create(name="console-" + "-".join(sorted(scopes)), scopes=scopes)
        console = await Console.signed_in(f"http://127.0.0.1:{cluster.port}", secret)
        made.append(console)
        return console

    yield make
    for console in made:
        await console.close()
