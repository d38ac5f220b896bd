"""The correlation id of the request a piece of work serves, in a context variable: set by the
API's middleware for the request's task, and by a ledger shard for each command's task, so
every log line written on its behalf carries it without passing it around."""

from __future__ import annotations

import re
from contextvars import ContextVar, Token

MAX_CORRELATION_LENGTH = 128
_VISIBLE = re.compile(rf"[\x21-\x7e]{{1,{MAX_CORRELATION_LENGTH}}}")

_CORRELATION_ID: ContextVar[str | None] = ContextVar("paygrid_correlation_id", default=None)


def current_correlation() -> str | None:
    """The correlation id of the work running now, if any."""
    return _CORRELATION_ID.get()


def set_correlation(correlation_id: str | None) -> Token[str | None]:
    """Make `correlation_id` current; give the token to `reset_correlation` when done."""
    return _CORRELATION_ID.set(correlation_id)


def reset_correlation(token: Token[str | None]) -> None:
    _CORRELATION_ID.reset(token)


def valid_correlation_id(value: str) -> bool:
    """Whether `value` is a usable correlation id: 1 to 128 visible ASCII characters."""
    return _VISIBLE.fullmatch(value) is not None
