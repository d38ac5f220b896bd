"""One gateway call as recorded: which gateway, what was asked, how it came out, how long it
took. A payment's attempts are the history of what paygrid asked its gateways for it.

An attempt is recorded whatever its outcome, ambiguous ones included: they are the calls
recovery must resolve, and the ones an operator asks about first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from engine.gateways.base import GatewayError, GatewayResult
from schema.states import AttemptOutcome, GatewayRequestKind

__all__ = ["Attempt", "AttemptOutcome", "GatewayRequestKind", "attempt_of", "outcome_of"]


@dataclass(frozen=True, slots=True)
class Attempt:
    """A gateway call for `payment_id`; `reference` is what the gateway was told (the payment
    for a charge, the operation for a capture, void or refund)."""

    payment_id: UUID
    reference: UUID
    gateway: str
    kind: GatewayRequestKind
    outcome: AttemptOutcome
    latency_ms: int
    gateway_transaction_id: str | None = None
    decline_code: str | None = None
    created_at: datetime | None = None


def outcome_of(answer: GatewayResult | GatewayError | None) -> AttemptOutcome:
    """How a call came out: its result, its error, or (for a lookup) no record at all, an
    error of the call's, not a decline."""
    if isinstance(answer, GatewayResult):
        if answer.review:
            return AttemptOutcome.REVIEW
        return AttemptOutcome.APPROVED if answer.approved else AttemptOutcome.DECLINED
    if isinstance(answer, GatewayError) and answer.ambiguous:
        return AttemptOutcome.AMBIGUOUS
    return AttemptOutcome.ERROR


def attempt_of(
    answer: GatewayResult | GatewayError | None,
    *,
    payment_id: UUID,
    reference: UUID,
    gateway: str,
    kind: GatewayRequestKind,
    latency_s: float,
) -> Attempt:
    """The record of one call that answered `answer` after `latency_s` seconds."""
    result = answer if isinstance(answer, GatewayResult) else None
    outcome = outcome_of(answer)
    return Attempt(
        payment_id=payment_id,
        reference=reference,
        gateway=gateway,
        kind=kind,
        outcome=outcome,
        latency_ms=max(0, round(latency_s * 1000)),
        gateway_transaction_id=None if result is None else result.gateway_transaction_id,
        decline_code=None
        if result is None or outcome is not AttemptOutcome.DECLINED
        else result.decline_code or "generic_decline",
    )
