"""The payment as the domain sees it, and its projection to the API's payment object."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from engine.gateways.attempts import Attempt
from engine.payments.states import PaymentStatus, RefundStatus, TransactionType
from schema.api.payments import (
    BankMethodPublic,
    GatewayAttemptPublic,
    MethodPublic,
    PaymentDetailPublic,
    PaymentMethodPublic,
    PaymentPublic,
    RecordedMethodPublic,
    RefundPublic,
    WalletMethodPublic,
)
from schema.states import RecordedMethod


@dataclass(frozen=True, slots=True)
class PaymentWindow:
    """Bounds on a payment list: created in [created_from, created_before) and, in one
    currency, an amount in minor units within [amount_min, amount_max]. None: unbounded. An
    amount bound means nothing without its currency, so the caller names both."""

    created_from: datetime | None = None
    created_before: datetime | None = None
    currency: str | None = None
    amount_min: int | None = None
    amount_max: int | None = None


UNBOUNDED = PaymentWindow()


@dataclass(frozen=True, slots=True)
class Refund:
    id: UUID
    payment_id: UUID
    amount: int
    currency: str
    reason: str | None
    status: RefundStatus
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ProcessingRow:
    """A payment or operation row written `processing` whose outcome is not recorded yet."""

    id: UUID
    payment_id: UUID
    kind: TransactionType
    amount: int
    customer_id: UUID
    api_key_id: UUID | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Payment:
    """A root transaction row (purchase or authorize) with its running balances."""

    id: UUID
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
    shard: int
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
    # The ACH return code of a bank debit returned after it succeeded.
    return_code: str | None = None

    @property
    def refundable(self) -> int:
        """What may still be refunded, counting refunds in flight."""
        return self.amount_captured - self.amount_refunded - self.amount_refund_pending

    def public(self, refunds: list[Refund] | None = None) -> dict[str, Any]:
        """The API payment object as JSON-ready values; never the BIN, never the number."""
        return self._public(refunds).model_dump(mode="json")

    def detail(self, refunds: list[Refund], attempts: list[Attempt]) -> dict[str, Any]:
        """The payment object with its gateway attempts, as one payment is retrieved."""
        return PaymentDetailPublic(
            **dict(self._public(refunds)), attempts=[attempt_public(a) for a in attempts]
        ).model_dump(mode="json")

    def _public(self, refunds: list[Refund] | None) -> PaymentPublic:
        return PaymentPublic(
            id=self.id,
            type=self.type.value,
            status=self.status,
            amount=self.amount,
            amount_capturable=self.amount_capturable,
            amount_captured=self.amount_captured,
            amount_refunded=self.amount_refunded,
            currency=self.currency,
            customer_id=self.customer_id,
            order_id=self.order_id,
            payment_method=method_public(self.payment_method),
            gateway=self.gateway,
            gateway_transaction_id=self.gateway_transaction_id,
            failure_code=self.failure_code,
            failure_message=self.failure_message,
            return_code=self.return_code,
            description=self.description,
            metadata=self.metadata,
            refunds=[refund_public(r) for r in refunds or []],
            created_at=self.created_at,
            updated_at=self.updated_at,
        )


def method_public(stored: dict[str, Any] | None) -> MethodPublic | None:
    """The payment method an API answer shows from its stored summary: of a card, brand, last4
    and fingerprint, never the BIN or the number (and no expiry, which only the vault keeps);
    of a bank account, its bank, routing number, last4, holder type and fingerprint (never the
    account number); of a wallet, the wallet and its card's brand and last4; of a payment
    settled outside paygrid, its method and reference."""
    if stored is None:
        return None
    kind = stored.get("type", "card")
    fingerprint = stored.get("fingerprint")
    if kind == "card":
        return PaymentMethodPublic(
            brand=stored["brand"], last4=stored["last4"], fingerprint=fingerprint
        )
    if kind == "bank":
        return BankMethodPublic(
            bank_name=stored.get("bank_name"),
            routing_number=stored["routing_number"],
            last4=stored["last4"],
            account_holder_type=stored["account_holder_type"],
            fingerprint=fingerprint,
        )
    if kind == "wallet":
        return WalletMethodPublic(
            wallet=stored["wallet"],
            brand=stored.get("brand"),
            last4=stored.get("last4"),
            fingerprint=fingerprint,
        )
    return RecordedMethodPublic(type=RecordedMethod(kind), reference=stored.get("reference"))


def attempt_public(attempt: Attempt) -> GatewayAttemptPublic:
    """A gateway attempt as the API shows it inside its payment."""
    return GatewayAttemptPublic(
        gateway=attempt.gateway,
        kind=attempt.kind,
        reference=attempt.reference,
        outcome=attempt.outcome,
        latency_ms=attempt.latency_ms,
        gateway_transaction_id=attempt.gateway_transaction_id,
        decline_code=attempt.decline_code,
        created_at=attempt.created_at,
    )


def refund_public(refund: Refund) -> RefundPublic:
    """A refund as the API shows it inside its payment."""
    return RefundPublic(
        id=refund.id,
        payment_id=refund.payment_id,
        amount=refund.amount,
        currency=refund.currency,
        reason=refund.reason,
        status=refund.status,
        created_at=refund.created_at,
    )
