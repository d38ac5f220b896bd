"""Builds what webhook delivery runs on: an HTTP session, the retry policy, the dispatcher and
the endpoint service."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import aiohttp
import asyncpg

from engine.config import Settings
from engine.webhooks.delivery import Deliverer
from engine.webhooks.dispatcher import Dispatcher
from engine.webhooks.endpoints import EndpointService
from engine.webhooks.policy import RetryPolicy
from engine.webhooks.repository import WebhookRepository
from engine.webhooks.urls import GuardedResolver


@dataclass(frozen=True, slots=True)
class WebhookRuntime:
    session: aiohttp.ClientSession
    policy: RetryPolicy
    dispatcher: Dispatcher
    endpoints: EndpointService
    repository: WebhookRepository

    async def close(self) -> None:
        await self.session.close()


def policy_of(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        schedule_s=settings.webhook_retry_schedule_s,
        jitter=settings.webhook_jitter,
        max_delay_s=settings.webhook_max_delay_s,
    )


def open_webhook_runtime(settings: Settings, pool: asyncpg.Pool) -> WebhookRuntime:
    """Must run inside the event loop that will use it (aiohttp binds its session there)."""
    # No pool limits: the dispatcher bounds concurrency per endpoint itself, and a request
    # waiting for a pooled connection would count against its receiver's timeout. Addresses
    # are checked again at connect time (DNS rebinding).
    connector = aiohttp.TCPConnector(
        limit=0,
        limit_per_host=0,
        resolver=GuardedResolver(allow_private=settings.webhook_allow_private),
    )
    session = aiohttp.ClientSession(connector=connector)
    policy = policy_of(settings)
    dispatcher = Dispatcher(
        pool,
        Deliverer(session, timeout_s=settings.webhook_timeout_s),
        policy,
        lease_s=settings.webhook_timeout_s * 2 + 5,
        per_endpoint=settings.webhook_endpoint_concurrency,
        disable_after=timedelta(hours=settings.webhook_disable_after_h),
    )
    endpoints = EndpointService(
        pool,
        dispatcher,
        allow_private=settings.webhook_allow_private,
        rotation_grace=timedelta(hours=settings.webhook_secret_grace_h),
    )
    return WebhookRuntime(session, policy, dispatcher, endpoints, WebhookRepository())
