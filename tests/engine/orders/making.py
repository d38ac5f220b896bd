"""Creating orders in engine tests: through the service's one way in (a request context, an
answer), read back as the domain's order."""

from __future__ import annotations

from uuid import UUID

from engine.orders.models import NewOrder, Order
from engine.orders.service import OrderService
from engine.payments.commands import RequestContext
from engine.principal import Principal


def context(
    who: Principal, idempotency_key: str | None = None, digest: bytes = b""
) -> RequestContext:
    """The request context of `who`, optionally under an Idempotency-Key with a request hash."""
    assert who.api_key_id is not None
    assert who.correlation_id is not None
    return RequestContext(who.api_key_id, who.correlation_id, idempotency_key, digest)


async def create_order(orders: OrderService, new: NewOrder, who: Principal) -> Order:
    """Create `new` as `who` (201 expected) and read it back."""
    result = await orders.create(new, context(who))
    assert result.status_code == 201, result.body
    order, _ = await orders.get(UUID(result.body["id"]))
    return order
