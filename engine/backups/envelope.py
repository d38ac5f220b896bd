"""The encrypted backup file: a plaintext header, then AES-256-GCM frames, streamed.

    magic (16 bytes) | header length (u32) | header (JSON) | frame*
    frame = ciphertext length (u32) | AES-256-GCM ciphertext and tag

The key is derived per file (HKDF-SHA256 with the header's random salt) from the master key or
`PAYGRID_BACKUP_KEY`, so counter nonces never repeat under one key. Every frame's associated
data is the magic and the whole header: a changed header byte fails every frame. A frame's
nonce is its index and a final flag; the last frame (empty, flagged final) is the only one a
reader accepts as the end, so a truncated file, frames reordered, dropped or appended, and any
changed byte are each refused. Frame 0 is the manifest; the frames after it are the dump, read
and written a chunk at a time, so a dump of any size never sits in memory.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from engine.errors import BackupError

MAGIC = b"PAYGRID-BACKUP\x00\x01"
FORMAT = 1
CHUNK_BYTES = 1 << 20
_TAG_BYTES = 16
_SALT_BYTES = 16
_MAX_HEADER_BYTES = 64 * 1024
_LENGTH = struct.Struct(">I")
_HKDF_INFO = b"paygrid backup v1"


def key_id(secret: bytes) -> str:
    """16 hex digits naming a backup's key source without revealing it."""
    return hmac.new(secret, b"paygrid backup key id", hashlib.sha256).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class BackupKey:
    """A secret backups are encrypted under: the master key or `PAYGRID_BACKUP_KEY`."""

    source: str
    secret: bytes = field(repr=False)

    @property
    def id(self) -> str:
        return key_id(self.secret)

    def derive(self, salt: bytes) -> bytes:
        """The file's own AES-256 key."""
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=_HKDF_INFO)
        return hkdf.derive(self.secret)


@dataclass(frozen=True, slots=True)
class Header:
    """What the file says in clear: how to find and derive its key. Authenticated by every
    frame."""

    key_source: str
    key_id: str
    salt: bytes
    chunk_bytes: int

    def encode(self) -> bytes:
        return json.dumps(
            {
                "format": FORMAT,
                "cipher": "AES-256-GCM",
                "kdf": "HKDF-SHA256",
                "key_source": self.key_source,
                "key_id": self.key_id,
                "salt": base64.b64encode(self.salt).decode(),
                "chunk_bytes": self.chunk_bytes,
            },
            sort_keys=True,
        ).encode()

    @classmethod
    def decode(cls, raw: bytes) -> Header:
        try:
            found = json.loads(raw)
            if found["format"] != FORMAT:
                raise BackupError(
                    f"backup file format {found['format']} is not one this release reads ({FORMAT})"
                )
            return cls(
                str(found["key_source"]),
                str(found["key_id"]),
                base64.b64decode(found["salt"]),
                int(found["chunk_bytes"]),
            )
        except (ValueError, KeyError, TypeError):
            raise BackupError("not a paygrid backup: its header is unreadable") from None


def _nonce(index: int, final: bool) -> bytes:
    return struct.pack(">Q", index) + b"\x00\x00\x00" + (b"\x01" if final else b"\x00")


class EnvelopeWriter:
    """Writes one backup file: the header at once, then a frame per `write` call (at most
    `CHUNK_BYTES` each), then the final frame on `finish`."""

    def __init__(self, out: BinaryIO, key: BackupKey, *, chunk_bytes: int = CHUNK_BYTES) -> None:
        salt = os.urandom(_SALT_BYTES)
        header = Header(key.source, key.id, salt, chunk_bytes).encode()
        self._aad = MAGIC + _LENGTH.pack(len(header)) + header
        self._aead = AESGCM(key.derive(salt))
        self._out = out
        self._index = 0
        self.chunk_bytes = chunk_bytes
        out.write(self._aad)

    def write(self, plaintext: bytes) -> None:
        """One frame of at most `chunk_bytes`."""
        assert len(plaintext) <= self.chunk_bytes
        self._frame(plaintext, final=False)

    def finish(self) -> None:
        """The final frame: without it a reader refuses the file as truncated."""
        self._frame(b"", final=True)
        self._out.flush()

    def _frame(self, plaintext: bytes, *, final: bool) -> None:
        sealed = self._aead.encrypt(_nonce(self._index, final), plaintext, self._aad)
        self._out.write(_LENGTH.pack(len(sealed)) + sealed)
        self._index += 1


def _read_exactly(source: BinaryIO, size: int, what: str) -> bytes:
    data = source.read(size)
    if len(data) != size:
        raise BackupError(f"the backup is truncated (it ends inside {what})")
    return data


def read_header(source: BinaryIO) -> tuple[Header, bytes]:
    """The header, and the bytes every frame authenticates."""
    magic = source.read(len(MAGIC))
    if magic != MAGIC and MAGIC.startswith(magic):
        raise BackupError("the backup is truncated (it ends inside its first bytes)")
    if magic != MAGIC:
        raise BackupError("not a paygrid backup (its first bytes are not a backup's)")
    (length,) = _LENGTH.unpack(_read_exactly(source, _LENGTH.size, "the header"))
    if length > _MAX_HEADER_BYTES:
        raise BackupError("not a paygrid backup: its header is too long")
    raw = _read_exactly(source, length, "the header")
    return Header.decode(raw), magic + _LENGTH.pack(length) + raw


def choose_key(header: Header, keys: list[BackupKey]) -> BackupKey:
    """The key of `keys` the header names; a clear error naming both sides otherwise."""
    for key in keys:
        if key.id == header.key_id:
            return key
    held = ", ".join(f"{k.source} {k.id}" for k in keys) or "none"
    raise BackupError(
        f"the backup was encrypted under {header.key_source} key {header.key_id}; this process "
        f"holds {held} (set PAYGRID_BACKUP_KEY or PAYGRID_MASTER_KEY to the key it was made "
        "under)",
        code="backup_wrong_key",
    )


def frames(source: BinaryIO, keys: list[BackupKey]) -> Iterator[bytes]:
    """Each frame's plaintext in order, every one authenticated before it is yielded; ends
    only at the final frame followed by the end of the file."""
    header, aad = read_header(source)
    aead = AESGCM(choose_key(header, keys).derive(header.salt))
    index = 0
    while True:
        prefix = source.read(_LENGTH.size)
        if len(prefix) < _LENGTH.size:
            raise BackupError("the backup is truncated (its final frame is missing)")
        (length,) = _LENGTH.unpack(prefix)
        if not _TAG_BYTES <= length <= header.chunk_bytes + _TAG_BYTES:
            raise BackupError(f"the backup is corrupt (frame {index} has a bad length)")
        sealed = _read_exactly(source, length, f"frame {index}")
        final = length == _TAG_BYTES and _opens(aead, index, sealed, aad, final=True)
        if final:
            if source.read(1):
                raise BackupError("the backup has bytes after its final frame")
            return
        try:
            yield aead.decrypt(_nonce(index, False), sealed, aad)
        except InvalidTag:
            raise BackupError(
                f"the backup failed authentication at frame {index}: it was altered",
                code="backup_tampered",
            ) from None
        index += 1


def _opens(aead: AESGCM, index: int, sealed: bytes, aad: bytes, *, final: bool) -> bool:
    try:
        aead.decrypt(_nonce(index, final), sealed, aad)
    except InvalidTag:
        return False
    return True
