"""The test session's Ray cluster, and typed wrappers of the Ray calls the cluster tests make
(Ray leaves these unannotated)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ray
from ray.cluster_utils import Cluster

from engine.runtime import local
from serve_app.job_api import job_api_only

# A lost node is noticed after a few missed health checks, not Ray's default 15 s.
FAST_FAILURE_DETECTION = {
    "health_check_initial_delay_ms": 0,
    "health_check_period_ms": 500,
    "health_check_failure_threshold": 4,
}


def start_nodes(dashboard_port: int) -> Cluster:
    """A head (two CPUs) and two workers (one each) on this machine; Ray's GCS on an explicit
    free port (its default is Redis's). The workers start side by side. The head runs Ray's
    dashboard on 127.0.0.1:`dashboard_port`, for the job submission API the reports use."""
    with job_api_only():  # the dashboard as `paygrid serve` starts it: the job API only
        nodes = Cluster(
            initialize_head=True,
            head_node_args={
                "num_cpus": 2,
                "gcs_server_port": local.free_port(),
                "include_dashboard": True,
                "dashboard_host": "127.0.0.1",
                "dashboard_port": dashboard_port,
                "_system_config": FAST_FAILURE_DETECTION,
            },
        )
    for _ in range(2):
        nodes.add_node(wait=False, num_cpus=1)
    nodes.wait_for_nodes()
    return nodes


def alive_nodes() -> set[str]:
    """Ids of the cluster's live nodes."""
    nodes: list[dict[str, Any]] = ray.nodes()  # type: ignore[no-untyped-call]
    return {str(n["NodeID"]) for n in nodes if n["Alive"]}


def shut_down(cluster: Cluster) -> None:
    """Stop every process of a test cluster."""
    cluster.shutdown()  # type: ignore[no-untyped-call]


def session_logs(cluster: Cluster) -> Path:
    """The log folder of the cluster's session: every Ray process's logs, the workers' (API
    replicas, actors) included. The nodes of a cluster on one machine share it."""
    head: Any = cluster.head_node
    return Path(head.get_session_dir_path()) / "logs"
