"""The money path of one ledger shard: runs batches of commands in two transactions.

A batch is begun in one transaction (every command claims its idempotency key and writes its
`processing` row), the gateway calls then run concurrently, and the batch is finalized in a second
transaction (outcomes, ledger entries, outbox events, idempotency answers). Commands of one batch
are applied in order inside each transaction, so two captures of one payment in one batch see
each other. If a batch transaction fails, its commands are retried one transaction each, so one
bad command cannot sink its neighbours.

Invariant: the shard runs one batch at a time (the caller serializes), so the in-memory ledger
book only ever moves after a commit, in commit order.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from uuid import UUID

import asyncpg

from engine.cards import CardToken
from engine.db.database import Database, is_unavailable
from engine.errors import ConcurrentUpdate, PaygridError, StateError, UpstreamError
from engine.gateways.base import GatewayError
from engine.ledger.book import LedgerBook
from engine.ledger.entries import Balance
from engine.money import Money
from engine.payments.commands import (
    CapturePayment,
    Command,
    CommandResult,
    CreatePayment,
    RefundPayment,
    RequestContext,
    VoidPayment,
)
from engine.payments.results import GatewayOutcome, Started, replay_or_refuse, timeout_result
from engine.payments.states import TransactionType
from engine.payments.steps import PaymentSteps

log = logging.getLogger("paygrid.payments")

_DB_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, ConcurrentUpdate)

_SETTLEMENT_INDEX = "transactions_one_settlement"


def _utcnow() -> datetime:
    return datetime.now(UTC)


class PaymentService:
    def __init__(
        self,
        *,
        db: Database,
        steps: PaymentSteps,
        book: LedgerBook,
        shard: int,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._db = db
        self._steps = steps
        self._book = book
        self._shard = shard
        self._clock = clock
        # One batch, balance load or recovery at a time: the book moves in commit order.
        self._serial = asyncio.Lock()

    async def execute(self, commands: Sequence[Command]) -> list[CommandResult]:
        """Run a batch; one result per command, in order. Repeats of an idempotency key within
        the batch share the first command's result (or are refused if their body differs)."""
        first_of: dict[tuple[UUID, str], int] = {}
        primaries: list[int] = []
        repeats: list[tuple[int, int]] = []
        for i, command in enumerate(commands):
            scope = command.ctx.idempotency_scope
            if scope is not None and scope in first_of:
                repeats.append((i, first_of[scope]))
                continue
            if scope is not None:
                first_of[scope] = i
            primaries.append(i)

        async with self._serial:
            answers = await self._run([commands[i] for i in primaries])
        results: dict[int, CommandResult] = dict(zip(primaries, answers, strict=True))
        for i, first in repeats:
            done = results[first]
            results[i] = replay_or_refuse(
                commands[first].ctx.request_hash,
                commands[i].ctx.request_hash,
                True,
                done.status_code,
                done.body,
            )
        return [results[i] for i in range(len(commands))]

    async def balances(self, customer_id: UUID) -> dict[str, Balance]:
        """The customer's ledger per currency, from the book (loaded from the database once)."""
        async with self._serial, self._db.connection() as conn:
            return dict(await self._book.balances(conn, customer_id))

    async def _run(self, commands: list[Command]) -> list[CommandResult]:
        if not commands:
            return []
        async with self._db.connection() as conn:
            begun = await self._begin(conn, commands)
            started = [s for s in begun if isinstance(s, Started)]
            outcomes = await asyncio.gather(*(self._steps.call_gateway(s) for s in started))
            finished = await self._finalize(conn, started, list(outcomes))
        answers = iter(finished)
        return [next(answers) if isinstance(s, Started) else s for s in begun]

    async def _begin(
        self, conn: asyncpg.Connection, commands: list[Command]
    ) -> list[Started | CommandResult]:
        try:
            async with conn.transaction():
                return await self._steps.begin(conn, commands)
        except _DB_ERRORS as exc:
            if is_unavailable(exc):
                raise
            if len(commands) > 1:
                return [(await self._begin(conn, [c]))[0] for c in commands]
            return [CommandResult.from_error(_begin_failure(exc))]

    async def _finalize(
        self, conn: asyncpg.Connection, started: list[Started], outcomes: list[GatewayOutcome]
    ) -> list[CommandResult]:
        if not started:
            return []
        try:
            async with conn.transaction():
                finished = await self._steps.finalize(conn, started, outcomes)
        except _DB_ERRORS as exc:
            # The commit may or may not have happened: reload these customers from the
            # database on their next read instead of guessing.
            for item in started:
                self._book.forget(item.payment.customer_id)
            if is_unavailable(exc):
                # Rows stay `processing` and recovery settles them; retrying on a lost
                # connection would only fail again.
                raise
            if len(started) > 1:
                results = []
                for item, outcome in zip(started, outcomes, strict=True):
                    results.extend(await self._finalize(conn, [item], [outcome]))
                return results
            # The row stays `processing`; recovery settles it from the gateway's record.
            return [
                CommandResult.from_error(
                    UpstreamError(
                        "the payment could not be finalized; it will be settled shortly, retry "
                        f"with the same Idempotency-Key ({type(exc).__name__})",
                        code="finalize_failed",
                    ),
                    payment_id=str(started[0].payment.id),
                )
            ]
        self._book.committed(e for f in finished if f is not None for e in f.entries)
        return [
            timeout_result(s) if f is None else f.result
            for s, f in zip(started, finished, strict=True)
        ]

    async def recover(self, *, older_than: datetime) -> int:
        """Settle this shard's rows left `processing` before `older_than` (a crash between the
        two transactions, or a gateway timeout): ask the gateway what it recorded and finalize
        with that. A command the gateway has no record of failed, once the gateway's own grace
        for late records has passed; until then it waits for the next sweep. One row's trouble
        never blocks the others. Returns how many were settled."""
        settled = 0
        async with self._serial, self._db.connection() as conn:
            rows = await self._steps.payments.processing(conn, shard=self._shard, before=older_than)
            for row in rows:
                try:
                    settled += await self._recover_row(conn, row)
                except Exception:  # logged and left for the next sweep
                    log.exception("could not settle %s; the next sweep retries", row["id"])
        return settled

    async def _recover_row(self, conn: asyncpg.Connection, row: asyncpg.Record) -> int:
        started = await self._rebuild(conn, row)
        if started is None:
            return 0
        reference = started.operation_id or started.payment.id
        found = await self._steps.lookup(reference)
        if found is None:
            age = (self._clock() - row["created_at"]).total_seconds()
            if age < self._steps.lookup_grace_s:
                return 0
        outcome: GatewayOutcome = found or GatewayError(
            "the gateway has no record of the call", ambiguous=False
        )
        try:
            async with conn.transaction():
                [finished] = await self._steps.finalize(conn, [started], [outcome])
                assert finished is not None
                await self._steps.idempotency.complete_for_resource(
                    conn,
                    resource_id=reference,
                    status_code=finished.result.status_code,
                    body=finished.result.body,
                )
        except ConcurrentUpdate:
            return 0
        self._book.committed(finished.entries)
        return 1

    async def expire_authorizations(self) -> int:
        """Expire this shard's authorizations whose window has passed; returns how many."""
        async with self._serial, self._db.transaction() as conn:
            entries = await self._steps.expire_due(conn, shard=self._shard, now=self._clock())
        self._book.committed(entries)
        return len(entries)

    async def _rebuild(self, conn: asyncpg.Connection, row: asyncpg.Record) -> Started | None:
        """A `Started` for a row found `processing`, as the live path would have held it."""
        payment_id = row["parent_id"] or row["id"]
        payment = await self._steps.payments.get(conn, payment_id=payment_id)
        if payment is None:
            return None
        ctx = RequestContext(api_key_id=row["api_key_id"], correlation_id="recovery")
        kind = TransactionType(row["transaction_type"])
        command: Command
        if kind in (TransactionType.PURCHASE, TransactionType.AUTHORIZE):
            command = CreatePayment(
                ctx,
                kind,
                Money(payment.amount, payment.currency),
                payment.customer_id,
                CardToken("recovered"),
            )
            return Started(command, payment, amount=payment.amount)
        if kind is TransactionType.CAPTURE:
            command = CapturePayment(ctx, payment.id, payment.customer_id)
        elif kind is TransactionType.VOID:
            command = VoidPayment(ctx, payment.id, payment.customer_id)
        else:
            command = RefundPayment(ctx, payment.id, payment.customer_id)
        return Started(command, payment, row["id"], row["amount"])


def _begin_failure(exc: BaseException) -> PaygridError:
    if isinstance(exc, asyncpg.UniqueViolationError) and exc.constraint_name == _SETTLEMENT_INDEX:
        return StateError(
            "another capture or void of this payment is in progress",
            code="payment_settlement_in_progress",
            param="payment_id",
        )
    if isinstance(exc, asyncpg.CheckViolationError):
        return StateError(
            f"the change would break a money invariant: {exc}",
            code="amount_too_large",
            param="amount",
        )
    return UpstreamError(
        f"the payment could not be started ({type(exc).__name__})", code="database_error"
    )
