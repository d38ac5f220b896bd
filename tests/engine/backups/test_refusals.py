"""Bad input to a restore: a wrong key, a truncated file, a changed byte (in the data or the
header), a backup from a newer schema, a non-empty target, a manifest the data does not match.
Each is a clear error, and the target database is exactly as it was."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import asyncpg
import pytest

from engine.backups.envelope import BackupKey, EnvelopeWriter, frames
from engine.backups.manifest import Manifest
from engine.errors import BackupError
from tests.engine.backups.conftest import KEYS, Scratch, backups, every_row
from tests.engine.conftest import with_database
from tests.engine.rows import add_customer, add_transaction


async def _seeded(scratch: Scratch, tmp_path: Path) -> Path:
    """A backup of the scratch database holding a payment."""
    conn = await asyncpg.connect(scratch.dsn)
    try:
        await add_transaction(conn, await add_customer(conn), amount=4200)
    finally:
        await conn.close()
    out = tmp_path / "good.backup"
    await backups(scratch.dsn).backup(out)
    return out


@contextlib.asynccontextmanager
async def _empty_target(scratch: Scratch) -> AsyncIterator[str]:
    """A new, empty database beside the scratch one, dropped afterwards."""
    name = f"{scratch.name}_target"
    await scratch.admin(f'CREATE DATABASE "{name}"')
    try:
        yield with_database(scratch.dsn, name)
    finally:
        await scratch.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _refused(dsn: str, path: Path, code: str, words: str, *, force: bool = False) -> None:
    before = await every_row(dsn)
    with pytest.raises(BackupError) as refused:
        await backups(dsn).restore(path, force=force)
    assert refused.value.code == code
    assert words in str(refused.value)
    assert await every_row(dsn) == before


def _changed(source: Path, at: int, out: Path) -> Path:
    data = bytearray(source.read_bytes())
    data[at] ^= 0x01
    out.write_bytes(bytes(data))
    return out


async def test_each_bad_file_is_refused_and_nothing_changes(
    scratch: Scratch, tmp_path: Path
) -> None:
    good = await _seeded(scratch, tmp_path)
    async with _empty_target(scratch) as target:
        other = [BackupKey("master", os.urandom(32))]
        with pytest.raises(BackupError, match="encrypted under master key") as wrong:
            await backups(target, other).restore(good)
        assert wrong.value.code == "backup_wrong_key"
        assert await every_row(target) == {}

        size = good.stat().st_size
        truncated = tmp_path / "truncated.backup"
        for keep in (10, 200, size // 2, size - 1, size - 20):
            truncated.write_bytes(good.read_bytes()[:keep])
            await _refused(target, truncated, "backup_invalid", "truncated")

        middle = _changed(good, size // 2, tmp_path / "middle.backup")
        await _refused(target, middle, "backup_tampered", "altered")
        header = _changed(good, 40, tmp_path / "header.backup")
        with pytest.raises(BackupError):
            await backups(target).restore(header)
        assert await every_row(target) == {}
        appended = tmp_path / "appended.backup"
        appended.write_bytes(good.read_bytes() + b"\0")
        await _refused(target, appended, "backup_invalid", "after its final frame")

        # The good file restores into the same target afterwards.
        await backups(target).restore(good)
        assert (await every_row(target))["transactions"]


async def test_a_non_empty_target_is_refused_unless_forced(
    scratch: Scratch, tmp_path: Path
) -> None:
    good = await _seeded(scratch, tmp_path)
    conn = await asyncpg.connect(scratch.dsn)
    try:
        await add_transaction(conn, await add_customer(conn), amount=1)
    finally:
        await conn.close()

    await _refused(scratch.dsn, good, "backup_target_not_empty", "not empty")

    await backups(scratch.dsn).restore(good, force=True)
    restored = await every_row(scratch.dsn)
    assert ["4200" in row for row in restored["transactions"]] == [True]


async def test_a_backup_from_a_newer_schema_is_refused(scratch: Scratch, tmp_path: Path) -> None:
    conn = await asyncpg.connect(scratch.dsn)
    try:
        await conn.execute(
            "INSERT INTO schema_migrations (version, checksum) VALUES ('9999', 'from the future')"
        )
    finally:
        await conn.close()
    newer = await _seeded(scratch, tmp_path)
    async with _empty_target(scratch) as target:
        await _refused(target, newer, "backup_schema_newer", "migration 9999 is unknown")


async def test_data_that_disagrees_with_its_manifest_rolls_the_restore_back(
    scratch: Scratch, tmp_path: Path
) -> None:
    good = await _seeded(scratch, tmp_path)
    with good.open("rb") as handle:
        manifest, *dump = list(frames(handle, KEYS))
    honest = Manifest.decode(manifest)
    totals = {"USD": {**honest.ledger_totals.get("USD", {}), "captured": 1}}
    for lying in (
        Manifest.decode(manifest.replace(b'"transactions": 1', b'"transactions": 2')),
        replace(honest, ledger_totals=totals),
    ):
        forged = tmp_path / "forged.backup"
        with forged.open("wb") as out:
            writer = EnvelopeWriter(out, KEYS[0])
            writer.write(lying.encode())
            for chunk in dump:
                writer.write(chunk)
            writer.finish()
        async with _empty_target(scratch) as target:
            await _refused(target, forged, "restore_failed", "restore check")
            assert await every_row(target) == {}


async def test_psql_stopping_early_is_its_error_and_rolls_back(
    scratch: Scratch, tmp_path: Path
) -> None:
    good = await _seeded(scratch, tmp_path)
    async with _empty_target(scratch) as target:
        conn = await asyncpg.connect(target)
        try:
            # No table, so the target counts as empty; the restore's first CREATE TYPE fails.
            await conn.execute("CREATE TYPE transaction_status AS ENUM ('leftover')")
        finally:
            await conn.close()
        await _refused(target, good, "restore_failed", "psql (the restore) failed")
        assert await every_row(target) == {}
