"""`engine/ratelimit`: the forms a limit is written in, and GCRA in Redis: bursts, refills,
separate buckets, atomicity under concurrent callers on different clients (replicas), and
Redis unreachable reported as no decision."""

from __future__ import annotations

import asyncio
from uuid import uuid4

import pytest
from redis.asyncio import Redis

from engine.errors import InvalidRequest
from engine.ratelimit.limiter import RateLimiter
from engine.ratelimit.limits import PROFILES, UNLIMITED, Rate, Tier, parse_rate, rate_text
from tests.waiting import wait_until


def bucket() -> str:
    return f"test:{uuid4().hex}"


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        ("5000/s", Rate(5000, 1, 10_000)),
        ("600/m", Rate(600, 60, 600)),
        ("1000/h", Rate(1000, 3600, 1000)),
        (" Unlimited ", UNLIMITED),
    ],
)
def test_rate_forms(raw: str, parsed: object) -> None:
    assert parse_rate(raw) == parsed
    assert parse_rate(rate_text(parse_rate(raw))) == parsed


@pytest.mark.parametrize("raw", ["", "0/s", "5/d", "5", "-1/s", "1.5/s", "5/s/s", "lots"])
def test_bad_rates_name_the_field(raw: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_rate(raw)
    assert caught.value.param == "rate_limit"


def test_profiles_hold_the_documented_tiers() -> None:
    default, seed = PROFILES["default"], PROFILES["seed"]
    assert default.rate(Tier.STANDARD) == Rate(100, 1, 200)
    assert default.rate(Tier.ADMIN) == Rate(10, 1, 20)
    assert default.rate(Tier.UNAUTHENTICATED) == Rate(20, 1, 40)
    assert (seed.standard.count, seed.payments.count, seed.admin.count) == (1000, 500, 100)
    assert {seed.standard.period_s, seed.payments.period_s, seed.admin.period_s} == {3600}


async def test_a_burst_then_refusals_with_retry_after(redis: Redis) -> None:
    limiter = RateLimiter(redis)
    name, rate = bucket(), Rate(1, 3600, 5)
    decisions = [await limiter.check(name, rate) for _ in range(7)]
    assert all(d is not None for d in decisions)
    allowed = [d for d in decisions if d is not None and d.allowed]
    assert [d.remaining for d in allowed] == [4, 3, 2, 1, 0]
    refused = decisions[5]
    assert refused is not None
    assert not refused.allowed
    assert refused.limit == 5
    assert refused.remaining == 0
    # One request per hour comes back: the next one in about an hour.
    assert 3500 <= refused.retry_after_s <= 3600
    assert 5 * 3600 - 10 <= refused.reset_s <= 5 * 3600
    other = await limiter.check(bucket(), rate)
    assert other is not None
    assert other.allowed, "another bucket is untouched"


async def test_the_bucket_refills_at_the_rate(redis: Redis) -> None:
    limiter = RateLimiter(redis)
    name, rate = bucket(), Rate(20, 1, 2)
    first = [await limiter.check(name, rate) for _ in range(3)]
    assert [d is not None and d.allowed for d in first] == [True, True, False]

    async def allowed_again() -> bool:
        decision = await limiter.check(name, rate)
        return decision is not None and decision.allowed

    # 20/s: a request's worth comes back within 50 ms.
    await wait_until(allowed_again, timeout_s=2, what="the bucket to refill")


async def test_replicas_share_one_bucket_atomically(infra: dict[str, str]) -> None:
    replicas = [Redis.from_url(infra["redis_url"]) for _ in range(3)]
    try:
        limiters = [RateLimiter(r, timeout_s=5) for r in replicas]
        name, rate = bucket(), Rate(1, 3600, 50)
        decisions = await asyncio.gather(*(limiters[i % 3].check(name, rate) for i in range(300)))
        assert sum(1 for d in decisions if d is not None and d.allowed) == 50
    finally:
        for r in replicas:
            await r.aclose()


async def test_unreachable_redis_is_no_decision() -> None:
    down = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    try:
        assert await RateLimiter(down).check(bucket(), Rate(1, 1, 1)) is None
    finally:
        await down.aclose()


async def test_concurrent_checks_batch_and_survive_a_redis_that_lost_the_script(
    redis: Redis,
) -> None:
    limiter = RateLimiter(redis)
    name, rate = bucket(), Rate(1, 3600, 3)
    first = await limiter.check(name, rate)
    assert first is not None
    assert first.allowed
    # A restarted Redis has no scripts: the next batch (four checks made together) loads it
    # and runs once, each check exactly once.
    await redis.script_flush()
    decisions = await asyncio.gather(*(limiter.check(name, rate) for _ in range(4)))
    assert sorted(d.remaining for d in decisions if d is not None and d.allowed) == [0, 1]
    assert sum(1 for d in decisions if d is not None and not d.allowed) == 2
