"""Scrubbed JSON log lines: card numbers (Luhn-valid, 13 to 19 digits), CVCs, API keys, webhook
secrets and Authorization headers are masked wherever they appear, exception text included;
other numbers are left alone; every line carries the current correlation id and the process."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from engine.bank_accounts import BankAccount
from engine.logs.context import reset_correlation, set_correlation
from engine.logs.scrubber import ScrubbingFilter, scrub
from engine.logs.setup import configure_logging

VISA = "4242424242424242"
AMEX = "378282246310005"
DISCOVER = "6011000990139424"


def _luhn(digits: str) -> bool:
    total = 0
    for i, d in enumerate(reversed(digits)):
        n = int(d) * (2 if i % 2 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0


@pytest.mark.parametrize(
    "number", [VISA, AMEX, DISCOVER, "4242 4242 4242 4242", "4242-4242-4242-4242"]
)
def test_card_numbers_are_masked_to_the_last_four(number: str) -> None:
    line = scrub(f"charging card={number} now")
    assert number not in line
    assert line.endswith(f"{number.replace(' ', '').replace('-', '')[-4:]} now")
    assert "*" * 8 in line


@pytest.mark.parametrize("before", ["13 ", "7-", "12 34 ", "2026 11 28 "])
def test_a_card_number_beside_another_number_is_masked(before: str) -> None:
    # The run as a whole fails the Luhn check; the card number inside it must not escape.
    line = scrub(f"id {before}{VISA} 5")
    assert VISA not in line
    # Masked with whatever Luhn-valid stretch around it was found first (never less).
    assert "*" * 12 in line


def test_luhn_invalid_short_and_long_runs_are_left_alone() -> None:
    assert not _luhn("4242424242424241")
    for text in ("4242424242424241", "424242424242", "42424242424242424242", "order 123456"):
        assert scrub(text) == text
    nineteen = next(
        f"4{n:017d}{c}"
        for n in range(10**12, 10**12 + 50)
        for c in "0123456789"
        if _luhn(f"4{n:017d}{c}")
    )
    assert len(nineteen) == 19
    assert nineteen not in scrub(nineteen)
    assert scrub("1" * 20) == "1" * 20


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ('{"cvc": "123"}', "123"),
        ("cvv=4567", "4567"),
        ("'card_code': '999'", "999"),
        ("key pgk_AbC123-xyz_9 used", "AbC123-xyz_9"),
        ("secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        ("Authorization: Bearer sk-abc.def", "sk-abc.def"),
        ("{'authorization': 'Basic dXNlcjpwYXNz'}", "dXNlcjpwYXNz"),
        ('headers=[(b"authorization", b"Bearer tok123")]', "tok123"),
        ("X-API-Key: live-key-1", "live-key-1"),
    ],
)
def test_cvcs_secrets_and_credentials_are_masked(text: str, secret: str) -> None:
    scrubbed = scrub(text)
    assert secret not in scrubbed
    assert "***" in scrubbed or "[REDACTED]" in scrubbed


@pytest.mark.parametrize(
    "text",
    [
        "debit account_number=000123456789 failed",
        '{"account_number": "000111111116"}',
        "{'account_number': SecretStr('000222222227')}",
        "bank_account: 12345678901234567",
        "acct_no => 4444333322221111999",
    ],
)
def test_named_bank_account_numbers_are_masked_to_the_last_four(text: str) -> None:
    scrubbed = scrub(text)
    digits = "".join(c for c in text if c.isdigit())
    assert digits not in scrubbed
    assert f"****{digits[-4:]}" in scrubbed


def test_wallet_tokens_are_masked_and_account_like_numbers_unnamed_stay() -> None:
    assert "wtok_visa" not in scrub("charging token wtok_visa")
    assert scrub("order 000123456789 shipped") == "order 000123456789 shipped"
    # The BankAccount repr names the routing number and the last four only.
    shown = repr(BankAccount("110000000", "000123456789", "individual"))
    assert "000123456789" not in shown
    assert "6789" in shown


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    before = (list(root.handlers), root.level)
    stream = io.StringIO()
    configure_logging(component="shard", process="ledger-shard-3", stream=stream)
    yield stream
    for handler in list(root.handlers):
        if handler not in before[0]:
            root.removeHandler(handler)
    root.setLevel(before[1])


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_lines_are_json_with_correlation_and_process(captured: io.StringIO) -> None:
    log = logging.getLogger("paygrid.test")
    token = set_correlation("req-42")
    try:
        log.warning("charged %s for %d", VISA, 100)
    finally:
        reset_correlation(token)
    log.info("no request here")
    first, second = _lines(captured)
    assert first["message"] == "charged ************4242 for 100"
    assert first["correlation_id"] == "req-42"
    assert (first["level"], first["logger"]) == ("WARNING", "paygrid.test")
    assert (first["component"], first["process"]) == ("shard", "ledger-shard-3")
    assert str(first["timestamp"]).endswith("+00:00")
    assert second["correlation_id"] is None


def test_exceptions_are_scrubbed_too(captured: io.StringIO) -> None:
    try:
        raise ValueError(f"bad card {VISA} with cvc=123 and pgk_secret")
    except ValueError:
        logging.getLogger("paygrid.test").exception("failed")
    (line,) = _lines(captured)
    assert VISA not in str(line)
    assert "pgk_secret" not in str(line)
    assert "cvc=***" in str(line["exception"])


def test_every_handler_gets_a_scrubber(captured: io.StringIO) -> None:
    other = logging.StreamHandler(io.StringIO())
    root = logging.getLogger()
    root.addHandler(other)
    try:
        configure_logging(component="api", process="api-1", stream=captured)
        assert any(isinstance(f, ScrubbingFilter) for f in other.filters)
        logging.getLogger("paygrid.test").warning("card %s", VISA)
        assert VISA not in other.stream.getvalue()
    finally:
        root.removeHandler(other)
    # Configured twice, the process still writes each line once.
    assert len(_lines(captured)) == 1
