"""Voids at the gateway of authorizations that expired.

An authorization whose window passed is expired in the shard's transaction (its hold released
in the ledger, `payment.expired` emitted), and in that same transaction a job is queued to void
it at the gateway that holds it (the payment's recorded `gateway`): the job exists exactly when
the expiry does, so a void can be late but never lost. The scheduler runs the job with its
retry policy: a gateway failure (an error, a timeout) raises, so the job is retried with backoff
and, once its retries are spent, dead-lettered where an operator sees and replays it.

Repeating a void is safe: its reference (in the job's payload) is the same on every try, the
sandbox keeps its first decision per reference, and Authorize.Net answers a second void of a
voided authorization as already done. A declined void is the gateway's answer (the hold lapses
on its own, as the card networks let it): recorded, not retried. Every try is recorded in
`gateway_attempts` with the payment.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any
from uuid import UUID, uuid4

from engine.db.database import Database
from engine.gateways.attempts import GatewayRequestKind, attempt_of
from engine.gateways.base import GatewayError, GatewayResult, OperationRequest
from engine.gateways.registry import Gateways
from engine.gateways.repository import AttemptRepository
from engine.money import Money
from engine.payments.commands import RECORDED_GATEWAY
from engine.payments.models import Payment
from engine.scheduler.handlers import Handler

log = logging.getLogger("paygrid.payments")

VOID_EXPIRED = "payments.void_expired"


def void_jobs(expired: Sequence[Payment]) -> list[tuple[dict[str, Any], None, str]]:
    """The jobs (payload, run now, dedupe key) voiding `expired` at their gateways; none for a
    payment no gateway holds (one recorded as settled elsewhere)."""
    return [
        (
            {
                "payment_id": str(p.id),
                "reference": str(uuid4()),
                "gateway": p.gateway,
                "gateway_transaction_id": p.gateway_transaction_id,
                "amount": p.amount,
                "currency": p.currency,
            },
            None,
            f"void-expired:{p.id}",
        )
        for p in expired
        if p.gateway != RECORDED_GATEWAY and p.gateway_transaction_id is not None
    ]


class ExpiryVoids:
    """The scheduler's handler of `payments.void_expired` jobs, over a process's gateways."""

    def __init__(self, gateways: Gateways) -> None:
        self._gateways = gateways
        self._attempts = AttemptRepository()

    def handlers(self) -> dict[str, Handler]:
        """The job kinds this handles."""
        return {VOID_EXPIRED: self.void}

    async def void(self, db: Database, payload: dict[str, Any]) -> None:
        """Void one expired authorization at its gateway; raise `GatewayError` (so the job is
        retried) when the gateway could not answer."""
        payment_id = UUID(payload["payment_id"])
        reference = UUID(payload["reference"])
        gateway = self._gateways.get(payload["gateway"])
        request = OperationRequest(
            reference,
            payload["gateway_transaction_id"],
            Money(payload["amount"], payload["currency"]),
        )
        began = time.monotonic()
        outcome: GatewayResult | GatewayError
        try:
            outcome = await gateway.void(request)
        except GatewayError as error:
            outcome = error
        attempt = attempt_of(
            outcome,
            payment_id=payment_id,
            reference=reference,
            gateway=gateway.name,
            kind=GatewayRequestKind.VOID,
            latency_s=time.monotonic() - began,
        )
        async with db.transaction() as conn:
            await self._attempts.insert_many(conn, attempts=[attempt])
        if isinstance(outcome, GatewayError):
            raise outcome
        if not outcome.approved:
            log.warning(
                "%s declined the void of expired authorization %s (%s)",
                gateway.name,
                payment_id,
                outcome.decline_code,
            )
