"""The component checks only a Ray process can make: the cluster's nodes, the API replicas,
and the actors (ledger shards, webhook dispatchers, job schedulers) answering a ping. Each
answers counts, never a node's address or name."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import ray
from ray import serve

from actors.fleet import Handle
from engine.health.checks import Check, quorum
from engine.health.report import Probe
from schema.states import HealthStatus


def ray_cluster_check() -> Check:
    """The cluster's nodes alive, from Ray's control store (a blocking call: in a thread)."""

    async def probe() -> Probe:
        nodes: list[dict[str, Any]] = await asyncio.to_thread(ray.nodes)
        alive = sum(1 for n in nodes if n["Alive"])
        return Probe(
            HealthStatus.OK if alive else HealthStatus.DOWN,
            {"nodes_alive": alive, "nodes_dead": len(nodes) - alive},
        )

    return Check("ray_cluster", probe)


def serve_replicas_check(deployment: str) -> Check:
    """The API deployment's replicas running, from the Serve controller."""

    async def probe() -> Probe:
        status = await asyncio.to_thread(serve.status)
        found = [
            d
            for app in status.applications.values()
            for name, d in app.deployments.items()
            if name == deployment
        ]
        running = sum(
            n for d in found for state, n in d.replica_states.items() if state == "RUNNING"
        )
        healthy = all(d.status == "HEALTHY" for d in found)
        if not running:
            return Probe(HealthStatus.DOWN, {"running": 0})
        return Probe(HealthStatus.OK if healthy else HealthStatus.DEGRADED, {"running": running})

    return Check("serve_replicas", probe)


def actors_check(
    name: str, handles: Sequence[Handle], *, timeout_s: float, on_failure: HealthStatus
) -> Check:
    """How many of `handles` answer a ping within `timeout_s`."""

    async def one(handle: Handle) -> bool:
        try:
            await asyncio.wait_for(handle.ping.remote(), timeout_s)
        except Exception:  # noqa: BLE001 - an actor that does not answer is counted, not raised
            return False
        return True

    async def probe() -> Probe:
        answers = await asyncio.gather(*(one(h) for h in handles))
        return quorum(sum(answers), len(handles))

    return Check(name, probe, on_failure=on_failure)


def replica_checks(
    deployment: str,
    *,
    shards: Sequence[Handle],
    dispatchers: Sequence[Handle],
    schedulers: Sequence[Handle],
    timeout_s: float,
) -> list[Check]:
    """The Ray side of an API replica's health. Without any ledger shard no money moves, so
    their absence is `down`; dispatchers and schedulers only delay work that waits durably."""
    # Each ping gets most of the probe's time, so slow actors are counted rather than the whole
    # probe timing out.
    ping_s = timeout_s * 0.8
    return [
        ray_cluster_check(),
        serve_replicas_check(deployment),
        actors_check("ledger_shards", shards, timeout_s=ping_s, on_failure=HealthStatus.DOWN),
        actors_check(
            "webhook_dispatchers", dispatchers, timeout_s=ping_s, on_failure=HealthStatus.DEGRADED
        ),
        actors_check("scheduler", schedulers, timeout_s=ping_s, on_failure=HealthStatus.DEGRADED),
    ]
