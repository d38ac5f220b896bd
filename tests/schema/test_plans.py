"""A price's bad input is refused by the API model, naming the field (the 400's `param`)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from schema.api.plans import PlanCreate

GOOD: dict[str, Any] = {"amount": 1999, "currency": "USD", "interval": "month"}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"interval": "fortnight"}, "interval"),
        ({"interval_count": 0}, "interval_count"),
        ({"interval_count": 366}, "interval_count"),
        ({"interval": "week", "interval_count": 53}, "interval_count"),
        ({"interval": "month", "interval_count": 13}, "interval_count"),
        ({"interval": "year", "interval_count": 2}, "interval_count"),
        ({"amount": -1}, "amount"),
        ({"amount": 0}, "amount"),
        ({"amount": 19.99}, "amount"),
        ({"amount": 20.0}, "amount"),
        ({"amount": "1999"}, "amount"),
        ({"currency": "XYZ"}, "currency"),
        ({"trial_period_days": -1}, "trial_period_days"),
        ({"trial_period_days": 731}, "trial_period_days"),
    ],
)
def test_bad_price_names_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        PlanCreate.model_validate({**GOOD, **changes})
    [error] = refused.value.errors()
    named = error["loc"][0] if error["loc"] else str(error["msg"]).split(": ")[0].split()[-1]
    assert named == field


def test_a_year_of_each_unit_is_allowed() -> None:
    for interval, most in (("day", 365), ("week", 52), ("month", 12), ("year", 1)):
        plan = PlanCreate.model_validate({**GOOD, "interval": interval, "interval_count": most})
        assert plan.interval_count == most
