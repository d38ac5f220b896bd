"""Operator commands that need no cluster: migrations, API keys, the master key's rotation,
backups and restores.

Each works against explicit `DATABASE_URL`/`REDIS_URL` or, with no environment, against the
instance `paygrid serve` (`make run`) published in the data directory; `backup` and `restore`
with neither start the embedded PostgreSQL of the data directory themselves (so a stopped
`make run` can be restored into, then started on the restored data).
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from ipaddress import ip_network
from pathlib import Path
from uuid import UUID

import asyncpg
from pydantic import SecretStr

from engine.auth.keys import parse_scopes
from engine.auth.models import Network
from engine.backups.keys import backup_keys
from engine.backups.manifest import DUMP, METHODS
from engine.backups.service import Backups
from engine.config import Settings
from engine.customers.sealing import seal_clear_rows
from engine.db import migrations
from engine.db.database import open_database
from engine.errors import InvalidRequest, PaygridError
from engine.keys.keyring import Keyring
from engine.ratelimit.limits import parse_rate, rate_text
from engine.runtime.access import key_service
from engine.runtime.local import attach, start_postgres, with_kept_secrets
from engine.shared_state import connect_redis
from engine.webhooks.secrets import seal_clear_secrets


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `migrate`, `keys`, `backup` and `restore` on a subcommand parser."""
    migrate = sub.add_parser("migrate", help="apply pending migrations")
    migrate.add_argument("--status", action="store_true", help="list applied and pending")
    migrate.add_argument(
        "--check",
        action="store_true",
        help="say whether this release and the schema are compatible (exit 1 if not); "
        "changes nothing",
    )
    backup = sub.add_parser("backup", help="take an encrypted backup, or verify one")
    target = backup.add_mutually_exclusive_group(required=True)
    target.add_argument("--out", type=Path, help="write a new backup to this file")
    target.add_argument("--verify", type=Path, help="authenticate a backup without restoring")
    backup.add_argument(
        "--method",
        choices=METHODS,
        default=DUMP,
        help="dump: pg_dump of paygrid's database (default); basebackup: pg_basebackup of the "
        "whole server (needs replication access)",
    )
    restore = sub.add_parser("restore", help="restore a backup into an empty database")
    restore.add_argument("file", type=Path)
    restore.add_argument(
        "--to-directory",
        type=Path,
        default=None,
        metavar="DIR",
        help="extract a base backup into this new or empty directory, a data directory to "
        "start PostgreSQL on",
    )
    restore.add_argument(
        "--force", action="store_true", help="replace everything in a non-empty database"
    )
    keys = sub.add_parser("keys", help="manage API keys; rotate the master key")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="create a key; prints it on the last line")
    create.add_argument("--name", required=True)
    create.add_argument("--scopes", required=True, help="comma-separated, e.g. payments:write")
    create.add_argument("--expires-in-days", type=int, default=None)
    create.add_argument(
        "--rate-limit", default=None, help="the key's own limit: 5000/s, 600/m, 1000/h or unlimited"
    )
    create.add_argument(
        "--allow-ip",
        action="append",
        default=[],
        metavar="CIDR",
        help="a network the key may be used from (repeatable); any address if none",
    )
    keys_sub.add_parser("list", help="list keys (never their secrets)")
    revoke = keys_sub.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("id", type=UUID)
    rotate = keys_sub.add_parser(
        "rotate",
        help="give a key a new secret (printed on the last line); the old one keeps "
        "working for the grace period",
    )
    rotate.add_argument("id", type=UUID)
    rotate.add_argument("--grace-s", type=float, default=None, help="default: 24 h")
    keys_sub.add_parser(
        "rotate-master",
        help="re-wrap every data key under PAYGRID_MASTER_KEY (the old one given as "
        "PAYGRID_MASTER_KEY_PREVIOUS)",
    )


def run(args: argparse.Namespace) -> int:
    """Run a `migrate`, `keys`, `backup` or `restore` command; returns the exit status."""
    stop: Callable[[], None] = lambda: None  # noqa: E731 - nothing started
    try:
        if getattr(args, "verify", None) or getattr(args, "to_directory", None):
            settings = with_kept_secrets(Settings())
        elif args.command in {"backup", "restore"}:
            settings, stop = _database(Settings())
        else:
            settings = attach(Settings())
    except RuntimeError as exc:
        print(f"error: {exc}")
        return 1
    try:
        if args.command == "migrate" and args.check:
            return asyncio.run(_check(settings))
        if args.command == "migrate":
            asyncio.run(_migrate(settings, show_status=args.status))
        elif args.command in {"backup", "restore"}:
            asyncio.run(_backups(settings, args))
        else:
            asyncio.run(_keys(settings, args))
    except PaygridError as exc:
        print(f"error: {exc}")
        return 1
    finally:
        stop()
    return 0


def _database(settings: Settings) -> tuple[Settings, Callable[[], None]]:
    """Settings on the configured or running database, else on the data directory's embedded
    PostgreSQL started for this command (and its stop)."""
    try:
        return attach(settings), lambda: None
    except RuntimeError:
        data_dir = Path(settings.data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        dsn, stop = start_postgres(data_dir)
        return attach(settings.model_copy(update={"database_url": SecretStr(dsn)})), stop


async def _check(settings: Settings) -> int:
    conn = await asyncpg.connect(settings.database_dsn)
    try:
        found = migrations.compatibility(await migrations.status(conn))
    finally:
        await conn.close()
    print(found.describe())
    return 0 if found.compatible else 1


async def _backups(settings: Settings, args: argparse.Namespace) -> None:
    backups = Backups(settings.database_dsn, backup_keys(settings), pg_bin=settings.backup_pg_bin)
    if args.command == "restore" and args.to_directory is not None:
        manifest = await backups.restore_directory(args.file, args.to_directory)
        print(
            f"extracted {args.file} (taken {manifest.created_at.isoformat()}, PostgreSQL "
            f"{manifest.server_version_num // 10000}) into {args.to_directory}: start a "
            f"PostgreSQL {manifest.server_version_num // 10000} on it as the data directory's "
            "owner (pg_ctl -D DIR start); it recovers to the end of the copy"
        )
        return
    if args.command == "restore":
        report = await backups.restore(args.file, force=args.force)
        manifest = report.manifest
        print(
            f"restored {args.file} (taken {manifest.created_at.isoformat()}, schema "
            f"{manifest.schema_version}); {sum(manifest.row_counts.values())} rows and the "
            "ledger totals match its manifest"
        )
        print(f"applied {', '.join(report.migrated)}" if report.migrated else "schema up to date")
        return
    if args.verify:
        manifest = await asyncio.to_thread(backups.verify, args.verify)
        verb = "verified"
    else:
        manifest = await backups.backup(args.out, method=args.method)
        verb = "wrote"
    totals = "; ".join(
        f"{currency} " + ", ".join(f"{a} {t}" for a, t in accounts.items())
        for currency, accounts in manifest.ledger_totals.items()
    )
    print(
        f"{verb} {args.out or args.verify}: taken {manifest.created_at.isoformat()} "
        f"({manifest.method}, WAL {manifest.wal_lsn or 'unknown'}), schema "
        f"{manifest.schema_version}, {sum(manifest.row_counts.values())} rows in "
        f"{len(manifest.row_counts)} tables, ledger totals: {totals or 'none'}"
    )


async def _migrate(settings: Settings, *, show_status: bool) -> None:
    conn = await asyncpg.connect(settings.database_dsn)
    try:
        if show_status:
            for item in await migrations.status(conn):
                when = item.applied_at.isoformat() if item.applied_at else "pending"
                name = item.name or "(no file here: applied by a newer release)"
                print(f"{item.version}_{name}\t{when}")
            return
        applied = await migrations.migrate(conn)
        print(f"applied {', '.join(applied)}" if applied else "up to date")
    finally:
        await conn.close()
    if settings.master_key.get_secret_value():
        db = await open_database(settings.database_dsn, min_size=1, max_size=1)
        try:
            keyring = Keyring.from_settings(settings)
            sealed = await seal_clear_rows(db, keyring)
            endpoints = await seal_clear_secrets(db, keyring)
        finally:
            await db.close()
        if sealed:
            print(f"sealed {sealed} customer profile(s) left in clear by an earlier release")
        if endpoints:
            print(f"sealed the signing secrets of {endpoints} webhook endpoint(s) left in clear")


def _networks(raw: list[str]) -> tuple[Network, ...]:
    try:
        return tuple(ip_network(n, strict=False) for n in raw)
    except ValueError as exc:
        raise InvalidRequest(str(exc), param="allow-ip") from exc


async def _keys(settings: Settings, args: argparse.Namespace) -> None:
    db = await open_database(settings.database_dsn, min_size=1, max_size=1)
    # Revocations and rotations are announced to the running replicas through Redis (without
    # one, the replicas' cache TTL alone bounds how long they go on accepting a revoked key).
    redis = connect_redis(settings.redis_dsn, max_connections=2) if settings.redis_dsn else None
    try:
        keys = key_service(settings, db, redis)
        if args.keys_command == "rotate-master":
            keyring = Keyring.from_settings(settings)
            moved = await keyring.rotate_master(db)
            print(f"re-wrapped {moved} data key(s) under master key {keyring.master_key_id}")
        elif args.keys_command == "create":
            key, secret = await keys.create(
                name=args.name,
                scopes=parse_scopes(args.scopes),
                expires_in_days=args.expires_in_days,
                allowed_networks=_networks(args.allow_ip),
                rate_limit=None if args.rate_limit is None else parse_rate(args.rate_limit),
            )
            print(f"created key {key.id} ({key.name}) scopes={','.join(sorted(key.scopes))}")
            print(secret)
        elif args.keys_command == "rotate":
            key, secret = await keys.rotate(args.id, grace_s=args.grace_s)
            print(f"rotated key {key.id} ({key.name}); the old secret works for the grace period")
            print(secret)
        elif args.keys_command == "list":
            for key in await keys.all():
                state = "revoked" if key.revoked_at else "active"
                expires = key.expires_at.isoformat() if key.expires_at else "never"
                limit = "default" if key.rate_limit is None else rate_text(key.rate_limit)
                ips = ",".join(str(n) for n in key.allowed_networks) or "any"
                print(
                    f"{key.id}\t{key.name}\t{key.prefix}…\t{','.join(sorted(key.scopes))}"
                    f"\t{state}\texpires={expires}\trate_limit={limit}\tallowed_ips={ips}"
                )
        else:
            key = await keys.revoke(args.id)
            print(f"revoked {key.id} ({key.name})")
    finally:
        if redis is not None:
            await redis.aclose()
        await db.close()
