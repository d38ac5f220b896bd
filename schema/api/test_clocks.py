"""Test clocks (sandbox only): a frozen time that customers live on, moved only forward and
only by an API call. Times are Unix seconds, as Stripe's are."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, Field, StrictInt

from schema.api.common import ShortText, StrictModel
from schema.states import TestClockStatus

# 2000-01-01 to 2100-01-01: a clock far outside them is a mistake, not a test.
UnixSeconds = Annotated[StrictInt, Field(ge=946_684_800, le=4_102_444_800)]


class TestClockCreate(StrictModel):
    frozen_time: UnixSeconds
    name: ShortText | None = None


class TestClockAdvance(StrictModel):
    frozen_time: UnixSeconds


class TestClockPublic(BaseModel):
    id: UUID
    object: Literal["test_clock"] = "test_clock"
    name: str | None
    frozen_time: int
    status: TestClockStatus
    created_at: datetime
