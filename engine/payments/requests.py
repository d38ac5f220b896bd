"""The API's money requests: each becomes a shard command and runs on the shard that owns its
customer. The executor is injected (the replica's shard router), so this module knows nothing of
Ray and each route makes exactly one call here. A saved payment method named by a purchase or an
authorization is opened here, in the replica, before its command is made."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from uuid import UUID

from engine.cards import CardDetails, CardToken
from engine.payments import intake
from engine.payments.commands import Command, CommandResult, RequestContext
from engine.payments.reads import PaymentReads
from engine.payments.states import TransactionType
from schema.api.payment_method_ids import SavedMethodRef
from schema.api.payments import CaptureCreate, PaymentCreate, RefundCreate, VoidCreate
from schema.api.records import RecordedPaymentCreate, RecordedRefundCreate

Executor = Callable[[Command], Awaitable[CommandResult]]
# Opens a saved payment method (by id) for a charge of a customer (None: one created inline).
SavedMethodOpener = Callable[[UUID, UUID | None], Awaitable[CardDetails | CardToken]]


class PaymentRequests:
    def __init__(
        self,
        *,
        execute: Executor,
        reads: PaymentReads,
        max_amount: int,
        open_saved: SavedMethodOpener,
    ) -> None:
        self._execute = execute
        self._reads = reads
        self._max_amount = max_amount
        self._open_saved = open_saved

    async def purchase(self, body: PaymentCreate, ctx: RequestContext) -> CommandResult:
        """Charge now."""
        return await self._create(body, TransactionType.PURCHASE, ctx)

    async def authorize(self, body: PaymentCreate, ctx: RequestContext) -> CommandResult:
        """Hold for a later capture."""
        return await self._create(body, TransactionType.AUTHORIZE, ctx)

    async def record(self, body: RecordedPaymentCreate, ctx: RequestContext) -> CommandResult:
        """Record a payment settled outside paygrid (cash, bank transfer) against an order,
        through the customer's ledger shard like a purchase; no gateway is called."""
        return await self._execute(intake.record_payment(body, ctx, max_amount=self._max_amount))

    async def record_refund(
        self, payment_id: UUID, body: RecordedRefundCreate, ctx: RequestContext
    ) -> CommandResult:
        """Record a refund of a recorded payment, given back outside paygrid, through the
        customer's ledger shard like any refund; no gateway is called."""
        owner = await self._reads.owner_of(payment_id)
        return await self._execute(intake.record_refund(body, ctx, payment_id, owner))

    async def capture(self, body: CaptureCreate, ctx: RequestContext) -> CommandResult:
        owner = await self._reads.owner_of(body.payment_id)
        return await self._execute(intake.capture(body, ctx, owner, max_amount=self._max_amount))

    async def void(self, body: VoidCreate, ctx: RequestContext) -> CommandResult:
        owner = await self._reads.owner_of(body.payment_id)
        return await self._execute(intake.void(body, ctx, owner))

    async def refund(self, body: RefundCreate, ctx: RequestContext) -> CommandResult:
        owner = await self._reads.owner_of(body.payment_id)
        return await self._execute(intake.refund(body, ctx, owner, max_amount=self._max_amount))

    async def _create(
        self, body: PaymentCreate, kind: TransactionType, ctx: RequestContext
    ) -> CommandResult:
        method, saved = body.payment_method, None
        if isinstance(method, SavedMethodRef):
            saved = await self._open_saved(method.id, body.customer_id)
        command = intake.create_payment(body, kind, ctx, max_amount=self._max_amount, saved=saved)
        return await self._execute(command)
