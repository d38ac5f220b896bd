"""Ray options of every paygrid actor, in one place.

Actors ask for no CPU: they spend most of their time waiting on PostgreSQL and the gateway, and
a 2-core machine must fit eight shards beside the Serve replicas.
"""

from __future__ import annotations

from typing import Any

NAMESPACE = "paygrid"


def ledger_shard_options(index: int) -> dict[str, Any]:
    return {
        "name": f"ledger-shard-{index}",
        "namespace": NAMESPACE,
        "lifetime": "detached",
        "get_if_exists": True,
        "num_cpus": 0,
        "max_restarts": -1,
        # execute() moves money; a blind retry after a crash could repeat a gateway call that
        # has no idempotency key. Clients retry with their Idempotency-Key instead.
        "max_task_retries": 0,
        "max_concurrency": 1000,
    }


def webhook_dispatcher_options(index: int) -> dict[str, Any]:
    return {
        "name": f"webhook-dispatcher-{index}",
        "namespace": NAMESPACE,
        "lifetime": "detached",
        "get_if_exists": True,
        "num_cpus": 0,
        "max_restarts": -1,
        "max_concurrency": 1000,
    }


def job_scheduler_options(index: int) -> dict[str, Any]:
    return {
        "name": f"job-scheduler-{index}",
        "namespace": NAMESPACE,
        "lifetime": "detached",
        "get_if_exists": True,
        "num_cpus": 0,
        "max_restarts": -1,
        "max_concurrency": 1000,
    }
