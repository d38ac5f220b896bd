"""The operator console under `/console`: server-rendered pages (Jinja2) over the same engine
services as the API, with a few lines of plain JavaScript on top. Every asset is served from
here; nothing is fetched from elsewhere and nothing is built."""

from __future__ import annotations

from fastapi import APIRouter

from serve_app.console import (
    access,
    alerts,
    assets,
    customers,
    overview,
    payments,
    queues,
    subscriptions,
    webhooks,
)

router = APIRouter(include_in_schema=False)
for part in (
    access.router,
    assets.router,
    overview.router,
    payments.router,
    customers.router,
    subscriptions.router,
    webhooks.router,
    queues.router,
    alerts.router,
):
    router.include_router(part, prefix="/console")
