"""The OpenAPI document, completed with what the models and routes cannot declare themselves:

- the transport middleware (`serve_app/security.py`) answers any write 413 or 415 before a
  route runs, so every POST, PUT and PATCH documents both, with the one error envelope;
- an amount's upper bound is the deployment's `PAYGRID_MAX_AMOUNT`: each field the models mark
  (`MAX_AMOUNT_MARK`) gets it as its `maximum`."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from schema.api.common import MAX_AMOUNT_MARK, WRITE_RESPONSES

_WRITES = ("post", "put", "patch")


def _error(description: object) -> dict[str, Any]:
    schema = {"$ref": "#/components/schemas/ErrorEnvelope"}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _bound_amounts(node: object, max_amount: int) -> None:
    if isinstance(node, dict):
        if node.pop(MAX_AMOUNT_MARK, None):
            node["maximum"] = max_amount
        for value in node.values():
            _bound_amounts(value, max_amount)
    elif isinstance(node, list):
        for value in node:
            _bound_amounts(value, max_amount)


def install(app: FastAPI, *, max_amount: int) -> None:
    """Make `app.openapi()` return the completed document (built once, as FastAPI does)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = build()
        _bound_amounts(document, max_amount)
        for operations in document["paths"].values():
            for method, operation in operations.items():
                if method in _WRITES:
                    responses = operation.setdefault("responses", {})
                    for status, response in WRITE_RESPONSES.items():
                        responses.setdefault(str(status), _error(response["description"]))
        return document

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override
