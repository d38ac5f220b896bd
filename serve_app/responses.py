"""The one envelope every answer wears, rendered with orjson."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from engine.payments.commands import CommandResult


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def ok(
    data: Any, correlation_id: str, status_code: int = 200, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"success": True, "data": data, "correlation_id": correlation_id},
        status_code=status_code,
        headers=headers,
    )


def page(items: list[Any], has_more: bool, correlation_id: str) -> JSONResponse:
    return JSONResponse(
        {"success": True, "data": items, "has_more": has_more, "correlation_id": correlation_id}
    )


# A 503 is always worth retrying, and soon: clients and proxies read this.
RETRY_AFTER_S = "1"


def error(
    body: dict[str, Any],
    status_code: int,
    correlation_id: str,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """The error envelope; a 503 carries `Retry-After`."""
    if status_code == 503:
        headers = {**(headers or {}), "Retry-After": RETRY_AFTER_S}
    return JSONResponse(
        {"success": False, "error": body, "correlation_id": correlation_id},
        status_code=status_code,
        headers=headers,
    )


def from_result(result: CommandResult, correlation_id: str) -> JSONResponse:
    """A shard's answer as HTTP; replays say so in `Idempotent-Replayed`."""
    headers = {"Idempotent-Replayed": "true"} if result.replayed else None
    if result.is_error:
        return error(result.body, result.status_code, correlation_id, headers)
    return ok(result.body, correlation_id, result.status_code, headers)
