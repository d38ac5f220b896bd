"""Webhook endpoints may subscribe to every event subscriptions, invoices, orders and the AML
monitor emit."""

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


def test_order_events_are_subscribable() -> None:
    """One event per order status an order can reach, and its creation."""
    from engine.orders.states import OrderStatus

    statuses = {f"order.{s.value}" for s in OrderStatus if s is not OrderStatus.PENDING}
    assert statuses | {"order.created"} <= EVENT_TYPES
