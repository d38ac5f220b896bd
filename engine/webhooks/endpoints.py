"""Register, change, rotate and remove webhook endpoints, and send one a test event."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from engine.db.database import Database
from engine.errors import NotFound, StateError
from engine.events.outbox import Event, Outbox
from engine.principal import Principal
from engine.webhooks.delivery import Attempt
from engine.webhooks.dispatcher import Dispatcher
from engine.webhooks.models import Endpoint
from engine.webhooks.repository import WebhookRepository
from engine.webhooks.secrets import CURRENT, PREVIOUS, WebhookSecrets
from engine.webhooks.signing import new_secret
from engine.webhooks.states import EndpointStatus, can_transition
from engine.webhooks.urls import check_url

_TEST_EVENT = "webhook.test"


class EndpointService:
    def __init__(
        self,
        db: Database,
        dispatcher: Dispatcher,
        secrets: WebhookSecrets,
        *,
        allow_private: bool,
        rotation_grace: timedelta = timedelta(hours=24),
    ) -> None:
        self._db = db
        self._dispatcher = dispatcher
        self._secrets = secrets
        self._allow_private = allow_private
        self._rotation_grace = rotation_grace
        self._repository = WebhookRepository()
        self._outbox = Outbox()

    async def create(
        self,
        *,
        url: str,
        enabled_events: list[str],
        description: str | None,
        metadata: dict[str, str],
        principal: Principal,
    ) -> Endpoint:
        """A new endpoint with a fresh signing secret (the only time it is shown)."""
        await check_url(url, allow_private=self._allow_private)
        endpoint_id, secret = uuid4(), new_secret()
        async with self._db.transaction() as conn:
            sealed = await self._secrets.seal(
                conn, endpoint_id=endpoint_id, secret=secret, column=CURRENT
            )
            endpoint = await self._repository.insert_endpoint(
                conn,
                endpoint_id=endpoint_id,
                url=url,
                enabled_events=enabled_events,
                description=description,
                metadata=metadata,
                secret_sealed=sealed,
                principal=principal,
            )
        return replace(endpoint, shown_secret=secret)

    async def get(self, endpoint_id: UUID) -> Endpoint:
        async with self._db.connection() as conn:
            endpoint = await self._repository.endpoint(conn, endpoint_id=endpoint_id)
        if endpoint is None:
            raise NotFound(f"no webhook endpoint {endpoint_id}", param="id")
        return endpoint

    async def page(self, *, limit: int, starting_after: UUID | None) -> tuple[list[Endpoint], bool]:
        async with self._db.connection() as conn:
            return await self._repository.endpoints(
                conn, limit=limit, starting_after=starting_after
            )

    async def update(
        self, endpoint_id: UUID, changes: dict[str, Any], principal: Principal
    ) -> Endpoint:
        if "url" in changes:
            await check_url(changes["url"], allow_private=self._allow_private)
        target = changes.get("status")
        if target is not None:
            current = (await self.get(endpoint_id)).status
            if target != current and not can_transition(current, EndpointStatus(target)):
                raise StateError(
                    f"an endpoint cannot go from {current} to {target}",
                    code="endpoint_state_invalid",
                    param="status",
                )
        if target == EndpointStatus.ENABLED:
            changes = {**changes, "disabled_reason": None, "failing_since": None}
        return await self._change(endpoint_id, changes, principal)

    async def delete(self, endpoint_id: UUID, principal: Principal) -> Endpoint:
        """Stop all deliveries to the endpoint: the pending ones fail; its history stays."""
        async with self._db.transaction() as conn:
            # Deliveries first, then the endpoint: the order a dispatcher's settle locks them.
            await self._repository.close_pending(
                conn, endpoint_id=endpoint_id, reason="endpoint deleted"
            )
            endpoint = await self._repository.update_endpoint(
                conn,
                endpoint_id=endpoint_id,
                changes={"status": EndpointStatus.DELETED},
                principal=principal,
            )
            if endpoint is None:
                raise NotFound(f"no webhook endpoint {endpoint_id}", param="id")
        return endpoint

    async def rotate(self, endpoint_id: UUID, principal: Principal) -> Endpoint:
        """A new secret (shown this once); the old one keeps signing beside it for the grace
        period."""
        current = await self.get(endpoint_id)
        secret = new_secret()
        async with self._db.transaction() as conn:
            old = await self._secrets.current(conn, current)
            changes = {
                "secret_sealed": await self._secrets.seal(
                    conn, endpoint_id=endpoint_id, secret=secret, column=CURRENT
                ),
                "previous_secret_sealed": await self._secrets.seal(
                    conn, endpoint_id=endpoint_id, secret=old, column=PREVIOUS
                ),
                "previous_secret_until": datetime.now(UTC) + self._rotation_grace,
            }
            rotated = await self._repository.update_endpoint(
                conn, endpoint_id=endpoint_id, changes=changes, principal=principal
            )
        if rotated is None:
            raise NotFound(f"no webhook endpoint {endpoint_id}", param="id")
        return replace(rotated, shown_secret=secret)

    async def send_test(self, endpoint_id: UUID, principal: Principal) -> tuple[UUID, Attempt]:
        """Send a `webhook.test` event to this endpoint only, now, and report the attempt.
        The delivery is claimed in the transaction that creates it, so no dispatcher races
        it; if it fails it is retried like any other."""
        endpoint = await self.get(endpoint_id)
        if endpoint.status is not EndpointStatus.ENABLED:
            raise StateError(
                f"the endpoint is {endpoint.status}; enable it before testing it",
                code="endpoint_disabled",
                param="id",
            )
        async with self._db.transaction() as conn:
            await self._outbox.add(
                conn,
                events=[
                    Event(
                        _TEST_EVENT,
                        "webhook_endpoint",
                        endpoint.id,
                        {"id": str(endpoint.id), "url": endpoint.url, "test": True},
                        principal.api_key_id,
                        principal.correlation_id,
                        target_endpoint_id=endpoint.id,
                    )
                ],
            )
            delivery_id = await self._repository.newest_pending(
                conn, endpoint_id=endpoint.id, event_type=_TEST_EVENT
            )
            assert delivery_id is not None  # the fan-out trigger made it with the event
            lease = await self._dispatcher.queue.lease(
                conn, item_id=delivery_id, lease_s=self._dispatcher.lease_s
            )
            claimed = await self._repository.claimed(conn, delivery_ids=[delivery_id])
            signed = await self._secrets.for_delivery(conn, claimed[delivery_id])
        return delivery_id, await self._dispatcher.run_now(lease, signed)

    async def _change(
        self, endpoint_id: UUID, changes: dict[str, Any], principal: Principal
    ) -> Endpoint:
        async with self._db.connection() as conn:
            endpoint = await self._repository.update_endpoint(
                conn, endpoint_id=endpoint_id, changes=changes, principal=principal
            )
        if endpoint is None:
            raise NotFound(f"no webhook endpoint {endpoint_id}", param="id")
        return endpoint
