"""Customers in the console (scope `customers`, as in the API): finding customers by email
through the same blind index the API's lookup uses, one customer's profile and ledger
balances, downloading its export, and erasing it after a confirmation step, through the same
`CustomerService`, `LedgerReads` and `PrivacyService` as the API. Every profile shown is
audited as a read, every export as an export, exactly as through the API."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import orjson
from fastapi import APIRouter, Query
from starlette.responses import RedirectResponse, Response

from engine.auth.keys import Scope
from engine.customers.models import Customer
from engine.principal import Principal
from serve_app.console.forms import CustomerSearch, next_page
from serve_app.console.pages import ConsoleRoute, page
from serve_app.console.session import CustomersOperator, Form
from serve_app.deps import CorrelationId, State

router = APIRouter(route_class=ConsoleRoute)

PAGE_SIZE = 25
# What the operator types on the confirmation page: a deliberate act, not a stray click.
CONFIRM_WORD = "ERASE"
NOTICES = {"erased": "Erased: the customer's data keys are destroyed; its payments stay."}


@router.get("/customers")
async def customers(
    session: CustomersOperator,
    state: State,
    search: Annotated[CustomerSearch, Query()],
    cid: CorrelationId,
) -> Response:
    found: list[Customer] = []
    more = False
    if search.email is not None:
        found, more = await state.customers.find_by_email(
            search.email,
            Principal(session.key.id, cid),
            limit=PAGE_SIZE,
            starting_after=search.starting_after,
        )
    last = found[-1].id if found else None
    return page(
        session,
        "customers.html",
        customers=found,
        search=search,
        next_page=next_page(search, more, last),
    )


@router.get("/customers/{customer_id}")
async def customer(
    customer_id: UUID,
    session: CustomersOperator,
    state: State,
    cid: CorrelationId,
    notice: str | None = None,
) -> Response:
    found = await state.customers.get(customer_id, Principal(session.key.id, cid))
    # Balances are the payments:read scope's, as in the API's ledger endpoint.
    balances = None
    if session.key.allows(Scope.PAYMENTS_READ):
        balances = await state.ledgers.summary(customer_id)
    return page(
        session,
        "customer.html",
        customer=found,
        balances=balances,
        notice=NOTICES.get(notice or ""),
    )


@router.post("/customers/{customer_id}/export")
async def export(
    customer_id: UUID, session: CustomersOperator, state: State, cid: CorrelationId
) -> Response:
    """The API's export document, as a file to save (audited as an export)."""
    document = await state.privacy.export(customer_id, Principal(session.key.id, cid))
    return Response(
        orjson.dumps(document, option=orjson.OPT_INDENT_2),
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="customer-{customer_id}.json"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.get("/customers/{customer_id}/erase")
async def confirm_erase(
    customer_id: UUID, session: CustomersOperator, state: State, cid: CorrelationId
) -> Response:
    found = await state.customers.get(customer_id, Principal(session.key.id, cid))
    return page(session, "erase.html", customer=found, confirm_word=CONFIRM_WORD, mistyped=False)


@router.post("/customers/{customer_id}/erase")
async def erase(
    customer_id: UUID,
    session: CustomersOperator,
    state: State,
    fields: Form,
    cid: CorrelationId,
) -> Response:
    """Erase once the confirmation word is typed; the API's 409 (a live subscription, a
    payment in flight) comes back as an error page with its message."""
    principal = Principal(session.key.id, cid)
    if fields.get("confirm", "").strip() != CONFIRM_WORD:
        found = await state.customers.get(customer_id, principal)
        return page(
            session,
            "erase.html",
            status_code=400,
            customer=found,
            confirm_word=CONFIRM_WORD,
            mistyped=True,
        )
    await state.privacy.erase(customer_id, principal)
    return RedirectResponse(f"/console/customers/{customer_id}?notice=erased", status_code=303)
