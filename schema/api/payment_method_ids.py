"""The public id of a saved payment method, and a payment's reference to one.

An id is `pm_` plus the 26-character base32 form of a UUID: compact, and never a long run of
digits that a card-number scanner could mistake for a PAN. Models hold the UUID; JSON shows the
`pm_…` form.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated
from uuid import UUID

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

from schema.api.common import StrictModel

PREFIX = "pm_"
_ENCODED_LENGTH = 26
# 26 base32 characters hold 130 bits, a UUID 128: the last character's two low bits are zero,
# so it is one of the eight letters or digits whose value is a multiple of four.
_PATTERN = rf"^{PREFIX}[a-z2-7]{{{_ENCODED_LENGTH - 1}}}[aeimquy4]$"
_INVALID = f"must be a payment method id ({PREFIX}…)"


def format_payment_method_id(value: UUID) -> str:
    """The public id of a saved payment method."""
    return PREFIX + base64.b32encode(value.bytes).decode().rstrip("=").lower()


def parse_payment_method_id(value: object) -> UUID:
    """The UUID behind a public `pm_…` id; a ValueError for anything else."""
    if isinstance(value, UUID):
        return value
    if not isinstance(value, str) or not value.startswith(PREFIX):
        raise ValueError(_INVALID)
    encoded = value.removeprefix(PREFIX)
    if len(encoded) != _ENCODED_LENGTH or encoded != encoded.lower():
        raise ValueError(_INVALID)
    try:
        raw = base64.b32decode(encoded.upper() + "======")
    except binascii.Error:
        raise ValueError(_INVALID) from None
    parsed = UUID(bytes=raw)
    # Base32 leaves two spare bits: only the canonical spelling names the id.
    if format_payment_method_id(parsed) != value:
        raise ValueError(_INVALID)
    return parsed


PaymentMethodId = Annotated[
    UUID,
    BeforeValidator(parse_payment_method_id),
    PlainSerializer(format_payment_method_id, return_type=str),
    WithJsonSchema({"type": "string", "pattern": _PATTERN}),
]


class SavedMethodRef(StrictModel):
    """A payment's `payment_method` naming a saved method of the payment's customer."""

    id: PaymentMethodId
