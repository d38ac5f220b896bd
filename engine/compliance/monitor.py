"""The AML monitor of one ledger shard: screens the purchases and authorizations of a batch
against each customer's recent attempts, remembers the attempts that finished, and writes the
alerts of a batch's hits with their `compliance.alert` events.

No extra round trip on the hot path: screening reads only memory; a batch without hits writes
nothing more; a batch with hits writes its alerts and events (and a blocked payment's
`payment.failed` event) in one statement. A blocked payment's row is written `failed` by the
insert the batch makes anyway. Attempts are remembered when they finish (a customer's commands
run one at a time, so its previous attempt is remembered before its next is screened); a
finish retried after a failed batch is remembered once (by payment id).

Cards are told apart by a keyed BLAKE2b hash (a MAC) of the number, under a key that lives
only in this process's memory: the fingerprint never leaves it and means nothing anywhere else.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID, uuid4

import asyncpg

from engine.bank_accounts import BankAccount
from engine.cards import CardDetails, CardToken
from engine.compliance.history import AttemptHistory
from engine.compliance.models import Alert
from engine.compliance.repository import AlertRepository
from engine.compliance.rules import (
    COMPLIANCE_BLOCK,
    AmlPolicy,
    Attempt,
    Hit,
    payment_rules,
    refund_hit,
    screen,
)
from engine.config import Settings
from engine.errors import CardDeclined
from engine.events.outbox import Event
from engine.payments.commands import CreatePayment, ExternalSettlement, RequestContext
from engine.payments.models import Payment
from schema.states import AlertStatus

# The placeholder source of a payment rebuilt by recovery (engine/payments/service.py): no card
# is known for it.
_RECOVERED = CardToken("recovered")


def compliance_block() -> CardDeclined:
    """The answer to a payment or refund a blocking rule stops: a decline, as a gateway's."""
    return CardDeclined("The payment was declined.", decline_code=COMPLIANCE_BLOCK)


@dataclass(slots=True)
class Screening:
    """The hits of a batch, by payment id, with the request each came from."""

    hits: dict[UUID, tuple[CreatePayment, list[Hit]]] = field(default_factory=dict)

    @property
    def blocked(self) -> set[UUID]:
        return {p for p, (_, hits) in self.hits.items() if any(h.blocks for h in hits)}


class AmlMonitor:
    def __init__(self, policy: AmlPolicy, *, max_customers: int) -> None:
        self.policy = policy
        self._rules = payment_rules(policy)
        self._history = AttemptHistory(memory=policy.memory, max_customers=max_customers)
        self._card_key = os.urandom(32)
        self._alerts = AlertRepository()

    @classmethod
    def from_settings(cls, settings: Settings) -> AmlMonitor:
        return cls(
            AmlPolicy.from_settings(settings), max_customers=settings.aml_history_max_customers
        )

    def screen(self, payments: Sequence[tuple[CreatePayment, UUID]], *, now: datetime) -> Screening:
        """Screen each (command, payment id); a customer appears at most once per batch (its
        commands take turns), so each is screened against its finished attempts only."""
        found = Screening()
        if not self.policy.enabled:
            return found
        for command, payment_id in payments:
            attempt = self._attempt(command, payment_id, now)
            past = self._history.recent(command.customer_id, now)
            hits = screen(self.policy, self._rules, past, attempt)
            if hits:
                found.hits[payment_id] = (command, hits)
        return found

    async def warm(self, conn: asyncpg.Connection, *, slots: list[int], now: datetime) -> int:
        """Load the finished attempts of the customers in `slots` within the longest window
        before `now` from the database (a shard starting, its slots just claimed), so that a
        pattern straddling a restart is still seen. Cards are unknown for them: the distinct
        cards rule counts only cards seen since. Returns how many attempts were loaded."""
        if not self.policy.enabled or not slots:
            return 0
        loaded = 0
        async with conn.transaction(readonly=True):
            found = self._alerts.finished_attempts(
                conn, slots=slots, since=now - self.policy.memory
            )
            async for customer_id, attempt in found:
                self._history.record(customer_id, attempt)
                loaded += 1
        return loaded

    def finished(self, command: CreatePayment, payment_id: UUID, *, now: datetime) -> None:
        """Remember an attempt that finished (approved or declined)."""
        if self.policy.enabled:
            self._history.record(command.customer_id, self._attempt(command, payment_id, now))

    async def write(
        self,
        conn: asyncpg.Connection,
        screening: Screening,
        written: dict[UUID, Payment],
        *,
        now: datetime,
    ) -> None:
        """Write the batch's alerts and events, in one statement, if it has any hits."""
        if not screening.hits:
            return
        alerts: list[tuple[Alert, RequestContext]] = []
        events: list[Event] = []
        blocked = screening.blocked
        for payment_id, (command, hits) in screening.hits.items():
            payment = written[payment_id]
            alerts += [(self._alert(h, payment, now), command.ctx) for h in hits]
            if payment_id in blocked:
                ctx = command.ctx
                events.append(
                    Event(
                        "payment.failed",
                        "payment",
                        payment.id,
                        payment.public(),
                        ctx.api_key_id,
                        ctx.correlation_id,
                    )
                )
        await self._insert(conn, alerts, events)

    def refund(self, payment: Payment, amount: int, *, now: datetime) -> Hit | None:
        """Screen a refund of `payment` (reads nothing: the purchase's time is on its row)."""
        return refund_hit(
            self.policy,
            purchased_at=payment.created_at,
            now=now,
            amount=amount,
            currency=payment.currency,
        )

    async def write_refund_alert(
        self,
        conn: asyncpg.Connection,
        hit: Hit,
        payment: Payment,
        ctx: RequestContext,
        *,
        now: datetime,
    ) -> None:
        """The alert (and event) of a refund's hit, in one statement; a hit is rare, and a
        refund is one command with a handful of statements already."""
        await self._insert(conn, [(self._alert(hit, payment, now), ctx)], [])

    def _attempt(self, command: CreatePayment, payment_id: UUID, now: datetime) -> Attempt:
        money = command.money
        return Attempt(payment_id, now, money.amount, money.currency, self._card(command.source))

    def _card(
        self, source: CardDetails | CardToken | BankAccount | ExternalSettlement
    ) -> bytes | None:
        if isinstance(source, CardDetails):
            value = f"card:{source.number}"
        elif isinstance(source, BankAccount):
            value = f"bank:{source.routing_number}:{source.account_number}"
        elif isinstance(source, ExternalSettlement) or source == _RECOVERED:
            return None
        else:
            value = f"token:{source.token}"
        return hashlib.blake2b(value.encode(), key=self._card_key, digest_size=16).digest()

    def _alert(self, hit: Hit, payment: Payment, now: datetime) -> Alert:
        return Alert(
            id=uuid4(),
            rule=hit.rule,
            action=hit.action,
            status=AlertStatus.OPEN,
            customer_id=payment.customer_id,
            payment_id=payment.id,
            details=hit.details,
            resolution_note=None,
            resolved_at=None,
            created_at=now,
        )

    async def _insert(
        self,
        conn: asyncpg.Connection,
        alerts: list[tuple[Alert, RequestContext]],
        events: list[Event],
    ) -> None:
        for alert, ctx in alerts:
            events.append(
                Event(
                    "compliance.alert",
                    "compliance_alert",
                    alert.id,
                    alert.public(),
                    ctx.api_key_id,
                    ctx.correlation_id,
                )
            )
        await self._alerts.insert_with_events(
            conn,
            alerts=[a for a, _ in alerts],
            events=events,
            api_key_ids=[c.api_key_id for _, c in alerts],
            correlation_ids=[c.correlation_id for _, c in alerts],
        )
