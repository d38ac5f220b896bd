"""The records as the read side sees them: a transaction row, an audit row, a page of either,
and their projections to the API's objects."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar
from uuid import UUID

from engine.payments.commands import RECORDED_GATEWAY
from engine.payments.models import Refund, method_public, refund_public
from schema.api.records import AuditLogPublic, TransactionRecordPublic
from schema.states import AuditAction, PaymentStatus, TransactionMethod, TransactionType

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    has_more: bool


@dataclass(frozen=True, slots=True)
class TransactionRecord:
    """A `transactions` row: a payment, or an operation on one (`parent_id` set)."""

    id: UUID
    parent_id: UUID | None
    type: TransactionType
    status: PaymentStatus
    amount: int
    currency: str
    amount_capturable: int
    amount_captured: int
    amount_refunded: int
    amount_refund_pending: int
    customer_id: UUID
    order_id: UUID | None
    payment_method: dict[str, Any] | None
    gateway: str
    gateway_transaction_id: str | None
    failure_code: str | None
    failure_message: str | None
    decline_code: str | None
    description: str | None
    metadata: dict[str, str]
    authorization_expires_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @property
    def method(self) -> TransactionMethod:
        """`card` unless the row was settled outside paygrid (`repository.METHOD_SQL` says
        the same in SQL)."""
        if self.gateway == RECORDED_GATEWAY and self.payment_method is not None:
            return TransactionMethod(self.payment_method["type"])
        return TransactionMethod.CARD

    def public(self, refunds: list[Refund] | None = None) -> dict[str, Any]:
        """The API transaction object as JSON-ready values: brand, last4 and expiry of the
        card, never its BIN or number."""
        return TransactionRecordPublic(
            id=self.id,
            parent_id=self.parent_id,
            type=self.type,
            method=self.method,
            status=self.status,
            amount=self.amount,
            amount_capturable=self.amount_capturable,
            amount_captured=self.amount_captured,
            amount_refunded=self.amount_refunded,
            amount_refund_pending=self.amount_refund_pending,
            currency=self.currency,
            customer_id=self.customer_id,
            order_id=self.order_id,
            payment_method=method_public(self.payment_method),
            gateway=self.gateway,
            gateway_transaction_id=self.gateway_transaction_id,
            failure_code=self.failure_code,
            failure_message=self.failure_message,
            decline_code=self.decline_code,
            description=self.description,
            metadata=self.metadata,
            authorization_expires_at=self.authorization_expires_at,
            refunds=[refund_public(r) for r in refunds or []],
            created_at=self.created_at,
            updated_at=self.updated_at,
        ).model_dump(mode="json")


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """An `audit_logs` row, written by the audit trigger."""

    id: UUID
    entity_type: str
    entity_id: UUID
    action: AuditAction
    old_values: dict[str, Any] | None
    new_values: dict[str, Any] | None
    api_key_id: UUID | None
    correlation_id: str | None
    created_at: datetime

    def public(self) -> dict[str, Any]:
        """The API audit object. It holds no personal data: customers' PII is only ever
        ciphertext, which the audit trigger leaves out (migration 0014)."""
        return AuditLogPublic(
            id=self.id,
            entity_type=self.entity_type,
            entity_id=self.entity_id,
            action=self.action,
            api_key_id=self.api_key_id,
            correlation_id=self.correlation_id,
            old_values=self.old_values,
            new_values=self.new_values,
            created_at=self.created_at,
        ).model_dump(mode="json")
