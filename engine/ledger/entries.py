"""Ledger entries and the balances they sum to."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID

import asyncpg


class Account(StrEnum):
    HELD = "held"
    CAPTURED = "captured"
    REFUNDED = "refunded"


@dataclass(frozen=True, slots=True)
class Entry:
    customer_id: UUID
    transaction_id: UUID
    account: Account
    currency: str
    amount: int
    # The request that booked it (None for entries derived from balances, never written).
    correlation_id: str | None = None


@dataclass(slots=True)
class Balance:
    """One customer's balances in one currency. net = captured - refunded."""

    held: int = 0
    captured: int = 0
    refunded: int = 0

    @property
    def net(self) -> int:
        return self.captured - self.refunded

    def apply(self, entry: Entry) -> None:
        if entry.account is Account.HELD:
            self.held += entry.amount
        elif entry.account is Account.CAPTURED:
            self.captured += entry.amount
        else:
            self.refunded += entry.amount


class LedgerRepository:
    """SQL of ledger entries. Never commits."""

    async def insert(self, conn: asyncpg.Connection, *, entries: list[Entry]) -> None:
        """Write entries in one statement, whatever their number, each with the correlation
        id of the command that booked it."""
        if not entries:
            return
        await conn.execute(
            """INSERT INTO ledger_entries (customer_id, transaction_id, account, currency, amount,
                    correlation_id)
               SELECT * FROM unnest(
                   $1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::bigint[], $6::text[])""",
            [e.customer_id for e in entries],
            [e.transaction_id for e in entries],
            [e.account.value for e in entries],
            [e.currency for e in entries],
            [e.amount for e in entries],
            [e.correlation_id for e in entries],
        )

    async def balances(self, conn: asyncpg.Connection, *, customer_id: UUID) -> dict[str, Balance]:
        """The customer's balances per currency, summed from the entries."""
        rows = await conn.fetch(
            """SELECT currency, account, sum(amount)::bigint AS total FROM ledger_entries
               WHERE customer_id = $1 GROUP BY currency, account""",
            customer_id,
        )
        result: dict[str, Balance] = {}
        for r in rows:
            balance = result.setdefault(r["currency"].strip(), Balance())
            balance.apply(
                Entry(customer_id, customer_id, Account(r["account"]), r["currency"], r["total"])
            )
        return result
