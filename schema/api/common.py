"""Field types and envelopes shared by every resource of the API."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    StrictInt,
    StringConstraints,
    WithJsonSchema,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

from schema.currencies import CURRENCY_EXPONENTS, is_currency

T = TypeVar("T")

METADATA_MAX_KEYS = 50
METADATA_KEY_MAX = 40
METADATA_VALUE_MAX = 500


def refuses_null(*fields: str) -> Callable[[dict[str, Any]], None]:
    """A model's `json_schema_extra` for optional fields that refuse null (left out, they keep
    their value; their validators refuse None, naming the field): the document drops the null
    that `X | None = None` puts there."""

    def edit(schema: dict[str, Any]) -> None:
        for name in fields:
            field = schema["properties"][name]
            options = [o for o in field.pop("anyOf") if o != {"type": "null"}]
            field.pop("default", None)
            field.update(options[0] if len(options) == 1 else {"anyOf": options})

    return edit


class StrictModel(BaseModel):
    """Request models: unknown fields are an error, never silently dropped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


def no_nul(value: str) -> str:
    """PostgreSQL text cannot hold NUL: refuse it here, with the field named."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


NO_NUL_PATTERN = r"^[^\x00]*$"


class _NoNul:
    """`Annotated[str, NoNul]`: `no_nul` after the string's own checks, and, where the string
    has no pattern of its own, `NO_NUL_PATTERN` in its JSON schema, so the document says it."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(no_nul, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema.setdefault("pattern", NO_NUL_PATTERN)
        return json_schema


NoNul = _NoNul()


# Each supported ISO 4217 code, upper or lower case (Stripe writes them in lower case).
CURRENCY_SPELLINGS = sorted(CURRENCY_EXPONENTS) + sorted(c.lower() for c in CURRENCY_EXPONENTS)


def _currency(value: str) -> str:
    code = value.upper()
    if value not in (code, code.lower()) or not is_currency(code):
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


# The OpenAPI document lists the codes; the validator says which field holds a wrong one.
Currency = Annotated[
    str,
    StringConstraints(strict=True),
    AfterValidator(_currency),
    WithJsonSchema(
        {
            "type": "string",
            "enum": CURRENCY_SPELLINGS,
            "description": "ISO 4217 code, upper or lower case; answered in upper case.",
        }
    ),
]
# The document says what the validators check: metadata's counts and lengths, no NUL.
Metadata = Annotated[
    dict[
        Annotated[str, AfterValidator(no_nul)],
        Annotated[str, StringConstraints(strict=True), AfterValidator(no_nul)],
    ],
    AfterValidator(_metadata),
    WithJsonSchema(
        {
            "type": "object",
            "maxProperties": METADATA_MAX_KEYS,
            "propertyNames": {
                "minLength": 1,
                "maxLength": METADATA_KEY_MAX,
                "pattern": NO_NUL_PATTERN,
            },
            "additionalProperties": {
                "type": "string",
                "maxLength": METADATA_VALUE_MAX,
                "pattern": NO_NUL_PATTERN,
            },
        }
    ),
]
Description = Annotated[str, StringConstraints(max_length=1000, strict=True), NoNul]

# No @, control character or space (Python's \s and JavaScript's differ, so spelled out).
_EMAIL_CHAR = r"[^@\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]"
_EMAIL_LOCAL = rf"{_EMAIL_CHAR}{{1,64}}"
_EMAIL_DOMAIN = rf"{_EMAIL_CHAR}+\.{_EMAIL_CHAR}+"
_EMAIL = re.compile(rf"^{_EMAIL_LOCAL}@{_EMAIL_DOMAIN}$")
EMAIL_MAX = 254


def _email(value: str) -> str:
    if len(value) > EMAIL_MAX or not _EMAIL.match(value):
        raise ValueError("not a valid email address")
    return value


Email = Annotated[
    str,
    StringConstraints(strict=True),
    AfterValidator(no_nul),
    AfterValidator(_email),
    WithJsonSchema(
        {
            "type": "string",
            "maxLength": EMAIL_MAX,
            "pattern": _EMAIL.pattern,
        }
    ),
]
ShortText = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=200), NoNul]


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

# The most one amount may be is the deployment's (`PAYGRID_MAX_AMOUNT`): the field carries this
# mark, and the app writes the bound in its place when it builds its OpenAPI document.
MAX_AMOUNT_MARK = "x-paygrid-max-amount"
MinorUnits = Annotated[StrictInt, Field(gt=0, json_schema_extra={MAX_AMOUNT_MARK: True})]

_YEAR = "(?:[1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])"
DAY_PATTERN = rf"^{_YEAR}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])$"
INSTANT_PATTERN = (
    rf"^{DAY_PATTERN[1:-1]}(?:[Tt](?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{{1,6}})?"
    r"(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])?)?$"
)


def _spelled(pattern: str, what: str) -> Callable[[object], object]:
    rule = re.compile(pattern)

    def check(value: object) -> object:
        # Only the spelling the document gives: no Unix times, no date for a time.
        if isinstance(value, str) and not rule.match(value):
            raise ValueError(f"must be {what}")
        return value

    return check


def _utc(value: datetime) -> datetime:
    # A time without an offset is read as UTC rather than as the server's local time.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


# RFC 3339, or a day alone (its midnight), as the document's pattern says; a time without an
# offset is read as UTC.
Instant = Annotated[
    datetime,
    BeforeValidator(
        _spelled(INSTANT_PATTERN, "an RFC 3339 date-time (2026-01-31T09:30:00Z) or a day")
    ),
    AfterValidator(_utc),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": INSTANT_PATTERN,
            "description": "RFC 3339 date-time, or a day (its midnight); without an offset, UTC.",
        }
    ),
]
Day = Annotated[
    date,
    BeforeValidator(_spelled(DAY_PATTERN, "a date, YYYY-MM-DD")),
    WithJsonSchema({"type": "string", "format": "date", "pattern": DAY_PATTERN}),
]


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
        (429, "Over the rate limit: retry after `Retry-After` seconds"),
        (503, "A dependency is unavailable; retry with the same Idempotency-Key"),
    )
}
# What a request that reaches a gateway may also answer.
GATEWAY_RESPONSES: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorEnvelope, "description": description}
    for status, description in (
        (502, "The gateway failed or its circuit is open; retry with the same Idempotency-Key"),
        (504, "The gateway did not answer in time; the payment settles later"),
    )
}
# What the transport middleware answers to any write, before a route sees it.
WRITE_RESPONSES: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorEnvelope, "description": description}
    for status, description in (
        (413, "The body is larger than the limit (1 MiB by default)"),
        (415, "The body is not `Content-Type: application/json`"),
    )
}
