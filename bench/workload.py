"""The purchase workload: a seeded instance and the requests the load generator sends to it.

`seed` migrates the instance once and adds an unlimited payments API key and `customers`
customers (`payments_key` makes more keys, with limits of their own);
`Purchases` describes the requests (random customers, a fresh `Idempotency-Key` each, the same
card) as a picklable value, so load processes spawned for one run can each build their own.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass

import asyncpg

from bench.load import RequestFactory
from engine.auth.keys import ApiKeyService, Scope
from engine.config import Settings
from engine.customers.models import NewCustomer
from engine.customers.repository import CustomerRepository
from engine.customers.sealing import ProfileSealer
from engine.db import migrations
from engine.db.database import Database
from engine.db.pool import create_pool
from engine.keys.keyring import Keyring
from engine.principal import Principal
from engine.ratelimit.limits import UNLIMITED, KeyRate

CARD = {
    "type": "card",
    "number": "4242424242424242",
    "exp_month": 12,
    "exp_year": 2034,
    "cvc": "123",
}

PAYGRID_PATH = "/api/payments/purchase"
BASELINE_PATH = "/purchase"


# Customers sealed and inserted per transaction while seeding.
_SEED_BATCH = 1_000


@dataclass(frozen=True)
class Seeded:
    """What the load needs from a seeded instance."""

    key: str
    customers: tuple[str, ...]


async def seed(settings: Settings, customers: int) -> Seeded:
    """Migrate, make a payments key and `customers` customers, their profiles sealed as a
    purchase's inline customers are (the database refuses PII in clear)."""
    conn = await asyncpg.connect(settings.database_dsn)
    try:
        await migrations.migrate(conn)
    finally:
        await conn.close()
    ids = [uuid.uuid4() for _ in range(customers)]
    made = [NewCustomer(i, f"bench-{n}@example.com") for n, i in enumerate(ids)]
    sealer = ProfileSealer(Keyring.from_settings(settings))
    pool = await create_pool(settings.database_dsn, min_size=1, max_size=1)
    try:
        for start in range(0, len(made), _SEED_BATCH):
            batch = [(c, Principal(None, "bench-seed")) for c in made[start : start + _SEED_BATCH]]
            async with pool.acquire() as conn, conn.transaction():
                sealed = await sealer.seal(conn, {c.id: c.profile for c, _ in batch})
                await CustomerRepository().insert_many(conn, customers=batch, sealed=sealed)
    finally:
        await pool.close()
    # The benchmark measures the platform, not the limiter's refusals.
    key = await payments_key(settings, UNLIMITED)
    return Seeded(key, tuple(str(i) for i in ids))


async def payments_key(settings: Settings, rate_limit: KeyRate) -> str:
    """The secret of a new `payments:write` key with its own `rate_limit`."""
    pool = await create_pool(settings.database_dsn, min_size=1, max_size=1)
    try:
        _, key = await ApiKeyService(Database(pool), secret=settings.secret_bytes).create(
            name="bench", scopes=frozenset({Scope.PAYMENTS_WRITE}), rate_limit=rate_limit
        )
    finally:
        await pool.close()
    return key


@dataclass(frozen=True)
class Purchases:
    """Purchase POSTs to `path` over random customers; `key` authenticates them (None for the
    baseline, which has no auth). Each part draws customers from its own seeded stream."""

    path: str
    customers: tuple[str, ...]
    key: str | None
    seed: int

    def factory(self, part: int) -> RequestFactory:
        rng = random.Random(self.seed * 1_000 + part)
        headers = {"Content-Type": "application/json"}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"

        def make(i: int) -> tuple[str, dict[str, str], bytes]:
            body = {
                "amount": 100 + i % 9000,
                "currency": "USD",
                "customer_id": rng.choice(self.customers),
                "payment_method": CARD,
            }
            return (
                self.path,
                {**headers, "Idempotency-Key": str(uuid.uuid4())},
                json.dumps(body).encode(),
            )

        return make


def paygrid(seeded: Seeded, seed: int) -> Purchases:
    """Purchases through paygrid's API."""
    return Purchases(PAYGRID_PATH, seeded.customers, seeded.key, seed)


def baseline(seeded: Seeded, seed: int) -> Purchases:
    """The same purchases against the baseline app."""
    return Purchases(BASELINE_PATH, seeded.customers, None, seed)
