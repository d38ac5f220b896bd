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

    @property
    def profile(self) -> Profile:
        """The PII this customer is created with, to be sealed."""
        return Profile(self.email, self.first_name, self.last_name, self.phone, self.address)


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

    @classmethod
    def from_sealed_form(cls, fields: dict[str, Any]) -> Profile:
        """The profile `sealed_form` wrote."""
        return cls(
            email=fields["email"],
            first_name=fields["first_name"],
            last_name=fields["last_name"],
            phone=fields["phone"],
            address=fields["address"],
        )

    def sealed_form(self) -> dict[str, Any]:
        return {
            "email": self.email,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "phone": self.phone,
            "address": self.address,
        }


@dataclass(frozen=True, slots=True)
class SealedProfile:
    """A profile as stored: its ciphertext, the key that seals it and its email's index."""

    data_key_id: UUID
    ciphertext: bytes = field(repr=False)
    email_index: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class CustomerRecord:
    """A customer created through the customers API: profile, consent and test clock."""

    profile: Profile = field(repr=False)
    consent: Consent
    metadata: dict[str, str] = field(default_factory=dict)
    test_clock_id: UUID | None = None


@dataclass(frozen=True, slots=True)
class ProfileChange:
    """A rectification: the profile fields given replace the customer's, the rest stay.
    `fields` names those given (an optional one given as None is cleared)."""

    fields: frozenset[str]
    email: str | None = field(default=None, repr=False)
    first_name: str | None = field(default=None, repr=False)
    last_name: str | None = field(default=None, repr=False)
    phone: str | None = field(default=None, repr=False)
    address: dict[str, Any] | None = field(default=None, repr=False)

    def applied_to(self, profile: Profile) -> Profile:
        """`profile` with the given fields replaced."""
        current = profile.sealed_form()
        given = {name: getattr(self, name) for name in self.fields}
        return Profile.from_sealed_form({**current, **given})


@dataclass(frozen=True, slots=True)
class Customer:
    """A customer as read back: its profile opened, or None once erased."""

    id: UUID
    profile: Profile | None = field(repr=False)
    consent: Consent | None
    metadata: dict[str, str]
    test_clock_id: UUID | None
    created_at: datetime
    erased_at: datetime | None = None

    def public(self) -> dict[str, Any]:
        """The API's customer object as JSON-ready values; an erased one's PII is null."""
        p = self.profile
        consent = (
            None
            if self.consent is None
            else ConsentPublic(version=self.consent.version, accepted_at=self.consent.accepted_at)
        )
        return CustomerPublic(
            id=self.id,
            email=None if p is None else p.email,
            first_name=None if p is None else p.first_name,
            last_name=None if p is None else p.last_name,
            phone=None if p is None else p.phone,
            address=None if p is None else p.address,
            consent=consent,
            metadata=self.metadata,
            test_clock=self.test_clock_id,
            erased=self.erased_at is not None,
            erased_at=self.erased_at,
            created_at=self.created_at,
        ).model_dump(mode="json")
