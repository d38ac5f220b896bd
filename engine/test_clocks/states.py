"""Test clock states (`test_clocks.status`, migration 0007): ready → advancing → ready."""

from __future__ import annotations

from schema.states import TestClockStatus

__all__ = ["TestClockStatus"]
