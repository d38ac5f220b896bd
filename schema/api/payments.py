"""Payment requests and the payment object.

Amounts are strict integers of minor units: a float, a numeric string or a bool is a 400 with
the field named, never coerced. Card numbers and CVCs are `SecretStr`, so neither a repr nor a
validation error can print them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    BaseModel,
    Discriminator,
    Field,
    SecretStr,
    StrictInt,
    Tag,
    field_validator,
    model_validator,
)

from schema.api.common import (
    Currency,
    Description,
    Email,
    Metadata,
    MinorUnits,
    NoNul,
    ShortText,
    StrictModel,
)
from schema.api.payment_method_ids import SavedMethodRef
from schema.bank_accounts import routing_number_valid
from schema.cards import expiry_passed, luhn_valid
from schema.states import (
    AttemptOutcome,
    CircuitState,
    GatewayRequestKind,
    PaymentStatus,
    RecordedMethod,
    RefundStatus,
)


class AddressCreate(StrictModel):
    line1: ShortText | None = None
    line2: ShortText | None = None
    city: ShortText | None = None
    state: ShortText | None = None
    postal_code: Annotated[str, Field(max_length=20), NoNul] | None = None
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] | None = None


class CustomerCreate(StrictModel):
    email: Email
    first_name: ShortText | None = None
    last_name: ShortText | None = None
    phone: Annotated[str, Field(pattern=r"^\+?[0-9 ()-]{4,20}$")] | None = None
    address: AddressCreate | None = None
    metadata: Metadata = Field(default_factory=dict)


class CardCreate(StrictModel):
    type: Literal["card"]
    # Length and digits are in the OpenAPI document's pattern; the Luhn check, which no
    # pattern can state, is its format `card-number`.
    number: Annotated[
        SecretStr,
        Field(
            min_length=12,
            max_length=19,
            json_schema_extra={
                "pattern": "^[0-9]+$",
                "format": "card-number",
                "description": "12 to 19 digits passing the Luhn check.",
            },
        ),
    ]
    exp_month: Annotated[StrictInt, Field(ge=1, le=12)]
    exp_year: Annotated[
        StrictInt,
        Field(
            ge=2000,
            le=2100,
            description="With exp_month, not in the past: an expired card is refused (400).",
        ),
    ]
    cvc: Annotated[SecretStr, Field(json_schema_extra={"pattern": "^[0-9]{3,4}$"})] | None = None

    @field_validator("number")
    @classmethod
    def _number(cls, value: SecretStr) -> SecretStr:
        digits = value.get_secret_value()
        if not (12 <= len(digits) <= 19 and digits.isascii() and digits.isdigit()):
            raise ValueError("card number must be 12 to 19 digits")
        if not luhn_valid(digits):
            raise ValueError("card number fails the Luhn check")
        return value

    @field_validator("cvc")
    @classmethod
    def _cvc(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            cvc = value.get_secret_value()
            if not (cvc.isascii() and cvc.isdigit() and 3 <= len(cvc) <= 4):
                raise ValueError("cvc must be 3 or 4 digits")
        return value

    @model_validator(mode="after")
    def _not_expired(self) -> CardCreate:
        if expiry_passed(self.exp_month, self.exp_year, datetime.now(UTC).date()):
            raise ValueError("exp_year: the card has expired")
        return self


class TokenCreate(StrictModel):
    type: Literal["token"]
    token: Annotated[str, Field(pattern=r"^tok_[A-Za-z0-9_]{1,100}$")]


class BankAccountCreate(StrictModel):
    """A US bank account to debit (ACH). The account number is a `SecretStr`: like a card
    number it is never stored, logged or returned, only its last four digits and a keyed
    fingerprint."""

    type: Literal["bank"]
    routing_number: Annotated[str, Field(json_schema_extra={"pattern": "^[0-9]{9}$"})]
    account_number: Annotated[
        SecretStr, Field(min_length=4, max_length=17, json_schema_extra={"pattern": "^[0-9]+$"})
    ]
    account_holder_type: Literal["individual", "company"]

    @field_validator("routing_number")
    @classmethod
    def _routing(cls, value: str) -> str:
        if not routing_number_valid(value):
            raise ValueError("routing number must be 9 digits passing the ABA checksum")
        return value

    @field_validator("account_number")
    @classmethod
    def _account(cls, value: SecretStr) -> SecretStr:
        digits = value.get_secret_value()
        if not (4 <= len(digits) <= 17 and digits.isascii() and digits.isdigit()):
            raise ValueError("account number must be 4 to 17 digits")
        return value


class WalletCreate(StrictModel):
    """A wallet payment (Apple Pay, Google Pay): the network token the wallet produced, charged
    like a card. The token is a `SecretStr`: it stands for a card."""

    type: Literal["wallet"]
    wallet: Literal["apple_pay", "google_pay"]
    token: Annotated[SecretStr, Field(min_length=1, max_length=4096)]


def _method_kind(value: Any) -> str | None:
    """A saved method is named by its id alone; a card or a token by its `type`."""
    if isinstance(value, dict):
        kind = "saved" if "id" in value else value.get("type")
        return kind if isinstance(kind, str) else None
    return "saved" if isinstance(value, SavedMethodRef) else getattr(value, "type", None)


PaymentMethodCreate = Annotated[
    Annotated[CardCreate, Tag("card")]
    | Annotated[TokenCreate, Tag("token")]
    | Annotated[BankAccountCreate, Tag("bank")]
    | Annotated[WalletCreate, Tag("wallet")]
    | Annotated[SavedMethodRef, Tag("saved")],
    Discriminator(
        _method_kind,
        custom_error_type="payment_method_type",
        custom_error_message=(
            "give a card, a token, a bank account, a wallet or the id of a saved payment method"
        ),
    ),
]

# What a subscription is billed with: a card or token the vault saves, or a saved method (bank
# debits and wallets pay one-off payments only).
RecurringMethodCreate = Annotated[
    Annotated[CardCreate, Tag("card")]
    | Annotated[TokenCreate, Tag("token")]
    | Annotated[SavedMethodRef, Tag("saved")],
    Discriminator(
        _method_kind,
        custom_error_type="payment_method_type",
        custom_error_message="give a card, a token or the id of a saved payment method",
    ),
]


class PaymentCreate(StrictModel):
    """Body of purchase and authorize."""

    amount: MinorUnits
    currency: Currency
    customer: CustomerCreate | None = None
    customer_id: UUID | None = None
    payment_method: PaymentMethodCreate
    description: Description | None = None
    metadata: Metadata = Field(default_factory=dict)
    order_id: UUID | None = None

    @model_validator(mode="after")
    def _one_customer(self) -> PaymentCreate:
        if (self.customer is None) == (self.customer_id is None):
            raise ValueError("customer: give exactly one of customer or customer_id")
        return self


class CaptureCreate(StrictModel):
    payment_id: UUID
    amount: MinorUnits | None = None


class CaptureBody(StrictModel):
    """Capture body for the `/api/payments/{id}/capture` form."""

    amount: MinorUnits | None = None


class VoidCreate(StrictModel):
    payment_id: UUID


class VoidBody(StrictModel):
    pass


RefundReason = Literal["duplicate", "fraudulent", "requested_by_customer"]


class RefundCreate(StrictModel):
    payment_id: UUID
    amount: MinorUnits | None = None
    reason: RefundReason | None = None
    metadata: Metadata = Field(default_factory=dict)


class RefundBody(StrictModel):
    amount: MinorUnits | None = None
    reason: RefundReason | None = None
    metadata: Metadata = Field(default_factory=dict)


class PaymentMethodPublic(BaseModel):
    """A payment's card: brand, last4 and fingerprint (equal cards, equal fingerprints). The
    expiry lives only in the vault of saved payment methods."""

    type: Literal["card"] = "card"
    brand: str
    last4: str
    fingerprint: str | None


class BankMethodPublic(BaseModel):
    """A payment's bank account: its bank (when known), routing number, the account number's
    last four digits, the holder type and a fingerprint (equal accounts, equal fingerprints);
    never the account number."""

    type: Literal["bank"] = "bank"
    bank_name: str | None
    routing_number: str
    last4: str
    account_holder_type: Literal["individual", "company"]
    fingerprint: str | None


class WalletMethodPublic(BaseModel):
    """A payment's wallet, and the brand and last4 of the card its network token stands for
    (None until the gateway has named it); never the token."""

    type: Literal["wallet"] = "wallet"
    wallet: Literal["apple_pay", "google_pay"]
    brand: str | None
    last4: str | None
    fingerprint: str | None


class RecordedMethodPublic(BaseModel):
    """How an externally settled payment was paid; never any card or account field."""

    type: RecordedMethod
    reference: str | None = None


MethodPublic = PaymentMethodPublic | BankMethodPublic | WalletMethodPublic | RecordedMethodPublic


class RefundPublic(BaseModel):
    id: UUID
    payment_id: UUID
    amount: int
    currency: str
    reason: str | None
    status: RefundStatus
    created_at: datetime


class PaymentPublic(BaseModel):
    id: UUID
    object: Literal["payment"] = "payment"
    type: Literal["purchase", "authorize"]
    status: PaymentStatus
    amount: int
    amount_capturable: int
    amount_captured: int
    amount_refunded: int
    currency: str
    customer_id: UUID
    order_id: UUID | None
    payment_method: MethodPublic | None
    gateway: str
    gateway_transaction_id: str | None
    failure_code: str | None
    failure_message: str | None
    # A bank debit returned after it succeeded (ACH return code, R01…): its money went back
    # to the payer and the payment shows `refunded`.
    return_code: str | None = None
    description: str | None
    metadata: dict[str, str]
    refunds: list[RefundPublic] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime


class GatewayAttemptPublic(BaseModel):
    """One call paygrid made to a gateway for the payment."""

    gateway: str
    kind: GatewayRequestKind
    reference: UUID
    outcome: AttemptOutcome
    latency_ms: int
    gateway_transaction_id: str | None
    decline_code: str | None
    created_at: datetime | None


class PaymentDetailPublic(PaymentPublic):
    """A payment as `GET /api/payments/{id}` shows it: with every gateway call made for it,
    oldest first."""

    attempts: list[GatewayAttemptPublic] = Field(default_factory=list)


class GatewayMethodsPublic(BaseModel):
    """A configured gateway: the payment methods, currencies ("*": every one paygrid knows)
    and card brands it takes, the operations it supports, and its circuit breaker's state."""

    gateway: str
    methods: list[str]
    currencies: list[str]
    brands: list[str]
    supports: list[str]
    circuit: CircuitState


class LedgerBalancePublic(BaseModel):
    currency: str
    held: int
    captured: int
    refunded: int
    net: int


class LedgerPublic(BaseModel):
    customer_id: UUID
    balances: list[LedgerBalancePublic]
