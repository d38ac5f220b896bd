"""Customers created on their own (the seed's `/api/database/customers`), their PII sealed at
rest."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter
from starlette.responses import Response

from engine.customers.models import Consent, CustomerRecord, Profile
from engine.principal import Principal
from schema.api.common import ERROR_RESPONSES, Envelope
from schema.api.customers import CustomerPublic, CustomerRecordCreate
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


@router.get("/{customer_id}", operation_id="retrieve_customer", response_model=CustomerEnvelope)
async def retrieve(
    customer_id: UUID, key: CustomersKey, state: State, cid: CorrelationId
) -> Response:
    return responses.ok((await state.customers.get(customer_id)).public(), cid)
