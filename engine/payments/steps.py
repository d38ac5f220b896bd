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
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Literal
from uuid import UUID

import asyncpg

from engine.bank_accounts import BankAccount
from engine.cards import CardDetails, CardToken, WalletToken
from engine.compliance.monitor import AmlMonitor
from engine.config import Settings
from engine.customers.repository import CustomerRepository
from engine.customers.sealing import ProfileSealer
from engine.errors import GatewayCircuitOpen, InvalidRequest, PaygridError
from engine.events.outbox import Outbox
from engine.gateways.attempts import GatewayRequestKind, attempt_of
from engine.gateways.base import (
    ChargeRequest,
    DebitRequest,
    GatewayError,
    GatewayResult,
    LookupHint,
    OperationRequest,
    debits_of,
)
from engine.gateways.breaker import CircuitBreakers
from engine.gateways.registry import Gateways
from engine.gateways.repository import AttemptRepository
from engine.idempotency.repository import IdempotencyRepository
from engine.keys.keyring import Keyring
from engine.ledger.book import Write
from engine.ledger.entries import Entry, LedgerRepository
from engine.money import Money
from engine.orders.events import order_event, status_event_type
from engine.orders.repository import OrderRepository
from engine.payments.commands import (
    RECORDED_GATEWAY,
    CapturePayment,
    Command,
    CommandResult,
    CreatePayment,
    ExternalSettlement,
    RefundPayment,
    VoidPayment,
)
from engine.payments.creation import CreationSteps
from engine.payments.expiry_voids import VOID_EXPIRED, void_jobs
from engine.payments.models import Payment, ProcessingRow
from engine.payments.operations import Operation, OperationSteps
from engine.payments.repository import PaymentRepository
from engine.payments.results import (
    Finished,
    GatewayOutcome,
    Started,
    answer_for,
    outcome_known,
)
from engine.payments.states import TransactionType
from engine.principal import Principal
from engine.scheduler.repository import JobRepository

log = logging.getLogger("paygrid.payments")


def settled_elsewhere() -> GatewayResult:
    """The outcome of recording a payment settled outside paygrid: approved, with no gateway
    reference. It is known before the call would be made, so none is made, live or in
    recovery."""
    return GatewayResult(approved=True, gateway_transaction_id=None)


def lookup_hint(started: Started) -> LookupHint:
    """What a lookup of `started`'s call is told beside its reference: its kind and, for a
    capture, void or refund, the payment's transaction it acted on."""
    command = started.command
    if isinstance(command, CreatePayment):
        return LookupHint("charge")
    kind: Literal["capture", "void", "refund"] = (
        "capture"
        if isinstance(command, CapturePayment)
        else "void"
        if isinstance(command, VoidPayment)
        else "refund"
    )
    return LookupHint(kind, started.payment.gateway_transaction_id)


def method_type(source: CardDetails | CardToken | BankAccount) -> str:
    """The `PaymentMethod.type` a charge source is, as gateways' capabilities name it."""
    if isinstance(source, BankAccount):
        return "bank"
    if isinstance(source, WalletToken):
        return "wallet"
    return "card" if isinstance(source, CardDetails) else "token"


class PaymentSteps:
    """The steps of a batch of commands, shared by the live path and recovery."""

    def __init__(
        self,
        *,
        settings: Settings,
        gateways: Gateways,
        breakers: CircuitBreakers,
        shard: int,
        clock: Callable[[], datetime],
        keyring: Keyring,
    ) -> None:
        self._gateways = gateways
        self._breakers = breakers
        self._attempts = AttemptRepository()
        self._jobs = JobRepository()
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
            keyring=keyring,
            route=self._route,
            unroutable=self._unroutable,
            clock=clock,
        )
        self._operations = OperationSteps(
            payments=self.payments,
            idempotency=self.idempotency,
            outbox=outbox,
            aml=aml,
            idempotency_ttl_h=settings.idempotency_ttl_h,
            clock=clock,
            bank_settlement_delay=timedelta(seconds=settings.bank_settlement_delay_s),
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

    def _route(self, command: CreatePayment, after: str | None = None) -> str | None:
        """The gateway a new payment goes to: the first its currency and brand route to (after
        `after`, when failing over from it) whose circuit lets it through; a memory read."""
        source = command.source
        if isinstance(source, ExternalSettlement):
            return RECORDED_GATEWAY if after is None else None
        brand = source.summary().brand if isinstance(source, CardDetails) else None
        candidates = self._gateways.route(command.money.currency, brand)
        if after is not None:
            candidates = candidates[candidates.index(after) + 1 :] if after in candidates else ()
        method = method_type(source)
        return next(
            (
                name
                for name in candidates
                if self._gateways.takes(name, method) and self._breakers.allows(name)
            ),
            None,
        )

    def _unroutable(self, command: CreatePayment) -> PaygridError:
        """Why a new payment has no gateway: none of its route takes its method (a bank debit
        where only card gateways are configured: 400), or every one that does has its circuit
        open (503, retry later)."""
        source = command.source
        assert not isinstance(source, ExternalSettlement)
        brand = source.summary().brand if isinstance(source, CardDetails) else None
        method = method_type(source)
        candidates = self._gateways.route(command.money.currency, brand)
        if not any(self._gateways.takes(name, method) for name in candidates):
            return InvalidRequest(
                f"no configured gateway takes {method} payments in {command.money.currency}",
                param="payment_method.type",
            )
        return GatewayCircuitOpen(
            "no gateway can take this payment now (circuit open); retry later"
        )

    def failover(self, started: Started, outcome: GatewayOutcome) -> str | None:
        """The next gateway for a purchase or authorization whose gateway failed before any
        money could have moved (an unambiguous `GatewayError`); None when there is none, and
        always after a result or an ambiguous outcome: the gateway may have acted."""
        command = started.command
        if not isinstance(command, CreatePayment) or not isinstance(outcome, GatewayError):
            return None
        if outcome.ambiguous:
            return None
        return self._route(command, after=started.payment.gateway)

    async def switch_gateway(
        self, conn: asyncpg.Connection, started: Started, gateway: str
    ) -> None:
        """Move a `processing` payment to `gateway` before it is called there, so recovery
        looks it up where it went; the attempts so far are written with the move."""
        started.payment = await self.payments.switch_gateway(
            conn, payment_id=started.payment.id, from_gateway=started.payment.gateway, to=gateway
        )
        await self._attempts.insert_many(conn, attempts=started.attempts)
        started.attempts = []

    async def call_gateway(self, started: Started) -> GatewayOutcome:
        """The one gateway call of a started command, at the payment's gateway, recorded on
        `started.attempts`; transport trouble comes back as a value."""
        command, payment = started.command, started.payment
        if payment.gateway == RECORDED_GATEWAY:
            # A recorded payment, or the recorded refund of one (the only operation such a
            # payment accepts): no gateway was involved, nothing to call or record.
            return settled_elsewhere()
        if isinstance(command, RefundPayment) and command.return_code is not None:
            return settled_elsewhere()  # a bank return: the money went back already
        gateway = self._gateways.get(payment.gateway)
        money = Money(started.amount, payment.currency)
        began = time.monotonic()
        outcome: GatewayOutcome
        try:
            if isinstance(command, CreatePayment):
                source = command.source
                capture = command.kind is TransactionType.PURCHASE
                kind = GatewayRequestKind.CHARGE if capture else GatewayRequestKind.AUTHORIZE
                assert not isinstance(source, ExternalSettlement)
                if isinstance(source, BankAccount):
                    outcome = await debits_of(gateway).debit(
                        DebitRequest(payment.id, money, source)
                    )
                else:
                    outcome = await gateway.charge(
                        ChargeRequest(payment.id, money, source, capture=capture)
                    )
            else:
                assert started.operation_id is not None
                assert payment.gateway_transaction_id is not None
                card = payment.payment_method or {}
                request = OperationRequest(
                    started.operation_id,
                    payment.gateway_transaction_id,
                    money,
                    card_last4=card.get("last4"),
                )
                if isinstance(command, CapturePayment):
                    kind = GatewayRequestKind.CAPTURE
                    outcome = await gateway.capture(request)
                elif isinstance(command, VoidPayment):
                    kind = GatewayRequestKind.VOID
                    outcome = await gateway.void(request)
                else:
                    kind = GatewayRequestKind.REFUND
                    outcome = await gateway.refund(request)
        except GatewayError as error:
            outcome = error
        except Exception as exc:  # an adapter bug must not sink the batch; logged
            log.exception(
                "the %s gateway failed unexpectedly on %s", gateway.name, started.reference
            )
            # Whatever happened, the gateway may have acted: leave it to recovery's lookup.
            outcome = GatewayError(f"unexpected {type(exc).__name__} from the gateway", True)
        started.attempts.append(
            attempt_of(
                outcome,
                payment_id=payment.id,
                reference=started.reference,
                gateway=gateway.name,
                kind=kind,
                latency_s=time.monotonic() - began,
            )
        )
        self._breakers.report(gateway.name, outcome)
        return outcome

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
        # Each is voided at the gateway that holds it by a job queued with the expiry.
        await self._jobs.enqueue_many(conn, kind=VOID_EXPIRED, jobs=void_jobs(due))
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

    def lookup_grace_s(self, started: Started) -> float:
        """How long after a call the payment's gateway may still be recording it."""
        return self._gateways.get(started.payment.gateway).lookup_grace_s

    async def lookup_payment(self, payment: Payment) -> GatewayResult | None:
        """What the payment's gateway now says of its charge or debit (a bank debit's return
        shows here); None if it has no record. A routine check, not recorded as an attempt."""
        return await self._gateways.get(payment.gateway).lookup(payment.id)

    async def lookup(self, started: Started) -> GatewayResult | None:
        """What the payment's gateway recorded for the command; None if it never saw it. The
        lookup is recorded on `started.attempts`."""
        gateway = self._gateways.get(started.payment.gateway)
        began = time.monotonic()
        found = await gateway.lookup(started.reference, lookup_hint(started))
        started.attempts.append(
            attempt_of(
                found,
                payment_id=started.payment.id,
                reference=started.reference,
                gateway=gateway.name,
                kind=GatewayRequestKind.LOOKUP,
                latency_s=time.monotonic() - began,
            )
        )
        return found

    async def finalize(
        self,
        conn: asyncpg.Connection,
        started: Sequence[Started],
        outcomes: Sequence[GatewayOutcome],
    ) -> list[Finished | None]:
        """Write every known outcome. None for an unknown one (an ambiguous gateway error, a
        hold for review): that command stays `processing` for recovery's lookup."""
        known = [i for i, o in enumerate(outcomes) if outcome_known(o)]
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
        # Every call is recorded, an ambiguous one's too (its row stays `processing`).
        await self._attempts.insert_many(conn, attempts=[a for s in started for a in s.attempts])
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
