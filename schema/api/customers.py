"""Customers created on their own (`POST /api/database/customers`) and the view of one.

The names and email are required, phone and address optional; `consent` records which version
of the merchant's terms the customer accepted, and when. `test_clock` (sandbox only) puts the
customer on a test clock: its subscriptions then run on the clock's time.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from schema.api.common import Email, Metadata, ShortText, StrictModel, refuses_null
from schema.api.payments import AddressCreate

Phone = Annotated[str, Field(pattern=r"^\+?[0-9 ()-]{4,20}$")]


class ConsentCreate(StrictModel):
    version: Annotated[str, StringConstraints(strict=True, min_length=1, max_length=100)]
    accepted_at: AwareDatetime


class CustomerRecordCreate(StrictModel):
    email: Email
    first_name: ShortText
    last_name: ShortText
    phone: Phone | None = None
    address: AddressCreate | None = None
    consent: ConsentCreate
    metadata: Metadata = Field(default_factory=dict)
    test_clock: UUID | None = None


_replaced_not_cleared = refuses_null("email", "first_name", "last_name")


def _update_schema(schema: dict[str, Any]) -> None:
    _replaced_not_cleared(schema)
    schema["minProperties"] = 1  # `{}` changes nothing: refused


class CustomerUpdate(StrictModel):
    """A rectification: the fields given replace the customer's (phone and address may be
    given as null to clear them); fields not given stay."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra=lambda schema: _update_schema(schema),
    )

    email: Email | None = None
    first_name: ShortText | None = None
    last_name: ShortText | None = None
    phone: Phone | None = None
    address: AddressCreate | None = None

    @field_validator("email", "first_name", "last_name", mode="before")
    @classmethod
    def _replaced_not_cleared(cls, value: object) -> object:
        if value is None:
            raise ValueError("may be replaced, not cleared")
        return value

    @model_validator(mode="after")
    def _something_given(self) -> CustomerUpdate:
        if not self.model_fields_set:
            raise ValueError("give at least one field to replace")
        return self


class ConsentPublic(BaseModel):
    version: str
    accepted_at: datetime


class CustomerPublic(BaseModel):
    """A customer as the API shows it. Customers created inline with a purchase have no
    consent on record; an erased customer (`erased`) shows its ids and dates, its PII null."""

    id: UUID
    object: Literal["customer"] = "customer"
    email: str | None
    first_name: str | None
    last_name: str | None
    phone: str | None
    address: dict[str, Any] | None
    consent: ConsentPublic | None
    metadata: dict[str, str]
    test_clock: UUID | None
    erased: bool
    erased_at: datetime | None
    created_at: datetime


class CustomerExportPublic(BaseModel):
    """Everything held about a customer (`GET /api/customers/{id}/export`): the customer as
    the API shows it (PII null once erased), then each table's rows about it as stored, less
    secrets and internal columns; cards as brand and last4 only; `events` are the outbox rows
    about the customer and its orders, payments, methods, subscriptions and invoices."""

    object: Literal["customer_export"] = "customer_export"
    customer: CustomerPublic
    erased: bool
    orders: list[dict[str, Any]]
    transactions: list[dict[str, Any]]
    refunds: list[dict[str, Any]]
    payment_methods: list[dict[str, Any]]
    subscriptions: list[dict[str, Any]]
    invoices: list[dict[str, Any]]
    events: list[dict[str, Any]]
