"""The one place errors become HTTP: by class, into the error envelope. Validation errors name
the field; no handler ever echoes the rejected input (it may be a card number)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from engine.errors import PaygridError
from serve_app.middleware import correlation_id
from serve_app.responses import error

log = logging.getLogger("paygrid.api")

_LOCATIONS = {"body", "query", "path", "header"}
_UNION_TAGS = {"card", "token", "bank", "wallet", "saved"}
_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}


def _param(loc: tuple[Any, ...], message: str) -> tuple[str | None, str]:
    parts = [str(p) for p in loc]
    if parts and parts[0] in _LOCATIONS:
        parts = parts[1:]
    # Model-level checks name their field as "field: message".
    head, sep, rest = message.partition(": ")
    if sep and head.replace("_", "").isalnum() and head.islower():
        parts.append(head)
        message = rest
    # Discriminated unions put the tag in the path: payment_method.card.number → .number,
    # and card.number → number where the body itself is the union (a saved payment method).
    parts = [
        p
        for i, p in enumerate(parts)
        if not (
            p in _UNION_TAGS and (parts[i - 1] == "payment_method" if i > 0 else len(parts) > 1)
        )
    ]
    return (".".join(parts) or None), message


def validation_body(exc: RequestValidationError) -> dict[str, Any]:
    first = exc.errors()[0]
    kind = first.get("type", "")
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    if kind == "json_invalid":
        return {
            "type": "invalid_request_error",
            "code": "invalid_json",
            "message": "the request body is not valid JSON",
        }
    param, message = _param(tuple(first.get("loc", ())), message)
    code = {"missing": "parameter_missing", "extra_forbidden": "parameter_unknown"}.get(
        kind, "parameter_invalid"
    )
    if kind == "missing" and param is None:
        message = "a JSON request body is required"
    body: dict[str, Any] = {"type": "invalid_request_error", "code": code, "message": message}
    if param is not None:
        body["param"] = param
        body["message"] = f"{param}: {message}"
    return body


def install(app: FastAPI) -> None:
    """Register the handlers on `app`."""

    async def paygrid_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PaygridError)
        return error(exc.to_dict(), exc.http_status, correlation_id(request.scope))

    async def invalid(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return error(validation_body(exc), 400, correlation_id(request.scope))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return error(
            {"type": "invalid_request_error", "code": code, "message": str(exc.detail)},
            exc.status_code,
            correlation_id(request.scope),
        )

    async def unexpected(request: Request, exc: Exception) -> Response:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        # Runs outside the correlation middleware, so it sets the header itself.
        cid = correlation_id(request.scope)
        return error(
            {
                "type": "api_error",
                "code": "internal_error",
                "message": "an internal error occurred",
            },
            500,
            cid,
            {"X-Correlation-ID": cid},
        )

    app.add_exception_handler(PaygridError, paygrid_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)
