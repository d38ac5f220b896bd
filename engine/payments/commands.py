"""Commands that cross from the API replica to a ledger shard, and the result that comes back.

One frozen object each way: picklable, versionable, and the one place sensitive data is
redacted (`CardDetails` never prints its number or CVC, `BankAccount` its account number).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any
from uuid import UUID

from engine.bank_accounts import BankAccount
from engine.cards import CardDetails, CardToken
from engine.customers.models import NewCustomer
from engine.errors import PaygridError
from engine.money import Money
from engine.payments.states import TransactionType
from engine.principal import Principal
from schema.states import RecordedMethod

# The `gateway` of a payment settled outside paygrid: no gateway was or will be called for it.
RECORDED_GATEWAY = "external"


@dataclass(frozen=True, slots=True)
class RequestContext:
    """Who asked, under which idempotency key, and the keyed hash of what they asked."""

    api_key_id: UUID
    correlation_id: str
    idempotency_key: str | None = None
    request_hash: bytes = b""
    # The W3C traceparent of the span that sent the command to its shard (engine/tracing):
    # the shard's span for the command is its child. None when untraced.
    traceparent: str | None = None

    @property
    def principal(self) -> Principal:
        return Principal(self.api_key_id, self.correlation_id)

    @property
    def idempotency_scope(self) -> tuple[UUID, str] | None:
        return None if self.idempotency_key is None else (self.api_key_id, self.idempotency_key)


@dataclass(frozen=True, slots=True)
class ExternalSettlement:
    """The source of a payment already settled outside paygrid (cash, a bank transfer): it is
    recorded, never sent to a gateway."""

    method: RecordedMethod
    reference: str | None = None

    def stored(self) -> dict[str, Any]:
        """The payment_method column: the method's type and the merchant's reference."""
        return {"type": self.method.value, "reference": self.reference}


@dataclass(frozen=True, slots=True)
class CreatePayment:
    """Purchase (capture now) or authorize (hold for a later capture); a purchase whose
    source is an `ExternalSettlement` records a payment settled elsewhere."""

    ctx: RequestContext
    kind: TransactionType
    money: Money
    customer_id: UUID
    source: CardDetails | CardToken | BankAccount | ExternalSettlement
    new_customer: NewCustomer | None = None
    description: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    order_id: UUID | None = None
    # An id the caller derives deterministically (a subscription invoice's attempt): a command
    # naming an id some payment already has is refused (409 `payment_exists`), so one such id
    # can never yield a second payment, even after its idempotency key expired.
    payment_id: UUID | None = None

    @property
    def recorded(self) -> bool:
        """Whether this records a payment settled outside paygrid (no gateway call)."""
        return isinstance(self.source, ExternalSettlement)


@dataclass(frozen=True, slots=True)
class CapturePayment:
    ctx: RequestContext
    payment_id: UUID
    customer_id: UUID
    amount: int | None = None


@dataclass(frozen=True, slots=True)
class VoidPayment:
    ctx: RequestContext
    payment_id: UUID
    customer_id: UUID


@dataclass(frozen=True, slots=True)
class RefundPayment:
    ctx: RequestContext
    payment_id: UUID
    customer_id: UUID
    amount: int | None = None
    reason: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    # An id the caller derives deterministically (a credit invoice's refund of one payment):
    # a refund naming an id some row already has is refused (409 `refund_exists`).
    refund_id: UUID | None = None
    # A bank debit returned by the payer's bank (ACH return code): the money already went
    # back, so no gateway is called; the payment records the code and emits
    # `payment.returned` instead of `payment.refunded`.
    return_code: str | None = None
    # Set when the money went back outside paygrid (`POST /api/database/transactions/{id}/
    # refunds`): the refund of a recorded payment is recorded too, never sent to a gateway.
    settlement: ExternalSettlement | None = None


Command = CreatePayment | CapturePayment | VoidPayment | RefundPayment


def with_traceparent(command: Command, traceparent: str | None) -> Command:
    """`command` carrying `traceparent` to its shard (itself when there is none)."""
    if traceparent is None:
        return command
    return replace(command, ctx=replace(command.ctx, traceparent=traceparent))


@dataclass(frozen=True, slots=True)
class CommandResult:
    """The HTTP status and the `data` object (or the `error` object when status >= 400)."""

    status_code: int
    body: dict[str, Any]
    replayed: bool = False

    @property
    def is_error(self) -> bool:
        return self.status_code >= 400

    @classmethod
    def from_error(cls, error: PaygridError, **extra: Any) -> CommandResult:
        return cls(error.http_status, {**error.to_dict(), **extra})
