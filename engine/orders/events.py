"""The events an order emits, written through the outbox in the transaction that changes it:
`order.created`, then one per status it moves to (`order.paid`, `order.partially_refunded`,
`order.refunded`, `order.cancelled`), each with the order as it is after the change."""

from __future__ import annotations

from engine.events.outbox import Event
from engine.orders.models import Order
from engine.principal import Principal

CREATED = "order.created"


def status_event_type(order: Order) -> str:
    """The event of the status `order` just moved to."""
    return f"order.{order.status.value}"


def order_event(event_type: str, order: Order, principal: Principal) -> Event:
    """An order event carrying the order's public object."""
    return Event(
        event_type,
        "order",
        order.id,
        order.public(),
        principal.api_key_id,
        principal.correlation_id,
    )
