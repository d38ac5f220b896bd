"""Bank accounts (ACH debits) as they cross process boundaries: never reaching a log, a trace
or a table in full.

`BankAccount` holds the account number only for the gateway call; its repr is redacted and what
a payment stores of it is `BankAccount.stored` (bank name, routing number, last4, holder type
and the account's keyed fingerprint), as a card's is brand, BIN, last4 and fingerprint.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

HolderType = Literal["individual", "company"]

# Routing numbers whose bank the sandbox knows by name (test banks); others are unnamed.
BANK_NAMES: dict[str, str] = {
    "110000000": "PAYGRID TEST BANK",
    "011000015": "FEDERAL RESERVE BANK",
}


@dataclass(frozen=True, slots=True)
class BankAccount:
    """A bank account to debit, alive only between the API edge and the gateway call."""

    routing_number: str
    account_number: str = field(repr=False)
    holder_type: HolderType

    @property
    def last4(self) -> str:
        return self.account_number[-4:]

    def stored(self, fingerprint: str | None) -> dict[str, Any]:
        """A payment's `payment_method` column: what may be shown of the account."""
        return {
            "type": "bank",
            "bank_name": BANK_NAMES.get(self.routing_number),
            "routing_number": self.routing_number,
            "last4": self.last4,
            "account_holder_type": self.holder_type,
            "fingerprint": fingerprint,
        }

    def __repr__(self) -> str:
        return f"BankAccount({self.routing_number}, ****{self.last4}, {self.holder_type})"
