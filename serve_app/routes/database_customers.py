"""Customers (the seed's `/api/database/customers`): create, read, find by email and rectify,
their PII sealed at rest and every read of it audited."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from starlette.responses import Response

from engine.customers.models import Consent, CustomerRecord, Profile, ProfileChange
from engine.principal import Principal
from schema.api.common import ERROR_RESPONSES, Email, Envelope, ListEnvelope, PageLimit
from schema.api.customers import CustomerPublic, CustomerRecordCreate, CustomerUpdate
from serve_app import responses
from serve_app.deps import CorrelationId, CustomersKey, State

router = APIRouter(prefix="/api/database/customers", tags=["customers"], responses=ERROR_RESPONSES)

CustomerEnvelope = Envelope[CustomerPublic]


@router.post("", operation_id="create_customer", response_model=CustomerEnvelope, status_code=201)
async def create(
    body: CustomerRecordCreate, key: CustomersKey, state: State, cid: CorrelationId
) -> Response:
    """Create a customer; `test_clock` (sandbox) puts it on a test clock."""
    address = None if body.address is None else body.address.model_dump(exclude_none=True)
    record = CustomerRecord(
        Profile(body.email, body.first_name, body.last_name, body.phone, address),
        Consent(body.consent.version, body.consent.accepted_at),
        body.metadata,
        body.test_clock,
    )
    created = await state.customers.create(record, Principal(key.id, cid))
    return responses.ok(created.public(), cid, status_code=201)


@router.get("", operation_id="list_customers", response_model=ListEnvelope[CustomerPublic])
async def by_email(
    email: Annotated[Email, Query()],
    key: CustomersKey,
    state: State,
    cid: CorrelationId,
    limit: Annotated[PageLimit, Query()] = 10,
    starting_after: UUID | None = None,
) -> Response:
    """Customers with this email (any case), newest first, found by its blind index; each
    one shown is audited as a read."""
    found, has_more = await state.customers.find_by_email(
        email, Principal(key.id, cid), limit=limit, starting_after=starting_after
    )
    return responses.page([c.public() for c in found], has_more, cid)


@router.get("/{customer_id}", operation_id="retrieve_customer", response_model=CustomerEnvelope)
async def retrieve(
    customer_id: UUID, key: CustomersKey, state: State, cid: CorrelationId
) -> Response:
    """The customer, its profile opened (audited as a read); an erased one's PII is null."""
    found = await state.customers.get(customer_id, Principal(key.id, cid))
    return responses.ok(found.public(), cid)


@router.put("/{customer_id}", operation_id="update_customer", response_model=CustomerEnvelope)
async def rectify(
    customer_id: UUID, body: CustomerUpdate, key: CustomersKey, state: State, cid: CorrelationId
) -> Response:
    """Rectification: the profile fields given replace the customer's, sealed again."""
    given = body.model_fields_set
    address = None if body.address is None else body.address.model_dump(exclude_none=True)
    change = ProfileChange(
        frozenset(given), body.email, body.first_name, body.last_name, body.phone, address
    )
    updated = await state.customers.rectify(customer_id, change, Principal(key.id, cid))
    return responses.ok(updated.public(), cid)
