"""Webhook endpoints may subscribe to every event subscriptions, invoices and the AML monitor
emit."""

from __future__ import annotations

from schema.api.webhooks import EVENT_TYPES

BILLING_EVENTS = {
    "subscription.created",
    "subscription.updated",
    "subscription.paused",
    "subscription.resumed",
    "subscription.cancelled",
    "subscription.past_due",
    "subscription.trial_will_end",
    "invoice.created",
    "invoice.paid",
    "invoice.payment_failed",
    "invoice.uncollectible",
    "invoice.voided",
}


def test_billing_events_are_subscribable() -> None:
    assert BILLING_EVENTS <= EVENT_TYPES


def test_compliance_alerts_are_subscribable() -> None:
    assert "compliance.alert" in EVENT_TYPES
