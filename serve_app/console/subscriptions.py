"""Subscriptions and their invoices in the console (scope `subscriptions`, as in the API): the
list (status and customer filters, cursor paging), one subscription with its invoices and the
changes its state allows (pause, resume, cancel now or at the period's end), and one invoice,
through the same `SubscriptionService` as `/api/subscriptions` and `/api/invoices`."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from starlette.responses import RedirectResponse, Response

from engine.principal import Principal
from engine.subscriptions.states import LIVE, TRANSITIONS, SubscriptionStatus
from serve_app.console.forms import InvoicePage, SubscriptionFilters, next_page
from serve_app.console.pages import ConsoleRoute, page
from serve_app.console.session import Form, SubscriptionsOperator
from serve_app.deps import CorrelationId, State

router = APIRouter(route_class=ConsoleRoute)

PAGE_SIZE = 25
NOTICES = {
    "paused": "Paused: nothing is charged until it resumes.",
    "resumed": "Resumed: a new period started and was billed.",
    "cancelled": "Cancelled.",
    "cancelling": "It will be cancelled at the end of the current period.",
}


def actions(status: SubscriptionStatus, cancel_at_period_end: bool) -> list[str]:
    """What the subscription's state allows, by the transition table the service enforces."""
    if status not in LIVE:
        return []
    allowed = []
    if SubscriptionStatus.PAUSED in TRANSITIONS[status]:
        allowed.append("pause")
    if status is SubscriptionStatus.PAUSED:
        allowed.append("resume")
    allowed.append("cancel")
    if not cancel_at_period_end:
        allowed.append("cancel_at_period_end")
    return allowed


@router.get("/subscriptions")
async def subscriptions(
    session: SubscriptionsOperator,
    state: State,
    filters: Annotated[SubscriptionFilters, Query()],
) -> Response:
    found, more = await state.subscriptions.page(limit=PAGE_SIZE, **filters.model_dump())
    last = UUID(found[-1]["id"]) if found else None
    return page(
        session,
        "subscriptions.html",
        subscriptions=found,
        filters=filters,
        statuses=list(SubscriptionStatus),
        next_page=next_page(filters, more, last),
    )


@router.get("/subscriptions/{subscription_id}")
async def subscription(
    subscription_id: UUID,
    session: SubscriptionsOperator,
    state: State,
    paging: Annotated[InvoicePage, Query()],
    notice: str | None = None,
) -> Response:
    sub, latest = await state.subscriptions.get(subscription_id)
    invoices, more = await state.subscriptions.invoices(
        subscription_id, limit=PAGE_SIZE, starting_after=paging.starting_after
    )
    last = invoices[-1].id if invoices else None
    return page(
        session,
        "subscription.html",
        subscription=sub.public(latest),
        invoices=[i.public() for i in invoices],
        actions=actions(sub.status, sub.cancel_at_period_end),
        next_page=next_page(paging, more, last),
        notice=NOTICES.get(notice or ""),
    )


@router.get("/invoices/{invoice_id}")
async def invoice(invoice_id: UUID, session: SubscriptionsOperator, state: State) -> Response:
    found = await state.subscriptions.invoice(invoice_id)
    return page(session, "invoice.html", invoice=found.public())


def _done(subscription_id: UUID, notice: str) -> Response:
    return RedirectResponse(
        f"/console/subscriptions/{subscription_id}?notice={notice}", status_code=303
    )


@router.post("/subscriptions/{subscription_id}/pause")
async def pause(
    subscription_id: UUID, session: SubscriptionsOperator, state: State, cid: CorrelationId
) -> Response:
    principal = Principal(session.key.id, cid)
    await state.subscriptions.pause(subscription_id, resume_at=None, principal=principal)
    return _done(subscription_id, "paused")


@router.post("/subscriptions/{subscription_id}/resume")
async def resume(
    subscription_id: UUID, session: SubscriptionsOperator, state: State, cid: CorrelationId
) -> Response:
    await state.subscriptions.resume(subscription_id, Principal(session.key.id, cid))
    return _done(subscription_id, "resumed")


@router.post("/subscriptions/{subscription_id}/cancel")
async def cancel(
    subscription_id: UUID,
    session: SubscriptionsOperator,
    state: State,
    fields: Form,
    cid: CorrelationId,
) -> Response:
    """Cancel now, or (`when=period_end`) at the end of the current period, as the API's
    DELETE with `at_period_end`."""
    at_period_end = fields.get("when") == "period_end"
    await state.subscriptions.cancel(
        subscription_id, at_period_end=at_period_end, principal=Principal(session.key.id, cid)
    )
    return _done(subscription_id, "cancelling" if at_period_end else "cancelled")
