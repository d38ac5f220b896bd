"""The gateway protocol and the command and result objects every gateway speaks.

A decline is a result (`GatewayResult.approved is False`), not an exception. Gateways raise
`GatewayError` only for transport failures and ambiguous outcomes; `ambiguous` means the gateway
may have acted, so the caller must resolve the outcome with `lookup` instead of assuming.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable
from uuid import UUID

from engine.bank_accounts import BankAccount
from engine.cards import CardDetails, CardSummary, CardToken
from engine.money import Money


@dataclass(frozen=True, slots=True)
class ChargeRequest:
    """Authorize (capture=False) or purchase (capture=True). `reference` is our payment id and
    the gateway-side idempotency key."""

    reference: UUID
    money: Money
    source: CardDetails | CardToken
    capture: bool


@dataclass(frozen=True, slots=True)
class OperationRequest:
    """Capture, void or refund of an earlier charge. `reference` is our operation id.
    `card_last4` is the charged card's last four digits, for gateways whose refunds must name
    the card (Authorize.Net); a gateway that needs it and is not given it looks it up."""

    reference: UUID
    gateway_transaction_id: str
    money: Money
    card_last4: str | None = None


@dataclass(frozen=True, slots=True)
class LookupHint:
    """What the caller of a lookup knows of the call beside its reference: which kind it was
    and, for a capture, void or refund, the transaction it acted on. A gateway whose captures
    and voids make no transaction of their own (Authorize.Net) finds their outcome on that
    transaction, so a lookup after a restart, with nothing remembered, still answers."""

    kind: Literal["charge", "capture", "void", "refund"]
    gateway_transaction_id: str | None = None


@dataclass(frozen=True, slots=True)
class VerifyRequest:
    """An account verification of a card about to be saved: the issuer checks the number,
    expiry and CVC, and no money is held or moved (a zero-amount authorization). The only use
    a saved card's CVC ever gets. `reference` is our id for the check."""

    reference: UUID
    card: CardDetails


@dataclass(frozen=True, slots=True)
class GatewayResult:
    """What the gateway decided. `review` means held for review (a fraud filter's hold): not
    approved and not declined either; the outcome is `review`, the payment stays `processing`
    and `lookup` settles it once the merchant or the filter has decided. A bank debit (or a
    refund of one) waiting for the bank network to settle it is undecided the same way."""

    approved: bool
    gateway_transaction_id: str | None
    decline_code: str | None = None
    message: str | None = None
    card: CardSummary | None = None
    review: bool = False
    # A bank debit that settled and was later returned by the payer's bank (ACH return code,
    # R01…): `lookup` reports it on the approved debit.
    return_code: str | None = None


class GatewayError(Exception):
    """Transport failure or unknown outcome. State lives in args so it pickles."""

    def __init__(self, message: str, ambiguous: bool) -> None:
        super().__init__(message, ambiguous)

    @property
    def ambiguous(self) -> bool:
        return bool(self.args[1])


class Gateway(Protocol):
    """What every gateway adapter offers."""

    name: str
    # How long after a call the gateway may still be recording it: until then a lookup that
    # finds nothing proves nothing, and recovery waits instead of failing the payment.
    lookup_grace_s: float

    async def charge(self, request: ChargeRequest) -> GatewayResult: ...

    async def verify(self, request: VerifyRequest) -> GatewayResult: ...

    async def capture(self, request: OperationRequest) -> GatewayResult: ...

    async def void(self, request: OperationRequest) -> GatewayResult: ...

    async def refund(self, request: OperationRequest) -> GatewayResult: ...

    async def lookup(self, reference: UUID, hint: LookupHint | None = None) -> GatewayResult | None:
        """The outcome the gateway recorded for `reference`, or None if it never saw it.
        `hint` says what the call was, for gateways that need it to find the record."""
        ...


@dataclass(frozen=True, slots=True)
class DebitRequest:
    """A bank debit (ACH) of `account`. `reference` is our payment id and the gateway-side
    idempotency key. The gateway answers undecided (`review`) until the debit settles; then
    `lookup` tells approved, or declined with the ACH return code as `decline_code`."""

    reference: UUID
    money: Money
    account: BankAccount


@runtime_checkable
class BankDebits(Protocol):
    """What a gateway that takes bank debits offers beside `Gateway`. Refunds of a debit go
    through `Gateway.refund` and settle asynchronously too."""

    async def debit(self, request: DebitRequest) -> GatewayResult: ...


def debits_of(gateway: Gateway) -> BankDebits:
    """`gateway` as a taker of bank debits; a `GatewayError` (nothing moved, so not
    ambiguous) if it takes none."""
    if not isinstance(gateway, BankDebits):
        raise GatewayError(f"{gateway.name} takes no bank debits", ambiguous=False)
    return gateway


async def close_gateway(gateway: Gateway) -> None:
    """Close what `gateway` holds open (an adapter's HTTP session), if it holds anything."""
    close = getattr(gateway, "aclose", None)
    if close is not None:
        await close()
