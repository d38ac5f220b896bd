"""The benchmarks' seeding works against the schema as it is: every customer it makes is sealed
(the database refuses PII in clear, which once broke `make bench` without any test noticing)."""

from __future__ import annotations

import asyncpg
from pydantic import SecretStr

from bench.workload import seed
from engine.config import Settings
from engine.keys.master import new_master_key


async def test_seed_makes_sealed_customers_and_a_key(fresh_dsn: str) -> None:
    settings = Settings(
        database_url=SecretStr(fresh_dsn),
        secret_key=SecretStr("s" * 64),
        master_key=SecretStr(new_master_key()),
    )
    seeded = await seed(settings, 1_500)
    assert len(set(seeded.customers)) == 1_500
    assert seeded.key
    conn = await asyncpg.connect(fresh_dsn)
    try:
        sealed = await conn.fetchval(
            "SELECT count(*) FROM customers WHERE ciphertext IS NOT NULL AND email IS NULL"
        )
    finally:
        await conn.close()
    assert sealed == 1_500
