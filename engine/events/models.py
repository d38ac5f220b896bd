"""Events as the domain sees them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    """An event as written, with the payload its webhooks deliver."""

    id: UUID
    type: str
    created_at: datetime
    payload: dict[str, Any]
    correlation_id: str | None
