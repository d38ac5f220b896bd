"""Back up, verify and restore a paygrid database.

A backup is consistent: one repeatable-read transaction exports its snapshot, reads the
manifest in it, and stays open while `pg_dump --snapshot` dumps exactly that snapshot, so the
counts and totals describe the very rows dumped. The dump streams through the envelope into
`FILE.partial`, renamed to `FILE` only once complete.

A restore changes nothing unless it succeeds as a whole: the file is authenticated end to end
and its schema checked first; the target must be empty (or `force`); then pg_restore's script
runs through psql in one transaction that ends with the manifest's counts and totals checked
in the database, so a mismatch rolls everything back. Pending migrations run after.

A base backup (`method="basebackup"`) copies the whole server with pg_basebackup after the
manifest is read; it is restored as a data directory (`restore_directory`), checked against
PostgreSQL's own backup manifest as it is written (physical.py says how far its counts hold).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import asyncpg

from engine.backups import physical
from engine.backups.envelope import CHUNK_BYTES, BackupKey, EnvelopeWriter, frames
from engine.backups.manifest import BASEBACKUP, DUMP, METHODS, Manifest, check_restorable
from engine.backups.repository import BackupRepository, restore_check_sql
from engine.backups.tools import Tool, find_tool, libpq_target
from engine.db import migrations
from engine.errors import BackupError

_STDERR_CHARS = 2000

# A tool's failure (its stderr, exit status) in words an operator can act on.
Explain = Callable[[str, int | None], BackupError]


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class RestoreReport:
    manifest: Manifest
    migrated: list[str]


class Backups:
    """Backups of the database at `dsn`, encrypted under `keys[0]` and opened with any of
    `keys` (the current key first, then ones a rotation left)."""

    def __init__(
        self,
        dsn: str,
        keys: list[BackupKey],
        *,
        pg_bin: str = "",
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        if not keys:
            raise BackupError("no key to encrypt backups under: set PAYGRID_MASTER_KEY")
        self._dsn = dsn
        self._keys = keys
        self._pg_bin = pg_bin
        self._clock = clock
        self._repository = BackupRepository()

    async def backup(self, out: Path, *, method: str = DUMP) -> Manifest:
        """Back the database up into the encrypted file `out`, with pg_dump (`dump`) or
        pg_basebackup (`basebackup`, the whole server); returns its manifest."""
        if method not in METHODS:
            raise BackupError(f"no backup method {method!r}: one of {', '.join(METHODS)}")
        partial = out.with_name(out.name + ".partial")
        conn = await _connect(self._dsn)
        try:
            server = await self._repository.server_version_num(conn)
            dsn, env = libpq_target(self._dsn)
            if method == BASEBACKUP:
                await self._check_replication(conn, server)
                tool = await self._tool("pg_basebackup", server // 10000, 0)
                async with conn.transaction(isolation="repeatable_read", readonly=True):
                    manifest = await self._manifest(conn, server, tool.major, method)
                await self._write(
                    partial, physical.command(tool, dsn), env, manifest, explain=physical.failure
                )
            else:
                tool = await self._tool("pg_dump", server // 10000, 0)
                async with conn.transaction(isolation="repeatable_read", readonly=True):
                    snapshot = await self._repository.export_snapshot(conn)
                    manifest = await self._manifest(conn, server, tool.major, method)
                    command = [
                        str(tool.path),
                        "--format=custom",
                        "--no-owner",
                        "--no-privileges",
                        f"--snapshot={snapshot}",
                        f"--dbname={dsn}",
                    ]
                    # The transaction stays open while pg_dump reads its snapshot.
                    await self._write(partial, command, env, manifest)
            partial.replace(out)
        finally:
            partial.unlink(missing_ok=True)
            await conn.close()
        return manifest

    async def _check_replication(self, conn: asyncpg.Connection, server: int) -> None:
        found = await self._repository.replication_settings(conn)
        physical.check_server(
            server_version_num=server,
            wal_level=found.wal_level,
            max_wal_senders=found.max_wal_senders,
            can_replicate=found.can_replicate,
            user=found.user,
        )

    async def _write(
        self,
        partial: Path,
        command: list[str],
        env: dict[str, str],
        manifest: Manifest,
        *,
        explain: Explain | None = None,
    ) -> None:
        # Owner-only from the first byte.
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            await self._dump(command, env, handle, manifest, explain)

    def verify(self, path: Path) -> Manifest:
        """Authenticate every byte of the backup at `path` (reading, never restoring); returns
        its manifest. Blocking: run it off the event loop."""
        with path.open("rb") as handle:
            stream = frames(handle, self._keys)
            manifest = Manifest.decode(next(stream, b""))
            if manifest.method == BASEBACKUP:
                physical.walk(stream)
            for _ in stream:
                pass
        return manifest

    async def restore_directory(self, path: Path, target: Path) -> Manifest:
        """Extract the base backup at `path` into `target` (new or empty), a data directory
        for a PostgreSQL of the manifest's major version to start on; nothing is written
        unless the whole file authenticates and matches its manifests, and a failure while
        writing removes what was written."""
        physical.check_target(target)
        manifest = await asyncio.to_thread(self.verify, path)
        if manifest.method != BASEBACKUP:
            raise BackupError(
                f"{path} is a pg_dump backup: restore it into a database (paygrid restore "
                "FILE), not into a directory",
                code="backup_wrong_method",
            )
        await asyncio.to_thread(self._extract, path, target)
        return manifest

    def _extract(self, path: Path, target: Path) -> None:
        created = physical.prepare(target)
        try:
            with path.open("rb") as handle:
                stream = frames(handle, self._keys)
                next(stream)  # the manifest
                physical.walk(stream, target)
                for _ in stream:
                    pass
        except BaseException:
            if created:
                shutil.rmtree(target, ignore_errors=True)
            else:
                for child in target.iterdir():
                    if child.is_dir():
                        shutil.rmtree(child)
                    else:
                        child.unlink()
            raise

    async def restore(self, path: Path, *, force: bool = False) -> RestoreReport:
        """Restore the backup at `path` into the database (empty unless `force`), check it
        against its manifest and apply pending migrations."""
        manifest = await asyncio.to_thread(self.verify, path)
        if manifest.method == BASEBACKUP:
            raise BackupError(
                f"{path} is a base backup of the whole server: restore it as a data directory "
                "(paygrid restore --to-directory DIR FILE), then start PostgreSQL on it",
                code="backup_wrong_method",
            )
        check_restorable(manifest, migrations.load_migrations())
        conn = await _connect(self._dsn)
        try:
            tables = await self._repository.tables(conn)
            if tables and not force:
                raise BackupError(
                    f"the target database is not empty ({len(tables)} tables): restore into an "
                    "empty database, or pass --force to replace everything in it",
                    code="backup_target_not_empty",
                )
            server = await self._repository.server_version_num(conn) // 10000
            await self._restore(path, manifest, server, replace=bool(tables))
            migrated = await migrations.migrate(conn)
        finally:
            await conn.close()
        return RestoreReport(manifest, migrated)

    async def _manifest(
        self, conn: asyncpg.Connection, server: int, dump_major: int, method: str
    ) -> Manifest:
        tables = await self._repository.tables(conn)
        return Manifest(
            method=method,
            wal_lsn=await self._repository.wal_lsn(conn),
            created_at=self._clock(),
            server_version_num=server,
            dump_major=dump_major,
            migrations=await self._repository.applied_migrations(conn),
            row_counts=await self._repository.row_counts(conn, tables=tables),
            ledger_totals=await self._repository.ledger_totals(conn),
        )

    async def _dump(
        self,
        command: list[str],
        env: dict[str, str],
        handle: BinaryIO,
        manifest: Manifest,
        explain: Explain | None,
    ) -> None:
        writer = EnvelopeWriter(handle, self._keys[0])
        await asyncio.to_thread(writer.write, manifest.encode())
        async with _process(command, env, stdout=True) as dump:
            assert dump.stdout is not None
            while chunk := await dump.stdout.read(CHUNK_BYTES):
                await asyncio.to_thread(writer.write, chunk)
            await _succeeded(dump, Path(command[0]).name, code="backup_failed", explain=explain)
        await asyncio.to_thread(writer.finish)
        await asyncio.to_thread(os.fsync, handle.fileno())

    async def _restore(self, path: Path, manifest: Manifest, server: int, *, replace: bool) -> None:
        """pg_restore's script, then the manifest's checks, through psql in one transaction."""
        pg_restore = await self._tool("pg_restore", server, manifest.dump_major)
        psql = await self._tool("psql", server, manifest.dump_major)
        dsn, env = libpq_target(self._dsn)
        script = [str(pg_restore.path), "--no-owner", "--no-privileges", "--file=-"]
        apply = [
            str(psql.path),
            "--no-psqlrc",
            "--quiet",
            "--single-transaction",
            "--set=ON_ERROR_STOP=1",
            f"--dbname={dsn}",
            "--file=-",
        ]
        check = restore_check_sql(manifest.row_counts, manifest.ledger_totals).encode()
        prelude = b"SET client_min_messages = warning;\n"
        if replace:
            prelude += b"DROP SCHEMA public CASCADE;\nCREATE SCHEMA public;\n"
        async with (
            _process(apply, env, stdin=True) as sink,
            _process(script, env, stdin=True, stdout=True) as source,
        ):
            feeding = asyncio.create_task(self._feed(path, source))
            try:
                await self._pipe(prelude, source, sink, check)
            except (BrokenPipeError, ConnectionResetError):
                # psql stopped early (its error is reported below): pg_restore, and so the
                # feeding, must stop too.
                _kill(source)
            finally:
                await _finished(feeding)
            await _succeeded(sink, "psql (the restore)", code="restore_failed")

    async def _pipe(
        self,
        prelude: bytes,
        source: asyncio.subprocess.Process,
        sink: asyncio.subprocess.Process,
        check: bytes,
    ) -> None:
        """The prelude, pg_restore's script and the checks into psql; closing psql's input
        commits. Every failure leaves it open and the process is killed (`_process`), so the
        transaction rolls back."""
        assert sink.stdin is not None
        assert source.stdout is not None
        sink.stdin.write(prelude)
        while chunk := await source.stdout.read(CHUNK_BYTES):
            sink.stdin.write(chunk)
            await sink.stdin.drain()
        await _succeeded(source, "pg_restore", code="restore_failed")
        sink.stdin.write(check)
        await sink.stdin.drain()
        sink.stdin.close()

    async def _tool(self, name: str, server: int, dump_major: int) -> Tool:
        return await asyncio.to_thread(
            find_tool, name, server_major=server, at_least=dump_major, explicit_dir=self._pg_bin
        )

    async def _feed(self, path: Path, target: asyncio.subprocess.Process) -> None:
        """The dump's frames, decrypted (and authenticated) one at a time, into pg_restore."""
        assert target.stdin is not None
        try:
            with path.open("rb") as handle:
                stream = frames(handle, self._keys)
                await asyncio.to_thread(next, stream)  # the manifest
                while (chunk := await asyncio.to_thread(next, stream, None)) is not None:
                    target.stdin.write(chunk)
                    await target.stdin.drain()
        except BaseException:
            # pg_restore would wait for the rest forever; killed, its output ends.
            _kill(target)
            raise
        target.stdin.close()


async def _connect(dsn: str) -> asyncpg.Connection:
    try:
        return await asyncpg.connect(dsn)
    except (OSError, asyncpg.PostgresError) as exc:
        raise BackupError(f"cannot connect to the database: {exc}") from exc


@contextlib.asynccontextmanager
async def _process(
    command: list[str], env: dict[str, str], *, stdin: bool = False, stdout: bool = False
) -> AsyncIterator[asyncio.subprocess.Process]:
    """A child process that is killed if the block leaves before it ended."""
    pipe = asyncio.subprocess.PIPE
    process = await asyncio.create_subprocess_exec(
        *command,
        stdin=pipe if stdin else asyncio.subprocess.DEVNULL,
        stdout=pipe if stdout else asyncio.subprocess.DEVNULL,
        stderr=pipe,
        env=env,
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            _kill(process)
            await process.wait()


def _kill(process: asyncio.subprocess.Process) -> None:
    """Kill `process` unless it has ended already (it may have, unnoticed yet)."""
    with contextlib.suppress(ProcessLookupError):
        process.kill()


async def _finished(feeding: asyncio.Task[None]) -> None:
    """Wait for the feeding task; a broken pipe only means pg_restore stopped first (its own
    error is reported), anything else (the file failing authentication) is raised."""
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        await feeding


async def _succeeded(
    process: asyncio.subprocess.Process, name: str, *, code: str, explain: Explain | None = None
) -> None:
    assert process.stderr is not None
    errors = (await process.stderr.read()).decode(errors="replace").strip()
    if await process.wait() != 0:
        if explain is not None:
            raise explain(errors, process.returncode)
        raise BackupError(
            f"{name} failed (exit {process.returncode}): {errors[-_STDERR_CHARS:]}", code=code
        )
