"""The yardstick: one plain uvicorn + FastAPI + asyncpg process doing a payment-shaped
transaction (insert the payment, update the customer's balance) per request, with a pydantic
body. What paygrid adds on top of this is the price of its guarantees.

`bench.baseline_server` runs it, one worker or several; each worker keeps its own pool of up to
`BENCH_POOL_MAX` connections (default 8), so that many workers stay within PostgreSQL's
`max_connections`."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import asyncpg
from fastapi import FastAPI, Request
from pydantic import BaseModel, Field, StrictInt

SCHEMA = """
CREATE SCHEMA IF NOT EXISTS bench_baseline;
CREATE TABLE IF NOT EXISTS bench_baseline.payments (
    id uuid PRIMARY KEY, customer_id uuid NOT NULL, amount bigint NOT NULL CHECK (amount > 0),
    currency char(3) NOT NULL, status text NOT NULL, created_at timestamptz DEFAULT now());
CREATE TABLE IF NOT EXISTS bench_baseline.balances (
    customer_id uuid PRIMARY KEY, captured bigint NOT NULL DEFAULT 0);
"""


class Card(BaseModel):
    type: str
    number: str
    exp_month: int
    exp_year: int
    cvc: str | None = None


class Purchase(BaseModel):
    amount: Annotated[StrictInt, Field(gt=0)]
    currency: str
    customer_id: uuid.UUID
    payment_method: Card


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    max_size = int(os.environ.get("BENCH_POOL_MAX", "8"))
    pool = await asyncpg.create_pool(
        os.environ["DATABASE_URL"], min_size=min(4, max_size), max_size=max_size
    )
    async with pool.acquire() as conn:
        await conn.execute(SCHEMA)
    app.state.pool = pool
    yield
    await pool.close()


app = FastAPI(lifespan=lifespan)


@app.post("/purchase")
async def purchase(body: Purchase, request: Request) -> dict[str, object]:
    payment_id = uuid.uuid4()
    async with request.app.state.pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO bench_baseline.payments (id, customer_id, amount, currency, status)"
            " VALUES ($1, $2, $3, $4, 'succeeded')",
            payment_id,
            body.customer_id,
            body.amount,
            body.currency,
        )
        await conn.execute(
            "INSERT INTO bench_baseline.balances (customer_id, captured) VALUES ($1, $2)"
            " ON CONFLICT (customer_id) DO UPDATE"
            " SET captured = bench_baseline.balances.captured + EXCLUDED.captured",
            body.customer_id,
            body.amount,
        )
    return {"success": True, "data": {"id": str(payment_id), "status": "succeeded"}}
