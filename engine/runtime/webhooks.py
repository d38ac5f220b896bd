"""Builds what webhook delivery and the queue and event APIs run on: an HTTP session, the retry
policy, the dispatcher, and the endpoint, delivery, event and queue services."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import aiohttp

from engine.config import Settings
from engine.db.database import Database
from engine.events.service import EventService
from engine.keys.keyring import Keyring
from engine.metrics.recorder import NO_METRICS, Metrics
from engine.queueing.policy import RetryPolicy
from engine.queueing.service import QueueService
from engine.queueing.settings import webhook_queue_settings
from engine.scheduler.queue import JOBS
from engine.tracing import TraceOrigins
from engine.webhooks.deliveries import DeliveryService
from engine.webhooks.delivery import Deliverer
from engine.webhooks.dispatcher import Dispatcher, open_dispatcher
from engine.webhooks.endpoints import EndpointService
from engine.webhooks.queue import DELIVERIES
from engine.webhooks.secrets import WebhookSecrets
from engine.webhooks.urls import GuardedResolver


@dataclass(frozen=True, slots=True)
class WebhookRuntime:
    session: aiohttp.ClientSession
    policy: RetryPolicy
    dispatcher: Dispatcher
    endpoints: EndpointService
    deliveries: DeliveryService
    events: EventService
    queues: QueueService

    async def close(self) -> None:
        """Close the HTTP session; the database belongs to the caller."""
        await self.session.close()


def open_webhook_runtime(
    settings: Settings,
    db: Database,
    *,
    metrics: Metrics = NO_METRICS,
    origins: TraceOrigins | None = None,
) -> WebhookRuntime:
    """Must run inside the event loop that will use it (aiohttp binds its session there).
    `origins`, when traced, links each webhook attempt to the request that caused its event."""
    # No pool limits: the dispatcher bounds concurrency per endpoint itself, and a request
    # waiting for a pooled connection would count against its receiver's timeout. Addresses
    # are checked again at connect time (DNS rebinding).
    connector = aiohttp.TCPConnector(
        limit=0,
        limit_per_host=0,
        resolver=GuardedResolver(allow_private=settings.webhook_allow_private),
    )
    session = aiohttp.ClientSession(connector=connector)
    queue = webhook_queue_settings(settings)
    secrets = WebhookSecrets(Keyring.from_settings(settings))
    dispatcher = open_dispatcher(
        db,
        Deliverer(session, timeout_s=settings.webhook_timeout_s, origins=origins),
        secrets,
        queue,
        disable_after=timedelta(hours=settings.webhook_disable_after_h),
        metrics=metrics,
    )
    endpoints = EndpointService(
        db,
        dispatcher,
        secrets,
        allow_private=settings.webhook_allow_private,
        rotation_grace=timedelta(hours=settings.webhook_secret_grace_h),
    )
    return WebhookRuntime(
        session,
        queue.policy,
        dispatcher,
        endpoints,
        DeliveryService(db),
        EventService(db),
        QueueService(db, (DELIVERIES, JOBS)),
    )
