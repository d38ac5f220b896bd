"""Returns of bank debits: a settled ACH debit may still come back from the payer's bank (R01
insufficient funds, ...) until the return window closes.

A shard's round asks the gateway about its settled debits whose check is due (a bounded
number per round, oldest check first, no lock or transaction held across the lookups) and
reverses each returned one through the shard's own money path (both on the customer's clock:
a test clock's time, else real time): a refund of what is left, that
calls no gateway (the money went back already) and records the return code, under an internal
Idempotency-Key derived from the payment. So two rounds at once, a round cut short and run
again, or a crash between the lookup and the commit, reverse a debit once. A debit still in its
return window (`bank_returns_until`, set when it was made) is asked again `every` later; one
returned, failed, refunded or past the window is asked no more.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from uuid import UUID

from engine.db.database import Database
from engine.errors import ShardMoved
from engine.fencing.ownership import SlotOwnership
from engine.payments.commands import Command, CommandResult, RefundPayment, RequestContext
from engine.payments.intake import INTERNAL_KEY_PREFIX
from engine.payments.models import Payment
from engine.payments.repository import BankCheck
from engine.payments.states import PaymentStatus
from engine.payments.steps import PaymentSteps
from engine.sharding import slot_of

log = logging.getLogger("paygrid.payments")

# Bank debits checked per round, at most.
_BATCH = 500

Execute = Callable[[Sequence[Command]], Awaitable[list[CommandResult]]]


class BankReturns:
    def __init__(
        self,
        *,
        db: Database,
        steps: PaymentSteps,
        ownership: SlotOwnership,
        execute: Execute,
        clock: Callable[[], datetime],
    ) -> None:
        self._db = db
        self._steps = steps
        self._ownership = ownership
        self._execute = execute
        self._clock = clock

    async def check(self, *, every: timedelta) -> int:
        """One round over the shard's due debits; returns how many were reversed. One debit's
        trouble never stops the others (logged; asked again next round)."""
        now = self._clock()
        async with self._db.connection() as conn:
            due = await self._steps.payments.bank_checks_due(
                conn, slots=self._ownership.slots, now=now, limit=_BATCH
            )
        returned = 0
        for due_check in due:
            try:
                returned += await self._check(due_check, every)
            except ShardMoved:
                log.warning("bank checks stopped: another shard now owns these slots")
                break
            except Exception:  # logged; the next round asks again
                log.exception(
                    "could not check bank debit %s; the next round asks again",
                    due_check.payment.id,
                )
        return returned

    async def _check(self, due: BankCheck, every: timedelta) -> int:
        payment, now = due.payment, due.customer_now
        next_check: datetime | None = None
        within = due.returns_until is not None and now < due.returns_until
        if payment.status is PaymentStatus.SUCCEEDED and within:
            found = await self._steps.lookup_payment(payment)
            if found is not None and found.approved and found.return_code is not None:
                result = await self._return(payment, found.return_code)
                if result.status_code == 200:
                    return 1  # the return stopped the checks
                # Refused (a refund of all of it still settling): asked again a check later.
            next_check = now + every
        slot = slot_of(payment.customer_id)
        async with self._db.connection() as conn, self._ownership.transaction(conn, [slot]):
            await self._steps.payments.set_bank_check(conn, payment_ids=[payment.id], at=next_check)
        return 0

    async def _return(self, payment: Payment, return_code: str) -> CommandResult:
        key = f"{INTERNAL_KEY_PREFIX}bank_return:{payment.id}"
        ctx = RequestContext(
            api_key_id=UUID(int=0),
            correlation_id=f"bank-return-{payment.id}",
            idempotency_key=key,
            request_hash=hashlib.sha256(f"{key}:{return_code}".encode()).digest(),
        )
        command = RefundPayment(ctx, payment.id, payment.customer_id, return_code=return_code)
        [result] = await self._execute([command])
        if result.status_code != 200:
            log.warning("the return of %s was refused: %s", payment.id, result.body)
        return result
