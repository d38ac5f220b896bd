"""Queues in the console (scope `admin`, as in the API): depth, age, throughput, and pausing or
resuming one queue through the same `QueueService` as `/api/queues`."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import RedirectResponse, Response

from engine.principal import Principal
from engine.queueing.states import QueueName
from serve_app.console.pages import ConsoleRoute, page
from serve_app.console.session import Admin
from serve_app.deps import CorrelationId, State

router = APIRouter(route_class=ConsoleRoute)

NOTICES = {"paused": "Paused: jobs wait, nothing is lost.", "resumed": "Resumed."}


@router.get("/queues")
async def queues(session: Admin, state: State, notice: str | None = None) -> Response:
    stats = await state.webhooks.queues.stats()
    return page(session, "queues.html", stats=stats, notice=NOTICES.get(notice or ""))


@router.post("/queues/{queue}/pause")
async def pause(queue: QueueName, session: Admin, state: State, cid: CorrelationId) -> Response:
    await state.webhooks.queues.set_paused(queue, True, Principal(session.key.id, cid))
    return RedirectResponse("/console/queues?notice=paused", status_code=303)


@router.post("/queues/{queue}/resume")
async def resume(queue: QueueName, session: Admin, state: State, cid: CorrelationId) -> Response:
    await state.webhooks.queues.set_paused(queue, False, Principal(session.key.id, cid))
    return RedirectResponse("/console/queues?notice=resumed", status_code=303)
