"""Reports: a transaction summary asked for over a date range, and the view of one.

`from` and `to` are whole UTC days, both included; the engine refuses a reversed range or one
longer than a year, naming the field.
"""

from __future__ import annotations

from datetime import date
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from schema.api.common import Day, StrictModel
from schema.states import ReportStatus


class TransactionSummaryCreate(StrictModel):
    # `from` is a Python keyword: the field is `first`, named `from` on the wire.
    model_config = ConfigDict(extra="forbid", populate_by_name=False)

    first: Day = Field(alias="from", description="First UTC day, included.")
    last: Day = Field(alias="to", description="Last UTC day, included.")


class ReportPublic(BaseModel):
    model_config = ConfigDict(serialize_by_alias=True)

    id: UUID
    object: Literal["report"] = "report"
    kind: str
    first: date = Field(serialization_alias="from")
    last: date = Field(serialization_alias="to")
    status: ReportStatus
    message: str | None = None
    files: list[str] = Field(default_factory=list)
    chart_url: str | None = None
