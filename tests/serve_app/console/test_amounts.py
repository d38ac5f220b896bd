"""`serve_app/console/amounts.py`: typed major units become exact minor units, or a clear
refusal naming the amount; the payments list's filters become the engine's window the same way,
or a refusal naming the field."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest

from engine.errors import InvalidRequest
from engine.payments.models import PaymentWindow
from serve_app.console.amounts import minor_units
from serve_app.console.forms import PaymentFilters, next_page


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [
        ("12.50", "USD", 1250),
        ("12.5", "USD", 1250),
        ("12", "USD", 1200),
        (" 0.01 ", "USD", 1),
        ("1250", "JPY", 1250),
        ("1.234", "KWD", 1234),
        ("", "USD", None),
        ("  ", "USD", None),
    ],
)
def test_major_units_become_minor_units(text: str, currency: str, minor: int | None) -> None:
    assert minor_units(text, currency) == minor


@pytest.mark.parametrize(
    ("text", "currency"),
    [
        ("1.234", "USD"),
        ("1.5", "JPY"),
        ("0", "USD"),
        ("0.00", "USD"),
        ("-1", "USD"),
        ("1e3", "USD"),
        ("1,50", "EUR"),
    ],
)
def test_anything_else_is_refused_never_rounded(text: str, currency: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        minor_units(text, currency)
    assert refused.value.param == "amount"


def test_payment_filters_become_an_exact_window() -> None:
    window = PaymentFilters.model_validate(
        {
            "created_from": "2026-11-01",
            "created_to": "2026-11-03",
            "currency": "kwd",
            "amount_min": "1.5",
            "amount_max": "2.345",
        }
    ).window()
    assert window == PaymentWindow(
        created_from=datetime(2026, 11, 1, tzinfo=UTC),
        # The last day whole: up to the next UTC midnight.
        created_before=datetime(2026, 11, 4, tzinfo=UTC),
        currency="KWD",
        amount_min=1500,
        amount_max=2345,
    )
    assert PaymentFilters.model_validate({"created_from": "", "amount_min": ""}).window() == (
        PaymentWindow()
    )


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"amount_min": "10"}, "currency"),
        ({"currency": "USD", "amount_max": "1.001"}, "amount_max"),
        ({"currency": "JPY", "amount_min": "1.5"}, "amount_min"),
        ({"currency": "USD", "amount_min": "5", "amount_max": "4.99"}, "amount_max"),
        ({"created_from": "2026-11-02", "created_to": "2026-11-01"}, "created_to"),
    ],
)
def test_payment_filters_that_cannot_hold_name_their_field(
    fields: dict[str, str], named: str
) -> None:
    with pytest.raises(InvalidRequest) as refused:
        PaymentFilters.model_validate(fields).window()
    assert refused.value.param == named
    assert refused.value.message.startswith(named + ":")


def test_the_next_page_keeps_every_filter() -> None:
    typed = {"created_from": "2026-11-01", "currency": "USD", "amount_min": "1.50"}
    after = uuid4()
    assert next_page(PaymentFilters.model_validate(typed), True, after) == {
        **typed,
        "starting_after": str(after),
    }
