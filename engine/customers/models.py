"""Customers as the domain sees them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from schema.api.customers import ConsentPublic, CustomerPublic


@dataclass(frozen=True, slots=True)
class NewCustomer:
    """A customer to create, inline with a payment or on its own."""

    id: UUID
    email: str = field(repr=False)
    first_name: str | None = field(default=None, repr=False)
    last_name: str | None = field(default=None, repr=False)
    phone: str | None = field(default=None, repr=False)
    address: dict[str, Any] | None = field(default=None, repr=False)
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Consent:
    """Which version of the merchant's terms the customer accepted, and when."""

    version: str
    accepted_at: datetime


@dataclass(frozen=True, slots=True)
class Profile:
    """A customer's PII: what is sealed at rest under the customer's data key."""

    email: str = field(repr=False)
    first_name: str | None = field(default=None, repr=False)
    last_name: str | None = field(default=None, repr=False)
    phone: str | None = field(default=None, repr=False)
    address: dict[str, Any] | None = field(default=None, repr=False)

    def sealed_form(self) -> dict[str, Any]:
        return {
            "email": self.email,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "phone": self.phone,
            "address": self.address,
        }


@dataclass(frozen=True, slots=True)
class CustomerRecord:
    """A customer created through the customers API: profile, consent and test clock."""

    profile: Profile = field(repr=False)
    consent: Consent
    metadata: dict[str, str] = field(default_factory=dict)
    test_clock_id: UUID | None = None


@dataclass(frozen=True, slots=True)
class Customer:
    """A customer as read back: its profile opened (or read in clear, for customers a
    purchase created inline)."""

    id: UUID
    profile: Profile = field(repr=False)
    consent: Consent | None
    metadata: dict[str, str]
    test_clock_id: UUID | None
    created_at: datetime

    def public(self) -> dict[str, Any]:
        """The API's customer object as JSON-ready values."""
        p = self.profile
        consent = (
            None
            if self.consent is None
            else ConsentPublic(version=self.consent.version, accepted_at=self.consent.accepted_at)
        )
        return CustomerPublic(
            id=self.id,
            email=p.email,
            first_name=p.first_name,
            last_name=p.last_name,
            phone=p.phone,
            address=p.address,
            consent=consent,
            metadata=self.metadata,
            test_clock=self.test_clock_id,
            created_at=self.created_at,
        ).model_dump(mode="json")
