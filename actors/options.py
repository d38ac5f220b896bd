"""Ray options of every paygrid actor, in one place.

Actors ask for no CPU: they spend most of their time waiting on PostgreSQL, gateways and
receivers, and a 2-core machine must fit them all beside the Serve replicas. All are named,
detached (they outlive the Serve app that made them) and restarted without limit.
"""

from __future__ import annotations

from typing import Any

NAMESPACE = "paygrid"


def _detached(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": NAMESPACE,
        "lifetime": "detached",
        "get_if_exists": True,
        "num_cpus": 0,
        "max_restarts": -1,
        "max_concurrency": 1000,
    }


def ledger_shard_options(index: int) -> dict[str, Any]:
    # execute() moves money; a blind retry after a crash could repeat a gateway call that has
    # no idempotency key. Clients retry with their Idempotency-Key instead.
    return {**_detached(f"ledger-shard-{index}"), "max_task_retries": 0}


def webhook_dispatcher_options(index: int) -> dict[str, Any]:
    return _detached(f"webhook-dispatcher-{index}")


def job_scheduler_options(index: int) -> dict[str, Any]:
    return _detached(f"job-scheduler-{index}")
