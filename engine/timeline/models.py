"""A timeline entry, and where entries other than database rows (spans) come from."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

# Order among entries of the same instant (one database transaction shares its `now()`): the
# payment before what it caused, the outbox before the webhooks that deliver it.
RANKS: dict[str, int] = {
    "span": 0,
    "payment": 1,
    "operation": 1,
    "refund": 2,
    "gateway_attempt": 3,
    "compliance_alert": 4,
    "ledger_entry": 5,
    "event": 6,
    "audit": 7,
    "webhook_delivery": 8,
    "webhook_attempt": 9,
}


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One thing the request did: its kind (a key of `RANKS`), the row's or span's id, when,
    and what it is (ids, states, amounts; never card data, payloads or secrets)."""

    kind: str
    id: str
    at: datetime
    detail: dict[str, Any]

    def sort_key(self) -> tuple[datetime, int, str]:
        return (self.at, RANKS.get(self.kind, len(RANKS)), self.id)

    def public(self) -> dict[str, Any]:
        return {"kind": self.kind, "id": self.id, "at": self.at.isoformat(), "detail": self.detail}


class SpanSource(Protocol):
    """Spans recorded for a correlation id (an in-memory or OTLP-side store), as entries of
    kind `span`. The tracing layer provides one; without it the timeline has rows only."""

    async def __call__(self, correlation_id: str) -> Sequence[TimelineEntry]: ...
