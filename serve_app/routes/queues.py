"""Queue management for operators (scope `admin`): health, statistics, placement, pause and
resume, clearing finished jobs."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query
from ray.actor import ActorHandle
from starlette.responses import Response

from engine.principal import Principal
from engine.queueing.models import QueueStats
from engine.queueing.states import ClearableState, QueueName
from schema.api.common import ERROR_RESPONSES, StrictModel
from serve_app import responses
from serve_app.deps import AdminKey, CorrelationId, State

router = APIRouter(prefix="/api/queues", tags=["queues"], responses=ERROR_RESPONSES)

_PING_TIMEOUT_S = 2.0


class QueueChoice(StrictModel):
    queue: QueueName | None = None


async def _placements(handles: list[ActorHandle[Any]]) -> list[dict[str, object] | None]:
    async def one(handle: ActorHandle[Any]) -> dict[str, object] | None:
        try:
            return await asyncio.wait_for(handle.where.remote(), _PING_TIMEOUT_S)
        except Exception:  # noqa: BLE001 - an actor that does not answer is reported, not raised
            return None

    return list(await asyncio.gather(*(one(h) for h in handles)))


def _stats(s: QueueStats) -> dict[str, object]:
    return {
        "queue": s.queue,
        "paused": s.paused,
        "waiting": s.waiting,
        "active": s.active,
        "delayed": s.delayed,
        "completed": s.completed,
        "failed": s.failed,
        "dead": s.dead,
        "oldest_waiting_s": s.oldest_waiting_s,
        "throughput_per_s_last_minute": round(s.throughput_per_s, 2),
    }


@router.get("/health", operation_id="queues_health")
async def health(key: AdminKey, state: State, cid: CorrelationId) -> Response:
    """Healthy when every dispatcher and scheduler answers; paused queues and backlog age are
    reported."""
    stats = await state.webhooks.queues.stats()
    workers = await _placements([*state.dispatchers, *state.schedulers])
    alive = sum(w is not None for w in workers)
    data = {
        "status": "ok" if alive == len(workers) else "degraded",
        "workers": {"alive": alive, "expected": len(workers)},
        "queues": [
            {"queue": s.queue, "paused": s.paused, "oldest_waiting_s": s.oldest_waiting_s}
            for s in stats
        ],
    }
    return responses.ok(data, cid, status_code=200 if data["status"] == "ok" else 503)


@router.get("/stats", operation_id="queues_stats")
async def stats(key: AdminKey, state: State, cid: CorrelationId) -> Response:
    """Per queue: waiting, active, delayed, completed, failed, dead, oldest-waiting age and the
    last minute's throughput."""
    return responses.ok([_stats(s) for s in await state.webhooks.queues.stats()], cid)


@router.get("/info", operation_id="queues_info")
async def info(key: AdminKey, state: State, cid: CorrelationId) -> Response:
    """The queues, the actors that work them and where they run, and the retry policy."""
    return responses.ok(
        {
            "queues": state.webhooks.queues.names,
            "webhook_dispatchers": await _placements(state.dispatchers),
            "job_schedulers": await _placements(state.schedulers),
            "ledger_shards": await _placements(state.shards.handles),
            "retry_policy": state.webhooks.policy.describe(),
            "webhook_timeout_s": state.settings.webhook_timeout_s,
        },
        cid,
    )


@router.post("/pause", operation_id="queues_pause")
async def pause(
    key: AdminKey, state: State, cid: CorrelationId, body: QueueChoice | None = None
) -> Response:
    """Stop handing out jobs (all queues when none is named); jobs wait, nothing is lost."""
    names = await state.webhooks.queues.set_paused(
        (body or QueueChoice()).queue, True, Principal(key.id, cid)
    )
    return responses.ok({"paused": names}, cid)


@router.post("/resume", operation_id="queues_resume")
async def resume(
    key: AdminKey, state: State, cid: CorrelationId, body: QueueChoice | None = None
) -> Response:
    names = await state.webhooks.queues.set_paused(
        (body or QueueChoice()).queue, False, Principal(key.id, cid)
    )
    return responses.ok({"resumed": names}, cid)


@router.delete("/clear", operation_id="queues_clear")
async def clear(
    key: AdminKey,
    state: State,
    cid: CorrelationId,
    queue: Annotated[QueueName, Query()],
    job_state: Annotated[ClearableState, Query(alias="state")],
) -> Response:
    """Delete finished jobs (`completed`, `failed` or `dead`) of a queue; audited."""
    removed = await state.webhooks.queues.clear(queue, job_state, Principal(key.id, cid))
    return responses.ok({"queue": queue, "state": job_state, "removed": removed}, cid)
