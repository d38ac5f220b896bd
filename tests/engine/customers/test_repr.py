"""A customer's PII never shows in a repr (a log line, a traceback, an assertion message)."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

from engine.customers.models import Consent, Customer, CustomerRecord, NewCustomer, Profile

PII = ("ada@example.com", "Ada", "Lovelace", "+44 20 7946 0000", "12 St James's Square")


def test_no_pii_in_reprs() -> None:
    address = {"line1": PII[4]}
    profile = Profile(PII[0], PII[1], PII[2], PII[3], address)
    consent = Consent("2026-11", datetime(2026, 11, 1, tzinfo=UTC))
    shown = [
        profile,
        CustomerRecord(profile, consent),
        Customer(uuid4(), profile, consent, {}, None, datetime.now(UTC)),
        NewCustomer(uuid4(), PII[0], PII[1], PII[2], PII[3], address),
    ]
    for value in shown:
        text = repr(value)
        assert not [p for p in PII if p in text], text
