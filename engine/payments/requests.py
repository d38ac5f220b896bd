"""The API's money requests: each becomes a shard command and runs on the shard that owns its
customer. The executor is injected (the replica's shard router), so this module knows nothing of
Ray and each route makes exactly one call here."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from engine.payments import intake
from engine.payments.commands import Command, CommandResult, RequestContext
from engine.payments.reads import PaymentReads
from engine.payments.states import TransactionType
from schema.api.payments import CaptureCreate, PaymentCreate, RefundCreate, VoidCreate

Executor = Callable[[Command], Awaitable[CommandResult]]


class PaymentRequests:
    def __init__(self, *, execute: Executor, reads: PaymentReads, max_amount: int) -> None:
        self._execute = execute
        self._reads = reads
        self._max_amount = max_amount

    async def purchase(self, body: PaymentCreate, ctx: RequestContext) -> CommandResult:
        """Charge now."""
        return await self._create(body, TransactionType.PURCHASE, ctx)

    async def authorize(self, body: PaymentCreate, ctx: RequestContext) -> CommandResult:
        """Hold for a later capture."""
        return await self._create(body, TransactionType.AUTHORIZE, ctx)

    async def capture(self, body: CaptureCreate, ctx: RequestContext) -> CommandResult:
        owner = await self._reads.owner_of(body.payment_id)
        return await self._execute(intake.capture(body, ctx, owner))

    async def void(self, body: VoidCreate, ctx: RequestContext) -> CommandResult:
        owner = await self._reads.owner_of(body.payment_id)
        return await self._execute(intake.void(body, ctx, owner))

    async def refund(self, body: RefundCreate, ctx: RequestContext) -> CommandResult:
        owner = await self._reads.owner_of(body.payment_id)
        return await self._execute(intake.refund(body, ctx, owner))

    async def _create(
        self, body: PaymentCreate, kind: TransactionType, ctx: RequestContext
    ) -> CommandResult:
        command = intake.create_payment(body, kind, ctx, max_amount=self._max_amount)
        return await self._execute(command)
