"""Who changes a row and why. Every audited money row carries both, written by the statement
that changes it, and the audit trigger records them (migration 0001)."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID


@dataclass(frozen=True, slots=True)
class Actor:
    api_key_id: UUID | None
    correlation_id: str | None
