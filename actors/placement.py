"""Where an actor runs, for operators (`/api/queues/info`) and tests."""

from __future__ import annotations

import os

import ray


def placement(index: int) -> dict[str, object]:
    """Where the calling actor runs: its index, process and node."""
    return {"index": index, "pid": os.getpid(), "node_id": ray.get_runtime_context().get_node_id()}
