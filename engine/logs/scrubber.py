"""Masks what must never reach a log: card numbers (Luhn-valid runs of 13 to 19 digits,
spaces or dashes allowed between them; the last four kept), CVC values, bank account numbers
named as such (`account_number=…`, `"account_number": "…"`: a bare run of 4 to 17 digits is
indistinguishable from any other number, so the key decides; the last four kept), wallet
tokens named as such, paygrid API keys
(`pgk_…`) and webhook secrets (`whsec_…`), and Authorization / X-API-Key header values.

Applied to the whole formatted line, exception text included, so a number that reached a log
through an f-string or a repr is masked too. A run of digits that fails the Luhn check (an
order number, a timestamp) is left alone.
"""

from __future__ import annotations

import logging
import re

from engine.cards import luhn_valid

_PAN = re.compile(r"(?<![\d])\d(?:[ -]?\d){12,18}(?![\d])")
_CVC = re.compile(
    r"""(?ix)
    (["']?\b(?:cvc2?|cvv2?|card_?code|security_?code)\b["']?\s*(?:[:=]|=>)\s*["']?)
    \d{3,4}"""
)
_ACCOUNT = re.compile(
    r"""(?ix)
    (["']?\b(?:account_?number|acct_?(?:no|num)|bank_?account)\b["']?\s*(?:[:=]|=>)\s*
    (?:SecretStr\()?["']?)
    \d*(\d{4})"""
)
_WALLET_TOKEN = re.compile(r"\bwtok_[A-Za-z0-9_]+")
_SECRET = re.compile(r"\b(pgk|whsec)_[A-Za-z0-9+/=_\-]+")
_HEADER = re.compile(
    r"""(?ix)
    (\b(?:authorization|x-api-key)\b["']?\s*[:=,]\s*\(?\s*(?:b(?=["']))?["']?)
    (?:(?:bearer|basic|token)\s+)?[^\s"',)}]+"""
)


def _masked(digits: str) -> str | None:
    """`digits` masked to its last four if it is a card number, else None."""
    if 13 <= len(digits) <= 19 and luhn_valid(digits):
        return "*" * (len(digits) - 4) + digits[-4:]
    return None


def _mask_pan(match: re.Match[str]) -> str:
    text = match.group()
    whole = _masked(re.sub(r"[ -]", "", text))
    if whole is not None:
        return whole
    # Not one card number, but perhaps one beside another number ("… 13 4000056655665556"):
    # every stretch of whole digit groups is a candidate, the longest first.
    groups = [(m.start(), m.end()) for m in re.finditer(r"\d+", text)]
    out, done, i = [], 0, 0
    while i < len(groups):
        for j in range(len(groups), i, -1):
            start, end = groups[i][0], groups[j - 1][1]
            masked = _masked(re.sub(r"[ -]", "", text[start:end]))
            if masked is not None:
                out += [text[done:start], masked]
                done, i = end, j
                break
        else:
            i += 1
    return "".join(out) + text[done:]


def scrub(text: str) -> str:
    """`text` with card numbers, CVCs, secrets and credentials masked."""
    text = _PAN.sub(_mask_pan, text)
    text = _CVC.sub(r"\1***", text)
    text = _ACCOUNT.sub(r"\1****\2", text)
    text = _WALLET_TOKEN.sub("wtok_[REDACTED]", text)
    text = _SECRET.sub(r"\1_[REDACTED]", text)
    return _HEADER.sub(r"\1[REDACTED]", text)


class ScrubbingFilter(logging.Filter):
    """On a handler: scrubs each record's message before any handler formats it (records are
    shared, so the handlers after this one see the scrubbed message too)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        scrubbed = scrub(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        return True
