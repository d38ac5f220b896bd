"""API keys (admin): create (the secret is in that answer only), list, retrieve, revoke, rotate."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter
from starlette.responses import Response

from engine.ratelimit.limits import parse_rate
from schema.api.common import ERROR_RESPONSES, Envelope, ListEnvelope
from schema.api.keys import ApiKeyCreate, ApiKeyCreated, ApiKeyPublic, ApiKeyRotate
from serve_app import responses
from serve_app.deps import AdminKey, CorrelationId, State

router = APIRouter(prefix="/api/keys", tags=["api keys"], responses=ERROR_RESPONSES)

KeyEnvelope = Envelope[ApiKeyPublic]


@router.post(
    "", operation_id="create_api_key", response_model=Envelope[ApiKeyCreated], status_code=201
)
async def create(body: ApiKeyCreate, key: AdminKey, state: State, cid: CorrelationId) -> Response:
    """A new key. Its `secret` is in this answer and nowhere else, ever: store it now."""
    created, secret = await state.keys.create(
        name=body.name,
        scopes=frozenset(body.scopes),
        expires_in_days=body.expires_in_days,
        allowed_networks=body.networks(),
        rate_limit=None if body.rate_limit is None else parse_rate(body.rate_limit),
    )
    return responses.ok({**created.public(), "secret": secret}, cid, status_code=201)


@router.get("", operation_id="list_api_keys", response_model=ListEnvelope[ApiKeyPublic])
async def list_keys(key: AdminKey, state: State, cid: CorrelationId) -> Response:
    """Every key, newest first: prefix, name, scopes, dates, last use; never a secret or hash."""
    return responses.page([k.public() for k in await state.keys.all()], False, cid)


@router.get("/{key_id}", operation_id="retrieve_api_key", response_model=KeyEnvelope)
async def retrieve(key_id: UUID, key: AdminKey, state: State, cid: CorrelationId) -> Response:
    return responses.ok((await state.keys.get(key_id)).public(), cid)


@router.delete("/{key_id}", operation_id="revoke_api_key", response_model=KeyEnvelope)
async def revoke(key_id: UUID, key: AdminKey, state: State, cid: CorrelationId) -> Response:
    """Revoke the key: refused on every replica within a second."""
    return responses.ok((await state.keys.revoke(key_id)).public(), cid)


@router.post(
    "/{key_id}/rotate", operation_id="rotate_api_key", response_model=Envelope[ApiKeyCreated]
)
async def rotate(
    key_id: UUID,
    key: AdminKey,
    state: State,
    cid: CorrelationId,
    body: ApiKeyRotate | None = None,
) -> Response:
    """A new secret for the key, working at once and shown in this answer only; the old one
    keeps working for `grace_period_s` (default 24 h), then never again."""
    grace = None if body is None else body.grace_period_s
    rotated, secret = await state.keys.rotate(key_id, grace_s=grace)
    return responses.ok({**rotated.public(), "secret": secret}, cid)
