"""Payment and operation states with their explicit transition tables.

Mirrored by the `transaction_status` and `transaction_type` enums and the `status_fits_type`
and `balances_fit_status` CHECK constraints of migration 0001.
"""

from __future__ import annotations

from enum import StrEnum


class TransactionType(StrEnum):
    PURCHASE = "purchase"
    AUTHORIZE = "authorize"
    CAPTURE = "capture"
    VOID = "void"
    REFUND = "refund"


class PaymentStatus(StrEnum):
    PROCESSING = "processing"
    AUTHORIZED = "authorized"
    CAPTURED = "captured"
    SUCCEEDED = "succeeded"
    VOIDED = "voided"
    EXPIRED = "expired"
    FAILED = "failed"
    REFUNDED = "refunded"


class OperationStatus(StrEnum):
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


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
