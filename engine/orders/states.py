"""Order states and the transitions an order may make.

    pending            ──▶ paid | partially_refunded | refunded | cancelled
    paid               ──▶ partially_refunded | refunded
    partially_refunded ──▶ refunded
    refunded, cancelled: final

Every move but cancelling follows the order's payments: `paid` once what they captured reaches
the order's amount, `partially_refunded` and `refunded` as refunds give it back (a pending order
part paid and then refunded skips `paid`). Payments may name only a `pending` order; a merchant
may cancel one only while nothing is paid or in flight. The database mirrors this table
(trigger `orders_status_transition`) and derives the status from the totals
(`order_status_for`, migration 0016).
"""

from __future__ import annotations

from schema.states import OrderStatus

__all__ = ["PAYABLE", "TRANSITIONS", "OrderStatus", "can_move"]

S = OrderStatus

TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    S.PENDING: frozenset({S.PAID, S.PARTIALLY_REFUNDED, S.REFUNDED, S.CANCELLED}),
    S.PAID: frozenset({S.PARTIALLY_REFUNDED, S.REFUNDED}),
    S.PARTIALLY_REFUNDED: frozenset({S.REFUNDED}),
    S.REFUNDED: frozenset(),
    S.CANCELLED: frozenset(),
}

# The one state in which a new payment may name an order.
PAYABLE = S.PENDING


def can_move(current: OrderStatus, target: OrderStatus) -> bool:
    """Whether an order may move from `current` to `target`."""
    return target in TRANSITIONS[current]
