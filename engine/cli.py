"""Operator commands that need no cluster: migrations, API keys and the master key's rotation.

Each works against explicit `DATABASE_URL`/`REDIS_URL` or, with no environment, against the
instance `paygrid serve` (`make run`) published in the data directory.
"""

from __future__ import annotations

import argparse
import asyncio
from uuid import UUID

import asyncpg

from engine.auth.keys import ApiKeyService, parse_scopes
from engine.config import Settings
from engine.customers.sealing import seal_clear_rows
from engine.db import migrations
from engine.db.database import open_database
from engine.errors import PaygridError
from engine.keys.keyring import Keyring
from engine.runtime.local import attach


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `migrate` and `keys` on a subcommand parser."""
    migrate = sub.add_parser("migrate", help="apply pending migrations")
    migrate.add_argument("--status", action="store_true", help="list applied and pending")
    keys = sub.add_parser("keys", help="manage API keys; rotate the master key")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="create a key; prints it on the last line")
    create.add_argument("--name", required=True)
    create.add_argument("--scopes", required=True, help="comma-separated, e.g. payments:write")
    create.add_argument("--expires-in-days", type=int, default=None)
    keys_sub.add_parser("list", help="list keys (never their secrets)")
    revoke = keys_sub.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("id", type=UUID)
    keys_sub.add_parser(
        "rotate-master",
        help="re-wrap every data key under PAYGRID_MASTER_KEY (the old one given as "
        "PAYGRID_MASTER_KEY_PREVIOUS)",
    )


def run(args: argparse.Namespace) -> int:
    """Run a `migrate` or `keys` command; returns the exit status."""
    try:
        settings = attach(Settings())
    except RuntimeError as exc:
        print(f"error: {exc}")
        return 1
    try:
        if args.command == "migrate":
            asyncio.run(_migrate(settings, show_status=args.status))
        else:
            asyncio.run(_keys(settings, args))
    except PaygridError as exc:
        print(f"error: {exc}")
        return 1
    return 0


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
            sealed = await seal_clear_rows(db, Keyring.from_settings(settings))
        finally:
            await db.close()
        if sealed:
            print(f"sealed {sealed} customer profile(s) left in clear by an earlier release")


async def _keys(settings: Settings, args: argparse.Namespace) -> None:
    db = await open_database(settings.database_dsn, min_size=1, max_size=1)
    try:
        keys = ApiKeyService(db, secret=settings.secret_bytes)
        if args.keys_command == "rotate-master":
            keyring = Keyring.from_settings(settings)
            moved = await keyring.rotate_master(db)
            print(f"re-wrapped {moved} data key(s) under master key {keyring.master_key_id}")
        elif args.keys_command == "create":
            key, secret = await keys.create(
                name=args.name,
                scopes=parse_scopes(args.scopes),
                expires_in_days=args.expires_in_days,
            )
            print(f"created key {key.id} ({key.name}) scopes={','.join(sorted(key.scopes))}")
            print(secret)
        elif args.keys_command == "list":
            for key in await keys.all():
                state = "revoked" if key.revoked_at else "active"
                expires = key.expires_at.isoformat() if key.expires_at else "never"
                print(
                    f"{key.id}\t{key.name}\t{key.prefix}…\t{','.join(sorted(key.scopes))}"
                    f"\t{state}\texpires={expires}"
                )
        else:
            key = await keys.revoke(args.id)
            print(f"revoked {key.id} ({key.name})")
    finally:
        await db.close()
