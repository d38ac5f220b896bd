"""Typed wrappers of the Ray calls the cluster tests make (Ray leaves these unannotated)."""

from __future__ import annotations

from typing import Any

import ray
from ray.cluster_utils import Cluster


def alive_nodes() -> set[str]:
    """Ids of the cluster's live nodes."""
    nodes: list[dict[str, Any]] = ray.nodes()  # type: ignore[no-untyped-call]
    return {str(n["NodeID"]) for n in nodes if n["Alive"]}


def shut_down(cluster: Cluster) -> None:
    """Stop every process of a test cluster."""
    cluster.shutdown()  # type: ignore[no-untyped-call]
