"""The route class of the money endpoints: the same contract, without FastAPI's dependency
solver on the way in.

A purchase is the hottest request paygrid serves, and a replica profile under load put half of
FastAPI's share of it in `solve_dependencies` (per-request dependency caches, signature walks,
header extraction) for what is, on these routes, one body model and two dependencies. A
`MoneyRoute` serves a well-formed request — a JSON body its model accepts — by calling those
two dependencies and the endpoint directly. Anything else (no or another content type, invalid
JSON, a body the model refuses) goes to FastAPI's own handler, so every error answer is the one
FastAPI gives; the OpenAPI document comes from the same endpoint signature as before. While
the app has dependency overrides, every request takes FastAPI's path, which honours them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from serve_app.deps import CONTEXT_DEPENDENCIES, get_state

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def _is_json(content_type: str | None) -> bool:
    # FastAPI parses application/json and any +json subtype; the fast path takes the form every
    # client sends and leaves the rest (no header, other spellings) to FastAPI.
    if content_type is None:
        return False
    return content_type.partition(";")[0].strip().lower() == "application/json"


class MoneyRoute(APIRoute):
    """For endpoints shaped `(body: Model, ctx: <a request context>, state: State)` only
    (`MoneyContext`, `AdminContext`, … from `deps.request_context`): anything else is refused
    when the route is built, so a new parameter cannot be silently skipped."""

    def get_route_handler(self) -> Handler:
        full = super().get_route_handler()
        dependant = self.dependant
        calls = {d.call: d.name or "" for d in dependant.dependencies}
        contexts = [c for c in CONTEXT_DEPENDENCIES if c in calls]
        plain = (
            dependant.path_params,
            dependant.query_params,
            dependant.header_params,
            dependant.cookie_params,
        )
        if (
            len(dependant.body_params) != 1
            or len(contexts) != 1
            or set(calls) != {contexts[0], get_state}
            or any(plain)
            or self.body_field is None
        ):
            raise TypeError(f"{self.path}: a MoneyRoute takes (body, request context, State) only")
        model = self.body_field.field_info.annotation
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise TypeError(f"{self.path}: a MoneyRoute's body must be one pydantic model")
        endpoint = self.endpoint
        body_name = dependant.body_params[0].name
        context = contexts[0]
        ctx_name, state_name = calls[context], calls[get_state]

        overrides = getattr(self.dependency_overrides_provider, "dependency_overrides", None)

        async def handler(request: Request) -> Response:
            if overrides or not _is_json(request.headers.get("content-type")):
                return await full(request)
            raw = await request.body()
            try:
                body = model.model_validate(json.loads(raw))
            except (ValueError, ValidationError):
                # The body is cached on the request: FastAPI reads it again and answers.
                return await full(request)
            ctx = await context(request, request.headers.get("idempotency-key"))
            state = await get_state(request)
            return await endpoint(**{body_name: body, ctx_name: ctx, state_name: state})  # type: ignore[no-any-return]

        return handler
