"""Commands built the way the API builds them: a request body validated by the API models,
turned into a shard command by `engine.payments.intake`, under a `RequestContext` that carries
the keyed hash of the body when an Idempotency-Key is given (as `serve_app/deps.py` does)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

import orjson

from engine.payments import intake
from engine.payments.commands import (
    CapturePayment,
    CreatePayment,
    RefundPayment,
    RequestContext,
    VoidPayment,
)
from engine.payments.states import TransactionType
from schema.api.payments import CaptureCreate, PaymentCreate, RefundCreate, VoidCreate
from schema.api.records import RecordedPaymentCreate

VISA = "4242424242424242"
MASTERCARD = "5555555555554444"
MAX_AMOUNT = 99_999_999


@dataclass(frozen=True, slots=True)
class Requests:
    """Commands of one API key. Operations name their payment by its API object (a 200 body)
    or any mapping with `id` and `customer_id`."""

    api_key_id: UUID
    secret: bytes = b"engine-test-secret"

    def context(self, path: str, body: Mapping[str, Any], key: str | None) -> RequestContext:
        digest = b""
        if key is not None:
            digest = intake.request_hash(self.secret, "POST", path, orjson.dumps(body))
        return RequestContext(self.api_key_id, f"test-{uuid4().hex[:8]}", key, digest)

    def purchase(
        self,
        amount: int = 1000,
        currency: str = "USD",
        *,
        customer_id: UUID | None = None,
        number: str = VISA,
        token: str | None = None,
        key: str | None = None,
        order_id: UUID | None = None,
        email: str | None = None,
    ) -> CreatePayment:
        return self._create(
            TransactionType.PURCHASE,
            amount,
            currency,
            customer_id=customer_id,
            number=number,
            token=token,
            key=key,
            order_id=order_id,
            email=email,
        )

    def authorize(
        self,
        amount: int = 1000,
        currency: str = "USD",
        *,
        customer_id: UUID | None = None,
        number: str = VISA,
        token: str | None = None,
        key: str | None = None,
        order_id: UUID | None = None,
        email: str | None = None,
    ) -> CreatePayment:
        return self._create(
            TransactionType.AUTHORIZE,
            amount,
            currency,
            customer_id=customer_id,
            number=number,
            token=token,
            key=key,
            order_id=order_id,
            email=email,
        )

    def record(
        self,
        amount: int,
        currency: str = "USD",
        *,
        customer_id: UUID,
        order_id: UUID,
        method: str = "cash",
        reference: str | None = None,
        key: str | None = None,
    ) -> CreatePayment:
        """A payment settled outside paygrid, recorded against an order (the body of
        `POST /api/database/transactions`)."""
        body: dict[str, Any] = {
            "method": method,
            "amount": amount,
            "currency": currency,
            "customer_id": str(customer_id),
            "order_id": str(order_id),
        }
        if reference is not None:
            body["reference"] = reference
        ctx = self.context("/api/database/transactions", body, key)
        return intake.record_payment(
            RecordedPaymentCreate.model_validate(body), ctx, max_amount=MAX_AMOUNT
        )

    def capture(
        self, payment: Mapping[str, Any], amount: int | None = None, *, key: str | None = None
    ) -> CapturePayment:
        body: dict[str, Any] = {"payment_id": str(payment["id"])}
        if amount is not None:
            body["amount"] = amount
        ctx = self.context("/api/payments/capture", body, key)
        return intake.capture(
            CaptureCreate.model_validate(body), ctx, _customer(payment), max_amount=MAX_AMOUNT
        )

    def void(self, payment: Mapping[str, Any], *, key: str | None = None) -> VoidPayment:
        body: dict[str, Any] = {"payment_id": str(payment["id"])}
        ctx = self.context("/api/payments/void", body, key)
        return intake.void(VoidCreate.model_validate(body), ctx, _customer(payment))

    def refund(
        self,
        payment: Mapping[str, Any],
        amount: int | None = None,
        *,
        key: str | None = None,
        reason: str | None = None,
    ) -> RefundPayment:
        body: dict[str, Any] = {"payment_id": str(payment["id"])}
        if amount is not None:
            body["amount"] = amount
        if reason is not None:
            body["reason"] = reason
        ctx = self.context("/api/payments/refund", body, key)
        return intake.refund(
            RefundCreate.model_validate(body), ctx, _customer(payment), max_amount=MAX_AMOUNT
        )

    def _create(
        self,
        kind: TransactionType,
        amount: int,
        currency: str,
        *,
        customer_id: UUID | None,
        number: str,
        token: str | None,
        key: str | None,
        order_id: UUID | None,
        email: str | None,
    ) -> CreatePayment:
        method: dict[str, Any] = (
            {"type": "card", "number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"}
            if token is None
            else {"type": "token", "token": token}
        )
        body: dict[str, Any] = {"amount": amount, "currency": currency, "payment_method": method}
        if customer_id is None:
            body["customer"] = {"email": email or f"c-{uuid4().hex[:10]}@example.com"}
        else:
            body["customer_id"] = str(customer_id)
        if order_id is not None:
            body["order_id"] = str(order_id)
        ctx = self.context(f"/api/payments/{kind}", body, key)
        return intake.create_payment(
            PaymentCreate.model_validate(body), kind, ctx, max_amount=MAX_AMOUNT
        )


def _customer(payment: Mapping[str, Any]) -> UUID:
    value = payment["customer_id"]
    return value if isinstance(value, UUID) else UUID(str(value))
