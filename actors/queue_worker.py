"""What every queue-worker actor answers, whichever queue it works (see `WebhookDispatcher` and
`JobScheduler`): liveness, its settings, its activity and where it runs."""

from __future__ import annotations

from actors.placement import placement
from engine.runtime.workers import WorkerRuntime


class QueueWorker:
    """Base of the queue-worker actors; a subclass's `__init__` starts its runtime."""

    _index: int
    _fingerprint: str
    _runtime: WorkerRuntime

    async def ping(self) -> int:
        return self._index

    async def settings_fingerprint(self) -> str:
        """Which settings this incarnation runs with (see `actors.fleet`)."""
        return self._fingerprint

    async def activity(self) -> dict[str, int]:
        """What this incarnation's worker has done, for operators: claims run so far and
        items in flight."""
        return self._runtime.activity()

    async def where(self) -> dict[str, object]:
        """Where this actor runs, for operators."""
        return placement(self._index)
