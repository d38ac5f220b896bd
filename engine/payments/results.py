"""What the steps hand each other and the caller: started commands, finished ones, and the
answers for refusals, replays and unknown outcomes."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from engine.errors import (
    CardDeclined,
    Conflict,
    GatewayTimeout,
    GatewayUnavailable,
    IdempotencyMismatch,
    PaygridError,
)
from engine.gateways.attempts import Attempt
from engine.gateways.base import GatewayError, GatewayResult
from engine.idempotency.repository import Answer, IdempotencyRecord
from engine.ledger.entries import Entry
from engine.payments.commands import Command, CommandResult
from engine.payments.models import Payment

GatewayOutcome = GatewayResult | GatewayError


# An ACH return code (R01 insufficient funds, R02 account closed, ...), as a decline code.
_ACH_RETURN = re.compile(r"R[0-9]{2}")


@dataclass(slots=True)
class Started:
    """A command whose `processing` write is durable, waiting for its gateway call."""

    command: Command
    payment: Payment
    operation_id: UUID | None = None
    amount: int = 0
    # The card's fingerprint, for the summary a purchase or authorization stores.
    fingerprint: str | None = None
    # The gateway calls made for it so far, written with its outcome.
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def reference(self) -> UUID:
        """The row written `processing`, and the gateway-side idempotency key: the operation
        for a capture, void or refund, the payment itself for a purchase or authorization."""
        return self.operation_id or self.payment.id


@dataclass(slots=True)
class Finished:
    result: CommandResult
    entries: list[Entry] = field(default_factory=list)


def outcome_known(outcome: GatewayOutcome) -> bool:
    """Whether the gateway's decision is known: not after an ambiguous error (it may have
    acted), nor while it holds the transaction for review (it has not decided)."""
    if isinstance(outcome, GatewayError):
        return not outcome.ambiguous
    return not outcome.review


def failure(outcome: GatewayOutcome) -> PaygridError:
    """The error a failed gateway call answers with: a decline, or the gateway's trouble."""
    if isinstance(outcome, GatewayError):
        return GatewayUnavailable(f"the gateway could not be reached: {outcome.args[0]}")
    if outcome.decline_code is not None and _ACH_RETURN.fullmatch(outcome.decline_code):
        # A bank debit the payer's bank refused at settlement: the ACH return code says why.
        return CardDeclined(
            outcome.message or "The bank debit failed.",
            code="bank_debit_failed",
            decline_code=outcome.decline_code,
        )
    return CardDeclined(
        outcome.message or "The card was declined.",
        decline_code=outcome.decline_code or "generic_decline",
    )


def held_result(held: IdempotencyRecord, request_hash: bytes) -> CommandResult:
    """What a request whose idempotency key is already held gets back."""
    return replay_or_refuse(
        held.request_hash, request_hash, held.completed, held.response_status, held.response_body
    )


def replay_or_refuse(
    held_hash: bytes,
    request_hash: bytes,
    completed: bool,
    status: int | None,
    body: dict[str, Any] | None,
) -> CommandResult:
    """Replay the stored answer to the same request; refuse a different one, or one that
    arrives while the first is still in progress."""
    if held_hash != request_hash:
        return CommandResult.from_error(
            IdempotencyMismatch(
                "this Idempotency-Key was used with a different request", param="Idempotency-Key"
            )
        )
    if not completed or status is None or body is None:
        return CommandResult.from_error(
            Conflict(
                "a request with this Idempotency-Key is still in progress; retry later",
                param="Idempotency-Key",
            )
        )
    return CommandResult(status, body, replayed=True)


def answer_for(command: Command, result: CommandResult) -> Answer | None:
    """The idempotency answer to store for `command`, if it carries a key."""
    ctx = command.ctx
    if ctx.idempotency_key is None:
        return None
    return Answer(ctx.api_key_id, ctx.idempotency_key, result.status_code, result.body)


def unsettled_result(started: Started, outcome: GatewayOutcome) -> CommandResult:
    """The answer while a gateway outcome is unknown and left to recovery: the payment as it
    stands (`processing`, 202) while the gateway holds it for review, else a 504."""
    if isinstance(outcome, GatewayResult) and outcome.review:
        return CommandResult(202, started.payment.public())
    return CommandResult.from_error(
        GatewayTimeout(
            "the gateway did not answer; the outcome will be settled shortly, "
            "retry with the same Idempotency-Key"
        ),
        payment_id=str(started.payment.id),
    )
