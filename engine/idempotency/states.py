"""The idempotency record's states: `processing` while its request runs, `completed` with the
stored answer once it has one (`completed_has_response`, migration 0001). Expired records are
taken over by the next claim of their key, whatever their state."""

from __future__ import annotations

from schema.states import IdempotencyStatus

__all__ = ["IdempotencyStatus"]
