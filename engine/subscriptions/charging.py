"""Paying one invoice through the customer's ledger shard, so that no period is charged twice.

1. begin (one transaction): the invoice's next attempt is numbered and marked pending (or the
   pending one is taken up again);
2. charge (no transaction open): a purchase through the existing command path, under the
   idempotency key `paygrid:subscription:<id>:period:<start>:attempt:<n>` (the reserved
   `paygrid:` scope, which merchants' keys cannot use) and the subscription's own
   API key, so the shard answers a repeat with the first charge's result; a credit is a refund
   of the period's payments under `paygrid:invoice:<id>:refund:<payment>`;
3. settle (`engine/subscriptions/settlement.py`, one transaction): the pending attempt is settled
   only if it is still the pending one.
A crash, a retried job or a second scheduler between the steps finds the attempt pending and
charges again under the same key: the shard replays the first result and nothing moves twice.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from uuid import UUID, uuid5

from engine.cards import CardDetails, CardToken
from engine.db.database import Database
from engine.errors import PaygridError, StateError, UpstreamError
from engine.events.outbox import Outbox
from engine.money import Money
from engine.payments.commands import (
    Command,
    CommandResult,
    CreatePayment,
    RefundPayment,
    RequestContext,
)
from engine.payments.intake import INTERNAL_KEY_PREFIX
from engine.payments.models import Payment
from engine.payments.reads import PaymentReads
from engine.payments.states import PaymentStatus, TransactionType
from engine.principal import Principal
from engine.subscriptions.invoices.repository import InvoiceRepository
from engine.subscriptions.invoicing import invoice_event
from engine.subscriptions.models import Invoice, Subscription
from engine.subscriptions.repository import SubscriptionRepository
from engine.subscriptions.states import CHARGEABLE, BillingReason, InvoiceStatus

Executor = Callable[[Command], Awaitable[CommandResult]]
SavedMethodOpener = Callable[[UUID, UUID | None], Awaitable[CardDetails | CardToken]]
# Many saved methods opened at once, each (method, customer): its card or token, or the refusal
# the one-by-one opener would raise.
Opened = CardDetails | CardToken | PaygridError
SavedMethodsOpener = Callable[[Sequence[tuple[UUID, UUID | None]]], Awaitable[Sequence[Opened]]]


@dataclass(frozen=True, slots=True)
class Paid:
    payment_id: UUID


@dataclass(frozen=True, slots=True)
class Declined:
    code: str
    message: str
    payment_id: UUID | None


Outcome = Paid | Declined


@dataclass(frozen=True, slots=True)
class Attempt:
    """An attempt begun on an invoice, and how its charge came out."""

    invoice: Invoice
    outcome: Outcome


def charge_key(sub: Subscription, invoice: Invoice, attempt: int) -> str:
    """The idempotency key of one attempt to pay an invoice: a period invoice by the
    subscription and the period's start, anything else by the invoice."""
    if invoice.billing_reason is BillingReason.SUBSCRIPTION_UPDATE:
        return f"{INTERNAL_KEY_PREFIX}invoice:{invoice.id}:attempt:{attempt}"
    start = int(invoice.period_start.timestamp())
    return f"{INTERNAL_KEY_PREFIX}subscription:{sub.id}:period:{start}:attempt:{attempt}"


# The namespace of the payment ids of invoice attempts.
_ATTEMPT_PAYMENTS = UUID("5b0f3c2e-7d4a-4e61-9a8c-1f2e3d4c5b6a")


def attempt_payment_id(invoice: Invoice, attempt: int) -> UUID:
    """The id of the one payment attempt `attempt` of `invoice` may ever make: looked up
    before any charge and given to the shard, which refuses a second payment with it, so an
    attempt left pending past its idempotency key's lifetime is never charged twice."""
    return uuid5(_ATTEMPT_PAYMENTS, f"invoice:{invoice.id}:attempt:{attempt}")


# Answers that may change on asking again: a key in use by a request in flight, a rate limit.
_TRANSIENT = frozenset({408, 409, 425, 429})


def _outcome(result: CommandResult) -> Outcome | UUID:
    """How a charge came out, or the id of a payment whose outcome the shard does not know
    yet (a gateway timeout: its recovery settles it)."""
    body = result.body
    if result.status_code == 200 and body.get("status") == "succeeded":
        return Paid(UUID(body["id"]))
    if result.status_code == 402:
        payment = body.get("payment_id")
        return Declined(
            str(body.get("decline_code") or body.get("code")),
            str(body.get("message", "declined")),
            UUID(payment) if payment else None,
        )
    if result.status_code == 504 and body.get("payment_id"):
        return UUID(body["payment_id"])
    if 400 <= result.status_code < 500 and result.status_code not in _TRANSIENT:
        # Refused for good (the customer, the method or the request does not fit): as a
        # decline, so dunning goes on instead of asking again forever.
        return Declined(
            str(body.get("code") or "charge_refused"),
            str(body.get("message", "refused")),
            None,
        )
    raise _unsettled(f"the charge answered {result.status_code} {body.get('code')}")


def _unsettled(why: str) -> UpstreamError:
    # The outcome is unknown: the attempt stays pending and the next run asks again under the
    # same key (a job's retry, or the subscription's next run).
    return UpstreamError(f"{why}; retried under the same key", code="charge_unsettled")


def _settled_payment(payment: Payment) -> Outcome:
    # Refunded since (by the merchant, while the attempt was pending): it was paid all the same.
    if payment.status in (PaymentStatus.SUCCEEDED, PaymentStatus.REFUNDED):
        return Paid(payment.id)
    if payment.status is PaymentStatus.FAILED:
        return Declined(
            payment.decline_code or payment.failure_code or "generic_decline",
            payment.failure_message or "declined",
            payment.id,
        )
    raise _unsettled(f"payment {payment.id} is still {payment.status}")


@dataclass(frozen=True, slots=True)
class Refunded:
    """A credit invoice paid back: the invoice (its attempt pending) and the refunds."""

    invoice: Invoice
    customer_id: UUID
    refund_ids: list[UUID]


class InvoiceCharger:
    def __init__(
        self,
        db: Database,
        *,
        execute: Executor,
        open_saved: SavedMethodOpener,
        open_saved_many: SavedMethodsOpener | None = None,
        subscriptions: SubscriptionRepository,
        invoices: InvoiceRepository,
    ) -> None:
        self._db = db
        self._execute = execute
        self._open_saved = open_saved
        self._open_saved_many = open_saved_many
        self._subscriptions = subscriptions
        self._invoices = invoices
        self._payments = PaymentReads(db)
        self._outbox = Outbox()

    async def _begin(
        self, invoice_id: UUID, principal: Principal, *, credit: bool = False
    ) -> tuple[Invoice, Subscription, bool] | None:
        """The invoice with its attempt pending (numbered now, or the one a run before left),
        and its subscription; None when the invoice is no longer open, or its subscription
        may not be charged (paused or ended: the invoice is voided then). The subscription is
        locked first (as settling does), so a pause or cancel either commits before the
        attempt begins, and no new attempt begins, or waits for it. An attempt already
        pending is taken up whatever the subscription's state: its charge may have reached
        the shard, and only its payment's id tells. The flag says whether the attempt was
        numbered now (no charge can have been made under it yet)."""
        async with self._db.transaction() as conn:
            subscription_id = await self._invoices.subscription_of(conn, invoice_id=invoice_id)
            if subscription_id is None:
                return None
            sub = await self._subscriptions.get(
                conn, subscription_id=subscription_id, for_update=True
            )
            assert sub is not None
            invoice = await self._invoices.get(conn, invoice_id=invoice_id, for_update=True)
            if invoice is None or invoice.status is not InvoiceStatus.OPEN:
                return None
            if not invoice.attempt_pending:
                if sub.status not in CHARGEABLE and not credit:
                    voided = await self._invoices.close(
                        conn, invoice_id=invoice.id, status=InvoiceStatus.VOID, principal=principal
                    )
                    if voided is not None:
                        await self._outbox.add(
                            conn, events=[invoice_event("invoice.voided", voided, principal)]
                        )
                    return None
                begun = await self._invoices.begin_attempt(
                    conn, invoice_id=invoice_id, principal=principal
                )
                assert begun is not None  # locked above, open and not pending
                return begun, sub, True
        return invoice, sub, False

    async def attempt(self, invoice_id: UUID, principal: Principal) -> Attempt | None:
        """Begin (or take up again) an attempt to pay the invoice and charge it; None when
        the invoice is no longer open."""
        begun = await self._begin(invoice_id, principal)
        if begun is None:
            return None
        invoice, sub, fresh = begun
        return await self.charge(invoice, sub, principal, fresh=fresh)

    async def charge_all(
        self, begun: Sequence[tuple[Invoice, Subscription]], principal: Principal
    ) -> list[Attempt | BaseException]:
        """`charge` each attempt numbered just now (begun by the caller, committed), their
        saved methods opened together: each attempt, or what its charge raised."""
        sources: Sequence[Opened | None] = [None] * len(begun)
        if self._open_saved_many is not None:
            sources = await self._open_saved_many(
                [(sub.payment_method_id, sub.customer_id) for _, sub in begun]
            )
        return await asyncio.gather(
            *(
                self.charge(invoice, sub, principal, fresh=True, source=source)
                for (invoice, sub), source in zip(begun, sources, strict=True)
            ),
            return_exceptions=True,
        )

    async def charge(
        self,
        invoice: Invoice,
        sub: Subscription,
        principal: Principal,
        *,
        fresh: bool,
        source: Opened | None = None,
    ) -> Attempt:
        """Charge the invoice's pending attempt (begun by the caller, in a transaction that
        has committed) under its key and payment id; `fresh` says it was numbered just now,
        so no charge can have been made under it yet. `source` is the saved method already
        opened (or its refusal); None opens it here."""
        try:
            if source is None:
                source = await self._open_saved(sub.payment_method_id, sub.customer_id)
            elif isinstance(source, PaygridError):
                raise source
        except StateError as exc:
            # A detached method (or one moved to another customer) can never pay: the attempt
            # is a decline, and dunning goes on as for a card that was refused.
            return Attempt(invoice, Declined(exc.code, exc.message, None))
        payment_id = attempt_payment_id(invoice, invoice.attempts)
        # Only an attempt taken up again can have charged already: a number just given out
        # has no payment yet, so asking would cost a round trip per renewal for nothing.
        earlier = None if fresh else await self._payments.settled(payment_id)
        if earlier is not None:
            # Charged before (a run cut short, a key since expired): its row says how. One
            # still processing goes to the shard under the same key and id, which replays it.
            return Attempt(invoice, _settled_payment(earlier))
        key = charge_key(sub, invoice, invoice.attempts)
        digest = hashlib.sha256(f"{key}:{invoice.amount_due}:{invoice.currency}".encode())
        ctx = RequestContext(
            sub.owner_api_key_id,
            principal.correlation_id or f"billing-{invoice.id}",
            key,
            digest.digest(),
        )
        result = await self._execute(
            CreatePayment(
                ctx=ctx,
                kind=TransactionType.PURCHASE,
                money=Money(invoice.amount_due, invoice.currency),
                customer_id=sub.customer_id,
                source=source,
                description=f"Subscription {sub.id}",
                metadata={"subscription_id": str(sub.id), "invoice_id": str(invoice.id)},
                payment_id=payment_id,
            )
        )
        if result.status_code == 409 and result.body.get("code") == "payment_exists":
            return Attempt(invoice, await self._settled(payment_id))
        outcome = _outcome(result)
        if isinstance(outcome, UUID):
            # The shard left the payment to its recovery; once settled, its row says how.
            outcome = await self._settled(outcome)
        return Attempt(invoice, outcome)

    async def _settled(self, payment_id: UUID) -> Outcome:
        payment = (await self._payments.get(payment_id)).payment
        return _settled_payment(payment)

    async def refund(self, invoice_id: UUID, principal: Principal) -> Refunded | None:
        """Pay a credit invoice (a proration's negative amount) back through the shard as
        the refunds planned with it, each of its payment under the invoice's own idempotency
        key; None when it is no longer open."""
        begun = await self._begin(invoice_id, principal, credit=True)
        if begun is None:
            return None
        invoice, sub, _ = begun
        refund_ids = []
        for payment_id, amount in invoice.refund_plan:
            refund_id = uuid5(_ATTEMPT_PAYMENTS, f"invoice:{invoice.id}:refund:{payment_id}")
            refund_ids.append(refund_id)
            if await self._payments.refund_succeeded(refund_id):
                # Refunded before (a run cut short, a key since expired): never again.
                continue
            key = f"{INTERNAL_KEY_PREFIX}invoice:{invoice.id}:refund:{payment_id}"
            digest = hashlib.sha256(f"{key}:{amount}".encode()).digest()
            result = await self._execute(
                RefundPayment(
                    RequestContext(
                        sub.owner_api_key_id, principal.correlation_id or key, key, digest
                    ),
                    payment_id,
                    sub.customer_id,
                    amount,
                    # A credit the merchant gave (a downgrade): the refund reasons' nearest fit.
                    "requested_by_customer",
                    {"subscription_id": str(sub.id), "invoice_id": str(invoice.id)},
                    refund_id=refund_id,
                )
            )
            if result.status_code == 409 and result.body.get("code") == "refund_exists":
                if await self._payments.refund_succeeded(refund_id):
                    continue
                raise _unsettled(f"refund {refund_id} is not settled yet")
            if result.is_error:
                raise StateError(str(result.body.get("message")), code=result.body.get("code"))
        return Refunded(invoice, sub.customer_id, refund_ids)
