"""The master key: 32 random bytes, given as base64url text (`PAYGRID_MASTER_KEY`).

It never reaches the database; each wrapped data key records the master key's id, a keyed
digest of the key that names it without revealing it, so a rotation knows which rows are
still wrapped under an older one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field

KEY_BYTES = 32


def new_master_key() -> str:
    """A fresh master key in its configuration form."""
    return base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def decode_master_key(text: str) -> bytes:
    """The key bytes of a configured master key; a ValueError unless it is 32 bytes of
    base64url (or standard base64)."""
    cleaned = text.strip().replace("+", "-").replace("/", "_")
    try:
        raw = base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("must be 32 random bytes in base64") from None
    if len(raw) != KEY_BYTES:
        raise ValueError(f"must be {KEY_BYTES} random bytes in base64, not {len(raw)}")
    return raw


@dataclass(frozen=True, slots=True)
class MasterKey:
    secret: bytes = field(repr=False)

    @property
    def id(self) -> str:
        """16 hex digits naming this key in `data_keys.master_key_id`."""
        return hmac.new(self.secret, b"paygrid master key id", hashlib.sha256).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"MasterKey({self.id})"
