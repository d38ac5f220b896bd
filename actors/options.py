"""Ray options of every paygrid actor, in one place.

Actors ask for no CPU: they spend most of their time waiting on PostgreSQL, gateways and
receivers, and a 2-core machine must fit them all beside the Serve replicas. All are named,
detached (they outlive the Serve app that made them) and restarted without limit. They are
dealt over the cluster's nodes rather than packed on the node that created them: round-robin
by index, each asks for its node by label with any node as the fallback (Ray's SPREAD alone is
best-effort and left a node empty in testing, and a soft node affinity was not honoured), so
when a node is lost Ray restarts its actors on the nodes that remain.
"""

from __future__ import annotations

from typing import Any

NAMESPACE = "paygrid"


def _placed(node_id: str | None) -> dict[str, Any]:
    if node_id is None:
        return {"scheduling_strategy": "SPREAD"}
    return {
        "label_selector": {"ray.io/node-id": node_id},
        "fallback_strategy": [{"label_selector": {}}],
    }


def _detached(name: str, node_id: str | None) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": NAMESPACE,
        "lifetime": "detached",
        "get_if_exists": True,
        "num_cpus": 0,
        "max_restarts": -1,
        "max_concurrency": 1000,
        **_placed(node_id),
    }


def ledger_shard_options(index: int, node_id: str | None = None) -> dict[str, Any]:
    # execute() moves money; a blind retry after a crash could repeat a gateway call that has
    # no idempotency key. Clients retry with their Idempotency-Key instead.
    return {**_detached(f"ledger-shard-{index}", node_id), "max_task_retries": 0}


def webhook_dispatcher_options(index: int, node_id: str | None = None) -> dict[str, Any]:
    return _detached(f"webhook-dispatcher-{index}", node_id)


def job_scheduler_options(index: int, node_id: str | None = None) -> dict[str, Any]:
    return _detached(f"job-scheduler-{index}", node_id)


def gateway_circuits_options() -> dict[str, Any]:
    # sync() counts the reports it carries: a blind retry would count them twice.
    return {**_detached("gateway-circuits-0", None), "max_task_retries": 0}


def summary_partition_options() -> dict[str, Any]:
    """A transaction-summary partition task: one CPU (it decodes a slice's aggregate and the
    database does the scan), so a cluster runs as many at once as it has CPUs. Retried: it
    only reads."""
    return {"num_cpus": 1, "max_retries": 3}
