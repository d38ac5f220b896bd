"""The transport middleware of the API, wired in one place: limits, content type and security
headers (`serve_app/security.py`), and CORS only when origins are configured."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from engine.config import Settings
from serve_app.client_ip import ClientAddress
from serve_app.security import SecurityMiddleware


def harden(app: FastAPI, settings: Settings) -> None:
    """Add the security middleware to `app` (inside any middleware added after this call)."""
    app.add_middleware(
        SecurityMiddleware,
        max_body_bytes=settings.max_body_bytes,
        clients=ClientAddress(settings.trusted_proxies),
    )
    # Cross-origin requests are off unless origins are listed: browsers then refuse them.
    if settings.cors_allowed_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_allowed_origins),
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type", "Idempotency-Key"],
            expose_headers=[
                "X-Correlation-ID",
                "X-RateLimit-Limit",
                "X-RateLimit-Remaining",
                "X-RateLimit-Reset",
                "Retry-After",
            ],
        )
