"""Payment and operation states with their explicit transition tables.

The enums are the data contract's (`schema/states.py`), mirrored by the `transaction_status`
and `transaction_type` enums and the `status_fits_type` and `balances_fit_status` CHECK
constraints of migration 0001.
"""

from __future__ import annotations

from schema.states import OperationStatus, PaymentStatus, RefundStatus, TransactionType

__all__ = [
    "PAYMENT_TRANSITIONS",
    "REFUNDABLE",
    "OperationStatus",
    "PaymentStatus",
    "RefundStatus",
    "TransactionType",
    "can_transition",
]

PAYMENT_TRANSITIONS: dict[PaymentStatus, frozenset[PaymentStatus]] = {
    PaymentStatus.PROCESSING: frozenset(
        {PaymentStatus.AUTHORIZED, PaymentStatus.SUCCEEDED, PaymentStatus.FAILED}
    ),
    PaymentStatus.AUTHORIZED: frozenset(
        {PaymentStatus.CAPTURED, PaymentStatus.VOIDED, PaymentStatus.EXPIRED}
    ),
    PaymentStatus.CAPTURED: frozenset({PaymentStatus.REFUNDED}),
    PaymentStatus.SUCCEEDED: frozenset({PaymentStatus.REFUNDED}),
    PaymentStatus.VOIDED: frozenset(),
    PaymentStatus.EXPIRED: frozenset(),
    PaymentStatus.FAILED: frozenset(),
    PaymentStatus.REFUNDED: frozenset(),
}

REFUNDABLE = frozenset({PaymentStatus.CAPTURED, PaymentStatus.SUCCEEDED})


def can_transition(current: PaymentStatus, target: PaymentStatus) -> bool:
    """Whether the payment state machine allows `current → target`."""
    return target in PAYMENT_TRANSITIONS[current]
