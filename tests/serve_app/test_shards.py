"""Three ways a shard call fails, three different answers: a domain error reaches the client as
itself, a bug is logged with its traceback and answered 500, a dead shard is a retryable 503."""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any
from uuid import uuid4

import pytest
import ray
from ray import cloudpickle

from engine.cards import CardToken
from engine.config import Settings
from engine.errors import (
    DatabaseUnavailable,
    InternalError,
    PaygridError,
    StateError,
    UpstreamError,
)
from engine.money import Money
from engine.payments.commands import CommandResult, CreatePayment, RequestContext
from engine.payments.states import TransactionType
from serve_app.shards import ShardRouter
from tests.waiting import wait_until

# The workers cannot import the tests package: ship this module's classes by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])  # type: ignore[no-untyped-call]


@ray.remote(num_cpus=0, max_restarts=0)
class FaultyShard:
    """Stands in for a LedgerShard: fails each call the way it was told to."""

    def __init__(self, mode: str) -> None:
        self._mode = mode
        self._calls = 0
        self._hang = asyncio.Event()

    async def ping(self) -> int:
        return 0

    async def calls(self) -> int:
        return self._calls

    async def execute(self, commands: list[Any]) -> list[CommandResult]:
        self._calls += 1
        if self._mode == "refusal":
            raise StateError("payment is voided", code="payment_not_capturable", param="payment_id")
        if self._mode == "database":
            raise DatabaseUnavailable("the database is unavailable")
        if self._mode == "bug":
            raise KeyError("a bug inside the shard")
        await self._hang.wait()
        return []

    async def balances(self, customer_id: Any) -> dict[str, tuple[int, int, int]]:
        raise KeyError("a bug inside the shard")


def _command() -> CreatePayment:
    return CreatePayment(
        RequestContext(uuid4(), "corr-shard-errors"),
        TransactionType.PURCHASE,
        Money(100, "USD"),
        uuid4(),
        CardToken("tok_visa"),
    )


async def _failure(mode: str) -> PaygridError:
    router = ShardRouter([FaultyShard.remote(mode)], max_batch=8)  # type: ignore[attr-defined]
    with pytest.raises(PaygridError) as caught:
        await router.execute(_command())
    return caught.value


async def test_a_domain_error_reaches_the_client_as_itself(cluster: Settings) -> None:
    error = await _failure("refusal")
    assert type(error) is StateError
    assert (error.http_status, error.code, error.param) == (
        422,
        "payment_not_capturable",
        "payment_id",
    )
    unavailable = await _failure("database")
    assert type(unavailable) is DatabaseUnavailable
    assert (unavailable.http_status, unavailable.code) == (503, "database_unavailable")


async def test_a_bug_in_the_shard_is_logged_and_answered_500(
    cluster: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="paygrid.api.shards"):
        error = await _failure("bug")
    assert type(error) is InternalError
    assert (error.http_status, error.code) == (500, "internal_error")
    assert "a bug inside the shard" not in error.message  # details stay in the log
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "ledger shard 0 failed" in logged
    # The remote traceback, with the exception the shard raised:
    assert "KeyError" in logged
    assert "a bug inside the shard" in logged


async def test_a_killed_shard_is_a_retryable_503(cluster: Settings) -> None:
    shard = FaultyShard.remote("hang")  # type: ignore[attr-defined]
    router = ShardRouter([shard], max_batch=8)
    call = asyncio.create_task(router.execute(_command()))

    async def inside() -> bool:
        return bool(await shard.calls.remote())

    await wait_until(inside, what="the call to reach the shard")
    ray.kill(shard, no_restart=True)
    with pytest.raises(UpstreamError) as caught:
        await call
    assert type(caught.value) is UpstreamError
    assert (caught.value.http_status, caught.value.code) == (503, "shard_unavailable")


async def test_balance_reads_fail_the_same_way(cluster: Settings) -> None:
    router = ShardRouter([FaultyShard.remote("bug")], max_batch=8)  # type: ignore[attr-defined]
    with pytest.raises(InternalError):
        await router.balances(uuid4())
