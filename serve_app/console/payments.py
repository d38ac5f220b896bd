"""Payments in the console: the list (status and customer filters, cursor paging), one payment
with its refunds and timeline, and the actions its state allows. Reads go through the same
`PaymentReads` the API uses; capture, void and refund through the same `PaymentRequests`, each
under the Idempotency-Key its form was rendered with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from uuid import UUID, uuid4

import orjson
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel
from starlette.responses import RedirectResponse, Response

from engine.auth.keys import Scope
from engine.auth.sessions import ConsoleSession
from engine.payments.commands import CommandResult, RequestContext
from engine.payments.intake import check_idempotency_key, request_hash
from engine.payments.models import Payment
from engine.payments.states import REFUNDABLE, PaymentStatus, can_transition
from engine.payments.timeline import payment_timeline
from engine.payments.timeline_models import TimelineSource
from schema.api.payments import CaptureCreate, RefundCreate, VoidCreate
from serve_app.console.amounts import minor_units
from serve_app.console.forms import KeyedAction, MoneyAction, PaymentFilters, next_page
from serve_app.console.pages import ConsoleRoute, error_page, page
from serve_app.console.session import Form, PaymentsReader, PaymentsWriter
from serve_app.deps import CorrelationId, State
from serve_app.state import AppState

router = APIRouter(route_class=ConsoleRoute)

PAGE_SIZE = 25
# Which timeline entries a key sees: what its scopes read in the API (the payment with its
# refunds and attempts, and the ledger: payments:read; events and deliveries: webhooks; the
# audit log: admin).
_SOURCES_BY_SCOPE = {
    Scope.PAYMENTS_READ: (
        TimelineSource.REQUEST,
        TimelineSource.GATEWAY,
        TimelineSource.REFUND,
        TimelineSource.LEDGER,
    ),
    Scope.WEBHOOKS: (TimelineSource.EVENT, TimelineSource.WEBHOOK),
    Scope.ADMIN: (TimelineSource.AUDIT,),
}
NOTICES = {
    "captured": "Captured.",
    "voided": "Voided: the hold is released.",
    "refunded": "Refund made.",
}


def timeline_sources(session: ConsoleSession) -> frozenset[TimelineSource]:
    """The timeline's sources the session's key may read."""
    return frozenset(
        source
        for scope, sources in _SOURCES_BY_SCOPE.items()
        if session.key.allows(scope)
        for source in sources
    )


def actions(payment: Payment) -> list[str]:
    """What the payment's state allows, by the state machine the shards enforce."""
    allowed = []
    if can_transition(payment.status, PaymentStatus.CAPTURED):
        allowed.append("capture")
    if can_transition(payment.status, PaymentStatus.VOIDED):
        allowed.append("void")
    if payment.status in REFUNDABLE and payment.refundable > 0:
        allowed.append("refund")
    return allowed


@router.get("/payments")
async def payments(
    session: PaymentsReader, state: State, filters: Annotated[PaymentFilters, Query()]
) -> Response:
    found = await state.payment_reads.page(
        limit=PAGE_SIZE,
        starting_after=filters.starting_after,
        status=filters.status,
        customer_id=filters.customer_id,
        window=filters.window(),
    )
    last = found.payments[-1].id if found.payments else None
    return page(
        session,
        "payments.html",
        payments=found.payments,
        filters=filters,
        statuses=list(PaymentStatus),
        next_page=next_page(filters, found.has_more, last),
    )


@router.get("/payments/{payment_id}")
async def payment(
    payment_id: UUID, session: PaymentsReader, state: State, notice: str | None = None
) -> Response:
    detail = await state.payment_reads.get(payment_id)
    found, refunds = detail.payment, detail.refunds
    timeline = await payment_timeline(state.db, payment_id, sources=timeline_sources(session))
    return page(
        session,
        "payment.html",
        payment=found,
        refunds=refunds,
        timeline=timeline,
        actions=actions(found),
        # One key per form and render: submitting the same form twice replays, never repeats.
        idempotency_keys={name: f"console-{uuid4()}" for name in ("capture", "void", "refund")},
        notice=NOTICES.get(notice or ""),
    )


@dataclass(frozen=True, slots=True)
class Action:
    """A posted payment action: who (a `payments:write` session, its CSRF token checked), its
    fields, and what its command's request context needs."""

    session: ConsoleSession
    request: Request
    state: AppState
    fields: dict[str, str]
    correlation_id: str

    def context(self, idempotency_key: str, command: BaseModel) -> RequestContext:
        """The command's request context, as the API builds it: the key, the correlation id,
        the form's Idempotency-Key and the keyed hash of what the form asks."""
        digest = request_hash(
            self.state.settings.secret_bytes,
            self.request.method,
            self.request.url.path,
            orjson.dumps(command.model_dump(mode="json")),
        )
        return RequestContext(
            self.session.key.id, self.correlation_id, check_idempotency_key(idempotency_key), digest
        )


async def _action(
    request: Request, session: PaymentsWriter, state: State, fields: Form, cid: CorrelationId
) -> Action:
    return Action(session, request, state, fields, cid)


PaymentAction = Annotated[Action, Depends(_action)]


def _outcome(result: CommandResult, payment_id: UUID, done: str) -> Response:
    if result.is_error:
        return error_page(result.status_code, str(result.body.get("message", "refused")))
    return RedirectResponse(f"/console/payments/{payment_id}?notice={done}", status_code=303)


@router.post("/payments/{payment_id}/capture")
async def capture(payment_id: UUID, act: PaymentAction) -> Response:
    form = MoneyAction.model_validate(act.fields)
    found = (await act.state.payment_reads.get(payment_id)).payment
    body = CaptureCreate(
        payment_id=payment_id, amount=minor_units(form.amount or "", found.currency)
    )
    result = await act.state.payments.capture(body, act.context(form.idempotency_key, body))
    return _outcome(result, payment_id, "captured")


@router.post("/payments/{payment_id}/void")
async def void(payment_id: UUID, act: PaymentAction) -> Response:
    form = KeyedAction.model_validate(act.fields)
    body = VoidCreate(payment_id=payment_id)
    result = await act.state.payments.void(body, act.context(form.idempotency_key, body))
    return _outcome(result, payment_id, "voided")


@router.post("/payments/{payment_id}/refund")
async def refund(payment_id: UUID, act: PaymentAction) -> Response:
    form = MoneyAction.model_validate(act.fields)
    found = (await act.state.payment_reads.get(payment_id)).payment
    body = RefundCreate(
        payment_id=payment_id,
        amount=minor_units(form.amount or "", found.currency),
        reason=form.reason,
    )
    result = await act.state.payments.refund(body, act.context(form.idempotency_key, body))
    return _outcome(result, payment_id, "refunded")
