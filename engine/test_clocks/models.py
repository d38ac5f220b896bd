"""Test clocks as the domain sees them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from engine.test_clocks.states import TestClockStatus
from schema.api.test_clocks import TestClockPublic


@dataclass(frozen=True, slots=True)
class TestClock:
    id: UUID
    name: str | None
    frozen_time: datetime
    status: TestClockStatus
    created_at: datetime

    def public(self) -> dict[str, Any]:
        """The API's test clock object as JSON-ready values (`frozen_time` in Unix seconds)."""
        return TestClockPublic(
            id=self.id,
            name=self.name,
            frozen_time=int(self.frozen_time.timestamp()),
            status=self.status,
            created_at=self.created_at,
        ).model_dump(mode="json")
