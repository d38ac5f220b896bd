"""Who changes a row and why: the API key behind a change and the request's correlation id.

Every audited row carries both, written by the statement that changes it, and the audit trigger
records them (migration 0001). Named `Principal`, not "actor", so it is never mistaken for the
Ray actors in `actors/`.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID


@dataclass(frozen=True, slots=True)
class Principal:
    api_key_id: UUID | None
    correlation_id: str | None
