"""The backup envelope alone (no database): frames come back in order, authenticated; a frame
dropped, repeated or moved, the final frame removed, a changed header and a wrong key are each
refused before any of the data after them is given out."""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Callable

import pytest

from engine.backups.envelope import BackupKey, EnvelopeWriter, frames
from engine.errors import BackupError

KEY = BackupKey("backup", os.urandom(32))
CHUNKS = [b"manifest", b"a" * 64, b"b" * 64, b"c" * 10]


def _sealed() -> tuple[bytes, list[bytes]]:
    """A file of CHUNKS, and its header and frames as written (the final frame last)."""
    out = io.BytesIO()
    writer = EnvelopeWriter(out, KEY, chunk_bytes=64)
    for chunk in CHUNKS:
        writer.write(chunk)
    writer.finish()
    data = out.getvalue()
    (header_length,) = struct.unpack(">I", data[16:20])
    at = 20 + header_length
    parts = [data[:at]]
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        parts.append(data[at : at + 4 + length])
        at += 4 + length
    return data, parts


def _read(data: bytes, keys: list[BackupKey] | None = None) -> list[bytes]:
    return list(frames(io.BytesIO(data), keys or [KEY]))


def test_frames_come_back_in_order() -> None:
    data, parts = _sealed()
    assert _read(data) == CHUNKS
    assert len(parts) == 1 + len(CHUNKS) + 1
    assert b"manifest" not in data


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda p: [p[0], p[1], p[3], p[4], p[5]], "altered"),  # a frame dropped
        (lambda p: [p[0], p[1], p[2], p[2], p[3], p[4], p[5]], "altered"),  # repeated
        (lambda p: [p[0], p[2], p[1], p[3], p[4], p[5]], "altered"),  # moved
        (lambda p: p[:-1], "truncated"),  # the final frame removed
        (lambda p: [*p, p[-1]], "after its final frame"),
    ],
)
def test_frames_out_of_place_are_refused(
    change: Callable[[list[bytes]], list[bytes]], words: str
) -> None:
    _, parts = _sealed()
    with pytest.raises(BackupError, match=words):
        _read(b"".join(change(parts)))


def test_a_changed_header_or_a_wrong_key_is_refused() -> None:
    data, parts = _sealed()
    header = parts[0].replace(b'"chunk_bytes": 64', b'"chunk_bytes": 65')
    with pytest.raises(BackupError, match="altered"):
        _read(header + data[len(parts[0]) :])
    with pytest.raises(BackupError, match="encrypted under backup key") as wrong:
        _read(data, [BackupKey("backup", os.urandom(32))])
    assert wrong.value.code == "backup_wrong_key"
    with pytest.raises(BackupError, match="not a paygrid backup"):
        _read(b"PK\x03\x04" + data[4:])
