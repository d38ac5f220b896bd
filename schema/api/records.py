"""Reading the records: transactions as the database holds them (payments and their captures,
voids and refunds), and the audit trail.

The list filters are query-parameter models: every parameter is typed (enums, UUIDs, bounded
integers and times), unknown parameters are refused, and a reversed range names its upper end.
Sorting is an allow-list (`TransactionSort`); nothing a caller writes reaches SQL as text.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, Self
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    StringConstraints,
    model_validator,
)

from schema.api.common import (
    Currency,
    Description,
    Instant,
    Metadata,
    MinorUnits,
    NoNul,
    PageLimit,
    StrictModel,
)
from schema.api.payments import MethodPublic, RefundPublic, RefundReason
from schema.cards import luhn_valid
from schema.states import (
    AuditAction,
    PaymentStatus,
    RecordedMethod,
    TransactionMethod,
    TransactionType,
)

MAX_AMOUNT = 2**63 - 1  # bigint


AmountBound = Annotated[int, Field(ge=0, le=MAX_AMOUNT)]


class TransactionSort(StrEnum):
    """The orders a transaction list may be sorted in; `-` is descending."""

    CREATED_AT = "created_at"
    CREATED_AT_DESC = "-created_at"
    AMOUNT = "amount"
    AMOUNT_DESC = "-amount"


class TimeRange(StrictModel):
    """A page of a list filtered by creation time: `created_lt` must come after
    `created_gte`."""

    created_gte: Instant | None = None
    created_lt: Instant | None = None
    limit: PageLimit = 10
    starting_after: UUID | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if (
            self.created_gte is not None
            and self.created_lt is not None
            and self.created_lt <= self.created_gte
        ):
            raise ValueError("created_lt: must be later than created_gte")
        return self


class TransactionQuery(TimeRange):
    """Filters, order and page of `GET /api/database/transactions`."""

    type: TransactionType | None = None
    method: TransactionMethod | None = None
    status: PaymentStatus | None = None
    currency: Currency | None = None
    customer_id: UUID | None = None
    amount_gte: AmountBound | None = None
    amount_lte: AmountBound | None = None
    sort: TransactionSort = TransactionSort.CREATED_AT_DESC

    @model_validator(mode="after")
    def _amounts_ordered(self) -> Self:
        if (
            self.amount_gte is not None
            and self.amount_lte is not None
            and self.amount_lte < self.amount_gte
        ):
            raise ValueError("amount_lte: must not be less than amount_gte")
        return self


EntityType = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z_]{0,62}$")]
CorrelationFilter = Annotated[str, StringConstraints(min_length=1, max_length=200), NoNul]


class AuditLogQuery(TimeRange):
    """Filters and page of `GET /api/audit-logs`, newest first."""

    entity_type: EntityType | None = None
    entity_id: UUID | None = None
    action: AuditAction | None = None
    api_key_id: UUID | None = None
    correlation_id: CorrelationFilter | None = None


class TransactionRecordPublic(BaseModel):
    """One `transactions` row: a payment (purchase, authorize) or one of its operations
    (capture, void, refund, with `parent_id` naming the payment)."""

    id: UUID
    object: Literal["transaction"] = "transaction"
    parent_id: UUID | None
    type: TransactionType
    # `card` for everything a gateway moved; `cash` or `bank_transfer` for a payment settled
    # outside paygrid and its recorded refunds (their `type` is `purchase` and `refund`).
    method: TransactionMethod
    status: PaymentStatus
    amount: int
    amount_capturable: int
    amount_captured: int
    amount_refunded: int
    amount_refund_pending: int
    currency: str
    customer_id: UUID
    order_id: UUID | None
    payment_method: MethodPublic | None
    gateway: str
    gateway_transaction_id: str | None
    failure_code: str | None
    failure_message: str | None
    decline_code: str | None
    description: str | None
    metadata: dict[str, str]
    authorization_expires_at: datetime | None
    refunds: list[RefundPublic] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime


def _no_card_number(value: str) -> str:
    # A reference is shown and stored as given: it must never be a card number by mistake.
    digits = "".join(c for c in value if c.isdigit())
    if 12 <= len(digits) <= 19 and luhn_valid(digits):
        raise ValueError("must not hold a card number")
    return value


SettlementReference = Annotated[
    str,
    StringConstraints(strict=True, min_length=1, max_length=100, pattern=r"^[A-Za-z0-9 ._:/#-]+$"),
    AfterValidator(_no_card_number),
]


class RecordedPaymentCreate(StrictModel):
    """Body of `POST /api/database/transactions`: a payment settled outside paygrid (cash, a
    bank transfer) recorded against an order of the customer; no gateway is called."""

    method: RecordedMethod
    amount: MinorUnits
    currency: Currency
    customer_id: UUID
    order_id: UUID
    reference: SettlementReference | None = None
    description: Description | None = None
    metadata: Metadata = Field(default_factory=dict)


class RecordedRefundCreate(StrictModel):
    """Body of `POST /api/database/transactions/{id}/refunds`: money of a recorded payment given
    back outside paygrid (cash, a bank transfer); no gateway is called. Without `amount`,
    everything still refundable."""

    method: RecordedMethod
    amount: MinorUnits | None = None
    reason: RefundReason | None = None
    reference: SettlementReference | None = None
    metadata: Metadata = Field(default_factory=dict)


class AuditLogPublic(BaseModel):
    """One audit row: which row changed, how, by which API key, under which correlation id.
    Clear-text personal data in the row images reads as `"[redacted]"`."""

    id: UUID
    object: Literal["audit_log"] = "audit_log"
    entity_type: str
    entity_id: UUID
    action: AuditAction
    api_key_id: UUID | None
    correlation_id: str | None
    old_values: dict[str, Any] | None
    new_values: dict[str, Any] | None
    created_at: datetime
