"""The named steps of every money command, for a batch: begin (validate, lock, durable
`processing` write), call the gateway, finalize (outcome, ledger entries, outbox events,
idempotency answers, and the totals and status of the orders the payments name, with an
event for each order whose status changed).

Each step runs inside a transaction the service opened; nothing here commits. Purchases and
authorizations go through `CreationSteps` a batch at a time; captures, voids and refunds through
`OperationSteps` one at a time, after the creations (an operation can never act on a payment
created in the same batch: that payment is still `processing`). Ledger entries and idempotency
answers of the whole batch are written once, at the end of each step.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from uuid import UUID

import asyncpg

from engine.compliance.monitor import AmlMonitor
from engine.config import Settings
from engine.customers.repository import CustomerRepository
from engine.customers.sealing import ProfileSealer
from engine.events.outbox import Outbox
from engine.gateways.base import (
    ChargeRequest,
    Gateway,
    GatewayError,
    GatewayResult,
    OperationRequest,
)
from engine.idempotency.repository import IdempotencyRepository
from engine.keys.keyring import Keyring
from engine.ledger.book import Write
from engine.ledger.entries import Entry, LedgerRepository
from engine.money import Money
from engine.orders.events import order_event, status_event_type
from engine.orders.repository import OrderRepository
from engine.payments.commands import (
    CapturePayment,
    Command,
    CommandResult,
    CreatePayment,
    ExternalSettlement,
    VoidPayment,
)
from engine.payments.creation import CreationSteps
from engine.payments.models import ProcessingRow
from engine.payments.operations import Operation, OperationSteps
from engine.payments.repository import PaymentRepository
from engine.payments.results import Finished, GatewayOutcome, Started, answer_for
from engine.payments.states import TransactionType
from engine.principal import Principal

log = logging.getLogger("paygrid.payments")


def settled_elsewhere() -> GatewayResult:
    """The outcome of recording a payment settled outside paygrid: approved, with no gateway
    reference. It is known before the call would be made, so none is made, live or in
    recovery."""
    return GatewayResult(approved=True, gateway_transaction_id=None)


class PaymentSteps:
    """The steps of a batch of commands, shared by the live path and recovery."""

    def __init__(
        self,
        *,
        settings: Settings,
        gateway: Gateway,
        shard: int,
        clock: Callable[[], datetime],
        keyring: Keyring,
    ) -> None:
        self._gateway = gateway
        self.payments = PaymentRepository()
        self.idempotency = IdempotencyRepository()
        self.ledger = LedgerRepository()
        self._orders = OrderRepository()
        outbox = Outbox()
        self._outbox = outbox
        aml = AmlMonitor.from_settings(settings)
        self.aml = aml
        self._creations = CreationSteps(
            settings=settings,
            payments=self.payments,
            customers=CustomerRepository(),
            orders=self._orders,
            sealer=ProfileSealer(keyring),
            idempotency=self.idempotency,
            outbox=outbox,
            aml=aml,
            shard=shard,
            gateway=gateway.name,
            clock=clock,
        )
        self._operations = OperationSteps(
            payments=self.payments,
            idempotency=self.idempotency,
            outbox=outbox,
            aml=aml,
            idempotency_ttl_h=settings.idempotency_ttl_h,
            clock=clock,
        )

    async def begin(
        self, conn: asyncpg.Connection, commands: Sequence[Command]
    ) -> list[Started | CommandResult]:
        """Begin every command, in the batch's order of results. Refusals come back as results,
        their answers already stored under their idempotency keys."""
        creations = [(i, c) for i, c in enumerate(commands) if isinstance(c, CreatePayment)]
        begun: dict[int, Started | CommandResult] = dict(
            zip(
                [i for i, _ in creations],
                await self._creations.begin(conn, [c for _, c in creations]),
                strict=True,
            )
        )
        for i, command in enumerate(commands):
            if not isinstance(command, CreatePayment):
                assert isinstance(command, Operation)
                begun[i] = await self._operations.begin(conn, command)
        return [begun[i] for i in range(len(commands))]

    async def call_gateway(self, started: Started) -> GatewayOutcome:
        """The one gateway call of a started command; transport trouble comes back as a value."""
        command, payment = started.command, started.payment
        money = Money(started.amount, payment.currency)
        try:
            if isinstance(command, CreatePayment):
                source = command.source
                if isinstance(source, ExternalSettlement):
                    return settled_elsewhere()
                capture = command.kind is TransactionType.PURCHASE
                return await self._gateway.charge(
                    ChargeRequest(payment.id, money, source, capture=capture)
                )
            assert started.operation_id is not None
            assert payment.gateway_transaction_id is not None
            request = OperationRequest(started.operation_id, payment.gateway_transaction_id, money)
            if isinstance(command, CapturePayment):
                return await self._gateway.capture(request)
            if isinstance(command, VoidPayment):
                return await self._gateway.void(request)
            return await self._gateway.refund(request)
        except GatewayError as error:
            return error
        except Exception as exc:  # an adapter bug must not sink the batch; logged
            log.exception(
                "the %s gateway failed unexpectedly on %s", self._gateway.name, started.reference
            )
            # Whatever happened, the gateway may have acted: leave it to recovery's lookup.
            return GatewayError(f"unexpected {type(exc).__name__} from the gateway", ambiguous=True)

    async def expire_due(
        self, conn: asyncpg.Connection, *, slots: list[int], now: datetime, write: Write
    ) -> list[Entry]:
        """Expire the authorizations in `slots` whose window has passed (a bounded number per
        call), marking their customers on `write` before anything is written; returns the
        ledger entries written."""
        due = await self.payments.expiring(conn, slots=slots, now=now, limit=500)
        write.add(p.customer_id for p in due)
        entries = [e for payment in due for e in await self._operations.expire(conn, payment)]
        await self.ledger.insert(conn, entries=entries)
        return entries

    async def expiring_slots(
        self, conn: asyncpg.Connection, *, slots: list[int], now: datetime
    ) -> list[int]:
        """Which of `slots` hold authorizations whose window has passed."""
        return await self.payments.expiring_slots(conn, slots=slots, now=now)

    async def processing(
        self, conn: asyncpg.Connection, *, slots: list[int], before: datetime
    ) -> list[ProcessingRow]:
        """Rows in `slots` left `processing` since before `before`, oldest first."""
        return await self.payments.processing(conn, slots=slots, before=before)

    @property
    def lookup_grace_s(self) -> float:
        """How long after a call the gateway may still be recording it."""
        return self._gateway.lookup_grace_s

    async def lookup(self, reference: UUID) -> GatewayResult | None:
        """What the gateway recorded for `reference`; None if it never saw it."""
        return await self._gateway.lookup(reference)

    async def finalize(
        self,
        conn: asyncpg.Connection,
        started: Sequence[Started],
        outcomes: Sequence[GatewayOutcome],
    ) -> list[Finished | None]:
        """Write every known outcome. None for an unknown one (an ambiguous gateway error): that
        command stays `processing` for recovery, and its caller answers 504."""
        known = [
            i for i, o in enumerate(outcomes) if not (isinstance(o, GatewayError) and o.ambiguous)
        ]
        creations = [i for i in known if isinstance(started[i].command, CreatePayment)]
        finished: dict[int, Finished] = {}
        created, answers = await self._creations.finalize(
            conn, [started[i] for i in creations], [outcomes[i] for i in creations]
        )
        finished.update(zip(creations, created, strict=True))
        for i in known:
            if i not in finished:
                done = await self._operations.finalize(conn, started[i], outcomes[i])
                finished[i] = done
                if (answer := answer_for(started[i].command, done.result)) is not None:
                    answers.append(answer)
        await self.ledger.insert(conn, entries=[e for f in finished.values() for e in f.entries])
        await self.idempotency.complete_many(conn, answers=answers)
        # Orders follow their payments in this same transaction, with an event for each
        # status change; a batch naming no order sends nothing.
        moved: dict[UUID, Principal] = {
            order_id: started[i].command.ctx.principal
            for i, done in finished.items()
            if done.result.status_code == 200
            and (order_id := started[i].payment.order_id) is not None
        }
        changed = await self._orders.follow_payments(conn, moved=moved)
        await self._outbox.add(
            conn,
            events=[order_event(status_event_type(o), o, moved[o.id]) for o in changed],
        )
        return [finished.get(i) for i in range(len(started))]
