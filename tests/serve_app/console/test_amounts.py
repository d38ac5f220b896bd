"""`serve_app/console/amounts.py`: typed major units become exact minor units, or a clear
refusal naming the amount."""

from __future__ import annotations

import pytest

from engine.errors import InvalidRequest
from serve_app.console.amounts import minor_units


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
