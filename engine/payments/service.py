"""The money path of one ledger shard, pipelined.

Every command passes three stages: begin (claim its idempotency key, lock and check, write it
`processing`), its gateway call, and finalize (outcome, ledger entries, outbox event, idempotency
answer). Begin and finalize run batches of whatever commands reached them, one transaction per
batch and a fixed number of set-based statements per transaction; gateway calls run concurrently
and outside any lock or transaction. So a shard keeps many batches in flight at once: while one
batch waits on the gateway, the next begins and an earlier one finalizes.

Order where it matters: each command first takes its customer's turn (`engine/sequencing.py`),
reserved the moment it arrives, so one customer's commands take effect one at a time in arrival
order while other customers' run alongside. A repeat of an idempotency key that arrives while
the first request is still in flight waits for it and shares its answer.

Ownership: a shard writes only for the slots it holds (`engine/fencing`); every transaction checks
its slots, so after a restart or a change of shard count an old incarnation writes nothing.

Recovery and the sweep never block live traffic: they take no turn and no lock, make their
gateway lookups outside any transaction, and finalize through the same stage. Rows this
incarnation has in flight are never recovered under it. If a batch transaction fails, its
commands are retried one transaction each, so one bad command cannot sink its neighbours; if the
database is unavailable, each command of the batch answers a retryable 503 and what was written
`processing` is settled by recovery.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from uuid import UUID

import asyncpg
from opentelemetry.trace import SpanKind

from engine.batching import Coalescer
from engine.cards import CardToken
from engine.db.database import Database, is_unavailable
from engine.errors import (
    ConcurrentUpdate,
    InternalError,
    PaygridError,
    ShardMoved,
    StateError,
    UpstreamError,
)
from engine.fencing.ownership import SlotOwnership
from engine.gateways.base import GatewayError
from engine.ledger.book import LedgerBook
from engine.ledger.entries import Balance
from engine.logs.context import reset_correlation, set_correlation
from engine.money import Money
from engine.payments.commands import (
    RECORDED_GATEWAY,
    CapturePayment,
    Command,
    CommandResult,
    CreatePayment,
    ExternalSettlement,
    RefundPayment,
    RequestContext,
    VoidPayment,
)
from engine.payments.models import Payment, ProcessingRow
from engine.payments.results import (
    Finished,
    GatewayOutcome,
    Started,
    replay_or_refuse,
    unsettled_result,
)
from engine.payments.returns import BankReturns
from engine.payments.states import TransactionType
from engine.payments.steps import PaymentSteps, settled_elsewhere
from engine.sequencing import KeyedSequencer, Turn
from engine.sharding import slot_of
from engine.tracing import TraceOrigins, enabled, remote_parent, traceparent_of, tracer
from schema.states import RecordedMethod

log = logging.getLogger("paygrid.payments")

_DB_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, ConcurrentUpdate)

_SETTLEMENT_INDEX = "transactions_one_settlement"

IdempotencyScope = tuple[UUID, str]


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Finalization:
    """A started command with its gateway outcome, on its way to the finalize stage. A
    recovered one also settles whatever idempotency key waits on its row: with the outcome, or,
    if the call never reached the gateway, by freeing the key, since the client was told to
    retry with it (a 503) and nothing was charged."""

    started: Started
    outcome: GatewayOutcome
    recovered: bool = False
    never_reached: bool = False


class PaymentService:
    def __init__(
        self,
        *,
        db: Database,
        steps: PaymentSteps,
        book: LedgerBook,
        ownership: SlotOwnership,
        max_batch: int = 64,
        stage_transactions: int = 1,
        clock: Callable[[], datetime] = _utcnow,
        origins: TraceOrigins | None = None,
    ) -> None:
        self._db = db
        # Where traced commands note their span, for the webhooks their events cause.
        self._origins = origins
        self._steps = steps
        self._book = book
        self._ownership = ownership
        self._clock = clock
        self._turns: KeyedSequencer[UUID] = KeyedSequencer()
        self._begins: Coalescer[Command, Started | CommandResult] = Coalescer(
            self._begin_batch,
            max_batch=max_batch,
            max_in_flight=stage_transactions,
            span_name="ledger_shard.begin",
        )
        self._finals: Coalescer[Finalization, CommandResult] = Coalescer(
            self._finalize_batch,
            max_batch=max_batch,
            max_in_flight=stage_transactions,
            span_name="ledger_shard.finalize",
        )
        # The first request of each idempotency key in flight: its hash and its answer to be.
        self._keys: dict[IdempotencyScope, tuple[bytes, asyncio.Future[CommandResult]]] = {}
        # Rows whose gateway call this incarnation is making: never recovered under it.
        self._in_flight: set[UUID] = set()

    async def start(self) -> None:
        """Claim this shard's slots (from now on an older owner of them writes nothing), then
        warm the AML history of their customers from what was committed before."""
        await self._ownership.claim(self._db)
        async with self._db.connection() as conn:
            loaded = await self._steps.aml.warm(
                conn, slots=self._ownership.slots, now=self._clock()
            )
        if loaded:
            log.info("AML history warmed with %d recent attempts", loaded)

    async def execute(self, commands: Sequence[Command]) -> list[CommandResult]:
        """Run commands; one result per command, in order. Each command's turn is reserved
        here, before anything is awaited, so arrival order is the order of effect."""
        loop = asyncio.get_running_loop()
        answers: list[asyncio.Future[CommandResult]] = []
        for command in commands:
            scope = command.ctx.idempotency_scope
            first = self._keys.get(scope) if scope is not None else None
            if first is not None:
                answers.append(loop.create_task(self._share(first, command.ctx.request_hash)))
                continue
            turn = self._turns.reserve(command.customer_id)
            # The task copies the context now: its log lines carry its request's correlation id.
            token = set_correlation(command.ctx.correlation_id)
            try:
                answer = loop.create_task(self._answer(command, turn))
            finally:
                reset_correlation(token)
            if scope is not None:
                self._keys[scope] = (command.ctx.request_hash, answer)
                answer.add_done_callback(partial(self._key_done, scope))
            answers.append(answer)
        return list(await asyncio.gather(*answers))

    async def balances(self, customer_id: UUID) -> dict[str, Balance]:
        """The customer's committed balances per currency; never waits behind a gateway."""
        return dict(await self._book.balances(customer_id))

    async def recover(self, *, older_than: datetime) -> int:
        """Settle this shard's rows left `processing` before `older_than` (a crash between the
        two transactions, a lost commit, a gateway timeout): ask the gateway what it recorded
        and finalize with that. A command the gateway has no record of failed, once the
        gateway's own grace for late records has passed; until then it waits for the next
        sweep. One row's trouble never blocks the others. Returns how many were settled."""
        async with self._db.connection() as conn:
            rows = await self._steps.processing(
                conn, slots=self._ownership.slots, before=older_than
            )
        settled = 0
        for row in rows:
            if row.id in self._in_flight:
                continue
            try:
                settled += await self._recover_row(row)
            except ShardMoved:
                log.warning("recovery stopped: another shard now owns these slots")
                break
            except Exception:  # logged; the next sweep retries this row
                log.exception("could not settle %s; the next sweep retries", row.id)
        return settled

    async def check_bank_returns(self, *, every: timedelta) -> int:
        """Reverse this shard's settled bank debits that their banks returned (see
        `engine/payments/returns.py`); returns how many were."""
        returns = BankReturns(
            db=self._db,
            steps=self._steps,
            ownership=self._ownership,
            execute=self.execute,
            clock=self._clock,
        )
        return await returns.check(every=every)

    async def expire_authorizations(self) -> int:
        """Expire this shard's authorizations whose window has passed; returns how many."""
        now = self._clock()
        async with self._db.connection() as conn:
            slots = await self._steps.expiring_slots(conn, slots=self._ownership.slots, now=now)
            if not slots:
                return 0
            with self._book.writing() as write:
                async with self._ownership.transaction(conn, slots):
                    entries = await self._steps.expire_due(conn, slots=slots, now=now, write=write)
                self._book.committed(entries)
        return len(entries)

    def _key_done(self, scope: IdempotencyScope, answer: asyncio.Future[CommandResult]) -> None:
        # A newer first request of the same key may have taken the place meanwhile: keep it.
        held = self._keys.get(scope)
        if held is not None and held[1] is answer:
            del self._keys[scope]

    async def _share(
        self, first: tuple[bytes, asyncio.Future[CommandResult]], request_hash: bytes
    ) -> CommandResult:
        """A repeat of a key whose first request is in flight: its answer, or a refusal if the
        bodies differ."""
        held_hash, answer = first
        done = await asyncio.shield(answer)
        return replay_or_refuse(held_hash, request_hash, True, done.status_code, done.body)

    async def _answer(self, command: Command, turn: Turn[UUID]) -> CommandResult:
        """The command's result; a failure becomes this command's error answer only. Traced,
        in a span that is the child of the one that sent the command."""
        if not enabled():
            return await self._answer_untraced(command, turn)
        with tracer().start_as_current_span(
            f"LedgerShard {type(command).__name__}",
            context=remote_parent(command.ctx.traceparent),
            kind=SpanKind.SERVER,
            attributes={
                "paygrid.command": type(command).__name__,
                "paygrid.correlation_id": command.ctx.correlation_id,
            },
        ) as span:
            traceparent = traceparent_of(span.get_span_context())
            if self._origins is not None and span.is_recording() and traceparent is not None:
                self._origins.note(command.ctx.correlation_id, traceparent)
            return await self._answer_untraced(command, turn)

    async def _answer_untraced(self, command: Command, turn: Turn[UUID]) -> CommandResult:
        try:
            async with turn:
                return await self._run(command)
        except PaygridError as error:
            return CommandResult.from_error(error)
        except Exception:  # a bug answers 500 for its own command, logged
            log.exception(
                "%s failed (correlation id %s)", type(command).__name__, command.ctx.correlation_id
            )
            return CommandResult.from_error(InternalError("an internal error occurred"))

    async def _run(self, command: Command) -> CommandResult:
        if not self._ownership.owns(slot_of(command.customer_id)):
            raise ShardMoved(
                "this shard does not hold the customer's ledger; retry with the same "
                "Idempotency-Key"
            )
        begun = await self._begins.submit(command)
        if isinstance(begun, CommandResult):
            return begun
        self._in_flight.add(begun.reference)
        try:
            outcome = await self._steps.call_gateway(begun)
            while (gateway := self._steps.failover(begun, outcome)) is not None:
                # In the command's task: the line carries its request's correlation id.
                log.warning(
                    "payment %s: %s failed before acting; failing over to %s",
                    begun.payment.id,
                    begun.payment.gateway,
                    gateway,
                )
                if not await self._switch(begun, gateway):
                    break
                outcome = await self._steps.call_gateway(begun)
            return await self._finals.submit(Finalization(begun, outcome))
        finally:
            self._in_flight.discard(begun.reference)

    async def _switch(self, begun: Started, gateway: str) -> bool:
        """Fail over durably: the payment names `gateway` before it is called there, so
        recovery asks the gateway that may have acted. False if the move could not be
        written: the payment then finalizes with the failure it has."""
        slot = slot_of(begun.payment.customer_id)
        try:
            async with self._db.connection() as conn, self._ownership.transaction(conn, [slot]):
                await self._steps.switch_gateway(conn, begun, gateway)
        except _DB_ERRORS:
            log.warning("could not fail %s over to %s", begun.payment.id, gateway, exc_info=True)
            return False
        return True

    async def _begin_batch(self, commands: list[Command]) -> list[Started | CommandResult]:
        async with self._db.connection() as conn:
            return await self._begin(conn, commands)

    async def _begin(
        self, conn: asyncpg.Connection, commands: list[Command]
    ) -> list[Started | CommandResult]:
        try:
            async with self._ownership.transaction(
                conn, (slot_of(c.customer_id) for c in commands)
            ):
                return await self._steps.begin(conn, commands)
        except _DB_ERRORS as exc:
            if is_unavailable(exc):
                raise
            if len(commands) > 1:
                return [(await self._begin(conn, [c]))[0] for c in commands]
            return [CommandResult.from_error(_begin_failure(exc))]

    async def _finalize_batch(self, items: list[Finalization]) -> list[CommandResult]:
        async with self._db.connection() as conn:
            return await self._finalize(conn, items)

    async def _finalize(
        self, conn: asyncpg.Connection, items: list[Finalization]
    ) -> list[CommandResult]:
        started = [i.started for i in items]
        slots = {slot_of(s.payment.customer_id) for s in started}
        try:
            with self._book.writing(s.payment.customer_id for s in started):
                async with self._ownership.transaction(conn, slots):
                    outcomes = [i.outcome for i in items]
                    finished = await self._steps.finalize(conn, started, outcomes)
                    for item, done in zip(items, finished, strict=True):
                        await self._settle_key(conn, item, done)
                self._book.committed(e for f in finished if f is not None for e in f.entries)
        except _DB_ERRORS as exc:
            if is_unavailable(exc):
                # Rows stay `processing` and recovery settles them; retrying on a lost
                # connection would only fail again.
                raise
            if len(items) > 1:
                return [(await self._finalize(conn, [item]))[0] for item in items]
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
        return [
            unsettled_result(i.started, i.outcome) if f is None else f.result
            for i, f in zip(items, finished, strict=True)
        ]

    async def _settle_key(
        self, conn: asyncpg.Connection, item: Finalization, done: Finished | None
    ) -> None:
        """A recovered command's idempotency key: answered with its outcome, or freed."""
        if not item.recovered or done is None:
            return
        keys, reference = self._steps.idempotency, item.started.reference
        if item.never_reached:
            await keys.release_for_resource(conn, resource_id=reference)
        else:
            await keys.complete_for_resource(
                conn,
                resource_id=reference,
                status_code=done.result.status_code,
                body=done.result.body,
            )

    async def _recover_row(self, row: ProcessingRow) -> int:
        started = await self._rebuild(row)
        if started is None:
            return 0
        if started.payment.gateway == RECORDED_GATEWAY:
            # Settled outside paygrid: the recording only has to be finished, as live.
            result = await self._finals.submit(
                Finalization(started, settled_elsewhere(), recovered=True)
            )
            return 0 if result.status_code == 503 else 1
        found = await self._steps.lookup(started)
        if found is not None and found.review:
            return 0  # still held for review: the next sweep asks again
        if found is None:
            age = (self._clock() - row.created_at).total_seconds()
            if age < self._steps.lookup_grace_s(started):
                return 0
        outcome: GatewayOutcome = found or GatewayError(
            "the gateway has no record of the call", ambiguous=False
        )
        result = await self._finals.submit(
            Finalization(started, outcome, recovered=True, never_reached=found is None)
        )
        if result.status_code == 503:
            log.error("could not settle %s; the next sweep retries", row.id)
            return 0
        return 1

    async def _rebuild(self, row: ProcessingRow) -> Started | None:
        """A `Started` for a row found `processing`, as the live path would have held it."""
        async with self._db.connection() as conn:
            payment = await self._steps.payments.get(conn, payment_id=row.payment_id)
        if payment is None:
            return None
        # Processing rows come from API commands, which always carry a key; a row written
        # without one is recovered on behalf of the nil key.
        ctx = RequestContext(api_key_id=row.api_key_id or UUID(int=0), correlation_id="recovery")
        command: Command
        if row.kind in (TransactionType.PURCHASE, TransactionType.AUTHORIZE):
            command = CreatePayment(
                ctx,
                row.kind,
                Money(payment.amount, payment.currency),
                payment.customer_id,
                _recovered_source(payment),
            )
            return Started(command, payment, amount=payment.amount)
        if row.kind is TransactionType.CAPTURE:
            command = CapturePayment(ctx, payment.id, payment.customer_id)
        elif row.kind is TransactionType.VOID:
            command = VoidPayment(ctx, payment.id, payment.customer_id)
        else:
            command = RefundPayment(ctx, payment.id, payment.customer_id)
        return Started(command, payment, row.id, row.amount)


def _recovered_source(payment: Payment) -> CardToken | ExternalSettlement:
    """What a rebuilt purchase or authorization was paid with, as far as its row tells: the
    settlement of a recorded payment, else a placeholder (the card never reaches the database)."""
    method = payment.payment_method
    if payment.gateway == RECORDED_GATEWAY and method is not None:
        return ExternalSettlement(RecordedMethod(method["type"]), method.get("reference"))
    return CardToken("recovered")


def _begin_failure(exc: BaseException) -> PaygridError:
    if isinstance(exc, asyncpg.UniqueViolationError) and exc.constraint_name == _SETTLEMENT_INDEX:
        return StateError(
            "another capture or void of this payment is in progress",
            code="payment_settlement_in_progress",
            param="payment_id",
        )
    if isinstance(exc, asyncpg.CheckViolationError):
        # Never the driver's message: it quotes the failing row.
        return StateError(
            "the change would break a money invariant"
            + (f" ({exc.constraint_name})" if exc.constraint_name else ""),
            code="amount_too_large",
            param="amount",
        )
    return UpstreamError(
        f"the payment could not be started ({type(exc).__name__})", code="database_error"
    )
