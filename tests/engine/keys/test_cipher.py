"""AES-256-GCM sealing and blind indexes, without a database: a round trip, and every way a
sealed value must fail to open (another key, another row, a flipped bit, a truncation)."""

from __future__ import annotations

import os
from uuid import uuid4

import pytest

from engine.errors import CryptoError
from engine.keys.cipher import OVERHEAD, blind_index, row_binding, seal, unseal
from engine.keys.master import MasterKey, decode_master_key, new_master_key

KEY = os.urandom(32)


def test_round_trip_with_the_same_binding() -> None:
    row = uuid4()
    sealed = seal(KEY, b"4242424242424242", aad=row_binding("t", "c", row))
    assert len(sealed) == OVERHEAD + 16
    assert b"4242" not in sealed
    assert unseal(KEY, sealed, aad=row_binding("t", "c", row)) == b"4242424242424242"
    # A fresh nonce each time: the same plaintext never seals to the same bytes.
    assert seal(KEY, b"x", aad=b"a") != seal(KEY, b"x", aad=b"a")


@pytest.mark.parametrize(
    "other",
    [
        row_binding("t", "c", uuid4()),  # another row
        row_binding("t", "other", uuid4()),  # another column
        row_binding("t", "c", uuid4(), uuid4()),  # another owner
    ],
)
def test_a_ciphertext_moved_elsewhere_does_not_open(other: bytes) -> None:
    sealed = seal(KEY, b"secret", aad=row_binding("t", "c", uuid4()))
    with pytest.raises(CryptoError) as caught:
        unseal(KEY, sealed, aad=other)
    assert caught.value.code == "decryption_failed"


def test_another_key_or_any_changed_byte_fails() -> None:
    aad = row_binding("t", "c", uuid4())
    sealed = seal(KEY, b"secret", aad=aad)
    with pytest.raises(CryptoError):
        unseal(os.urandom(32), sealed, aad=aad)
    for i in range(len(sealed)):
        tampered = bytearray(sealed)
        tampered[i] ^= 0x01
        with pytest.raises(CryptoError):
            unseal(KEY, bytes(tampered), aad=aad)
    with pytest.raises(CryptoError):
        unseal(KEY, sealed[:-1], aad=aad)
    with pytest.raises(CryptoError):
        unseal(KEY, b"", aad=aad)


def test_blind_index_is_stable_and_keyed() -> None:
    other = os.urandom(32)
    assert blind_index(KEY, "4242424242424242") == blind_index(KEY, "4242424242424242")
    assert blind_index(KEY, "4242424242424242") != blind_index(KEY, "5555555555554444")
    assert blind_index(KEY, "4242424242424242") != blind_index(other, "4242424242424242")
    assert len(blind_index(KEY, "x")) == 32


def test_master_keys_decode_only_as_32_bytes_and_never_print() -> None:
    text = new_master_key()
    raw = decode_master_key(text)
    assert len(raw) == 32
    assert decode_master_key(text.rstrip("=")) == raw
    for bad in ("", "short", "x" * 44, "!" * 44):
        with pytest.raises(ValueError, match="32 random bytes"):
            decode_master_key(bad)
    master = MasterKey(raw)
    assert len(master.id) == 16
    assert master.id == MasterKey(raw).id != MasterKey(os.urandom(32)).id
    assert text not in repr(master)
    assert raw.hex() not in repr(master)
