"""Where a worker actor runs, for operators. The loop a queue worker runs, and how it is woken,
are `engine.queueing`'s (`loop.run_woken`, `waker.Waker`)."""

from __future__ import annotations

import os

import ray


def placement(index: int) -> dict[str, object]:
    """Where the calling actor runs, for operators."""
    return {"index": index, "pid": os.getpid(), "node_id": ray.get_runtime_context().get_node_id()}
