"""Customers created on their own (`POST /api/database/customers`) and the view of one.

The names and email are required, phone and address optional; `consent` records which version
of the merchant's terms the customer accepted, and when. `test_clock` (sandbox only) puts the
customer on a test clock: its subscriptions then run on the clock's time.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, Field, StringConstraints

from schema.api.common import Email, Metadata, ShortText, StrictModel
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


class ConsentPublic(BaseModel):
    version: str
    accepted_at: datetime


class CustomerPublic(BaseModel):
    """A customer as the API shows it. Customers created inline with a purchase before this
    API existed have no consent on record."""

    id: UUID
    object: Literal["customer"] = "customer"
    email: str
    first_name: str | None
    last_name: str | None
    phone: str | None
    address: dict[str, Any] | None
    consent: ConsentPublic | None
    metadata: dict[str, str]
    test_clock: UUID | None
    created_at: datetime
