"""From validated API requests to shard commands.

Also decides the identity of a customer created inline: with an Idempotency-Key it is derived
from (API key, Idempotency-Key, request hash), so every repeat of the request names the same
customer, routes to the same shard and meets the first attempt's idempotency record there.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any
from uuid import UUID, uuid4, uuid5

import orjson

from engine.bank_accounts import BankAccount
from engine.cards import CardDetails, CardToken, WalletToken
from engine.customers.models import NewCustomer
from engine.errors import InvalidRequest
from engine.money import Money
from engine.payments.commands import (
    CapturePayment,
    CreatePayment,
    ExternalSettlement,
    RefundPayment,
    RequestContext,
    VoidPayment,
)
from engine.payments.states import TransactionType
from schema.api.payments import (
    BankAccountCreate,
    CaptureCreate,
    CardCreate,
    PaymentCreate,
    RefundCreate,
    TokenCreate,
    VoidCreate,
    WalletCreate,
)
from schema.api.records import RecordedPaymentCreate, RecordedRefundCreate

_CUSTOMER_NAMESPACE = UUID("5b0e8d1c-4a57-4c47-9f0a-7d0f5d0c2a11")
MAX_IDEMPOTENCY_KEY = 255


def request_hash(secret: bytes, method: str, path: str, body: bytes) -> bytes:
    """Keyed hash of a request, stable across JSON formatting. Keyed, because bodies carry card
    numbers and a plain hash of a card number can be reversed by enumeration."""
    try:
        canonical = orjson.dumps(orjson.loads(body or b"null"), option=orjson.OPT_SORT_KEYS)
    except orjson.JSONDecodeError:
        canonical = body
    return hmac.new(secret, f"{method} {path}\n".encode() + canonical, hashlib.sha256).digest()


# The scope of the keys paygrid makes itself (a subscription's charges and refunds): a
# merchant's key may not start with it, so none can guess or collide with one.
INTERNAL_KEY_PREFIX = "paygrid:"


# Visible ASCII and spaces: what every HTTP stack carries in a header unchanged.
IDEMPOTENCY_KEY_CHARS = r"^[\x20-\x7e]+$"
_KEY_CHARS = re.compile(IDEMPOTENCY_KEY_CHARS)


def check_idempotency_key(key: str | None) -> str | None:
    """The key as given, or an InvalidRequest naming `Idempotency-Key`."""
    if key is None:
        return None
    if not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY or not _KEY_CHARS.match(key):
        raise InvalidRequest(
            f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters",
            param="Idempotency-Key",
        )
    if key.lower().startswith(INTERNAL_KEY_PREFIX):
        raise InvalidRequest(
            f"Idempotency-Key may not start with {INTERNAL_KEY_PREFIX!r} (reserved)",
            param="Idempotency-Key",
        )
    return key


def _within(amount: int | None, max_amount: int) -> None:
    # The deployment's bound, which the OpenAPI document states as every amount's maximum.
    if amount is not None and amount > max_amount:
        raise InvalidRequest(f"amount may be at most {max_amount}", param="amount")


def create_payment(
    body: PaymentCreate,
    kind: TransactionType,
    ctx: RequestContext,
    *,
    max_amount: int,
    saved: CardDetails | CardToken | None = None,
) -> CreatePayment:
    """The command for a purchase or an authorization; `saved` is what the saved payment
    method the body names holds, opened by the caller."""
    _within(body.amount, max_amount)
    new_customer = None
    if body.customer is not None:
        if ctx.idempotency_key is not None:
            # The request hash is part of it: a key reused after it expired, for another
            # customer, must not land on the first request's customer.
            customer_id = uuid5(
                _CUSTOMER_NAMESPACE,
                f"{ctx.api_key_id}:{ctx.idempotency_key}:{ctx.request_hash.hex()}",
            )
        else:
            customer_id = uuid4()
        c = body.customer
        address: dict[str, Any] | None = (
            None if c.address is None else c.address.model_dump(exclude_none=True)
        )
        new_customer = NewCustomer(
            customer_id, c.email, c.first_name, c.last_name, c.phone, address, c.metadata
        )
    else:
        assert body.customer_id is not None
        customer_id = body.customer_id
    method = body.payment_method
    source: CardDetails | CardToken | BankAccount
    if isinstance(method, BankAccountCreate):
        if kind is not TransactionType.PURCHASE:
            # A debit moves the money when it settles: there is nothing to hold and capture.
            raise InvalidRequest(
                "a bank account can only be debited by a purchase, not authorized",
                param="payment_method.type",
            )
        source = BankAccount(
            method.routing_number,
            method.account_number.get_secret_value(),
            method.account_holder_type,
        )
    elif isinstance(method, WalletCreate):
        source = WalletToken(method.token.get_secret_value(), method.wallet)
    elif isinstance(method, CardCreate):
        source = CardDetails(
            method.number.get_secret_value(),
            method.exp_month,
            method.exp_year,
            None if method.cvc is None else method.cvc.get_secret_value(),
        )
    elif isinstance(method, TokenCreate):
        source = CardToken(method.token)
    else:
        assert saved is not None, "a saved payment method is opened before its command"
        source = saved
    return CreatePayment(
        ctx=ctx,
        kind=kind,
        money=Money(body.amount, body.currency),
        customer_id=customer_id,
        source=source,
        new_customer=new_customer,
        description=body.description,
        metadata=body.metadata,
        order_id=body.order_id,
    )


def record_payment(
    body: RecordedPaymentCreate, ctx: RequestContext, *, max_amount: int
) -> CreatePayment:
    """The command recording a payment settled outside paygrid against an order: a purchase
    whose source is the settlement, so it passes the order checks, the AML screening and the
    idempotency of any purchase, and never reaches a gateway."""
    _within(body.amount, max_amount)
    return CreatePayment(
        ctx=ctx,
        kind=TransactionType.PURCHASE,
        money=Money(body.amount, body.currency),
        customer_id=body.customer_id,
        source=ExternalSettlement(body.method, body.reference),
        description=body.description,
        metadata=body.metadata,
        order_id=body.order_id,
    )


def record_refund(
    body: RecordedRefundCreate, ctx: RequestContext, payment_id: UUID, customer_id: UUID
) -> RefundPayment:
    """The command recording money of a recorded payment given back outside paygrid: a refund
    like any other (the refundable checks, the AML screening, idempotency), never sent to a
    gateway."""
    return RefundPayment(
        ctx,
        payment_id,
        customer_id,
        body.amount,
        body.reason,
        body.metadata,
        settlement=ExternalSettlement(body.method, body.reference),
    )


def capture(
    body: CaptureCreate, ctx: RequestContext, customer_id: UUID, *, max_amount: int
) -> CapturePayment:
    """The command capturing an authorization, whole or (`amount`) in part."""
    _within(body.amount, max_amount)
    return CapturePayment(ctx, body.payment_id, customer_id, body.amount)


def void(body: VoidCreate, ctx: RequestContext, customer_id: UUID) -> VoidPayment:
    return VoidPayment(ctx, body.payment_id, customer_id)


def refund(
    body: RefundCreate, ctx: RequestContext, customer_id: UUID, *, max_amount: int
) -> RefundPayment:
    """The command refunding a payment, whole or (`amount`) in part."""
    _within(body.amount, max_amount)
    return RefundPayment(ctx, body.payment_id, customer_id, body.amount, body.reason, body.metadata)
