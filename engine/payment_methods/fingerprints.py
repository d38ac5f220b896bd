"""Card fingerprints: the number's (or gateway token's) keyed blind index, shortened. Equal
cards match and nothing else can be read from one; the vault and the payments store the same
fingerprint, so a payment can be matched to the saved card it came from."""

from __future__ import annotations

import base64

import asyncpg

from engine.keys.keyring import Keyring

FINGERPRINT_INDEX = "payment_method_fingerprint"
_FINGERPRINT_BYTES = 12


async def fingerprints(
    keyring: Keyring, conn: asyncpg.Connection, *, values: list[str]
) -> list[str]:
    """The fingerprint of each card number or token in `values`, in order; the index's key is
    read at most once (and cached after its first commit)."""
    digests = await keyring.blind_indexes(conn, index=FINGERPRINT_INDEX, values=values)
    return [base64.urlsafe_b64encode(d[:_FINGERPRINT_BYTES]).decode() for d in digests]
