"""Customers as the domain sees them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID


@dataclass(frozen=True, slots=True)
class NewCustomer:
    """A customer to create, inline with a payment or on its own."""

    id: UUID
    email: str
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    address: dict[str, Any] | None = None
    metadata: dict[str, str] = field(default_factory=dict)
