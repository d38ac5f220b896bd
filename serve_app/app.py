"""The FastAPI app and the Ray Serve deployment that serves it.

`build(settings)` returns the bound Serve application; `app_builder(args)` is the entry point a
Serve config file names (`import_path: serve_app.app:app_builder`).
"""

from __future__ import annotations

import uuid
from typing import Any

import ray
from fastapi import FastAPI
from ray import serve
from ray.serve import Application

from actors import fleet
from engine.config import Settings
from engine.inflight.tracker import InFlight
from engine.logs.setup import configure_logging
from engine.metrics.recorder import NO_METRICS, Metrics
from engine.tracing.setup import configure_tracing, enabled, shutdown_tracing
from serve_app import docs, errors, openapi
from serve_app.console import router as console
from serve_app.hardening import harden
from serve_app.middleware import CorrelationMiddleware
from serve_app.request_metrics import RequestMetricsMiddleware
from serve_app.routes import (
    api_keys,
    audit_logs,
    compliance,
    customers,
    database_admin,
    database_customers,
    database_orders,
    database_transactions,
    events,
    health,
    invoices,
    payment_methods,
    payments,
    plans,
    queues,
    reports,
    subscriptions,
    test_clocks,
    tracing,
    webhooks,
)
from serve_app.routes import metrics as metrics_routes
from serve_app.state import open_state
from serve_app.tracing import TracingMiddleware

DEPLOYMENT_NAME = "PaygridAPI"


def create_app(
    settings: Settings, metrics: Metrics = NO_METRICS, inflight: InFlight | None = None
) -> FastAPI:
    """The REST API, without state (the deployment attaches it on start), recording its
    requests in `metrics` and, while they run, in `inflight`."""
    app = FastAPI(
        title="paygrid",
        version="0.1.0",
        summary="Self-hosted payment processing",
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    errors.install(app)
    docs.install(app)
    openapi.install(app, max_amount=settings.max_amount)
    harden(app, settings)
    app.add_middleware(CorrelationMiddleware)
    app.add_middleware(RequestMetricsMiddleware, metrics=metrics, inflight=inflight)
    if enabled():
        app.add_middleware(TracingMiddleware)
    for router in (
        health.router,
        metrics_routes.router,
        tracing.router,
        payments.money,
        payments.router,
        payment_methods.router,
        customers.router,
        database_customers.router,
        database_orders.router,
        database_transactions.router,
        database_admin.router,
        audit_logs.router,
        compliance.router,
        webhooks.router,
        plans.router,
        subscriptions.router,
        invoices.router,
        queues.router,
        test_clocks.router,
        events.router,
        reports.router,
        api_keys.router,
        console,
    ):
        app.include_router(router)
    return app


@serve.deployment(
    name=DEPLOYMENT_NAME,
    ray_actor_options={"num_cpus": 0},
    logging_config={"enable_access_log": False},
    health_check_period_s=5,
)
@serve.ingress()
class PaygridAPI:
    """One API replica: authenticates, validates and routes money commands to shards."""

    # Ray awaits an async __init__ before the first call (mypy expects a sync one).
    async def __init__(self, settings: Settings) -> None:  # type: ignore[misc]
        process = f"api-{uuid.uuid4().hex[:12]}"
        configure_logging(component="api", process=process)
        configure_tracing(settings, component="api", process=process)
        self._state = await open_state(settings, DEPLOYMENT_NAME, process=process)

    def __serve_build_asgi_app__(self) -> FastAPI:
        # Built in the replica, after __init__, so the app holds this replica's state.
        app = create_app(self._state.settings, self._state.metrics.registry, self._state.inflight)
        app.state.paygrid = self._state
        return app

    async def __del__(self) -> None:
        await self._state.close()
        shutdown_tracing()


def cluster_cpus() -> int:
    """The CPUs of the Ray cluster this process is connected to."""
    return int(ray.cluster_resources().get("CPU", 1))  # type: ignore[no-untyped-call]


def fit(settings: Settings) -> Settings:
    """`settings` with the counts left at 0 derived from the cluster's CPUs."""
    return settings.fitted(cluster_cpus())


def build(settings: Settings) -> Application:
    """The Serve application for fitted `settings`, with a fixed replica count."""
    if not (settings.replicas and settings.ledger_shards and settings.webhook_dispatchers):
        raise ValueError("build() takes fitted settings: call fit(settings) first")
    deployment = PaygridAPI.options(  # type: ignore[attr-defined]
        num_replicas=settings.replicas,
        max_ongoing_requests=settings.max_ongoing_requests,
    )
    return deployment.bind(settings)  # type: ignore[no-any-return]


def app_builder(args: dict[str, Any]) -> Application:
    """Serve config entry point: settings from the environment, overridden by `args`, with the
    counts left at 0 fitted to the cluster. Replica counts and autoscaling come from the config
    file, not from here. Like `paygrid serve`, it first retires the running actors of another
    release or other settings, so that `serve deploy` of a new release replaces them too."""
    settings = fit(Settings(**args))
    fleet.retire_stale(settings)
    return PaygridAPI.bind(settings)  # type: ignore[attr-defined,no-any-return]
