"""AES-256-GCM sealing with associated data, and keyed blind indexes.

A sealed value is one version byte, a random 96-bit nonce, then the ciphertext and its tag.
The associated data is not stored: the reader supplies it again (`row_binding`), so a
ciphertext copied to another row, column or table fails to open, as does any changed byte.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from engine.errors import CryptoError

_VERSION = b"\x01"
_NONCE_BYTES = 12
_TAG_BYTES = 16
OVERHEAD = len(_VERSION) + _NONCE_BYTES + _TAG_BYTES


def row_binding(table: str, column: str, row_id: UUID, *kept: object) -> bytes:
    """The associated data that ties a ciphertext to one column of one row, and to values in
    clear the row must keep (its owner, say: a row moved to another customer no longer
    decrypts)."""
    return "/".join(["paygrid", table, column, str(row_id), *map(str, kept)]).encode()


def seal(key: bytes, plaintext: bytes, *, aad: bytes) -> bytes:
    """`plaintext` encrypted and authenticated under `key`, bound to `aad`."""
    nonce = os.urandom(_NONCE_BYTES)
    return _VERSION + nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def unseal(key: bytes, sealed: bytes, *, aad: bytes) -> bytes:
    """The plaintext of `sealed`; `CryptoError` if the key, the associated data or any byte
    differs from when it was sealed."""
    if len(sealed) < OVERHEAD or sealed[:1] != _VERSION:
        raise CryptoError("a sealed value is malformed", code="decryption_failed")
    nonce, body = sealed[1 : 1 + _NONCE_BYTES], sealed[1 + _NONCE_BYTES :]
    try:
        return AESGCM(key).decrypt(nonce, body, aad)
    except InvalidTag:
        raise CryptoError(
            "a sealed value failed authentication (wrong key, wrong row, or altered)",
            code="decryption_failed",
        ) from None


def blind_index(key: bytes, value: str) -> bytes:
    """HMAC-SHA256 of `value` under `key`: equal values match, and without the key the digest
    says nothing, even about values as guessable as card numbers."""
    return hmac.new(key, value.encode(), hashlib.sha256).digest()
