"""The events of subscriptions and invoices, and the invoice of a period."""

from __future__ import annotations

from datetime import datetime
from uuid import uuid4

from engine.events.outbox import Event
from engine.principal import Principal
from engine.subscriptions.models import Invoice, InvoiceLine, NewInvoice, Subscription
from engine.subscriptions.states import BillingReason


def subscription_event(kind: str, sub: Subscription, principal: Principal) -> Event:
    """A `subscription.*` event carrying the subscription as the API shows it."""
    return Event(
        kind, "subscription", sub.id, sub.public(), principal.api_key_id, principal.correlation_id
    )


def invoice_event(kind: str, invoice: Invoice, principal: Principal) -> Event:
    """An `invoice.*` event carrying the invoice as the API shows it."""
    return Event(
        kind,
        "invoice",
        invoice.id,
        invoice.public(),
        principal.api_key_id,
        principal.correlation_id,
    )


def period_invoice(
    sub: Subscription, index: int, reason: BillingReason, due: datetime
) -> NewInvoice:
    """The invoice of period `index`, due at `due`."""
    start, end = sub.period(index)
    line = InvoiceLine(
        f"{sub.quantity} x subscription, every {sub.price.interval_count} {sub.price.interval}",
        sub.period_amount,
        sub.quantity,
        start,
        end,
    )
    return NewInvoice(
        uuid4(), sub.id, sub.customer_id, reason, sub.price.currency, start, end, [line], due
    )
