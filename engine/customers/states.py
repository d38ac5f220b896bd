"""Order states (`orders.status`, migration 0001): a payment may name only an `open` order."""

from __future__ import annotations

from schema.states import OrderStatus

__all__ = ["OrderStatus"]
