"""Field types and envelopes shared by every resource of the API."""

from __future__ import annotations

import re
from typing import Annotated, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from schema.currencies import is_currency

T = TypeVar("T")

METADATA_MAX_KEYS = 50
METADATA_KEY_MAX = 40
METADATA_VALUE_MAX = 500


class StrictModel(BaseModel):
    """Request models: unknown fields are an error, never silently dropped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


def no_nul(value: str) -> str:
    """PostgreSQL text cannot hold NUL: refuse it here, with the field named."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _currency(value: str) -> str:
    code = value.upper()
    if len(code) != 3 or not is_currency(code):
        raise ValueError(f"'{value}' is not a supported ISO 4217 currency code")
    return code


def _metadata(value: dict[str, str]) -> dict[str, str]:
    if len(value) > METADATA_MAX_KEYS:
        raise ValueError(f"metadata may hold at most {METADATA_MAX_KEYS} keys")
    for key, item in value.items():
        if not key or len(key) > METADATA_KEY_MAX:
            raise ValueError(f"metadata keys must be 1 to {METADATA_KEY_MAX} characters")
        if len(item) > METADATA_VALUE_MAX:
            raise ValueError(f"metadata values may be at most {METADATA_VALUE_MAX} characters")
    return value


# The pattern puts the code's shape in the OpenAPI document; the validator checks it is a code.
Currency = Annotated[
    str,
    StringConstraints(strict=True, pattern=r"^[A-Za-z]{3}$"),
    AfterValidator(_currency),
]
Metadata = Annotated[
    dict[
        Annotated[str, AfterValidator(no_nul)],
        Annotated[str, StringConstraints(strict=True), AfterValidator(no_nul)],
    ],
    AfterValidator(_metadata),
]
Description = Annotated[
    str, StringConstraints(max_length=1000, strict=True), AfterValidator(no_nul)
]

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")


def _email(value: str) -> str:
    if len(value) > 254 or not _EMAIL.match(value):
        raise ValueError("not a valid email address")
    return value


Email = Annotated[
    str, StringConstraints(strict=True), AfterValidator(no_nul), AfterValidator(_email)
]
ShortText = Annotated[
    str, StringConstraints(strict=True, min_length=1, max_length=200), AfterValidator(no_nul)
]


class Envelope(BaseModel, Generic[T]):
    """The success envelope every endpoint answers with."""

    success: bool = True
    data: T
    correlation_id: str | None = None


class ListEnvelope(BaseModel, Generic[T]):
    """The envelope of cursor-paginated lists, newest first."""

    success: bool = True
    data: list[T]
    has_more: bool
    correlation_id: str | None = None


class ErrorObject(BaseModel):
    type: str
    code: str
    message: str
    param: str | None = None
    decline_code: str | None = None


class ErrorEnvelope(BaseModel):
    success: bool = False
    error: ErrorObject
    correlation_id: str | None = None


PageLimit = Annotated[int, Field(ge=1, le=100)]


# Every error status the API answers with, documented with the one error envelope.
ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorEnvelope, "description": description}
    for status, description in (
        (400, "Invalid request; `error.param` names the field"),
        (401, "Missing, invalid, expired or revoked API key"),
        (402, "Card declined; `error.decline_code` says why"),
        (403, "The API key lacks the scope"),
        (404, "No such resource"),
        (409, "A request with this Idempotency-Key is still in progress"),
        (422, "Illegal state transition or Idempotency-Key reused with another request"),
        (503, "A dependency is unavailable; retry with the same Idempotency-Key"),
    )
}
