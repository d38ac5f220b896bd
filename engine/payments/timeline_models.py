"""A payment's timeline as the domain sees it: entries from every source, in time order."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class TimelineSource(StrEnum):
    """Where an entry comes from; each is shown only to a key whose scopes read it in the API."""

    REQUEST = "request"
    GATEWAY = "gateway"
    REFUND = "refund"
    LEDGER = "ledger"
    EVENT = "event"
    WEBHOOK = "webhook"
    AUDIT = "audit"


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One thing that happened to a payment: when, from where, a title, a few facts (label,
    value) and the correlation id of the request that caused it, where known."""

    at: datetime
    source: TimelineSource
    title: str
    facts: tuple[tuple[str, str], ...] = ()
    correlation_id: str | None = None
