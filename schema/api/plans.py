"""Plans: reusable prices. Amounts are strict integers of minor units; a period is at most a
year (365 days' worth of `interval_count` times `interval`). A plan's price never changes: archive
it and create another."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, Field, StrictInt, model_validator

from schema.api.common import Currency, Metadata, MinorUnits, ShortText, StrictModel
from schema.states import BillingInterval, PlanStatus

# The most of each unit that fits in a year.
MAX_INTERVAL_COUNT: dict[BillingInterval, int] = {
    BillingInterval.DAY: 365,
    BillingInterval.WEEK: 52,
    BillingInterval.MONTH: 12,
    BillingInterval.YEAR: 1,
}
MAX_TRIAL_DAYS = 730

Amount = MinorUnits
IntervalCount = Annotated[StrictInt, Field(ge=1, le=365)]
TrialDays = Annotated[StrictInt, Field(ge=0, le=MAX_TRIAL_DAYS)]


class PriceCreate(StrictModel):
    """A price: what a plan holds, and what a subscription may give inline instead of a plan."""

    amount: Amount
    currency: Currency
    interval: BillingInterval
    interval_count: IntervalCount = 1

    @model_validator(mode="after")
    def _period_within_a_year(self) -> PriceCreate:
        most = MAX_INTERVAL_COUNT[self.interval]
        if self.interval_count > most:
            raise ValueError(
                f"interval_count: at most {most} for interval '{self.interval}' "
                "(a period is at most a year)"
            )
        return self


class PlanCreate(PriceCreate):
    name: ShortText | None = None
    trial_period_days: TrialDays = 0
    metadata: Metadata = Field(default_factory=dict)


class PlanPublic(BaseModel):
    id: UUID
    object: Literal["plan"] = "plan"
    name: str | None
    amount: int
    currency: str
    interval: BillingInterval
    interval_count: int
    trial_period_days: int
    status: PlanStatus
    metadata: dict[str, str]
    created_at: datetime
    archived_at: datetime | None
