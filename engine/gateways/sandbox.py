"""The built-in sandbox gateway: deterministic test cards, configurable latency and faults.

Outcomes follow Stripe's test cards; captures, voids and refunds are declined for the trigger
amounts in `DECLINING_AMOUNTS`. The sandbox keeps what it decided per reference in Redis, as a
remote gateway keeps its own records, so `lookup` can tell recovery what happened to a charge
whose response was lost. Each instance keeps its records under its own name, so two sandboxes
(`sandbox`, `sandbox_b`) are two gateways that know nothing of each other's charges; either can
be switched into an outage (`set_outage`), in which every call fails before it acts.

Wallets: the network tokens in `WALLET_TOKENS` stand for test cards and are charged like them.

Bank debits (ACH): the debit answers undecided (`review`, pending settlement), as a bank network
accepts a debit and settles it days later; paygrid asks for the outcome once the settlement is
due on the customer's clock (real time, or a test clock's: so the sandbox keeps no time of its
own). `lookup` then tells approved, or declined with the ACH return code the test account
number in `BANK_ACCOUNTS` triggers; one test account settles and is then returned, which
`lookup` reports on the approved debit (`return_code`). A refund of a debit answers pending too.
"""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any
from uuid import UUID, uuid4

from redis.asyncio import Redis

from engine.cards import CardDetails, CardSummary, CardToken, WalletToken
from engine.gateways.base import (
    ChargeRequest,
    DebitRequest,
    GatewayError,
    GatewayResult,
    LookupHint,
    OperationRequest,
    VerifyRequest,
)

DECLINING_CARDS: dict[str, tuple[str, str]] = {
    "4000000000000002": ("generic_decline", "Your card was declined."),
    "4000000000009995": ("insufficient_funds", "Your card has insufficient funds."),
    "4000000000000069": ("expired_card", "Your card has expired."),
    "4000000000000127": ("incorrect_cvc", "Your card's security code is incorrect."),
    "4000000000000119": ("processing_error", "An error occurred while processing your card."),
}

# An operation of exactly this amount (minor units, any currency) is declined, so the declined
# paths of captures, voids (the authorization's amount) and refunds can be driven from the API.
DECLINING_AMOUNTS: dict[str, tuple[int, str, str]] = {
    "capture": (9101, "capture_declined", "The gateway declined the capture."),
    "void": (9102, "void_declined", "The gateway declined the void."),
    "refund": (9103, "refund_declined", "The gateway declined the refund."),
}

# Token → (card it stands for, decline or None).
TOKENS: dict[str, tuple[CardSummary, tuple[str, str] | None]] = {
    "tok_visa": (CardSummary("visa", "424242", "4242", 12, 2034), None),
    "tok_mastercard": (CardSummary("mastercard", "555555", "4444", 12, 2034), None),
    "tok_amex": (CardSummary("amex", "378282", "0005", 12, 2034), None),
    "tok_chargeDeclined": (
        CardSummary("visa", "400000", "0002", 12, 2034),
        DECLINING_CARDS["4000000000000002"],
    ),
    "tok_chargeDeclinedInsufficientFunds": (
        CardSummary("visa", "400000", "9995", 12, 2034),
        DECLINING_CARDS["4000000000009995"],
    ),
    "tok_chargeDeclinedExpiredCard": (
        CardSummary("visa", "400000", "0069", 12, 2034),
        DECLINING_CARDS["4000000000000069"],
    ),
    "tok_chargeDeclinedIncorrectCvc": (
        CardSummary("visa", "400000", "0127", 12, 2034),
        DECLINING_CARDS["4000000000000127"],
    ),
    "tok_chargeDeclinedProcessingError": (
        CardSummary("visa", "400000", "0119", 12, 2034),
        DECLINING_CARDS["4000000000000119"],
    ),
}

# Wallet network token → (card it stands for, decline or None).
WALLET_TOKENS: dict[str, tuple[CardSummary, tuple[str, str] | None]] = {
    "wtok_visa": (CardSummary("visa", "424242", "4242", 12, 2034), None),
    "wtok_mastercard": (CardSummary("mastercard", "555555", "4444", 12, 2034), None),
    "wtok_declined": (
        CardSummary("visa", "400000", "0002", 12, 2034),
        DECLINING_CARDS["4000000000000002"],
    ),
}

# ACH return codes the sandbox answers with, and what they mean.
RETURN_CODES: dict[str, str] = {
    "R01": "Insufficient funds.",
    "R02": "Account closed.",
    "R03": "No account; unable to locate the account.",
}

# Test account number → (return code at settlement, return code of a return after success).
# Every other account number settles and stays settled.
BANK_ACCOUNTS: dict[str, tuple[str | None, str | None]] = {
    "000123456789": (None, None),
    "000111111116": ("R01", None),
    "000111111113": ("R02", None),
    "000222222227": ("R03", None),
    "000333333335": (None, "R01"),
}
RECORD_TTL_S = 90 * 24 * 3600

# Record a decision unless the sandbox is switched into an outage: 1 stored, 0 an earlier
# decision stands, -1 down (nothing recorded, so the caller knows nothing moved).
_RECORD_UNLESS_DOWN = """
if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'EX', ARGV[2]) then return 1 end
return 0
"""
_DOWN = -1


def _pending(transaction_id: str) -> GatewayResult:
    return GatewayResult(False, transaction_id, message="pending settlement", review=True)


def _settled(transaction_id: str, settlement: dict[str, Any]) -> GatewayResult:
    """How a bank debit (or a refund of one) settled: declined with its ACH return code, or
    approved (with the return code of a return that followed)."""
    failure = settlement["failure"]
    if failure is not None:
        return GatewayResult(False, transaction_id, failure, RETURN_CODES[failure])
    return GatewayResult(True, transaction_id, return_code=settlement["return_code"])


def token_card(token: str) -> CardSummary | None:
    """The card a sandbox token stands for, or None for an unknown token."""
    known = TOKENS.get(token)
    return None if known is None else known[0]


class SandboxGateway:
    """Approves every valid card but the declining test cards. With `timeout_rate` > 0 that
    share of calls takes effect and then raises an ambiguous `GatewayError`, as a gateway
    whose response was lost."""

    # The sandbox records its decision before it answers (or loses the answer).
    lookup_grace_s = 0.0

    def __init__(
        self,
        redis: Redis,
        *,
        name: str = "sandbox",
        latency_ms: int = 0,
        timeout_rate: float = 0.0,
        seed: int | None = None,
    ) -> None:
        self.name = name
        self._redis = redis
        self._latency_s = latency_ms / 1000
        self._timeout_rate = timeout_rate
        self._random = random.Random(seed)

    async def charge(self, request: ChargeRequest) -> GatewayResult:
        card, decline = self._card_outcome(request.source)
        if decline is None:
            result = GatewayResult(True, f"sb_ch_{uuid4().hex[:24]}", card=card)
        else:
            result = GatewayResult(False, f"sb_ch_{uuid4().hex[:24]}", decline[0], decline[1], card)
        return await self._respond(request.reference, result)

    async def debit(self, request: DebitRequest) -> GatewayResult:
        """Accept a bank debit for settlement: undecided until `lookup` is asked."""
        failure, late_return = BANK_ACCOUNTS.get(request.account.account_number, (None, None))
        return await self._respond(
            request.reference,
            _pending(f"sb_ach_{uuid4().hex[:24]}"),
            {"failure": failure, "return_code": late_return},
        )

    async def verify(self, request: VerifyRequest) -> GatewayResult:
        """A declining test card fails its verification as it would its charge (4000…0127 as
        `incorrect_cvc`); every other valid card passes."""
        card, decline = self._card_outcome(request.card)
        reference = f"sb_vf_{uuid4().hex[:24]}"
        if decline is None:
            return await self._respond(request.reference, GatewayResult(True, reference, card=card))
        result = GatewayResult(False, reference, decline[0], decline[1], card)
        return await self._respond(request.reference, result)

    async def capture(self, request: OperationRequest) -> GatewayResult:
        return await self._operation("capture", request, request.gateway_transaction_id)

    async def void(self, request: OperationRequest) -> GatewayResult:
        return await self._operation("void", request, request.gateway_transaction_id)

    async def refund(self, request: OperationRequest) -> GatewayResult:
        return await self._operation("refund", request, f"sb_re_{uuid4().hex[:24]}")

    async def _operation(
        self, kind: str, request: OperationRequest, transaction_id: str
    ) -> GatewayResult:
        amount, code, message = DECLINING_AMOUNTS[kind]
        if request.money.amount == amount:
            result = GatewayResult(False, transaction_id, code, message)
        elif kind == "refund" and request.gateway_transaction_id.startswith("sb_ach_"):
            # A refund of a bank debit is a credit to the account: it settles like the debit.
            settlement = {"failure": None, "return_code": None}
            return await self._respond(request.reference, _pending(transaction_id), settlement)
        else:
            result = GatewayResult(True, transaction_id)
        return await self._respond(request.reference, result)

    async def lookup(self, reference: UUID, hint: LookupHint | None = None) -> GatewayResult | None:
        """The sandbox records every call under its reference, so `hint` is not needed."""
        raw = await self._redis.get(self.record_key(reference))
        if raw is None:
            return None
        data = json.loads(raw)
        if data.get("settlement") is not None:
            return _settled(data["gateway_transaction_id"], data["settlement"])
        card = CardSummary(**data["card"]) if data.get("card") else None
        return GatewayResult(
            data["approved"],
            data["gateway_transaction_id"],
            data["decline_code"],
            data["message"],
            card,
        )

    async def _respond(
        self, reference: UUID, result: GatewayResult, settlement: dict[str, Any] | None = None
    ) -> GatewayResult:
        if self._latency_s:
            await asyncio.sleep(self._latency_s)
        record: dict[str, Any] = {
            "approved": result.approved,
            "gateway_transaction_id": result.gateway_transaction_id,
            "decline_code": result.decline_code,
            "message": result.message,
            "card": None
            if result.card is None
            else {
                "brand": result.card.brand,
                "bin": result.card.bin,
                "last4": result.card.last4,
                "exp_month": result.card.exp_month,
                "exp_year": result.card.exp_year,
            },
            "settlement": settlement,
        }
        # A real gateway is idempotent on the reference: the first decision stands. The same
        # round trip checks for an outage, which refuses the call before anything is recorded.
        stored = await self._redis.eval(
            _RECORD_UNLESS_DOWN,
            2,
            self.outage_key,
            self.record_key(reference),
            json.dumps(record),
            RECORD_TTL_S,
        )
        if stored == _DOWN:
            raise GatewayError(f"{self.name}: gateway unavailable (outage)", ambiguous=False)
        if not stored:
            earlier = await self.lookup(reference)
            assert earlier is not None
            result = earlier
        if self._timeout_rate and self._random.random() < self._timeout_rate:
            raise GatewayError("sandbox: response lost after the gateway acted", ambiguous=True)
        return result

    @staticmethod
    def _card_outcome(
        source: CardDetails | CardToken,
    ) -> tuple[CardSummary, tuple[str, str] | None]:
        if isinstance(source, CardToken):
            # A wallet's network token, or a gateway token: each has its own test set.
            known = WALLET_TOKENS if isinstance(source, WalletToken) else TOKENS
            if source.token not in known:
                return CardSummary("unknown", "000000", "0000", 1, 2000), (
                    "invalid_token",
                    "No such token.",
                )
            return known[source.token]
        return source.summary(), DECLINING_CARDS.get(source.number)

    @property
    def outage_key(self) -> str:
        """While this Redis key exists, every call fails unambiguously (a gateway that refuses
        connections): how tests and drills open this sandbox's circuit."""
        return f"paygrid:{self.name}:outage"

    async def set_outage(self, down: bool) -> None:
        """Switch this sandbox's outage on or off, for every process using it."""
        if down:
            await self._redis.set(self.outage_key, "1")
        else:
            await self._redis.delete(self.outage_key)

    def record_key(self, reference: UUID) -> str:
        """Where the record of `reference` lives in Redis."""
        return f"paygrid:{self.name}:{reference}"
